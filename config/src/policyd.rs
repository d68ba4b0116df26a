//! The policy service's configuration (`config/dev/policyd.toml`) and the `[keystone]`
//! section every cloud-authorized node shares.

use std::path::PathBuf;

use serde::Deserialize;

use crate::cloud_auth::CloudAuthMode;
use crate::error::Invalid;
use crate::hss::StoreSection;
use crate::load::Validate;
use crate::sections::{HttpSection, NodeSection};

/// `[keystone]`: where Keystone is and the service user that validates tokens (it needs
/// role `service` on its project). The password comes from exactly one of
/// `service_password`, `service_password_env`, `service_password_file`; it is never logged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoneSection {
    /// Identity API v3 base URL, e.g. `https://keystone.example.net:5000/v3`.
    pub url: String,
    /// Service user name.
    pub service_user: String,
    /// The service user's domain id.
    #[serde(default = "default_domain")]
    pub service_user_domain_id: String,
    /// The project the service token is scoped to.
    #[serde(default = "default_service_project")]
    pub service_project: String,
    /// That project's domain id.
    #[serde(default = "default_domain")]
    pub service_project_domain_id: String,
    /// The password itself (development only).
    pub service_password: Option<String>,
    /// Environment variable holding the password.
    pub service_password_env: Option<String>,
    /// File holding the password (surrounding whitespace ignored).
    pub service_password_file: Option<PathBuf>,
    /// Seconds a validated token is trusted without asking Keystone again.
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl_secs: u64,
}

fn default_domain() -> String {
    "default".to_string()
}
fn default_service_project() -> String {
    "service".to_string()
}
fn default_cache_ttl() -> u64 {
    60
}

impl Validate for KeystoneSection {
    fn validate(&self) -> Result<(), Invalid> {
        let lower = self.url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(Invalid::new("url", "must be an http:// or https:// URL"));
        }
        if self.service_user.trim().is_empty() {
            return Err(Invalid::new("service_user", "must not be empty"));
        }
        let sources = [
            self.service_password.is_some(),
            self.service_password_env.is_some(),
            self.service_password_file.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(Invalid::new(
                "service_password",
                "set exactly one of service_password, service_password_env, service_password_file",
            ));
        }
        if !(1..=3600).contains(&self.cache_ttl_secs) {
            return Err(Invalid::new("cache_ttl_secs", "must be between 1 and 3600"));
        }
        Ok(())
    }
}

/// `[policy]`: how decisions are composed and how often the store is re-read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// The effective policy of a tenant: `op-and` of these references
    /// (`global:<name>`, or `tenant:<name>` for the object's tenant).
    #[serde(default = "default_effective")]
    pub effective: Vec<String>,
    /// Milliseconds between reads of the store's change log (changes written by other
    /// nodes sharing a PostgreSQL store reach this node's feed within this time).
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
}

fn default_effective() -> Vec<String> {
    vec!["global:restrict".to_string(), "tenant:root".to_string()]
}
fn default_poll() -> u64 {
    500
}

impl Default for PolicySection {
    fn default() -> Self {
        PolicySection {
            effective: default_effective(),
            poll_interval_ms: default_poll(),
        }
    }
}

impl Validate for PolicySection {
    fn validate(&self) -> Result<(), Invalid> {
        if self.effective.is_empty() {
            return Err(Invalid::new("effective", "must name at least one policy"));
        }
        for r in &self.effective {
            let ok = r
                .split_once(':')
                .is_some_and(|(k, n)| (k == "global" || k == "tenant") && !n.is_empty());
            if !ok {
                return Err(Invalid::new(
                    "effective",
                    "each is global:<name> or tenant:<name>",
                ));
            }
        }
        if !(50..=60_000).contains(&self.poll_interval_ms) {
            return Err(Invalid::new(
                "poll_interval_ms",
                "must be between 50 and 60000",
            ));
        }
        Ok(())
    }
}

/// `[cloud_auth]` of the policy service: whether it authenticates callers with the
/// Keystone of `[keystone]` at all.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicydCloudAuth {
    /// `on`: `[keystone]` is required and used; `off`: `[keystone]` is ignored and every
    /// API call is refused (`503`). The dev config takes it from `IMS_CLOUD_AUTH`, which
    /// `imsctl up` sets.
    pub mode: CloudAuthMode,
}

