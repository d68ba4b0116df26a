//! Rule sets: named rules that refer to each other with `rule:` (oslo.policy `Rules` and
//! `Enforcer.enforce` for the `default` enforcer).

use std::collections::HashMap;

use super::check::{Expr, Rule};
use super::credentials::{Credentials, Target};
use super::parse::SyntaxError;

/// The rule an action without a rule of its own falls back to (oslo.policy's
/// `policy_default_rule`).
pub const DEFAULT_RULE: &str = "default";

/// Longest chain of `rule:` references accepted (bounds evaluation depth).
pub const MAX_REFERENCE_DEPTH: usize = 16;

/// Why a rule set is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// A rule's text does not parse.
    #[error("rule {rule:?}: {error}")]
    Syntax {
        /// The rule's name.
        rule: String,
        /// What is wrong with it.
        #[source]
        error: SyntaxError,
    },
    /// A `rule:` reference to a rule the set does not define.
    #[error("rule {rule:?} refers to unknown rule {reference:?}")]
    UnknownRule {
        /// The referring rule.
        rule: String,
        /// The missing name.
        reference: String,
    },
    /// Rules that refer to each other in a circle.
    #[error("rule reference cycle: {}", path.join(" -> "))]
    Cycle {
        /// The rules on the cycle, the first repeated at the end.
        path: Vec<String>,
    },
    /// A chain of references longer than [`MAX_REFERENCE_DEPTH`].
    #[error("rule {rule:?} starts a reference chain deeper than {MAX_REFERENCE_DEPTH}")]
    TooDeep {
        /// The rule at the top of the chain.
        rule: String,
    },
}

/// A checked set of named rules: every rule parses, every `rule:` reference resolves, and
/// no reference chain is circular or deeper than [`MAX_REFERENCE_DEPTH`].
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: HashMap<String, Expr>,
}

impl RuleSet {
    /// Parses and checks `(name, rule text)` pairs, as found in an oslo.policy file. A later
    /// pair replaces an earlier one of the same name.
    pub fn parse<I, K, V>(rules: I) -> Result<RuleSet, RuleError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: AsRef<str>,
    {
        let mut parsed = HashMap::new();
        for (name, text) in rules {
            let name = name.into();
            match Rule::parse(text.as_ref()) {
                Ok(rule) => {
                    parsed.insert(name, rule.expr);
                }
                Err(error) => return Err(RuleError::Syntax { rule: name, error }),
            }
        }
        let set = RuleSet { rules: parsed };
        set.check_references()?;
        Ok(set)
    }

