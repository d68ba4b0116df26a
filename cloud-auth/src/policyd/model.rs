//! What the policy service stores: named policies, global or owned by one tenant, each
//! change a new version; and the rule formats of each enforcer.
//!
//! | enforcer     | `rules`                                                                     |
//! |--------------|-----------------------------------------------------------------------------|
//! | `default`    | object of oslo.policy rules: `{"INVITE": "role:member", ...}`              |
//! | `custom`     | Cedar policy text (a string), see [`crate::cedar`]                          |
//! | `op-and`, `op-or` | array of sub-policies: a reference `"global:<name>"` or `"tenant:<name>"` (the tenant being decided for), or an inline `{"enforcer": ..., "rules": ...}` |
//! | `all-pass`, `all-forbid` | `null` (or absent)                                              |

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cedar::{CedarError, CedarPolicy};
use crate::oslo::{RuleError, RuleSet};
use crate::policy::MAX_POLICY_DEPTH;

/// Longest policy name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest tenant (Keystone project) id.
pub const MAX_TENANT_LEN: usize = 64;
/// Largest `rules` value, as JSON text.
pub const MAX_RULES_LEN: usize = 128 * 1024;
/// Most sub-policies in one composition.
pub const MAX_SUBPOLICIES: usize = 64;

/// Who owns a policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Written by the cloud admin; applies to everyone.
    Global,
    /// Owned by one tenant (Keystone project id).
    Customer(String),
}

impl Scope {
    /// The tenant a customer policy belongs to.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Scope::Global => None,
            Scope::Customer(t) => Some(t),
        }
    }

    /// `global` or `customer`.
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Customer(_) => "customer",
        }
    }

    /// The owner column: empty for global policies.
    pub(crate) fn owner(&self) -> &str {
        self.tenant().unwrap_or("")
    }

    pub(crate) fn from_owner(owner: String) -> Scope {
        if owner.is_empty() {
            Scope::Global
        } else {
            Scope::Customer(owner)
        }
    }

    /// `global/<name>` or `<tenant>/<name>`: how decisions name a stored policy.
    pub fn qualify(&self, name: &str) -> String {
        match self {
            Scope::Global => format!("global/{name}"),
            Scope::Customer(t) => format!("{t}/{name}"),
        }
    }
}

/// How a policy decides (the enforcers of design brief §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnforcerKind {
    /// oslo.policy rules.
    Default,
    /// Deny overrides.
    OpAnd,
    /// Allow overrides.
    OpOr,
    /// Allows everything.
    AllPass,
    /// Denies everything.
    AllForbid,
    /// Cedar.
    Custom,
}

