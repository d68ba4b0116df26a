//! Credentials and targets: the two dictionaries an oslo.policy check looks at.

use std::collections::HashMap;

use crate::keystone::TokenInfo;

/// The target of a request: a flat map of strings, keyed as in the rules' `%(key)s`
/// (OpenStack services flatten nested targets the same way, e.g. `target.user.domain_id`).
pub type Target = HashMap<String, String>;

/// One credential attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredValue {
    /// A string; booleans are held as Python's `str()`: `True`/`False`.
    Str(String),
    /// A list, matched by GenericCheck if any element equals.
    List(Vec<String>),
}

/// The caller's credentials, as oslo.context's `to_policy_values()`: attributes such as
/// `user_id`, `project_id`, `domain_id`, `system_scope`, `is_admin` and the `roles` list.
/// An attribute that is absent (oslo: `None`) is simply not inserted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    attrs: HashMap<String, CredValue>,
}

impl Credentials {
    /// Empty credentials: only `@` and literal checks can pass.
    pub fn new() -> Self {
        Self::default()
    }

    /// The credentials of a validated Keystone token: `user_id`, `user_name`,
    /// `user_domain_id`, `project_id`, `project_name`, `project_domain_id`, `domain_id`
    /// (domain-scoped tokens), `system_scope` (`all` for system-scoped tokens), `roles`, and
    /// `is_admin`, which is `True` only for a system-scoped token holding role `admin`
    /// (Keystone's secure-RBAC cloud administrator; a project admin is not a cloud admin).
    pub fn from_token(token: &TokenInfo) -> Self {
        let mut c = Self::new();
        c.insert("user_id", token.user_id.clone());
        c.insert("user_name", token.user_name.clone());
        c.insert("user_domain_id", token.user_domain_id.clone());
        for (key, value) in [
            ("project_id", &token.project_id),
            ("project_name", &token.project_name),
            ("project_domain_id", &token.project_domain_id),
            ("domain_id", &token.domain_id),
        ] {
            if let Some(v) = value {
                c.insert(key, v.clone());
            }
        }
        if token.system_all {
            c.insert("system_scope", "all");
        }
        let admin = token.system_all && token.roles.iter().any(|r| r.eq_ignore_ascii_case("admin"));
        c.insert("is_admin", if admin { "True" } else { "False" });
        c.set_roles(token.roles.clone());
        c
    }

    /// Sets a string attribute.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.attrs.insert(key.into(), CredValue::Str(value.into()));
    }

    /// Sets a list attribute.
    pub fn insert_list(&mut self, key: impl Into<String>, values: Vec<String>) {
        self.attrs.insert(key.into(), CredValue::List(values));
    }

    /// Sets the `roles` list that `role:` checks look at.
    pub fn set_roles(&mut self, roles: Vec<String>) {
        self.insert_list("roles", roles);
    }

    /// One attribute.
    pub fn get(&self, key: &str) -> Option<&CredValue> {
        self.attrs.get(key)
    }

    /// The `roles` list (empty when absent or not a list).
    pub fn roles(&self) -> &[String] {
        match self.attrs.get("roles") {
            Some(CredValue::List(r)) => r,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn token(system_all: bool, roles: &[&str]) -> TokenInfo {
        TokenInfo {
            user_id: "u1".into(),
            user_name: "alice".into(),
            user_domain_id: "d1".into(),
            project_id: (!system_all).then(|| "p1".into()),
            project_name: (!system_all).then(|| "tenant-a".into()),
            project_domain_id: (!system_all).then(|| "d1".into()),
            domain_id: None,
            system_all,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            expires_at: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn project_token_credentials() {
        let c = Credentials::from_token(&token(false, &["admin", "member"]));
        let s = |v: &str| Some(CredValue::Str(v.into()));
        assert_eq!(c.get("user_id").cloned(), s("u1"));
        assert_eq!(c.get("project_id").cloned(), s("p1"));
        assert_eq!(c.get("project_domain_id").cloned(), s("d1"));
        assert_eq!(c.get("domain_id"), None);
        assert_eq!(c.get("system_scope"), None);
        // A project admin is not the cloud admin.
        assert_eq!(c.get("is_admin").cloned(), s("False"));
        assert_eq!(c.roles(), ["admin", "member"]);
    }

    #[test]
    fn system_admin_is_the_cloud_admin() {
        let c = Credentials::from_token(&token(true, &["Admin"]));
        assert_eq!(
            c.get("system_scope").cloned(),
            Some(CredValue::Str("all".into()))
        );
        assert_eq!(
            c.get("is_admin").cloned(),
            Some(CredValue::Str("True".into()))
        );
        assert_eq!(c.get("project_id"), None);
        let reader = Credentials::from_token(&token(true, &["reader"]));
        assert_eq!(
            reader.get("is_admin").cloned(),
            Some(CredValue::Str("False".into()))
        );
    }
}
