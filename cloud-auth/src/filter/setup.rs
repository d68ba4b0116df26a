//! Building a node's filter from its `[cloud_auth]` section.

use std::time::Duration;

use ims_config::{CloudAuthMode, CloudAuthSection};

use super::sip::SipFilter;
use super::{FilterSettings, RequestFilter};
use crate::keystone::{BuildError, KeystoneConfig, SectionError, TokenValidator};

/// Why a filter cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The Keystone settings are unusable.
    #[error(transparent)]
    Keystone(#[from] SectionError),
    /// The Keystone client cannot be built.
    #[error("keystone client: {0}")]
    KeystoneClient(#[from] BuildError),
    /// The policy-service client cannot be built.
    #[error("policy service client: {0}")]
    Policy(#[from] reqwest::Error),
    /// The `policy_ca` file cannot be read.
    #[error("cloud_auth.policy_ca: {}: {source}", path.display())]
    PolicyCa {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `mode = "on"` without a part it needs (the section's validation prevents it).
    #[error("cloud_auth: {0} is required when mode = \"on\"")]
    Missing(&'static str),
}

/// The request filter of `section` (`node` names it in the log), or `None` when it says
/// `mode = "off"`, which is logged as a warning. Must run inside a tokio runtime.
pub fn request_filter(
    section: &CloudAuthSection,
    node: &str,
) -> Result<Option<RequestFilter>, SetupError> {
    if section.mode == CloudAuthMode::Off {
        tracing::warn!(
            node,
            "[cloud_auth] mode = \"off\": requests are NOT checked against Keystone tokens \
             or policies"
        );
        return Ok(None);
    }
    let keystone = section
        .keystone
        .as_ref()
        .ok_or(SetupError::Missing("keystone"))?;
    let policy_url = section
        .policy_url
        .clone()
        .ok_or(SetupError::Missing("policy_url"))?;
    let validator = TokenValidator::new(KeystoneConfig::from_section(keystone)?)?;
    let settings = FilterSettings {
        policy_url,
        decision_cache: section.decision_cache,
        decision_ttl: Duration::from_secs(section.decision_ttl_secs),
        verify_timeout: Duration::from_millis(section.verify_timeout_ms),
        policy_ca_pem: section
            .policy_ca
            .as_ref()
            .map(|path| {
                std::fs::read(path).map_err(|source| SetupError::PolicyCa {
                    path: path.clone(),
                    source,
                })
            })
            .transpose()?,
    };
    let filter = RequestFilter::new(&settings, validator)?;
    tracing::info!(
        node,
        keystone = %keystone.url,
        policy = %settings.policy_url,
        decision_cache = settings.decision_cache,
        "cloud authorization on"
    );
    Ok(Some(filter))
}

/// The SIP filter of a node (`node` names it in the log), or `None` when `[cloud_auth]`
/// says `mode = "off"`, which is logged as a warning. Must run inside a tokio runtime.
pub fn from_section(
    section: &CloudAuthSection,
    domain: &str,
    node: &str,
) -> Result<Option<SipFilter>, SetupError> {
    let Some(filter) = request_filter(section, node)? else {
        return Ok(None);
    };
    tracing::info!(node, methods = ?section.methods, "SIP methods checked outside a dialog");
    let keystone_url = section
        .keystone
        .as_ref()
        .map_or_else(String::new, |k| k.url.clone());
    Ok(Some(SipFilter::new(
        filter,
        section.realm.clone().unwrap_or_else(|| domain.to_owned()),
        section.authz_server.clone().unwrap_or(keystone_url),
        section.methods.clone(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(policy_ca: &str) -> CloudAuthSection {
        let toml = format!(
            "mode = \"on\"\npolicy_url = \"https://127.0.0.1:9\"\n{policy_ca}\
             [keystone]\nurl = \"http://127.0.0.1:9/v3\"\nservice_user = \"s\"\n\
             service_password = \"p\"\n"
        );
        ims_config::parse_str(&toml, std::path::Path::new("cloud_auth.toml")).unwrap()
    }

    #[tokio::test]
    async fn policy_ca_is_read_and_a_missing_or_bad_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = from_section(
            &section(&format!("policy_ca = \"{}\"\n", missing.display())),
            "d",
            "pcscf",
        )
        .expect_err("refused");
        assert!(matches!(err, SetupError::PolicyCa { .. }), "{err}");
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let bad = dir.path().join("bad.pem");
        std::fs::write(
            &bad,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = from_section(
            &section(&format!("policy_ca = \"{}\"\n", bad.display())),
            "d",
            "pcscf",
        )
        .expect_err("refused");
        assert!(matches!(err, SetupError::Policy(_)), "{err}");
        // Without policy_ca the system roots alone.
        assert!(from_section(&section(""), "d", "pcscf").unwrap().is_some());
    }
}
