//! The two Keystone identity API v3 calls: password login (`POST /v3/auth/tokens`) and token
//! validation (`GET /v3/auth/tokens`), with bounded, typed response parsing.

use std::time::SystemTime;

use reqwest::header::HeaderValue;
use reqwest::StatusCode;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::config::{KeystoneConfig, Secret, ServiceCredentials};
use super::{TokenInfo, Unavailable};

/// Largest response body read from Keystone (tokens are requested without catalog).
const MAX_BODY: usize = 256 * 1024;
const SUBJECT_TOKEN: &str = "X-Subject-Token";

/// A token Keystone issued to the service user.
pub(super) struct IssuedToken {
    pub(super) token: Secret,
    pub(super) expires_at: SystemTime,
}

/// Keystone's answer to a validation.
pub(super) enum Validation {
    Valid(Box<TokenInfo>),
    /// 404: the token is invalid, expired or revoked.
    Invalid,
    /// 401: Keystone no longer accepts the service token.
    ServiceTokenRejected,
}

pub(super) struct Api {
    http: reqwest::Client,
    tokens_url: String,
}

/// Why the HTTP client cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The extra root certificates do not parse.
    #[error("root CA certificates: {0}")]
    RootCa(String),
    /// The Keystone URL is not an `http`/`https` URL.
    #[error("Keystone URL: {0}")]
    Url(String),
    /// The HTTP client cannot be set up.
    #[error("HTTP client: {0}")]
    Client(String),
}

impl Api {
    pub(super) fn new(config: &KeystoneConfig) -> Result<Api, BuildError> {
        let builder = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .use_rustls_tls();
        let http = crate::roots::trusting(builder, config.root_ca_pem.as_deref())
            .map_err(|e| BuildError::RootCa(e.to_string()))?
            .build()
            .map_err(|e| BuildError::Client(e.to_string()))?;
        let tokens_url = format!("{}/auth/tokens?nocatalog", config.url.trim_end_matches('/'));
        let url = reqwest::Url::parse(&tokens_url).map_err(|e| BuildError::Url(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => tracing::warn!(
                url = %config.url,
                "Keystone over plain HTTP: tokens and the service password travel unencrypted"
            ),
            other => return Err(BuildError::Url(format!("unsupported scheme {other:?}"))),
        }
        Ok(Api { http, tokens_url })
    }

    /// Password login of the service user, scoped to its project.
    pub(super) async fn login(
        &self,
        creds: &ServiceCredentials,
    ) -> Result<IssuedToken, Unavailable> {
        let body = serde_json::json!({ "auth": {
            "identity": { "methods": ["password"], "password": { "user": {
                "name": creds.user_name,
                "domain": creds.user_domain.to_json(),
                "password": creds.password.expose(),
            }}},
            "scope": { "project": {
                "name": creds.project_name,
                "domain": creds.project_domain.to_json(),
            }},
        }});
        let resp = self
            .http
            .post(&self.tokens_url)
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        if status != StatusCode::CREATED {
            return Err(Unavailable::LoginRefused(status.as_u16()));
        }
        let token = resp
            .headers()
            .get(SUBJECT_TOKEN)
            .and_then(|v| v.to_str().ok())
            .map(Secret::new)
            .ok_or_else(|| Unavailable::Response("login answer without X-Subject-Token".into()))?;
        let parsed: TokenBody = parse_body(resp).await?;
        Ok(IssuedToken {
            token,
            expires_at: parse_time(&parsed.token.expires_at)?,
        })
    }

    /// Validates `subject` with the service token. The caller has checked that `subject` is
    /// a legal header value.
    pub(super) async fn validate(
        &self,
        service: &Secret,
        subject: &HeaderValue,
    ) -> Result<Validation, Unavailable> {
        let service = HeaderValue::from_str(service.expose())
            .map_err(|_| Unavailable::Response("service token is not a header value".into()))?;
        let resp = self
            .http
            .get(&self.tokens_url)
            .header("X-Auth-Token", service)
            .header(SUBJECT_TOKEN, subject.clone())
            .send()
            .await
            .map_err(transport)?;
        match resp.status() {
            StatusCode::OK => {
                let body: TokenBody = parse_body(resp).await?;
                Ok(Validation::Valid(Box::new(body.token.into_info()?)))
            }
            StatusCode::NOT_FOUND => Ok(Validation::Invalid),
            StatusCode::UNAUTHORIZED => Ok(Validation::ServiceTokenRejected),
            other => Err(Unavailable::Status(other.as_u16())),
        }
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback()),
        None => false,
    }
}

fn transport(e: reqwest::Error) -> Unavailable {
    Unavailable::Transport(e.to_string())
}

async fn parse_body<T: for<'de> Deserialize<'de>>(
    mut resp: reqwest::Response,
) -> Result<T, Unavailable> {
    let too_large = || Unavailable::Response(format!("body larger than {MAX_BODY} bytes"));
    if resp.content_length().is_some_and(|l| l > MAX_BODY as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| Unavailable::Response(e.to_string()))
}

fn parse_time(text: &str) -> Result<SystemTime, Unavailable> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(SystemTime::from)
        .map_err(|e| Unavailable::Response(format!("expires_at {text:?}: {e}")))
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenJson,
}

