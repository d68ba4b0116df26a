//! Questions to the policy service (`POST /v1/verify`, see `policyd::api`), asked as the
//! service user: its Keystone token is what `self-protect` (constraint IV) lets ask.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Question;
use crate::keystone::{TokenInfo, TokenValidator, Unavailable};

/// Largest verify answer read.
const MAX_ANSWER: usize = 16 * 1024;

/// Why the policy service gave no decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No service token (Keystone unavailable).
    #[error("no service token: {0}")]
    ServiceToken(#[from] Unavailable),
    /// Connection refused, timeout...
    #[error("cannot reach the policy service: {0}")]
    Transport(String),
    /// An unexpected status.
    #[error("the policy service answered status {0}")]
    Status(u16),
    /// An answer that does not parse.
    #[error("malformed verify answer: {0}")]
    Answer(String),
}

#[derive(Serialize)]
struct Body<'a> {
    subject: Subject<'a>,
    object: Object<'a>,
    verb: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'a str>,
}

#[derive(Serialize)]
struct Subject<'a> {
    user: &'a str,
    project: &'a str,
    roles: &'a [String],
    identity: &'a str,
    system: bool,
}

#[derive(Serialize)]
struct Object<'a> {
    target: &'a str,
    tenant: &'a str,
}

#[derive(Deserialize)]
struct Verdict {
    effect: String,
    revision: i64,
}

/// A decision and the policy revision it was made at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Allowed.
    pub allow: bool,
    /// The store revision of the policies that decided.
    pub revision: i64,
}

/// The verify client.
#[derive(Clone)]
pub struct PolicyClient {
    http: reqwest::Client,
    verify_url: String,
    validator: TokenValidator,
}

impl PolicyClient {
    /// A client of the policy service at `base_url`, with `timeout` per question.
    pub fn new(
        base_url: &str,
        validator: TokenValidator,
        timeout: Duration,
        root_ca_pem: Option<&[u8]>,
    ) -> Result<PolicyClient, reqwest::Error> {
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(64);
        let http = crate::roots::trusting(builder, root_ca_pem)?.build()?;
        Ok(PolicyClient {
            http,
            verify_url: format!("{}/v1/verify", base_url.trim_end_matches('/')),
            validator,
        })
    }

    /// Asks whether `who` may do `question` (one retry after a refused service token).
    pub async fn verify(&self, who: &TokenInfo, q: &Question<'_>) -> Result<Decision, VerifyError> {
        let body = Body {
            subject: Subject {
                user: &who.user_id,
                project: who.project_id.as_deref().unwrap_or(""),
                roles: &who.roles,
                identity: q.identity,
                system: who.system_all,
            },
            object: Object {
                target: q.target,
                tenant: q.tenant,
            },
            verb: q.verb,
            policy: q.policy,
        };
        for _ in 0..2 {
            let auth = self.validator.service_auth().await?;
            let response = self
                .http
                .post(&self.verify_url)
                .header("X-Auth-Token", auth.token())
                .json(&body)
                .send()
                .await
                .map_err(|e| VerifyError::Transport(e.without_url().to_string()))?;
            let status = response.status().as_u16();
            if status == 401 {
                tracing::warn!("the policy service refused the service token; logging in again");
                self.validator.service_auth_refused(&auth).await;
                continue;
            }
            if status != 200 {
                return Err(VerifyError::Status(status));
            }
            if response
                .content_length()
                .is_some_and(|n| n > MAX_ANSWER as u64)
            {
                return Err(VerifyError::Answer("too large".into()));
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|e| VerifyError::Transport(e.without_url().to_string()))?;
            let verdict: Verdict =
                serde_json::from_slice(&bytes).map_err(|e| VerifyError::Answer(e.to_string()))?;
            return match verdict.effect.as_str() {
                "allow" | "deny" => Ok(Decision {
                    allow: verdict.effect == "allow",
                    revision: verdict.revision,
                }),
                other => Err(VerifyError::Answer(format!("effect {other:?}"))),
            };
        }
        Err(VerifyError::Status(401))
    }
}
