//! Keystone token validation (design brief §5): a service user logs in with a password and
//! renews its token before expiry (and when Keystone answers 401); user tokens are checked
//! with `GET /v3/auth/tokens` (`X-Auth-Token`: service token, `X-Subject-Token`: user token).
//!
//! Results are cached in bounded memory under the SHA-256 of the token: valid tokens until
//! min(cache TTL, `expires_at`), invalid ones for the negative TTL. Concurrent validations of
//! one token share one Keystone request. A token not in the cache while Keystone cannot be
//! asked is refused ([`ValidationError::Unavailable`]): the validator fails closed. Tokens
//! and the service password never reach a log or a `Debug` output.

mod api;
mod cache;
mod config;
mod metrics;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderValue;
use tokio::sync::watch;
use tokio::time::Instant;

pub use api::BuildError;
pub use config::{DomainRef, KeystoneConfig, Secret, SectionError, ServiceCredentials};
pub use metrics::MetricsSnapshot;

use api::{Api, Validation};
use cache::{Key, TokenCache};
use metrics::{bump, Metrics};

/// Longest user token sent to Keystone (Fernet tokens are under 300 bytes).
pub const MAX_TOKEN_LEN: usize = 4096;

/// What Keystone says about a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The user's id.
    pub user_id: String,
    /// The user's name.
    pub user_name: String,
    /// The user's domain id.
    pub user_domain_id: String,
    /// The project (tenant) the token is scoped to; `None` for domain- or system-scoped tokens.
    pub project_id: Option<String>,
    /// The project's name.
    pub project_name: Option<String>,
    /// The project's domain id.
    pub project_domain_id: Option<String>,
    /// The domain a domain-scoped token is scoped to.
    pub domain_id: Option<String>,
    /// Whether the token is system-scoped (`"system": {"all": true}`).
    pub system_all: bool,
    /// Role names on the scope, implied roles included (as Keystone lists them).
    pub roles: Vec<String>,
    /// When the token expires.
    pub expires_at: SystemTime,
}

/// Why a token is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The token is malformed, unknown, expired or revoked (Keystone 404).
    #[error("token invalid, expired or revoked")]
    Invalid,
    /// Keystone could not be asked; the token is refused (fail closed).
    #[error("Keystone unavailable: {0}")]
    Unavailable(#[from] Unavailable),
}

/// Why Keystone could not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// Connection refused, timeout, TLS failure...
    #[error("cannot reach Keystone: {0}")]
    Transport(String),
    /// An unexpected status (403: the service user lacks role `service`; 5xx...).
    #[error("Keystone answered status {0}")]
    Status(u16),
    /// The service user's login was refused with this status.
    #[error("service login refused with status {0}")]
    LoginRefused(u16),
    /// An answer that does not parse.
    #[error("malformed Keystone answer: {0}")]
    Response(String),
    /// As many distinct tokens as [`KeystoneConfig::max_in_flight`] are being validated
    /// already; this one is refused rather than queued, so a flood of forged tokens cannot
    /// pile up on Keystone.
    #[error("too many validations in flight")]
    Overloaded,
}

type Outcome = Result<Arc<TokenInfo>, ValidationError>;

/// The service user's token, lent by [`TokenValidator::service_auth`]; never printed.
#[derive(Debug, Clone)]
pub struct ServiceAuth {
    token: Secret,
    generation: u64,
}

impl ServiceAuth {
    /// The token, for the `X-Auth-Token` header of a call to another service.
    pub(crate) fn token(&self) -> &str {
        self.token.expose()
    }
}

/// Validates Keystone tokens; cheap to clone (shared state).
#[derive(Clone)]
pub struct TokenValidator {
    inner: Arc<Inner>,
}

struct Inner {
    api: Api,
    config: KeystoneConfig,
    service: tokio::sync::Mutex<ServiceState>,
    cache: Mutex<TokenCache<Outcome>>,
    in_flight: Mutex<HashMap<Key, watch::Receiver<Option<Outcome>>>>,
    metrics: Metrics,
}

