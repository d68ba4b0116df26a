//! Sections only the HSS has: `[store]`, `[provisioning]`, `[security]`.

use std::path::PathBuf;

use serde::Deserialize;

use crate::cloud_auth::{CloudAuthMode, CloudAuthSection};
use crate::error::Invalid;
use crate::load::Validate;

/// `[store]`: where subscriber data lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `sqlite://path/to/hss.db` (file created on first start) or
    /// `postgres://user@host:port/database`.
    pub url: String,
    /// Connections in the pool.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

fn default_max_connections() -> u32 {
    8
}

impl Validate for StoreSection {
    fn validate(&self) -> Result<(), Invalid> {
        let lower = self.url.to_ascii_lowercase();
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| lower.starts_with(p))
        {
            return Err(Invalid::new("url", "must be a sqlite: or postgres:// URL"));
        }
        if !(1..=256).contains(&self.max_connections) {
            return Err(Invalid::new("max_connections", "must be between 1 and 256"));
        }
        Ok(())
    }
}

/// `[provisioning]`: the REST API under `/api/v1/` on the `[http]` listener. A call
/// carries a Keystone token (`X-Auth-Token`) decided by the policy service
/// (`[provisioning.cloud_auth]`, global policy `provision`), or the static admin token
/// (`Authorization: Bearer`, `admin_token` or the content of `admin_token_file`), a
/// bootstrap and development option that `static_token = false` switches off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningSection {
    /// Whether the static admin token is accepted (default `true`; `false` in
    /// production, where every call needs a Keystone token).
    #[serde(default = "default_static_token")]
    pub static_token: bool,
    /// The admin token itself. Prefer `admin_token_file` outside tests.
    pub admin_token: Option<String>,
    /// File holding the admin token (surrounding whitespace ignored); generated with mode
    /// 0600 on first start when `security.generate_missing` is set.
    pub admin_token_file: Option<PathBuf>,
    /// `[provisioning.cloud_auth]`: Keystone tokens and policy decisions on every call
    /// (`mode`, `policy_url`, `[provisioning.cloud_auth.keystone]`, the decision cache;
    /// the SIP keys `methods`, `realm` and `authz_server` do not apply). Absent: off.
    pub cloud_auth: Option<CloudAuthSection>,
}

impl Default for ProvisioningSection {
    fn default() -> Self {
        ProvisioningSection {
            static_token: default_static_token(),
            admin_token: None,
            admin_token_file: None,
            cloud_auth: None,
        }
    }
}

fn default_static_token() -> bool {
    true
}

impl ProvisioningSection {
    /// True when calls may be authorized by Keystone tokens.
    pub fn cloud_auth_on(&self) -> bool {
        self.cloud_auth
            .as_ref()
            .is_some_and(|c| c.mode == CloudAuthMode::On)
    }
}

impl Validate for ProvisioningSection {
    fn validate(&self) -> Result<(), Invalid> {
        if let Some(c) = &self.cloud_auth {
            c.validate().map_err(|e| e.under("cloud_auth"))?;
        }
        if !self.static_token && !self.cloud_auth_on() {
            return Err(Invalid::new(
                "static_token",
                "false needs [provisioning.cloud_auth] mode = \"on\" (else nothing may call the API)",
            ));
        }
        match (&self.admin_token, &self.admin_token_file) {
            (Some(_), Some(_)) => Err(Invalid::new(
                "admin_token",
                "set either admin_token or admin_token_file, not both",
            )),
            (Some(t), None) if t.trim().len() < 16 => Err(Invalid::new(
                "admin_token",
                "must be at least 16 characters",
            )),
            _ => Ok(()),
        }
    }
}

/// `[security]`: the AES-256-GCM key that encrypts AKA K and OPc at rest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySection {
    /// File holding the key as 64 hex digits.
    pub key_file: Option<PathBuf>,
    /// Name of an environment variable holding the key as 64 hex digits; wins over
    /// `key_file` when the variable is set.
    pub key_env: Option<String>,
    /// Development only: create a missing `key_file` and `provisioning.admin_token_file`
    /// with random content (mode 0600) on start. Off by default, so that a production
    /// HSS without its key refuses to start instead of inventing one.
    #[serde(default)]
    pub generate_missing: bool,
}

impl Validate for SecuritySection {
    fn validate(&self) -> Result<(), Invalid> {
        if self.key_file.is_none() && self.key_env.is_none() {
            return Err(Invalid::new(
                "key_file",
                "a key is required: set key_file or key_env",
            ));
        }
        if self.generate_missing && self.key_file.is_none() {
            return Err(Invalid::new(
                "generate_missing",
                "needs key_file (where the generated key goes)",
            ));
        }
        if let Some(v) = &self.key_env {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(Invalid::new(
                    "key_env",
                    "must be an environment variable name",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{parse_str, HssConfig};

    fn parse(extra: &str) -> Result<HssConfig, crate::ConfigError> {
        parse_str(
            &format!(
                "[node]\nname = \"hss\"\ndomain = \"ims.example.net\"\n\
                 [http]\nlisten = \"127.0.0.1:9104\"\n{extra}"
            ),
            Path::new("hss.toml"),
        )
    }

    const STORE: &str = "[store]\nurl = \"sqlite://data/hss.db\"\n";

    #[test]
    fn production_style_config_loads() {
        let c = parse(&format!(
            "{STORE}[provisioning]\nadmin_token_file = \"/etc/ims/token\"\n\
             [security]\nkey_env = \"IMS_HSS_STORE_KEY\"\n"
        ))
        .unwrap();
        assert_eq!(c.store.max_connections, 8);
        assert!(!c.security.generate_missing, "generation is opt-in");
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (format!("{STORE}[security]\n"), "security.key_file"),
            (
                format!("{STORE}[security]\ngenerate_missing = true\nkey_env = \"K\"\n"),
                "security.generate_missing",
            ),
            (
                format!("{STORE}[security]\nkey_env = \"not a name\"\n"),
                "security.key_env",
            ),
            (
                "[store]\nurl = \"mysql://x\"\n[security]\nkey_env = \"K\"\n".to_string(),
                "store.url",
            ),
            (
                format!(
                    "{STORE}[provisioning]\nadmin_token = \"short\"\n[security]\nkey_env = \"K\"\n"
                ),
                "provisioning.admin_token",
            ),
            (
                format!(
                    "{STORE}[provisioning]\nadmin_token = \"0123456789abcdef\"\n\
                     admin_token_file = \"t\"\n[security]\nkey_env = \"K\"\n"
                ),
                "provisioning.admin_token",
            ),
            ("[security]\nkey_env = \"K\"\n".to_string(), "store"),
        ];
        for (text, key) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.to_string().starts_with("hss.toml: "), "{err}");
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }
}
