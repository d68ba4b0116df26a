//! Policies and their composition (design brief §6, after MultiPol): a policy is a named
//! enforcer; enforcers are `default` (an oslo.policy rule set, [`crate::oslo`]), `op-and`
//! (every sub-policy must allow: deny overrides), `op-or` (one allowing sub-policy suffices:
//! allow overrides), `all-pass`, `all-forbid` and `custom` (Cedar, [`crate::cedar`]).
//!
//! A decision answers `Subject, Object, Verb -> Effect`: the subject is the caller's
//! [`Credentials`], the object the [`Target`] map, the verb the name of the rule a `default`
//! enforcer evaluates (`REGISTER`, `INVITE`, `as:<name>`, a REST verb...). Anything not
//! explicitly allowed is denied: an unknown verb without a `default` rule, an empty
//! composition.

use crate::cedar::CedarPolicy;
use crate::oslo::{Credentials, RuleSet, Target};

/// Deepest nesting of compositions accepted (bounds evaluation depth).
pub const MAX_POLICY_DEPTH: usize = 16;

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The request may proceed.
    Allow,
    /// The request is refused.
    Deny,
}

/// One question to a policy.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The caller: token user, project, roles, IMS identity...
    pub subject: &'a Credentials,
    /// What is acted on: request URI, the target's tenant, the application server...
    pub object: &'a Target,
    /// The action: SIP method, `as:<name>`, REST verb.
    pub verb: &'a str,
}

/// How a policy decides.
#[derive(Debug, Clone)]
pub enum Enforcer {
    /// oslo.policy rules: the rule named by the verb (or `default`) decides.
    Default(RuleSet),
    /// Deny overrides: allows only if every sub-policy allows (and there is at least one).
    OpAnd(Vec<Policy>),
    /// Allow overrides: allows if any sub-policy allows.
    OpOr(Vec<Policy>),
    /// Allows everything.
    AllPass,
    /// Denies everything.
    AllForbid,
    /// A tenant's Cedar policies.
    Custom(CedarPolicy),
}

/// A named policy.
#[derive(Debug, Clone)]
pub struct Policy {
    name: String,
    enforcer: Enforcer,
    depth: usize,
}

/// Why a policy cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Compositions nested deeper than [`MAX_POLICY_DEPTH`].
    #[error("policy {0:?} nests compositions deeper than {MAX_POLICY_DEPTH}")]
    TooDeep(String),
}

impl Policy {
    /// A policy; compositions are checked against [`MAX_POLICY_DEPTH`].
    pub fn new(name: impl Into<String>, enforcer: Enforcer) -> Result<Policy, PolicyError> {
        let name = name.into();
        let depth = match &enforcer {
            Enforcer::OpAnd(subs) | Enforcer::OpOr(subs) => {
                1 + subs.iter().map(|p| p.depth).max().unwrap_or(0)
            }
            Enforcer::Default(_)
            | Enforcer::AllPass
            | Enforcer::AllForbid
            | Enforcer::Custom(_) => 1,
        };
        if depth > MAX_POLICY_DEPTH {
            return Err(PolicyError::TooDeep(name));
        }
        Ok(Policy {
            name,
            enforcer,
            depth,
        })
    }