#[derive(Default)]
struct ServiceState {
    current: Option<ServiceToken>,
    generation: u64,
}

struct ServiceToken {
    token: Secret,
    renew_at: Instant,
    expires: Instant,
    generation: u64,
}

/// Removes the in-flight entry when the leading request ends, even if it is cancelled
/// (waiters then see the channel closed and retry).
struct InFlightGuard<'a> {
    inner: &'a Inner,
    key: Key,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        lock(&self.inner.in_flight).remove(&self.key);
    }
}

/// A poisoned lock only means another thread panicked while holding it; the maps stay usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A caller's part in the single-flight of one token's validation.
enum Flight {
    Leader(watch::Sender<Option<Outcome>>),
    Follower(watch::Receiver<Option<Outcome>>),
}

impl TokenValidator {
    /// A validator for `config`. Nothing is sent until the first validation.
    pub fn new(config: KeystoneConfig) -> Result<Self, BuildError> {
        let api = Api::new(&config)?;
        Ok(TokenValidator {
            inner: Arc::new(Inner {
                api,
                cache: Mutex::new(TokenCache::new(config.cache_capacity)),
                config,
                service: tokio::sync::Mutex::new(ServiceState::default()),
                in_flight: Mutex::new(HashMap::new()),
                metrics: Metrics::default(),
            }),
        })
    }

    /// The counters so far.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// Validates a user token: from the cache, or by asking Keystone (one request per token
    /// however many callers wait for it).
    pub async fn validate(&self, token: &str) -> Result<Arc<TokenInfo>, ValidationError> {
        let inner = &*self.inner;
        let outcome = inner.validate(token).await;
        match &outcome {
            Err(ValidationError::Invalid) => bump(&inner.metrics.invalid),
            Err(ValidationError::Unavailable(_)) => bump(&inner.metrics.errors),
            Ok(_) => {}
        }
        outcome
    }

    /// The service user's token, to call another service as the service user (the policy
    /// service's verify and feed), logging in first when needed.
    pub async fn service_auth(&self) -> Result<ServiceAuth, Unavailable> {
        let (token, generation) = self.inner.service_token().await?;
        Ok(ServiceAuth { token, generation })
    }

    /// Drops a service token that another service refused (401), so the next
    /// [`TokenValidator::service_auth`] logs in again.
    pub async fn service_auth_refused(&self, auth: &ServiceAuth) {
        self.inner.drop_service_token(auth.generation).await;
    }

    /// Logs the service user in now if it holds no usable token (e.g. at start-up, to find
    /// a configuration error early).
    pub async fn ensure_service_token(&self) -> Result<(), Unavailable> {
        self.inner.service_token().await.map(|_| ())
    }
}

impl Inner {
    async fn validate(&self, token: &str) -> Outcome {
        let Some(subject) = usable(token) else {
            tracing::debug!(len = token.len(), "malformed bearer token refused");
            return Err(ValidationError::Invalid);
        };
        let key = Key::of(token);
        loop {
            if let Some(hit) = lock(&self.cache).get(&key, Instant::now()) {
                bump(&self.metrics.hits);
                return hit;
            }
            let flight = {
                let mut flights = lock(&self.in_flight);
                match flights.get(&key) {
                    Some(rx) => Flight::Follower(rx.clone()),
                    None if flights.len() >= self.config.max_in_flight => {
                        tracing::warn!(
                            limit = self.config.max_in_flight,
                            "too many token validations in flight; refusing"
                        );
                        return Err(Unavailable::Overloaded.into());
                    }
                    None => {
                        let (tx, rx) = watch::channel(None);
                        flights.insert(key, rx);
                        Flight::Leader(tx)
                    }
                }
            };
            match flight {
                Flight::Follower(mut rx) => {
                    bump(&self.metrics.coalesced);
                    let answer = rx
                        .wait_for(Option::is_some)
                        .await
                        .ok()
                        .and_then(|v| v.clone());
                    if let Some(outcome) = answer {
                        return outcome;
                    }
                    // The leader was cancelled before it had an answer: try again.
                }
                Flight::Leader(tx) => {
                    let _guard = InFlightGuard { inner: self, key };
                    bump(&self.metrics.misses);
                    let outcome = self.ask_keystone(&subject, &key).await;
                    self.remember(key, &outcome);
                    tx.send_replace(Some(outcome.clone()));
                    return outcome;
                }
            }
        }
    }

