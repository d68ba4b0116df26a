//! The `custom` enforcer (design brief §6): a tenant's own logic written in Cedar, a
//! sandboxed, analyzable policy language, instead of MultiPol's uploaded code.
//!
//! Policies are checked when they are uploaded: parsed, then validated (strict mode)
//! against the schema [`SCHEMA`]:
//!
//! | Cedar      | from the request                                                              |
//! |------------|-------------------------------------------------------------------------------|
//! | principal  | `Ims::User::"<user_id>"` in `Ims::Tenant::"<project_id>"`, attributes `project`, `roles` (set), `identity` (the IMS identity in use) |
//! | action     | `Ims::Action::"<verb>"` for a SIP method or REST verb; `Ims::Action::"as"` for `as:<name>` |
//! | resource   | `Ims::Resource::"<target>"` in `Ims::Tenant::"<tenant>"`, attributes `target`, `tenant` |
//! | context    | `verb` (the verb as sent), `as_name` (the `<name>` of `as:<name>`, else empty) |
//!
//! Subject and object come from the oslo-style [`Credentials`] (`user_id`, `project_id`,
//! `roles`, `identity`) and [`Target`] (`target.target`, `target.tenant`); a missing value is
//! the empty string. Anything that goes wrong while deciding (a verb the schema does not
//! declare, an evaluation error in any policy) is a deny; so is the absence of a `permit`.
//! Cedar evaluation has no loops or recursion, and the policy text is bounded by
//! [`MAX_CEDAR_LEN`], so a decision is bounded in time.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, RestrictedExpression, Schema, ValidationMode, Validator,
};

use crate::oslo::{CredValue, Credentials, Target};

/// Longest Cedar policy text accepted.
pub const MAX_CEDAR_LEN: usize = 64 * 1024;
/// Most policies (permit/forbid statements) in one `custom` enforcer.
pub const MAX_CEDAR_POLICIES: usize = 256;

/// Verbs with their own Cedar action: the SIP methods of RFC 3261 and its extensions
/// (RFC 3262, 3265/6665, 3311, 3428, 3515, 3903, 6086) and the REST verbs.
pub const VERBS: &[&str] = &[
    "REGISTER",
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "MESSAGE",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "REFER",
    "UPDATE",
    "PRACK",
    "INFO",
    "GET",
    "PUT",
    "POST",
    "DELETE",
    "PATCH",
];

/// The Cedar schema every `custom` policy is validated against.
pub const SCHEMA: &str = r#"namespace Ims {
  entity Tenant;
  entity User in [Tenant] { project: String, roles: Set<String>, identity: String };
  entity Resource in [Tenant] { target: String, tenant: String };
  type Ctx = { verb: String, as_name: String };
  action "REGISTER", "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE", "SUBSCRIBE",
    "NOTIFY", "PUBLISH", "REFER", "UPDATE", "PRACK", "INFO", "GET", "PUT", "POST",
    "DELETE", "PATCH", "as"
    appliesTo { principal: User, resource: Resource, context: Ctx };
}"#;

/// Why a Cedar policy is refused at upload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CedarError {
    /// Longer than [`MAX_CEDAR_LEN`].
    #[error("Cedar policy text longer than {MAX_CEDAR_LEN} bytes")]
    TooLong,
    /// More statements than [`MAX_CEDAR_POLICIES`].
    #[error("more than {MAX_CEDAR_POLICIES} Cedar policies")]
    TooMany,
    /// The text does not parse.
    #[error("Cedar syntax: {0}")]
    Syntax(String),
    /// The policies do not validate against [`SCHEMA`] (unknown attribute, type error...).
    #[error("Cedar validation: {0}")]
    Invalid(String),
    /// The built-in schema does not load (a bug).
    #[error("Cedar schema: {0}")]
    Schema(String),
}

struct Types {
    schema: Schema,
    user: EntityTypeName,
    tenant: EntityTypeName,
    resource: EntityTypeName,
    action: EntityTypeName,
}

