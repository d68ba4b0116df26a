//! The request filter (design brief §5-§6), used by the P-CSCF and the S-CSCF: a Keystone
//! token must be valid, and the policy service must allow `Subject, Object, Verb`.
//!
//! - [`bearer`]: the RFC 8898 Bearer credential and challenge.
//! - [`decisions`]: the bounded decision cache.
//! - [`policy_client`]: verify questions to the policy service.
//! - `feed`: the invalidation feed that wipes the cache on every policy change.
//! - [`setup`]: a node's filter from its `[cloud_auth]` section.
//! - [`sip`]: the same checks on SIP requests, answered 401/403 as RFC 8898 says.
//!
//! Fail closed: a token Keystone cannot check, or a question neither the cache nor the
//! policy service can answer, is refused.

pub mod bearer;
pub mod decisions;
mod feed;
pub mod policy_client;
pub mod setup;
pub mod sip;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ims_runtime::prometheus_client::metrics::counter::Counter;
use ims_runtime::prometheus_client::metrics::gauge::Gauge;
use ims_runtime::prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use ims_runtime::prometheus_client::registry::Registry;

use crate::keystone::{TokenInfo, TokenValidator, ValidationError};
use decisions::{DecisionCache, Key};
use policy_client::PolicyClient;

/// One authorization question: may the token's subject, using IMS identity `identity`,
/// do `verb` on `target`, a resource of tenant `tenant`?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question<'a> {
    /// The IMS identity in use (the registering IMPU, the caller's asserted identity).
    pub identity: &'a str,
    /// The object (the IMPU registered, the callee, `as:<name>`...).
    pub target: &'a str,
    /// The object's tenant (Keystone project id).
    pub tenant: &'a str,
    /// The verb: the SIP method, `as:<name>`, or an API action (`subscriber:read`).
    pub verb: &'a str,
    /// The global policy deciding (the HSS provisioning API asks `provision`); `None`:
    /// the effective policy of `tenant`.
    pub policy: Option<&'a str>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No bearer token: challenge.
    #[error("no bearer token")]
    NoToken,
    /// Malformed, unknown, expired or revoked token.
    #[error("invalid token")]
    InvalidToken,
    /// The policy denies.
    #[error("denied by policy")]
    Denied,
    /// No decision could be had (Keystone or the policy service unavailable): refused.
    #[error("no decision: {0}")]
    Undecidable(String),
}

/// Filter settings.
#[derive(Debug, Clone)]
pub struct FilterSettings {
    /// Base URL of the policy service.
    pub policy_url: String,
    /// Decisions kept; 0 asks every time.
    pub decision_cache: usize,
    /// Longest use of a cached decision.
    pub decision_ttl: Duration,
    /// Timeout of one verify question.
    pub verify_timeout: Duration,
    /// PEM bundle of CAs trusted for an `https` policy URL, besides the system roots.
    pub policy_ca_pem: Option<Vec<u8>>,
}

/// A copy of the filter's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilterStats {
    /// Decisions answered from the cache.
    pub hits: u64,
    /// Decisions asked of the policy service.
    pub misses: u64,
    /// Questions allowed.
    pub allowed: u64,
    /// Questions denied by policy.
    pub denied: u64,
    /// Requests without a valid token.
    pub token_refused: u64,
    /// Requests refused for want of a decision.
    pub undecidable: u64,
    /// Cache wipes by the feed.
    pub wipes: u64,
}

/// Prometheus metrics of the filter.
#[derive(Clone)]
struct Metrics {
    hits: Counter,
    misses: Counter,
    allowed: Counter,
    denied: Counter,
    token_refused: Counter,
    undecidable: Counter,
    wipes: Counter,
    feed_up: Gauge,
    verify_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            hits: Counter::default(),
            misses: Counter::default(),
            allowed: Counter::default(),
            denied: Counter::default(),
            token_refused: Counter::default(),
            undecidable: Counter::default(),
            wipes: Counter::default(),
            feed_up: Gauge::default(),
            // 100 µs .. ~1.6 s
            verify_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 15)),
        }
    }
}

/// State shared with the feed task.
struct Shared {
    validator: TokenValidator,
    cache: DecisionCache,
    /// Highest policy revision known (from the feed and verify answers); -1 before any.
    revision: AtomicI64,
    feed_up: AtomicBool,
    metrics: Metrics,
}

impl Shared {
    fn wipe(&self) {
        self.cache.clear();
        self.metrics.wipes.inc();
    }
}

/// The request filter; cheap to clone.
#[derive(Clone)]
pub struct RequestFilter {
    shared: Arc<Shared>,
    policy: PolicyClient,
}

impl std::fmt::Debug for RequestFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestFilter")
            .field("feed_connected", &self.feed_connected())
            .field("cached_decisions", &self.cached_decisions())
            .finish_non_exhaustive()
    }
}

