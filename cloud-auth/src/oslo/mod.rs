//! The `default` enforcer: an oslo.policy-compatible rule language.
//!
//! Rules are written as in OpenStack policy files (oslo.policy's "Policy Rule Expressions"):
//!
//! | check                         | meaning                                                        |
//! |-------------------------------|----------------------------------------------------------------|
//! | `@`, empty rule               | always allow                                                   |
//! | `!`                           | always deny                                                    |
//! | `role:admin`                  | the credentials hold the role (case-insensitive)               |
//! | `rule:admin_or_owner`         | the named rule of the same rule set allows                     |
//! | `project_id:%(project_id)s`   | credential attribute equals the target value (GenericCheck)    |
//! | `is_admin:True`               | credential attribute equals the literal                        |
//! | `'Member':%(role.name)s`      | a Python literal on the left is compared with the target value |
//!
//! combined with `not`, `and`, `or` (binding in that order) and parentheses. Parsing follows
//! oslo.policy's shift-reduce parser token by token, so precedence and grouping are the same.
//!
//! Where oslo.policy fails closed silently (a malformed rule becomes `!`, an unknown rule
//! reference falls back to the default rule) or raises at evaluation time, this module
//! reports a typed [`RuleError`] when the rule set is loaded instead, and refuses remote
//! `http:`/`https:` checks. Evaluation itself cannot fail: a missing target key or
//! credential attribute makes the check false, as in oslo.policy.

mod check;
mod credentials;
mod parse;
mod rules;

pub use check::Rule;
pub use credentials::{CredValue, Credentials, Target};
pub use parse::{SyntaxError, MAX_DEPTH, MAX_RULE_LEN};
pub use rules::{RuleError, RuleSet, DEFAULT_RULE, MAX_REFERENCE_DEPTH};