fn types() -> Result<&'static Types, CedarError> {
    static TYPES: OnceLock<Result<Types, CedarError>> = OnceLock::new();
    TYPES
        .get_or_init(|| {
            let (schema, _warnings) = Schema::from_cedarschema_str(SCHEMA)
                .map_err(|e| CedarError::Schema(e.to_string()))?;
            let name = |n: &str| {
                EntityTypeName::from_str(n).map_err(|e| CedarError::Schema(e.to_string()))
            };
            Ok(Types {
                schema,
                user: name("Ims::User")?,
                tenant: name("Ims::Tenant")?,
                resource: name("Ims::Resource")?,
                action: name("Ims::Action")?,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A validated set of Cedar policies.
#[derive(Debug, Clone)]
pub struct CedarPolicy {
    policies: Arc<PolicySet>,
}

impl CedarPolicy {
    /// Parses and validates `text` against [`SCHEMA`] (strict mode).
    pub fn parse(text: &str) -> Result<CedarPolicy, CedarError> {
        if text.len() > MAX_CEDAR_LEN {
            return Err(CedarError::TooLong);
        }
        let policies = PolicySet::from_str(text).map_err(|e| CedarError::Syntax(e.to_string()))?;
        if policies.num_of_policies() > MAX_CEDAR_POLICIES {
            return Err(CedarError::TooMany);
        }
        let types = types()?;
        let result =
            Validator::new(types.schema.clone()).validate(&policies, ValidationMode::Strict);
        if !result.validation_passed() {
            let reasons: Vec<String> = result.validation_errors().map(|e| e.to_string()).collect();
            return Err(CedarError::Invalid(reasons.join("; ")));
        }
        Ok(CedarPolicy {
            policies: Arc::new(policies),
        })
    }

    /// Whether the policies permit `verb` by `subject` on `object`; any error is a deny.
    pub fn allows(&self, subject: &Credentials, object: &Target, verb: &str) -> bool {
        match self.decide(subject, object, verb) {
            Ok(allowed) => allowed,
            Err(reason) => {
                tracing::debug!(verb, %reason, "Cedar decision failed: deny");
                false
            }
        }
    }

    fn decide(&self, subject: &Credentials, object: &Target, verb: &str) -> Result<bool, String> {
        let t = types().map_err(|e| e.to_string())?;
        let (action, as_name) = match verb.strip_prefix("as:") {
            Some(name) => ("as", name),
            None if VERBS.contains(&verb) => (verb, ""),
            None => return Err(format!("verb {verb:?} has no Cedar action")),
        };
        let uid = |ty: &EntityTypeName, id: &str| {
            EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
        };
        let text = |v: &str| RestrictedExpression::new_string(v.to_owned());
        let cred = |key: &str| match subject.get(key) {
            Some(CredValue::Str(s)) => s.as_str(),
            _ => "",
        };
        let project = cred("project_id");
        let tenant = object.get("target.tenant").map_or("", String::as_str);
        let target = object.get("target.target").map_or("", String::as_str);

        let principal = uid(&t.user, cred("user_id"));
        let resource = uid(&t.resource, target);
        let roles = RestrictedExpression::new_set(subject.roles().iter().map(|r| text(r)));
        let user = Entity::new(
            principal.clone(),
            HashMap::from([
                ("project".to_owned(), text(project)),
                ("roles".to_owned(), roles),
                ("identity".to_owned(), text(cred("identity"))),
            ]),
            HashSet::from([uid(&t.tenant, project)]),
        )
        .map_err(|e| e.to_string())?;
        let res = Entity::new(
            resource.clone(),
            HashMap::from([
                ("target".to_owned(), text(target)),
                ("tenant".to_owned(), text(tenant)),
            ]),
            HashSet::from([uid(&t.tenant, tenant)]),
        )
        .map_err(|e| e.to_string())?;
        let mut all = vec![user, res];
        for id in [project, tenant] {
            let e = Entity::new_no_attrs(uid(&t.tenant, id), HashSet::new());
            if !all.iter().any(|x| x.uid() == e.uid()) {
                all.push(e);
            }
        }
        // Built here to the schema's shape, for policies validated against it: checking
        // entities and request against the schema again would triple the cost.
        let entities = Entities::from_entities(all, None).map_err(|e| e.to_string())?;
        let context = Context::from_pairs([
            ("verb".to_owned(), text(verb)),
            ("as_name".to_owned(), text(as_name)),
        ])
        .map_err(|e| e.to_string())?;
        let request =
            cedar_policy::Request::new(principal, uid(&t.action, action), resource, context, None)
                .map_err(|e| e.to_string())?;
        let response = Authorizer::new().is_authorized(&request, &self.policies, &entities);
        if let Some(e) = response.diagnostics().errors().next() {
            return Err(e.to_string());
        }
        Ok(response.decision() == Decision::Allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(user: &str, project: &str, roles: &[&str]) -> Credentials {
        let mut c = Credentials::new();
        c.insert("user_id", user);
        c.insert("project_id", project);
        c.insert("identity", format!("sip:{user}@ims.example.net"));
        c.set_roles(roles.iter().map(|r| r.to_string()).collect());
        c
    }

    fn object(target: &str, tenant: &str) -> Target {
        [
            ("target.target".to_owned(), target.to_owned()),
            ("target.tenant".to_owned(), tenant.to_owned()),
        ]
        .into()
    }

    #[test]
    fn tenant_lets_one_other_tenant_call_its_members() {
        let p = CedarPolicy::parse(
            r#"permit(principal in Ims::Tenant::"a", action == Ims::Action::"INVITE",
                      resource in Ims::Tenant::"b")
               when { principal.roles.contains("member") };
               permit(principal, action, resource)
               when { principal.project == resource.tenant };
               forbid(principal, action == Ims::Action::"MESSAGE", resource)
               unless { principal.project == resource.tenant };"#,
        )
        .unwrap();
        let alice = subject("alice", "a", &["member"]);
        let guest = subject("gus", "a", &["reader"]);
        let carl = subject("carl", "c", &["member"]);
        let bob = object("sip:bob@ims.example.net", "b");
        assert!(p.allows(&alice, &bob, "INVITE"));
        assert!(!p.allows(&guest, &bob, "INVITE"), "role required");
        assert!(!p.allows(&carl, &bob, "INVITE"), "only tenant a");
        assert!(!p.allows(&alice, &bob, "MESSAGE"), "forbid overrides");
        assert!(!p.allows(&alice, &bob, "REGISTER"));
        let own = object("sip:alice@ims.example.net", "a");
        assert!(p.allows(&alice, &own, "MESSAGE"));
        assert!(p.allows(&alice, &own, "REGISTER"));
    }

    #[test]
    fn application_servers_are_one_action_with_the_name_in_the_context() {
        let p = CedarPolicy::parse(
            r#"permit(principal, action == Ims::Action::"as", resource)
               when { context.as_name == "voicemail" && principal.identity like "sip:*" };"#,
        )
        .unwrap();
        let s = subject("alice", "a", &[]);
        let o = object("sip:alice@ims.example.net", "a");
        assert!(p.allows(&s, &o, "as:voicemail"));
        assert!(!p.allows(&s, &o, "as:conference"));
        assert!(!p.allows(&s, &o, "INVITE"));
    }

    #[test]
    fn upload_checks_syntax_schema_and_size() {
        assert!(matches!(
            CedarPolicy::parse("permit(principal, action, resource"),
            Err(CedarError::Syntax(_))
        ));
        // Unknown attribute, unknown action, wrong type: caught by the schema.
        for bad in [
            r#"permit(principal, action, resource) when { principal.age > 3 };"#,
            r#"permit(principal, action == Ims::Action::"FLY", resource);"#,
            r#"permit(principal, action, resource) when { principal.project == 3 };"#,
        ] {
            assert!(
                matches!(CedarPolicy::parse(bad), Err(CedarError::Invalid(_))),
                "{bad}"
            );
        }
        let long = format!("// {}\n", "x".repeat(MAX_CEDAR_LEN));
        assert_eq!(CedarPolicy::parse(&long).unwrap_err(), CedarError::TooLong);
        let many = "permit(principal, action, resource);\n".repeat(MAX_CEDAR_POLICIES + 1);
        assert_eq!(CedarPolicy::parse(&many).unwrap_err(), CedarError::TooMany);
    }

    #[test]
    fn unknown_verbs_and_empty_sets_deny() {
        let all = CedarPolicy::parse("permit(principal, action, resource);").unwrap();
        let s = subject("alice", "a", &["member"]);
        let o = object("sip:x@ims.example.net", "a");
        assert!(all.allows(&s, &o, "INVITE"));
        assert!(all.allows(&s, &o, "as:anything"));
        assert!(!all.allows(&s, &o, "FLY"), "not declared: error, deny");
        let none = CedarPolicy::parse("").unwrap();
        assert!(!none.allows(&s, &o, "INVITE"));
        // Missing subject values are empty strings, not errors.
        assert!(all.allows(&Credentials::new(), &Target::new(), "REGISTER"));
    }

    #[test]
    fn every_verb_is_an_action_of_the_schema() {
        let s = subject("alice", "a", &[]);
        let o = object("t", "a");
        for verb in VERBS.iter().copied().chain(["as"]) {
            let text = format!(r#"permit(principal, action == Ims::Action::"{verb}", resource);"#);
            let p = CedarPolicy::parse(&text).unwrap();
            let asked = if verb == "as" { "as:x" } else { verb };
            assert!(p.allows(&s, &o, asked), "{verb}");
        }
    }

    #[test]
    fn evaluation_errors_deny() {
        // Integer overflow is a runtime error in Cedar; the erroring permit would be skipped
        // by Cedar and another permit would allow. Here the error alone denies.
        let p = CedarPolicy::parse(
            r#"permit(principal, action, resource) when { 9223372036854775807 + 1 > 0 };
               permit(principal, action, resource);"#,
        )
        .unwrap();
        let s = subject("alice", "a", &[]);
        assert!(!p.allows(&s, &object("t", "a"), "INVITE"));
    }
}