impl RequestFilter {
    /// A filter validating tokens with `validator` and asking the policy service named in
    /// `settings`; it follows the invalidation feed from a background task (so it must be
    /// created inside a tokio runtime) until the last clone is dropped.
    pub fn new(
        settings: &FilterSettings,
        validator: TokenValidator,
    ) -> Result<RequestFilter, reqwest::Error> {
        let ttl = u32::try_from(settings.decision_ttl.as_secs()).unwrap_or(u32::MAX);
        let shared = Arc::new(Shared {
            validator: validator.clone(),
            cache: DecisionCache::new(settings.decision_cache, ttl),
            revision: AtomicI64::new(-1),
            feed_up: AtomicBool::new(false),
            metrics: Metrics::default(),
        });
        let ca = settings.policy_ca_pem.as_deref();
        let policy =
            PolicyClient::new(&settings.policy_url, validator, settings.verify_timeout, ca)?;
        // The feed connection is long-lived: no overall timeout, only on connecting.
        let feed_http = crate::roots::trusting(
            reqwest::Client::builder()
                .connect_timeout(settings.verify_timeout.max(Duration::from_secs(1))),
            ca,
        )?
        .build()?;
        let feed_url = format!("{}/v1/feed", settings.policy_url.trim_end_matches('/'));
        tokio::spawn(feed::follow(Arc::downgrade(&shared), feed_url, feed_http));
        Ok(RequestFilter { shared, policy })
    }

    /// Registers the filter's metrics (prefix `cloud_auth_`) in `registry`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        let m = &self.shared.metrics;
        let r = registry.sub_registry_with_prefix("cloud_auth");
        r.register(
            "decision_cache_hits",
            "decisions answered from the cache",
            m.hits.clone(),
        );
        r.register(
            "decision_cache_misses",
            "decisions asked of the policy service",
            m.misses.clone(),
        );
        r.register("allowed", "requests allowed by policy", m.allowed.clone());
        r.register("denied", "requests denied by policy", m.denied.clone());
        r.register(
            "token_refused",
            "requests without a valid bearer token",
            m.token_refused.clone(),
        );
        r.register(
            "undecidable",
            "requests refused for want of a decision (fail closed)",
            m.undecidable.clone(),
        );
        r.register(
            "cache_wipes",
            "decision cache wipes by the invalidation feed",
            m.wipes.clone(),
        );
        r.register(
            "feed_up",
            "1 while the invalidation feed is connected",
            m.feed_up.clone(),
        );
        r.register(
            "verify_seconds",
            "latency of verify questions to the policy service",
            m.verify_seconds.clone(),
        );
    }

    /// The counters so far.
    pub fn stats(&self) -> FilterStats {
        let m = &self.shared.metrics;
        FilterStats {
            hits: m.hits.get(),
            misses: m.misses.get(),
            allowed: m.allowed.get(),
            denied: m.denied.get(),
            token_refused: m.token_refused.get(),
            undecidable: m.undecidable.get(),
            wipes: m.wipes.get(),
        }
    }

    /// Whether the invalidation feed is connected now.
    pub fn feed_connected(&self) -> bool {
        self.shared.feed_up.load(Ordering::Acquire)
    }

    /// Decisions in the cache now.
    pub fn cached_decisions(&self) -> usize {
        self.shared.cache.len()
    }

    /// Checks a bearer token with Keystone (cached).
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Arc<TokenInfo>, Refusal> {
        let Some(token) = token else {
            self.shared.metrics.token_refused.inc();
            return Err(Refusal::NoToken);
        };
        match self.shared.validator.validate(token).await {
            Ok(info) => Ok(info),
            Err(ValidationError::Invalid) => {
                self.shared.metrics.token_refused.inc();
                Err(Refusal::InvalidToken)
            }
            Err(ValidationError::Unavailable(e)) => {
                self.shared.metrics.undecidable.inc();
                Err(Refusal::Undecidable(e.to_string()))
            }
        }
    }

    /// Decides `q` for the token's subject `who`: from the cache, else by asking the
    /// policy service; no decision means refused.
    pub async fn authorize(&self, who: &TokenInfo, q: &Question<'_>) -> Result<(), Refusal> {
        let s = &*self.shared;
        let mut roles: Vec<&str> = who.roles.iter().map(String::as_str).collect();
        roles.sort_unstable();
        let roles = roles.join("\n");
        let key = Key::of(&[
            &who.user_id,
            who.project_id.as_deref().unwrap_or(""),
            if who.system_all { "system" } else { "" },
            &roles,
            q.identity,
            q.target,
            q.tenant,
            q.verb,
            q.policy.unwrap_or(""),
        ]);
        let (cached, epoch) = s.cache.get(&key);
        let allow = match cached {
            Some(allow) => {
                s.metrics.hits.inc();
                allow
            }
            None => {
                s.metrics.misses.inc();
                let started = Instant::now();
                let answer = self.policy.verify(who, q).await;
                s.metrics
                    .verify_seconds
                    .observe(started.elapsed().as_secs_f64());
                let decision = match answer {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(error = %e, verb = q.verb, "no policy decision: refused");
                        s.metrics.undecidable.inc();
                        return Err(Refusal::Undecidable(e.to_string()));
                    }
                };
                // An answer from policies older than a change already seen is not kept.
                if decision.revision >= s.revision.load(Ordering::Acquire) {
                    s.cache.insert(key, decision.allow, epoch);
                }
                decision.allow
            }
        };
        if allow {
            s.metrics.allowed.inc();
            Ok(())
        } else {
            s.metrics.denied.inc();
            Err(Refusal::Denied)
        }
    }
}
