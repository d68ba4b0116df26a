//! Configuration of the Keystone client: where Keystone is, the service user, cache bounds.

use std::fmt;
use std::time::Duration;

/// A password or token that must never reach a log: `Debug` prints `<redacted>` and there is
/// no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// Reads the secret from the environment variable `name`.
    pub fn from_env(name: &str) -> Result<Self, std::env::VarError> {
        std::env::var(name).map(Secret)
    }

    /// The secret itself, for the one place that sends it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A Keystone domain, by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRef {
    /// The domain's id (`default` for the default domain).
    Id(String),
    /// The domain's name (`Default` for the default domain).
    Name(String),
}

impl DomainRef {
    pub(super) fn to_json(&self) -> serde_json::Value {
        match self {
            DomainRef::Id(id) => serde_json::json!({ "id": id }),
            DomainRef::Name(name) => serde_json::json!({ "name": name }),
        }
    }
}

/// The service user that validates tokens: it needs role `service` (or `admin`) on its project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCredentials {
    /// User name.
    pub user_name: String,
    /// The user's domain.
    pub user_domain: DomainRef,
    /// Password (from the configuration or [`Secret::from_env`]).
    pub password: Secret,
    /// The project the service token is scoped to.
    pub project_name: String,
    /// The project's domain.
    pub project_domain: DomainRef,
}

/// Keystone client settings. [`KeystoneConfig::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct KeystoneConfig {
    /// Identity API v3 base URL, e.g. `https://keystone.example.net:5000/v3`.
    pub url: String,
    /// The service user.
    pub service: ServiceCredentials,
    /// How long a valid token's details are kept (never past the token's `expires_at`).
    /// Default 60 s: a revoked token is refused at the latest this long after revocation.
    pub cache_ttl: Duration,
    /// How long an invalid token stays known as invalid. Default 10 s.
    pub negative_ttl: Duration,
    /// Most tokens (valid or invalid) held in the cache. Default 100 000.
    pub cache_capacity: usize,
    /// Most distinct tokens validated at once; more are refused as
    /// [`Unavailable::Overloaded`](super::Unavailable::Overloaded). Default 256.
    pub max_in_flight: usize,
    /// Timeout of one HTTP request to Keystone. Default 5 s.
    pub request_timeout: Duration,
    /// Renew the service token this long before it expires (at most a quarter of its
    /// lifetime). Default 5 min.
    pub renew_before: Duration,
    /// Extra trusted root certificates (PEM) for an `https` Keystone with a private CA.
    pub root_ca_pem: Option<Vec<u8>>,
}

impl KeystoneConfig {
    /// Settings with the defaults above.
    pub fn new(url: impl Into<String>, service: ServiceCredentials) -> Self {
        KeystoneConfig {
            url: url.into(),
            service,
            cache_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(10),
            cache_capacity: 100_000,
            max_in_flight: 256,
            request_timeout: Duration::from_secs(5),
            renew_before: Duration::from_secs(300),
            root_ca_pem: None,
        }
    }
}

/// Why a `[keystone]` section does not give a usable configuration.
#[derive(Debug, thiserror::Error)]
pub enum SectionError {
    /// `service_password_env` names a variable that is not set.
    #[error("keystone: environment variable {0} is not set")]
    MissingEnv(String),
    /// `service_password_file` cannot be read.
    #[error("keystone: reading {path}: {source}")]
    PasswordFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No password source at all (the section's validation prevents it).
    #[error("keystone: no service password configured")]
    NoPassword,
}

impl KeystoneConfig {
    /// The client settings of a `[keystone]` section, reading the service password from
    /// where the section says.
    pub fn from_section(k: &ims_config::KeystoneSection) -> Result<Self, SectionError> {
        let password = if let Some(p) = &k.service_password {
            Secret::new(p.clone())
        } else if let Some(var) = &k.service_password_env {
            Secret::from_env(var).map_err(|_| SectionError::MissingEnv(var.clone()))?
        } else if let Some(path) = &k.service_password_file {
            let text =
                std::fs::read_to_string(path).map_err(|source| SectionError::PasswordFile {
                    path: path.clone(),
                    source,
                })?;
            Secret::new(text.trim().to_owned())
        } else {
            return Err(SectionError::NoPassword);
        };
        let service = ServiceCredentials {
            user_name: k.service_user.clone(),
            user_domain: DomainRef::Id(k.service_user_domain_id.clone()),
            password,
            project_name: k.service_project.clone(),
            project_domain: DomainRef::Id(k.service_project_domain_id.clone()),
        };
        let mut config = KeystoneConfig::new(&k.url, service);
        config.cache_ttl = Duration::from_secs(k.cache_ttl_secs);
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_password() {
        let service = ServiceCredentials {
            user_name: "ims".into(),
            user_domain: DomainRef::Id("default".into()),
            password: Secret::new("hunter2-very-secret"),
            project_name: "service".into(),
            project_domain: DomainRef::Name("Default".into()),
        };
        let config = KeystoneConfig::new("http://127.0.0.1:5000/v3", service);
        let text = format!("{config:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<redacted>"));
    }
}