    /// Caches valid answers until min(TTL, expires_at) and invalid ones for the negative TTL;
    /// `Unavailable` is never cached.
    fn remember(&self, key: Key, outcome: &Outcome) {
        let now = Instant::now();
        let deadline = match outcome {
            Ok(info) => {
                let left = info
                    .expires_at
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO);
                now + left.min(self.config.cache_ttl)
            }
            Err(ValidationError::Invalid) => now + self.config.negative_ttl,
            Err(ValidationError::Unavailable(_)) => return,
        };
        lock(&self.cache).insert(key, outcome.clone(), deadline);
    }

    async fn ask_keystone(&self, subject: &HeaderValue, key: &Key) -> Outcome {
        // One retry: a 401 means the service token was revoked or expired early.
        for _ in 0..2 {
            let (service, generation) = self.service_token().await?;
            bump(&self.metrics.keystone_requests);
            match self.api.validate(&service, subject).await {
                Ok(Validation::Valid(info)) => return Ok(Arc::new(*info)),
                Ok(Validation::Invalid) => {
                    tracing::debug!(token = %key.short(), "Keystone: token invalid");
                    return Err(ValidationError::Invalid);
                }
                Ok(Validation::ServiceTokenRejected) => {
                    tracing::warn!("Keystone refused the service token (401); logging in again");
                    self.drop_service_token(generation).await;
                }
                Err(e) => {
                    tracing::warn!(token = %key.short(), error = %e, "token validation failed");
                    return Err(e.into());
                }
            }
        }
        Err(Unavailable::Status(401).into())
    }

    /// The service token, logging in when there is none or it is due for renewal. If a
    /// renewal fails while the old token has not expired yet, the old token is used.
    async fn service_token(&self) -> Result<(Secret, u64), Unavailable> {
        let mut state = self.service.lock().await;
        let now = Instant::now();
        if let Some(t) = &state.current {
            if now < t.renew_at {
                return Ok((t.token.clone(), t.generation));
            }
        }
        bump(&self.metrics.logins);
        let issued = match self.api.login(&self.config.service).await {
            Ok(issued) => issued,
            Err(e) => {
                tracing::warn!(error = %e, user = %self.config.service.user_name, "Keystone service login failed");
                return match &state.current {
                    Some(t) if now < t.expires => Ok((t.token.clone(), t.generation)),
                    _ => Err(e),
                };
            }
        };
        let lifetime = issued
            .expires_at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let margin = self.config.renew_before.min(lifetime / 4);
        state.generation += 1;
        let generation = state.generation;
        tracing::info!(
            lifetime_s = lifetime.as_secs(),
            "Keystone service token issued"
        );
        state.current = Some(ServiceToken {
            token: issued.token.clone(),
            renew_at: now + (lifetime - margin),
            expires: now + lifetime,
            generation,
        });
        Ok((issued.token, generation))
    }

    async fn drop_service_token(&self, generation: u64) {
        let mut state = self.service.lock().await;
        if state
            .current
            .as_ref()
            .is_some_and(|t| t.generation == generation)
        {
            state.current = None;
        }
    }
}