#[derive(Deserialize)]
struct TokenJson {
    expires_at: String,
    user: UserJson,
    project: Option<ProjectJson>,
    domain: Option<IdJson>,
    system: Option<SystemJson>,
    #[serde(default)]
    roles: Vec<RoleJson>,
}

#[derive(Deserialize)]
struct UserJson {
    id: String,
    name: String,
    domain: IdJson,
}

#[derive(Deserialize)]
struct ProjectJson {
    id: String,
    name: String,
    domain: IdJson,
}

#[derive(Deserialize)]
struct IdJson {
    id: String,
}

#[derive(Deserialize)]
struct SystemJson {
    #[serde(default)]
    all: bool,
}

#[derive(Deserialize)]
struct RoleJson {
    name: String,
}

impl TokenJson {
    fn into_info(self) -> Result<TokenInfo, Unavailable> {
        let (project_id, project_name, project_domain_id) = match self.project {
            Some(p) => (Some(p.id), Some(p.name), Some(p.domain.id)),
            None => (None, None, None),
        };
        Ok(TokenInfo {
            expires_at: parse_time(&self.expires_at)?,
            user_id: self.user.id,
            user_name: self.user.name,
            user_domain_id: self.user.domain.id,
            project_id,
            project_name,
            project_domain_id,
            domain_id: self.domain.map(|d| d.id),
            system_all: self.system.is_some_and(|s| s.all),
            roles: self.roles.into_iter().map(|r| r.name).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A validation answer as Keystone 30.0.0 gives it (trimmed ids).
    const PROJECT_TOKEN: &str = r#"{"token": {"methods": ["password"],
        "user": {"domain": {"id": "default", "name": "Default"}, "id": "u1", "name": "alice",
                 "password_expires_at": null},
        "audit_ids": ["dL73Jn43SdCb_6_8aY3IVQ"],
        "expires_at": "2026-11-23T21:58:06.000000Z", "issued_at": "2026-11-23T20:58:06.000000Z",
        "project": {"domain": {"id": "d1", "name": "ims"}, "id": "p1", "name": "tenant-a"},
        "is_domain": false,
        "roles": [{"id": "r1", "name": "member"}, {"id": "r2", "name": "reader"}]}}"#;

    #[test]
    fn parses_a_project_scoped_token() {
        let body: TokenBody = serde_json::from_str(PROJECT_TOKEN).unwrap();
        let info = body.token.into_info().unwrap();
        assert_eq!(info.user_id, "u1");
        assert_eq!(info.user_name, "alice");
        assert_eq!(info.user_domain_id, "default");
        assert_eq!(info.project_id.as_deref(), Some("p1"));
        assert_eq!(info.project_name.as_deref(), Some("tenant-a"));
        assert_eq!(info.project_domain_id.as_deref(), Some("d1"));
        assert_eq!(info.domain_id, None);
        assert!(!info.system_all);
        assert_eq!(info.roles, ["member", "reader"]);
        // 2026-11-23T21:58:06Z
        let secs = info
            .expires_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(secs, Duration::from_secs(1_795_471_086));
    }

    #[test]
    fn parses_a_system_scoped_token() {
        let text = r#"{"token": {"expires_at": "2026-01-01T00:00:00Z", "system": {"all": true},
            "user": {"id": "a", "name": "admin", "domain": {"id": "default"}},
            "roles": [{"id": "x", "name": "admin"}]}}"#;
        let info = serde_json::from_str::<TokenBody>(text)
            .unwrap()
            .token
            .into_info()
            .unwrap();
        assert!(info.system_all);
        assert_eq!(info.project_id, None);
    }

    #[test]
    fn url_must_be_http_or_https() {
        use crate::keystone::{DomainRef, ServiceCredentials};
        let service = ServiceCredentials {
            user_name: "u".into(),
            user_domain: DomainRef::Id("default".into()),
            password: Secret::new("p"),
            project_name: "p".into(),
            project_domain: DomainRef::Id("default".into()),
        };
        let api = |url: &str| Api::new(&KeystoneConfig::new(url, service.clone()));
        assert!(api("https://keystone.example.net/v3").is_ok());
        assert!(api("http://127.0.0.1:5000/v3/").is_ok());
        assert_eq!(
            api("http://[::1]:5000/v3").unwrap().tokens_url,
            "http://[::1]:5000/v3/auth/tokens?nocatalog"
        );
        assert!(matches!(api("ftp://keystone/v3"), Err(BuildError::Url(_))));
        assert!(matches!(api("keystone:5000"), Err(BuildError::Url(_))));
        assert!(matches!(api("not a url"), Err(BuildError::Url(_))));
        let lo = |u: &str| is_loopback(&reqwest::Url::parse(u).unwrap());
        assert!(lo("http://127.0.0.1:5000/v3") && lo("http://[::1]/") && lo("http://localhost/"));
        assert!(!lo("http://keystone.example.net/v3") && !lo("http://[2001:db8::1]/"));
    }

    #[test]
    fn refuses_a_bad_expiry() {
        let text = PROJECT_TOKEN.replace("2026-11-23T21:58:06.000000Z", "tomorrow");
        let body: TokenBody = serde_json::from_str(&text).unwrap();
        assert!(matches!(
            body.token.into_info(),
            Err(Unavailable::Response(_))
        ));
    }
}