    /// Whether the set defines `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.rules.contains_key(name)
    }

    /// oslo.policy `Enforcer.enforce(action, target, creds)`: evaluates the rule named
    /// `action`, or the [`DEFAULT_RULE`] when the set has no such rule; with neither, denies.
    pub fn enforce(&self, action: &str, creds: &Credentials, target: &Target) -> bool {
        self.rules
            .get(action)
            .or_else(|| self.rules.get(DEFAULT_RULE))
            .is_some_and(|e| e.eval(creds, target, self))
    }

    pub(super) fn expr(&self, name: &str) -> Option<&Expr> {
        self.rules.get(name)
    }

    /// Depth-first walk over the reference graph (iterative, so a hostile rule set cannot
    /// exhaust the stack), in name order for reproducible errors.
    fn check_references(&self) -> Result<(), RuleError> {
        enum Mark {
            OnPath,
            Done(usize),
        }
        struct Frame<'a> {
            name: &'a str,
            refs: Vec<&'a str>,
            next: usize,
            height: usize,
        }
        fn frame<'a>(name: &'a str, expr: &'a Expr) -> Frame<'a> {
            let mut refs = Vec::new();
            expr.references(&mut refs);
            Frame {
                name,
                refs,
                next: 0,
                height: 0,
            }
        }
        let mut marks: HashMap<&str, Mark> = HashMap::new();
        let mut names: Vec<&String> = self.rules.keys().collect();
        names.sort();
        for (root, expr) in names
            .into_iter()
            .filter_map(|n| Some((n, self.rules.get(n)?)))
        {
            if marks.contains_key(root.as_str()) {
                continue;
            }
            marks.insert(root, Mark::OnPath);
            let mut path = vec![frame(root, expr)];
            while let Some(top) = path.last_mut() {
                if let Some(&r) = top.refs.get(top.next) {
                    top.next += 1;
                    match marks.get(r) {
                        Some(Mark::Done(h)) => top.height = top.height.max(*h),
                        Some(Mark::OnPath) => {
                            let start = path.iter().position(|f| f.name == r).unwrap_or(0);
                            let mut cycle: Vec<String> =
                                path.iter().skip(start).map(|f| f.name.to_owned()).collect();
                            cycle.push(r.to_owned());
                            return Err(RuleError::Cycle { path: cycle });
                        }
                        None => {
                            let Some((name, expr)) = self.rules.get_key_value(r) else {
                                return Err(RuleError::UnknownRule {
                                    rule: top.name.to_owned(),
                                    reference: r.to_owned(),
                                });
                            };
                            marks.insert(name, Mark::OnPath);
                            path.push(frame(name, expr));
                        }
                    }
                } else {
                    let height = top.height + 1;
                    let name = top.name;
                    if height > MAX_REFERENCE_DEPTH {
                        return Err(RuleError::TooDeep {
                            rule: name.to_owned(),
                        });
                    }
                    marks.insert(name, Mark::Done(height));
                    path.pop();
                    if let Some(parent) = path.last_mut() {
                        parent.height = parent.height.max(height);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(roles: &[&str]) -> Credentials {
        let mut c = Credentials::new();
        c.set_roles(roles.iter().map(|r| r.to_string()).collect());
        c
    }

    #[test]
    fn references_resolve_and_default_rule_applies_to_unknown_actions() {
        let set = RuleSet::parse([
            ("admin", "role:admin"),
            ("admin_or_reader", "rule:admin or role:reader"),
            ("default", "rule:admin"),
        ])
        .unwrap();
        let t = Target::new();
        assert!(set.enforce("admin_or_reader", &creds(&["reader"]), &t));
        assert!(set.enforce("admin_or_reader", &creds(&["admin"]), &t));
        assert!(!set.enforce("admin_or_reader", &creds(&["member"]), &t));
        // An action without a rule falls back to `default`.
        assert!(set.enforce("no:such:action", &creds(&["admin"]), &t));
        assert!(!set.enforce("no:such:action", &creds(&["reader"]), &t));
        let no_default = RuleSet::parse([("a", "@")]).unwrap();
        assert!(!no_default.enforce("b", &creds(&["admin"]), &t));
        assert!(no_default.enforce("a", &creds(&[]), &t));
    }

    #[test]
    fn unknown_references_cycles_and_syntax_are_typed_errors() {
        assert_eq!(
            RuleSet::parse([("a", "rule:b or @")]).unwrap_err(),
            RuleError::UnknownRule {
                rule: "a".into(),
                reference: "b".into()
            }
        );
        assert_eq!(
            RuleSet::parse([("a", "rule:b"), ("b", "role:x and rule:c"), ("c", "rule:a")])
                .unwrap_err(),
            RuleError::Cycle {
                path: vec!["a".into(), "b".into(), "c".into(), "a".into()]
            }
        );
        assert_eq!(
            RuleSet::parse([("self", "not rule:self")]).unwrap_err(),
            RuleError::Cycle {
                path: vec!["self".into(), "self".into()]
            }
        );
        assert_eq!(
            RuleSet::parse([("a", "@"), ("b", "role:x and")]).unwrap_err(),
            RuleError::Syntax {
                rule: "b".into(),
                error: SyntaxError::Malformed
            }
        );
    }

    #[test]
    fn shared_references_are_not_cycles_and_chains_are_bounded() {
        // A diamond: d is reached twice, which is not a cycle.
        let set = RuleSet::parse([
            ("a", "rule:b and rule:c"),
            ("b", "rule:d"),
            ("c", "rule:d"),
            ("d", "role:x"),
        ])
        .unwrap();
        assert!(set.enforce("a", &creds(&["x"]), &Target::new()));

        let chain = |n: usize| {
            let mut rules: Vec<(String, String)> = (0..n)
                .map(|i| (format!("r{i}"), format!("rule:r{}", i + 1)))
                .collect();
            rules.push((format!("r{n}"), "@".into()));
            rules
        };
        assert!(RuleSet::parse(chain(MAX_REFERENCE_DEPTH - 1)).is_ok());
        assert_eq!(
            RuleSet::parse(chain(MAX_REFERENCE_DEPTH)).unwrap_err(),
            RuleError::TooDeep { rule: "r0".into() }
        );
    }
}

#[cfg(test)]
mod depth_tests {
    use super::*;
    use crate::oslo::parse::MAX_DEPTH;

    #[test]
    fn deepest_accepted_rule_set_evaluates_within_a_small_stack() {
        // Every rule nested as deep as allowed, chained as long as allowed.
        let nest = |inner: String| {
            let n = MAX_DEPTH - 2;
            format!(
                "{}{inner}{}",
                "(not (not ".repeat(n / 2),
                "))".repeat(n / 2)
            )
        };
        let mut rules: Vec<(String, String)> = (0..MAX_REFERENCE_DEPTH - 1)
            .map(|i| (format!("r{i}"), nest(format!("rule:r{}", i + 1))))
            .collect();
        rules.push((format!("r{}", MAX_REFERENCE_DEPTH - 1), "role:x".into()));
        let set = RuleSet::parse(rules).unwrap();
        let mut creds = Credentials::new();
        creds.set_roles(vec!["x".into()]);
        // 256 KiB, an eighth of a default thread stack, even in a debug build.
        let allowed = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || set.enforce("r0", &creds, &Target::new()))
            .unwrap()
            .join()
            .unwrap();
        assert!(allowed);
    }
}