impl EnforcerKind {
    /// The name used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcerKind::Default => "default",
            EnforcerKind::OpAnd => "op-and",
            EnforcerKind::OpOr => "op-or",
            EnforcerKind::AllPass => "all-pass",
            EnforcerKind::AllForbid => "all-forbid",
            EnforcerKind::Custom => "custom",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<EnforcerKind> {
        [
            EnforcerKind::Default,
            EnforcerKind::OpAnd,
            EnforcerKind::OpOr,
            EnforcerKind::AllPass,
            EnforcerKind::AllForbid,
            EnforcerKind::Custom,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A policy's content: its enforcer and rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// The enforcer.
    pub enforcer: EnforcerKind,
    /// The rules, in the enforcer's format (module docs).
    #[serde(default)]
    pub rules: Value,
}

/// A reference from a composition to another stored policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `global:<name>`.
    Global(String),
    /// `tenant:<name>`: the policy of that name of the tenant being decided for.
    Tenant(String),
}

impl Reference {
    /// Parses `global:<name>` or `tenant:<name>`.
    pub fn parse(s: &str) -> Option<Reference> {
        let (kind, name) = s.split_once(':')?;
        if !valid_name(name) {
            return None;
        }
        match kind {
            "global" => Some(Reference::Global(name.to_owned())),
            "tenant" => Some(Reference::Tenant(name.to_owned())),
            _ => None,
        }
    }
}

/// One entry of an `op-and`/`op-or` composition.
#[derive(Debug, Clone)]
pub enum Member {
    /// Another stored policy.
    Ref(Reference),
    /// A policy written in place.
    Inline(Spec),
}

/// Why a policy's content is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The rules do not have the shape the enforcer expects.
    #[error("rules: {0}")]
    Shape(String),
    /// An oslo.policy rule does not parse or refers to a missing rule.
    #[error("rules: {0}")]
    Rule(#[from] RuleError),
    /// A Cedar policy does not parse or validate.
    #[error("rules: {0}")]
    Cedar(#[from] CedarError),
    /// The rules are larger than [`MAX_RULES_LEN`].
    #[error("rules larger than {MAX_RULES_LEN} bytes")]
    TooLarge,
    /// Inline compositions nest deeper than [`MAX_POLICY_DEPTH`].
    #[error("compositions nested deeper than {MAX_POLICY_DEPTH}")]
    TooDeep,
}

/// A policy name or tenant id: 1..=64 of `A-Z a-z 0-9 _ - .`.
pub fn valid_name(s: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Compiled form of a `default` or `custom` leaf, or the members of a composition.
pub(crate) enum Parsed {
    Rules(RuleSet),
    Cedar(CedarPolicy),
    Members(Vec<Member>),
    Constant,
}

impl Spec {
    /// Checks the rules (size, shape, syntax, Cedar schema), as done on upload.
    pub fn validate(&self) -> Result<(), SpecError> {
        let len = serde_json::to_string(&self.rules).map_or(usize::MAX, |s| s.len());
        if len > MAX_RULES_LEN {
            return Err(SpecError::TooLarge);
        }
        self.parse_at(0).map(|_| ())
    }

    pub(crate) fn parse_at(&self, depth: usize) -> Result<Parsed, SpecError> {
        if depth >= MAX_POLICY_DEPTH {
            return Err(SpecError::TooDeep);
        }
        let shape = |m: &str| Err(SpecError::Shape(m.to_owned()));
        match (self.enforcer, &self.rules) {
            (EnforcerKind::Default, Value::Object(map)) => {
                let mut pairs = Vec::with_capacity(map.len());
                for (k, v) in map {
                    let Some(text) = v.as_str() else {
                        return shape("each default rule must be a string");
                    };
                    pairs.push((k.as_str(), text));
                }
                Ok(Parsed::Rules(RuleSet::parse(pairs)?))
            }
            (EnforcerKind::Default, _) => shape("default rules must be an object of rule texts"),
            (EnforcerKind::Custom, Value::String(text)) => {
                Ok(Parsed::Cedar(CedarPolicy::parse(text)?))
            }
            (EnforcerKind::Custom, _) => shape("custom rules must be Cedar text (a string)"),
            (EnforcerKind::OpAnd | EnforcerKind::OpOr, Value::Array(items)) => {
                if items.len() > MAX_SUBPOLICIES {
                    return shape("too many sub-policies");
                }
                let mut members = Vec::with_capacity(items.len());
                for item in items {
                    members.push(match item {
                        Value::String(s) => match Reference::parse(s) {
                            Some(r) => Member::Ref(r),
                            None => return shape("a reference is global:<name> or tenant:<name>"),
                        },
                        Value::Object(_) => {
                            let spec: Spec = serde_json::from_value(item.clone())
                                .map_err(|e| SpecError::Shape(e.to_string()))?;
                            spec.parse_at(depth + 1)?;
                            Member::Inline(spec)
                        }
                        _ => return shape("a sub-policy is a reference or an inline policy"),
                    });
                }
                Ok(Parsed::Members(members))
            }
            (EnforcerKind::OpAnd | EnforcerKind::OpOr, _) => {
                shape("compositions take an array of sub-policies")
            }
            (EnforcerKind::AllPass | EnforcerKind::AllForbid, Value::Null) => Ok(Parsed::Constant),
            (EnforcerKind::AllPass | EnforcerKind::AllForbid, _) => {
                shape("all-pass and all-forbid take no rules")
            }
        }
    }
}

/// One stored version of a policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyVersion {
    /// The name, unique within its scope.
    pub name: String,
    /// `global` or `customer`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The owner tenant of a customer policy.
    pub tenant: Option<String>,
    /// 1, 2, 3... per policy (a deletion is a version too).
    pub version: i64,
    /// Position in the store-wide sequence of changes.
    pub revision: i64,
    /// The content; `None` for a deletion.
    #[serde(flatten)]
    pub spec: Option<Spec>,
    /// Whether this version deletes the policy.
    pub deleted: bool,
    /// Keystone user id of the writer (`policyd` for the built-ins).
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
}

impl PolicyVersion {
    /// The policy's scope.
    pub fn scope(&self) -> Scope {
        self.tenant.clone().map_or(Scope::Global, Scope::Customer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(enforcer: EnforcerKind, rules: Value) -> Spec {
        Spec { enforcer, rules }
    }

    #[test]
    fn each_enforcer_takes_its_own_shape() {
        use EnforcerKind as E;
        let ok = [
            spec(E::Default, json!({"INVITE": "role:member", "default": "!"})),
            spec(E::Custom, json!("permit(principal, action, resource);")),
            spec(
                E::OpAnd,
                json!(["global:restrict", "tenant:root",
                       {"enforcer": "all-pass"},
                       {"enforcer": "op-or", "rules": [{"enforcer": "default", "rules": {"x": "@"}}]}]),
            ),
            spec(E::AllPass, Value::Null),
            spec(E::AllForbid, Value::Null),
        ];
        for s in ok {
            s.validate().unwrap();
        }
        let bad = [
            spec(E::Default, json!(["role:x"])),
            spec(E::Default, json!({"INVITE": 3})),
            spec(E::Default, json!({"INVITE": "(role:x or"})),
            spec(E::Default, json!({"INVITE": "rule:missing"})),
            spec(E::Custom, json!({"text": "permit"})),
            spec(
                E::Custom,
                json!("permit(principal, action, resource) when { principal.x };"),
            ),
            spec(E::OpOr, json!(["restrict"])),
            spec(E::OpOr, json!(["other:restrict"])),
            spec(E::OpOr, json!(["global:bad name"])),
            spec(E::OpOr, json!([{"enforcer": "nope"}])),
            spec(E::OpOr, json!([3])),
            spec(E::OpAnd, json!({"a": "b"})),
            spec(E::AllPass, json!({"a": "@"})),
        ];
        for s in bad {
            assert!(s.validate().is_err(), "{s:?}");
        }
    }

    #[test]
    fn inline_nesting_and_size_are_bounded() {
        let mut rules = json!(null);
        let mut enforcer = "all-pass";
        for _ in 0..MAX_POLICY_DEPTH {
            rules = json!([{"enforcer": enforcer, "rules": rules}]);
            enforcer = "op-and";
        }
        let s = spec(EnforcerKind::OpAnd, rules);
        assert_eq!(s.validate(), Err(SpecError::TooDeep));
        let big = "x".repeat(MAX_RULES_LEN);
        let s = spec(EnforcerKind::Default, json!({ "a": big }));
        assert_eq!(s.validate(), Err(SpecError::TooLarge));
    }

    #[test]
    fn names_and_references() {
        assert!(valid_name("root") && valid_name("a.b-c_9"));
        assert!(!valid_name("") && !valid_name("a/b") && !valid_name(&"x".repeat(65)));
        assert_eq!(
            Reference::parse("tenant:root"),
            Some(Reference::Tenant("root".into()))
        );
        assert_eq!(Reference::parse("global:"), None);
        assert_eq!(Scope::Customer("p1".into()).qualify("root"), "p1/root");
        assert_eq!(Scope::Global.qualify("restrict"), "global/restrict");
    }
}
