//! Checks and their evaluation (oslo.policy `_checks.py`).

use super::credentials::{CredValue, Credentials, Target};
use super::parse::{self, SyntaxError};
use super::rules::RuleSet;

/// One parsed rule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub(super) expr: Expr,
}

impl Rule {
    /// Parses one rule expression (the value side of a policy file entry).
    pub fn parse(text: &str) -> Result<Rule, SyntaxError> {
        parse::parse(text).map(|expr| Rule { expr })
    }
}

/// A parsed expression tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expr {
    /// `@` or the empty rule.
    True,
    /// `!`.
    False,
    /// `role:<match>`: RoleCheck.
    Role(Template),
    /// `rule:<name>`: RuleCheck.
    Rule(String),
    /// `<kind>:<match>`: GenericCheck.
    Generic {
        kind: Kind,
        matcher: Template,
    },
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// The left side of a GenericCheck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// A Python literal (`True`, `'Member'`, `42`), held as Python's `str()` of it.
    Literal(String),
    /// A credential attribute path, split at dots.
    Path(Vec<String>),
}

/// The right side of a check: text with `%(key)s` substitutions from the target, as Python's
/// `match % target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Template(pub(super) Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Piece {
    Text(String),
    Key(String),
}

impl Template {
    /// Substitutes the target values; `None` when a key is missing (oslo: `KeyError` makes the
    /// check false).
    fn render(&self, target: &Target) -> Option<String> {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Key(k) => out.push_str(target.get(k)?),
            }
        }
        Some(out)
    }
}

impl Expr {
    /// Evaluates the expression. `rules` resolves `rule:` references; the rule set was checked
    /// for unknown references, cycles and depth when it was built.
    pub(super) fn eval(&self, creds: &Credentials, target: &Target, rules: &RuleSet) -> bool {
        match self {
            Expr::True => true,
            Expr::False => false,
            Expr::Role(m) => match m.render(target) {
                Some(role) => creds.roles().iter().any(|r| eq_lowercase(r, &role)),
                None => false,
            },
            Expr::Rule(name) => rules
                .expr(name)
                .is_some_and(|e| e.eval(creds, target, rules)),
            Expr::Generic { kind, matcher } => {
                let Some(value) = matcher.render(target) else {
                    return false;
                };
                match kind {
                    Kind::Literal(lit) => *lit == value,
                    Kind::Path(path) => find_in_creds(creds, path, &value),
                }
            }
            Expr::Not(e) => !e.eval(creds, target, rules),
            Expr::And(es) => es.iter().all(|e| e.eval(creds, target, rules)),
            Expr::Or(es) => es.iter().any(|e| e.eval(creds, target, rules)),
        }
    }

    /// The `rule:` names this expression refers to directly.
    pub(super) fn references<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Rule(name) => out.push(name),
            Expr::Not(e) => e.references(out),
            Expr::And(es) | Expr::Or(es) => es.iter().for_each(|e| e.references(out)),
            Expr::True | Expr::False | Expr::Role(_) | Expr::Generic { .. } => {}
        }
    }
}

/// Python's `a.lower() == b.lower()` without allocating.
fn eq_lowercase(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// oslo.policy `GenericCheck._find_in_dict` over flat credentials: a list matches if any
/// element does. A path that goes below a string value makes Python raise; here it is false.
fn find_in_creds(creds: &Credentials, path: &[String], value: &str) -> bool {
    let [key] = path else {
        return false;
    };
    match creds.get(key) {
        Some(CredValue::Str(s)) => s == value,
        Some(CredValue::List(items)) => items.iter().any(|i| i == value),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(rule: &str, creds: &Credentials, target: &Target) -> bool {
        let set = RuleSet::parse([("r", rule)]).unwrap();
        set.enforce("r", creds, target)
    }

    fn creds() -> Credentials {
        let mut c = Credentials::new();
        c.insert("project_id", "p1");
        c.insert("user_id", "u1");
        c.insert("is_admin", "False");
        c.set_roles(vec!["Member".into(), "reader".into()]);
        c
    }

    fn target(pairs: &[(&str, &str)]) -> Target {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn role_check_is_case_insensitive_and_substitutes() {
        let c = creds();
        let t = target(&[("role", "READER")]);
        assert!(eval("role:member", &c, &t));
        assert!(eval("role:%(role)s", &c, &t));
        assert!(!eval("role:admin", &c, &t));
        assert!(!eval("role:%(missing)s", &c, &t));
    }

    #[test]
    fn generic_check_compares_attribute_with_target_or_literal() {
        let c = creds();
        let t = target(&[("project_id", "p1"), ("other", "p2")]);
        assert!(eval("project_id:%(project_id)s", &c, &t));
        assert!(!eval("project_id:%(other)s", &c, &t));
        assert!(!eval("project_id:%(missing)s", &c, &t));
        assert!(eval("project_id:p1", &c, &t));
        assert!(!eval("is_admin:True", &c, &t));
        assert!(eval("is_admin:False", &c, &t));
        assert!(!eval("nothing:p1", &c, &t));
        // A list credential matches any element, case-sensitively (unlike role:).
        assert!(eval("roles:Member", &c, &t));
        assert!(!eval("roles:member", &c, &t));
        // A path below a string attribute is false (oslo.policy would raise).
        assert!(!eval("project_id.x:p1", &c, &t));
    }

    #[test]
    fn literal_on_the_left_is_compared_with_the_rendered_match() {
        let c = Credentials::new();
        let t = target(&[("enabled", "True"), ("name", "Member"), ("n", "42")]);
        assert!(eval("True:%(enabled)s", &c, &t));
        assert!(!eval("False:%(enabled)s", &c, &t));
        assert!(eval("'Member':%(name)s", &c, &t));
        assert!(eval("\"Member\":%(name)s", &c, &t));
        assert!(!eval("'spam':%(name)s", &c, &t));
        assert!(eval("42:%(n)s", &c, &t));
    }

    #[test]
    fn constants_and_connectives() {
        let c = creds();
        let t = Target::new();
        assert!(eval("", &c, &t));
        assert!(eval("@", &c, &t));
        assert!(!eval("!", &c, &t));
        assert!(eval("not !", &c, &t));
        assert!(eval("role:admin or role:reader", &c, &t));
        assert!(!eval("role:admin and role:reader", &c, &t));
        assert!(eval("not role:admin and role:reader", &c, &t));
        assert!(!eval("not (role:admin or role:reader)", &c, &t));
    }
}