/// Policy service configuration (`config/dev/policyd.toml`). Without Keystone (no
/// `[keystone]`, or `[cloud_auth] mode = "off"`) the service starts but refuses every API
/// call (`503`): it never opens up for want of a way to authenticate callers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicydConfig {
    /// `[node]`
    pub node: NodeSection,
    /// `[http]`: also serves the policy API under `/v1/`.
    pub http: HttpSection,
    /// `[store]`: the policy database.
    pub store: StoreSection,
    /// `[cloud_auth]`: `mode = "off"` turns Keystone off although `[keystone]` is there;
    /// absent: on exactly when `[keystone]` is.
    pub cloud_auth: Option<PolicydCloudAuth>,
    /// `[keystone]`: token validation; absent means cloud auth off (every call refused).
    /// Read it through [`PolicydConfig::keystone`], which honours `[cloud_auth]`.
    pub keystone: Option<KeystoneSection>,
    /// `[policy]`
    #[serde(default)]
    pub policy: PolicySection,
}

impl PolicydConfig {
    /// The Keystone callers are authenticated with: `[keystone]`, unless `[cloud_auth]`
    /// says `mode = "off"`. `None`: cloud auth is off.
    pub fn keystone(&self) -> Option<&KeystoneSection> {
        match &self.cloud_auth {
            Some(c) if c.mode == CloudAuthMode::Off => None,
            _ => self.keystone.as_ref(),
        }
    }
}

impl Validate for PolicydConfig {
    fn validate(&self) -> Result<(), Invalid> {
        self.node.validate().map_err(|e| e.under("node"))?;
        self.http.validate().map_err(|e| e.under("http"))?;
        self.store.validate().map_err(|e| e.under("store"))?;
        let on = self
            .cloud_auth
            .as_ref()
            .is_some_and(|c| c.mode == CloudAuthMode::On);
        if on && self.keystone.is_none() {
            return Err(Invalid::new(
                "keystone",
                "required when [cloud_auth] mode = \"on\"",
            ));
        }
        if let Some(k) = self.keystone() {
            k.validate().map_err(|e| e.under("keystone"))?;
        }
        self.policy.validate().map_err(|e| e.under("policy"))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{parse_str, PolicydConfig};

    fn parse(extra: &str) -> Result<PolicydConfig, crate::ConfigError> {
        parse_str(
            &format!(
                "[node]\nname = \"policyd\"\ndomain = \"ims.example.net\"\n\
                 [http]\nlisten = \"127.0.0.1:9105\"\n\
                 [store]\nurl = \"sqlite://data/policy.db\"\n{extra}"
            ),
            Path::new("policyd.toml"),
        )
    }

    #[test]
    fn dev_config_loads_with_cloud_auth_off() {
        let text = include_str!("../dev/policyd.toml");
        let c: PolicydConfig = parse_str(text, Path::new("policyd.toml")).unwrap();
        assert!(c.keystone().is_none());
        assert_eq!(c.policy.effective, ["global:restrict", "tenant:root"]);
        assert_eq!(c.policy.poll_interval_ms, 500);
    }

    #[test]
    fn cloud_auth_mode_switches_keystone() {
        let ks = "[keystone]\nurl = \"http://127.0.0.1:5000/v3\"\nservice_user = \"ims\"\n\
                  service_password_env = \"KS_PW\"\n";
        let off = parse(&format!("[cloud_auth]\nmode = \"off\"\n{ks}")).unwrap();
        assert!(off.keystone.is_some() && off.keystone().is_none());
        let on = parse(&format!("[cloud_auth]\nmode = \"on\"\n{ks}")).unwrap();
        assert!(on.keystone().is_some());
        assert!(parse(ks).unwrap().keystone().is_some());
        let err = parse("[cloud_auth]\nmode = \"on\"\n").unwrap_err();
        assert!(err.to_string().contains("keystone"), "{err}");
        // Off: a [keystone] that would not validate is not looked at.
        let bad =
            "[cloud_auth]\nmode = \"off\"\n[keystone]\nurl = \"ftp://x\"\nservice_user = \"u\"\n";
        assert!(parse(bad).unwrap().keystone().is_none());
    }

    #[test]
    fn keystone_section_loads_and_errors_name_the_key() {
        let ks = "[keystone]\nurl = \"http://127.0.0.1:5000/v3\"\nservice_user = \"ims\"\n";
        let c = parse(&format!("{ks}service_password_env = \"KS_PW\"\n")).unwrap();
        let k = c.keystone.unwrap();
        assert_eq!(
            (k.service_project.as_str(), k.cache_ttl_secs),
            ("service", 60)
        );
        let cases = [
            (ks.to_string(), "keystone.service_password"),
            (
                format!("{ks}service_password = \"a\"\nservice_password_env = \"B\"\n"),
                "keystone.service_password",
            ),
            (
                "[keystone]\nurl = \"ftp://x\"\nservice_user = \"u\"\nservice_password = \"p\"\n"
                    .to_string(),
                "keystone.url",
            ),
            (
                "[policy]\neffective = [\"restrict\"]\n".to_string(),
                "policy.effective",
            ),
            (
                "[policy]\npoll_interval_ms = 1\n".to_string(),
                "policy.poll_interval_ms",
            ),
        ];
        for (text, key) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }
}