/// The token as a header value, if it can be one and is not absurdly long.
fn usable(token: &str) -> Option<HeaderValue> {
    if token.is_empty()
        || token.len() > MAX_TOKEN_LEN
        || !token.bytes().all(|b| b.is_ascii_graphic())
    {
        return None;
    }
    HeaderValue::from_str(token).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator(url: &str) -> TokenValidator {
        let service = ServiceCredentials {
            user_name: "ims".into(),
            user_domain: DomainRef::Id("default".into()),
            password: Secret::new("pw"),
            project_name: "service".into(),
            project_domain: DomainRef::Id("default".into()),
        };
        let mut config = KeystoneConfig::new(url, service);
        config.request_timeout = Duration::from_secs(2);
        TokenValidator::new(config).unwrap()
    }

    #[tokio::test]
    async fn malformed_tokens_are_invalid_without_asking_keystone() {
        // Nothing listens on port 9 of loopback: any request would fail as Unavailable.
        let v = validator("http://127.0.0.1:9/v3");
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        for bad in ["", "has space", "new\nline", "ünï", long.as_str()] {
            assert_eq!(
                v.validate(bad).await,
                Err(ValidationError::Invalid),
                "{bad:?}"
            );
        }
        let m = v.metrics();
        assert_eq!((m.invalid, m.keystone_requests, m.logins), (5, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_leader_hands_the_request_over_to_a_waiting_caller() {
        // A listener that never answers: every request runs into the 2 s timeout (the paused
        // clock lets it pass at once).
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let v = validator(&format!("http://{}/v3", silent.local_addr().unwrap()));
        let run = |v: &TokenValidator| {
            let v = v.clone();
            tokio::spawn(async move { v.validate("gAAAAABsametoken").await })
        };
        let leader = run(&v);
        tokio::task::yield_now().await;
        let follower = run(&v);
        tokio::task::yield_now().await;
        assert_eq!((v.metrics().misses, v.metrics().coalesced), (1, 1));
        leader.abort();
        let r = follower.await.unwrap();
        assert!(
            matches!(
                r,
                Err(ValidationError::Unavailable(Unavailable::Transport(_)))
            ),
            "{r:?}"
        );
        // The follower took over: a second miss, and nothing left in flight.
        assert_eq!(v.metrics().misses, 2);
        assert!(lock(&v.inner.in_flight).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn distinct_tokens_beyond_the_in_flight_limit_are_refused() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut config = validator(&format!("http://{}/v3", silent.local_addr().unwrap()))
            .inner
            .config
            .clone();
        config.max_in_flight = 2;
        let v = TokenValidator::new(config).unwrap();
        let run = |token: &'static str| {
            let v = v.clone();
            tokio::spawn(async move { v.validate(token).await })
        };
        let (a, b, a2) = (
            run("gAAAAABtokenA"),
            run("gAAAAABtokenB"),
            run("gAAAAABtokenA"),
        );
        tokio::task::yield_now().await;
        // A third distinct token is refused at once; the same token as a running one waits.
        assert_eq!(
            v.validate("gAAAAABtokenC").await,
            Err(ValidationError::Unavailable(Unavailable::Overloaded))
        );
        for t in [a, b, a2] {
            let r = t.await.unwrap();
            assert!(
                matches!(
                    r,
                    Err(ValidationError::Unavailable(Unavailable::Transport(_)))
                ),
                "{r:?}"
            );
        }
        let m = v.metrics();
        assert_eq!((m.misses, m.coalesced, m.errors), (2, 1, 4));
        // Room again once they are done.
        assert!(matches!(
            v.validate("gAAAAABtokenC").await,
            Err(ValidationError::Unavailable(Unavailable::Transport(_)))
        ));
    }

    #[tokio::test]
    async fn unreachable_keystone_fails_closed_and_is_not_cached() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let v = validator(&format!("http://127.0.0.1:{port}/v3"));
        for _ in 0..2 {
            let r = v.validate("gAAAAABtoken").await;
            assert!(
                matches!(
                    r,
                    Err(ValidationError::Unavailable(Unavailable::Transport(_)))
                ),
                "{r:?}"
            );
        }
        let m = v.metrics();
        assert_eq!((m.errors, m.misses, m.hits, m.logins), (2, 2, 0, 2));
    }
}