    /// A policy that denies everything (what a missing or broken policy stands for).
    pub fn deny_all(name: impl Into<String>) -> Policy {
        Policy {
            name: name.into(),
            enforcer: Enforcer::AllForbid,
            depth: 1,
        }
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The policy's enforcer.
    pub fn enforcer(&self) -> &Enforcer {
        &self.enforcer
    }

    /// Decides one request.
    pub fn decide(&self, req: &Request<'_>) -> Effect {
        self.decide_why(req).0
    }

    /// Decides one request and names the policy that settled it: under `op-and` the first
    /// denying sub-policy (or, when all allow, the last one); under `op-or` the first
    /// allowing sub-policy (or, when none does, the composition itself); a leaf itself.
    pub fn decide_why(&self, req: &Request<'_>) -> (Effect, &Policy) {
        let leaf = |allowed: bool| (if allowed { Effect::Allow } else { Effect::Deny }, self);
        match &self.enforcer {
            Enforcer::Default(rules) => leaf(rules.enforce(req.verb, req.subject, req.object)),
            Enforcer::Custom(cedar) => leaf(cedar.allows(req.subject, req.object, req.verb)),
            Enforcer::AllPass => leaf(true),
            Enforcer::AllForbid => leaf(false),
            Enforcer::OpAnd(subs) => {
                let mut last = None;
                for p in subs {
                    let (effect, by) = p.decide_why(req);
                    if effect == Effect::Deny {
                        return (Effect::Deny, by);
                    }
                    last = Some(by);
                }
                last.map_or((Effect::Deny, self), |by| (Effect::Allow, by))
            }
            Enforcer::OpOr(subs) => subs
                .iter()
                .map(|p| p.decide_why(req))
                .find(|(effect, _)| *effect == Effect::Allow)
                .unwrap_or((Effect::Deny, self)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(project: &str) -> Credentials {
        let mut c = Credentials::new();
        c.insert("project_id", project);
        c.set_roles(vec!["member".into()]);
        c
    }

    fn object(tenant: &str) -> Target {
        [("target.tenant".to_owned(), tenant.to_owned())]
            .into_iter()
            .collect()
    }

    fn rules(name: &str, pairs: &[(&str, &str)]) -> Policy {
        let set = RuleSet::parse(pairs.iter().copied()).unwrap();
        Policy::new(name, Enforcer::Default(set)).unwrap()
    }

    /// The global `restrict` policy of §6: a token reaches only its own tenant.
    fn restrict() -> Policy {
        rules(
            "global:restrict",
            &[("default", "project_id:%(target.tenant)s")],
        )
    }

    fn decide(p: &Policy, project: &str, tenant: &str, verb: &str) -> Effect {
        let (s, o) = (subject(project), object(tenant));
        p.decide(&Request {
            subject: &s,
            object: &o,
            verb,
        })
    }

    #[test]
    fn op_and_is_deny_overrides() {
        let tenant = rules(
            "tenant-a:root",
            &[("INVITE", "role:member"), ("REGISTER", "@")],
        );
        let effective =
            Policy::new("effective", Enforcer::OpAnd(vec![restrict(), tenant])).unwrap();
        assert_eq!(decide(&effective, "p-a", "p-a", "INVITE"), Effect::Allow);
        assert_eq!(decide(&effective, "p-a", "p-a", "REGISTER"), Effect::Allow);
        // restrict denies another tenant's target even though the tenant policy allows.
        assert_eq!(decide(&effective, "p-a", "p-b", "INVITE"), Effect::Deny);
        // The tenant policy has no MESSAGE rule and no default: denied.
        assert_eq!(decide(&effective, "p-a", "p-a", "MESSAGE"), Effect::Deny);
    }

    #[test]
    fn op_or_is_allow_overrides() {
        // Callee tenant b lets tenant a call it.
        let cross = rules("tenant-b:allow-a", &[("INVITE", "project_id:p-a")]);
        let p = Policy::new("p", Enforcer::OpOr(vec![restrict(), cross])).unwrap();
        assert_eq!(decide(&p, "p-a", "p-b", "INVITE"), Effect::Allow);
        assert_eq!(decide(&p, "p-c", "p-b", "INVITE"), Effect::Deny);
        assert_eq!(decide(&p, "p-c", "p-c", "INVITE"), Effect::Allow);
    }

    #[test]
    fn constants_and_empty_compositions() {
        let pass = Policy::new("pass", Enforcer::AllPass).unwrap();
        let forbid = Policy::new("forbid", Enforcer::AllForbid).unwrap();
        assert_eq!(decide(&pass, "p", "q", "X"), Effect::Allow);
        assert_eq!(decide(&forbid, "p", "p", "X"), Effect::Deny);
        let empty_and = Policy::new("e", Enforcer::OpAnd(vec![])).unwrap();
        let empty_or = Policy::new("e", Enforcer::OpOr(vec![])).unwrap();
        assert_eq!(decide(&empty_and, "p", "p", "X"), Effect::Deny);
        assert_eq!(decide(&empty_or, "p", "p", "X"), Effect::Deny);
        let both = Policy::new("b", Enforcer::OpAnd(vec![pass.clone(), forbid])).unwrap();
        assert_eq!(decide(&both, "p", "p", "X"), Effect::Deny);
        let either = Policy::new("o", Enforcer::OpOr(vec![pass, both])).unwrap();
        assert_eq!(decide(&either, "p", "p", "X"), Effect::Allow);
        assert_eq!(either.name(), "o");
    }

    #[test]
    fn the_deciding_policy_is_named() {
        let tenant = rules("t/root", &[("INVITE", "@")]);
        let and = Policy::new("and", Enforcer::OpAnd(vec![restrict(), tenant.clone()])).unwrap();
        let why = |p: &Policy, project: &str, verb: &str| {
            let (s, o) = (subject(project), object("p-a"));
            let req = Request {
                subject: &s,
                object: &o,
                verb,
            };
            let (effect, by) = p.decide_why(&req);
            (effect, by.name().to_owned())
        };
        assert_eq!(why(&and, "p-a", "INVITE"), (Effect::Allow, "t/root".into()));
        assert_eq!(
            why(&and, "p-b", "INVITE"),
            (Effect::Deny, "global:restrict".into())
        );
        assert_eq!(why(&and, "p-a", "BYE"), (Effect::Deny, "t/root".into()));
        let or = Policy::new("or", Enforcer::OpOr(vec![tenant, restrict()])).unwrap();
        assert_eq!(
            why(&or, "p-a", "BYE"),
            (Effect::Allow, "global:restrict".into())
        );
        assert_eq!(why(&or, "p-b", "BYE"), (Effect::Deny, "or".into()));
    }

    #[test]
    fn custom_composes_like_any_enforcer() {
        let cedar = CedarPolicy::parse(
            r#"permit(principal, action == Ims::Action::"INVITE", resource)
               when { principal.roles.contains("member") };"#,
        )
        .unwrap();
        let custom = Policy::new("t/custom", Enforcer::Custom(cedar)).unwrap();
        let p = Policy::new("e", Enforcer::OpAnd(vec![restrict(), custom])).unwrap();
        assert_eq!(decide(&p, "p-a", "p-a", "INVITE"), Effect::Allow);
        assert_eq!(decide(&p, "p-a", "p-b", "INVITE"), Effect::Deny);
        assert_eq!(decide(&p, "p-a", "p-a", "REGISTER"), Effect::Deny);
    }

    #[test]
    fn nesting_is_bounded() {
        let mut p = Policy::new("leaf", Enforcer::AllPass).unwrap();
        for i in 1..MAX_POLICY_DEPTH {
            p = Policy::new(format!("n{i}"), Enforcer::OpAnd(vec![p])).unwrap();
        }
        assert_eq!(decide(&p, "p", "p", "X"), Effect::Allow);
        assert_eq!(
            Policy::new("top", Enforcer::OpOr(vec![p])).unwrap_err(),
            PolicyError::TooDeep("top".into())
        );
    }
}
