//! `[cloud_auth]` of the P-CSCF and S-CSCF: the request filter of the cloud authorization
//! (design brief §5-§6). The section is required, so a configuration says whether cloud
//! authorization is on: it is never off by omission.

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::Invalid;
use crate::load::Validate;
use crate::policyd::KeystoneSection;

/// Whether the node checks Keystone tokens and policy decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudAuthMode {
    /// No token or policy check: every request is served as IMS alone decides. The node
    /// logs a warning at start and `/health` shows `cloud_auth: off`.
    Off,
    /// Requests of the configured methods need a valid Keystone token (RFC 8898 Bearer)
    /// and a policy decision that allows them; anything that cannot be decided is refused.
    On,
}

/// `[cloud_auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudAuthSection {
    /// `off` or `on`.
    pub mode: CloudAuthMode,
    /// Base URL of the policy service, e.g. `http://127.0.0.1:9105` (required when on).
    pub policy_url: Option<String>,
    /// SIP methods whose requests outside a dialog need a token and a decision (upper
    /// case), or `"*"`: every request a UE can start outside a dialog. The default is
    /// `["*"]` (see [`ALL_METHODS`]).
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// `realm` of the Bearer challenge; the node's domain when absent.
    pub realm: Option<String>,
    /// `authz_server` of the Bearer challenge (where a UE gets a token); the Keystone URL
    /// when absent.
    pub authz_server: Option<String>,
    /// Decisions kept in memory; `0` asks the policy service every time.
    #[serde(default = "default_decision_cache")]
    pub decision_cache: usize,
    /// Seconds a cached decision is used at most, even without an invalidation.
    #[serde(default = "default_decision_ttl")]
    pub decision_ttl_secs: u64,
    /// PEM file of the CA(s) trusted for an `https` `policy_url` besides the system roots
    /// (e.g. the dev CA `data/tls/ca.crt`).
    pub policy_ca: Option<PathBuf>,
    /// Timeout of one question to the policy service, in milliseconds.
    #[serde(default = "default_verify_timeout")]
    pub verify_timeout_ms: u64,
    /// `[cloud_auth.keystone]`: token validation (required when on).
    pub keystone: Option<KeystoneSection>,
}

/// The `methods` entry standing for every method: REGISTER, the dialog-creating methods
/// (INVITE, SUBSCRIBE, REFER, and NOTIFY, which may create a dialog, RFC 6665
/// §4.1.2.4), the standalone ones (MESSAGE, OPTIONS, PUBLISH), and whatever else a UE
/// sends without a To tag (an extension method, or an in-dialog-only method such as BYE
/// or INFO sent outside a dialog, which the proxies would otherwise route as an initial
/// request). ACK and CANCEL belong to an INVITE transaction and never ask the filter.
pub const ALL_METHODS: &str = "*";

fn default_methods() -> Vec<String> {
    vec![ALL_METHODS.into()]
}
fn default_decision_cache() -> usize {
    100_000
}
fn default_decision_ttl() -> u64 {
    300
}
fn default_verify_timeout() -> u64 {
    500
}

impl Validate for CloudAuthSection {
    fn validate(&self) -> Result<(), Invalid> {
        if self.mode == CloudAuthMode::Off {
            return Ok(());
        }
        let Some(keystone) = &self.keystone else {
            return Err(Invalid::new(
                "keystone",
                "required when mode = \"on\" ([cloud_auth.keystone])",
            ));
        };
        keystone.validate().map_err(|e| e.under("keystone"))?;
        match &self.policy_url {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => {}
            Some(_) => {
                return Err(Invalid::new(
                    "policy_url",
                    "must be an http:// or https:// URL",
                ))
            }
            None => return Err(Invalid::new("policy_url", "required when mode = \"on\"")),
        }
        if self.methods.is_empty()
            || self.methods.iter().any(|m| {
                m != ALL_METHODS && (m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()))
            })
        {
            return Err(Invalid::new(
                "methods",
                "a non-empty list of SIP method names in upper case, or \"*\"",
            ));
        }
        if !(1..=86_400).contains(&self.decision_ttl_secs) {
            return Err(Invalid::new(
                "decision_ttl_secs",
                "must be between 1 and 86400",
            ));
        }
        if !(10..=60_000).contains(&self.verify_timeout_ms) {
            return Err(Invalid::new(
                "verify_timeout_ms",
                "must be between 10 and 60000",
            ));
        }
        if self.decision_cache > 10_000_000 {
            return Err(Invalid::new("decision_cache", "at most 10000000"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CloudAuthSection, crate::ConfigError> {
        #[derive(Deserialize)]
        struct Wrapper {
            cloud_auth: CloudAuthSection,
        }
        impl Validate for Wrapper {
            fn validate(&self) -> Result<(), Invalid> {
                self.cloud_auth
                    .validate()
                    .map_err(|e| e.under("cloud_auth"))
            }
        }
        crate::parse_str::<Wrapper>(text, std::path::Path::new("t.toml")).map(|w| w.cloud_auth)
    }

    #[test]
    fn off_needs_nothing_else() {
        let c = parse("[cloud_auth]\nmode = \"off\"\n").unwrap();
        assert_eq!(c.mode, CloudAuthMode::Off);
        assert_eq!(c.methods, ["*"]);
    }

    #[test]
    fn on_needs_keystone_and_policy_url() {
        let e = parse("[cloud_auth]\nmode = \"on\"\npolicy_url = \"http://p\"\n").unwrap_err();
        assert_eq!(e.key(), Some("cloud_auth.keystone"));
        let e = parse(
            "[cloud_auth]\nmode = \"on\"\n[cloud_auth.keystone]\nurl = \"http://k/v3\"\n\
             service_user = \"s\"\nservice_password = \"x\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key(), Some("cloud_auth.policy_url"));
        let c = parse(
            "[cloud_auth]\nmode = \"on\"\npolicy_url = \"http://p\"\n[cloud_auth.keystone]\n\
             url = \"http://k/v3\"\nservice_user = \"s\"\nservice_password = \"x\"\n",
        )
        .unwrap();
        assert_eq!(c.mode, CloudAuthMode::On);
    }

    #[test]
    fn a_missing_mode_is_refused() {
        let e = parse("[cloud_auth]\n").unwrap_err();
        assert!(e.to_string().contains("mode"), "{e}");
    }

    #[test]
    fn lower_case_methods_are_refused() {
        let e = parse(
            "[cloud_auth]\nmode = \"on\"\npolicy_url = \"http://p\"\nmethods = [\"invite\"]\n\
             [cloud_auth.keystone]\nurl = \"http://k/v3\"\nservice_user = \"s\"\n\
             service_password = \"x\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key(), Some("cloud_auth.methods"));
    }
}
