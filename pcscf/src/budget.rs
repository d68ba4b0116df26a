//! What a source address may cost the core before it has authenticated (issue 11,
//! "Why" 5), over `ims_runtime::budget`:
//!
//! * a token bucket per source address for requests not yet authenticated: every
//!   REGISTER, and every request from an address with no registration. Over budget:
//!   `503 Service Unavailable` with `Retry-After` (the time to the next token). Not a
//!   silent drop: a UE behind the same address (NAT) learns when to retry (RFC 3261
//!   §21.5.4, TS 24.229 §5.1.1.2.1) instead of retransmitting into the drop, the
//!   answer is no larger than the request (no amplification), and it costs no
//!   Diameter;
//! * a failure counter per source address, fed by the final response to each REGISTER
//!   that carried a response to a challenge (`403`: failure, `2xx`: success), with
//!   exponential back-off: while backed off, REGISTERs from that address get `503`
//!   with `Retry-After` = the back-off left, and reach no core node. `503`, not `403`:
//!   the refusal is about the address, not an identity (it tells nothing of users) and
//!   a legitimate UE behind it learns when to come back.
//!
//! Refusals are logged as periodic summaries, not one line each.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ims_config::BudgetSection;
use ims_runtime::budget::{Backoff, BackoffPolicy, BudgetMetrics, Rate, Refusals, TokenBuckets};
use ims_sip::auth::{carries_response, digest_credentials};
use ims_sip::message::build::response_with;
use ims_sip::{HeaderName, Method, SipMessage};
use tokio::time::Instant;

/// The P-CSCF's per-source budgets.
#[derive(Debug)]
pub struct SourceBudget {
    enabled: bool,
    buckets: TokenBuckets<IpAddr>,
    failures: Backoff<IpAddr>,
    /// Summaries of refused requests.
    pub refusals: Arc<Refusals>,
}

fn busy(request: &SipMessage, wait: Duration) -> SipMessage {
    let secs = wait.as_secs_f64().ceil().max(1.0).to_string();
    response_with(
        request,
        503,
        "Service Unavailable",
        None,
        &[(HeaderName::RetryAfter, &secs)],
    )
}

impl SourceBudget {
    /// From `[budget]`, counting in `metrics`.
    pub fn new(section: &BudgetSection, metrics: BudgetMetrics) -> SourceBudget {
        let rate = Rate {
            per_second: section.unauthenticated_per_second,
            burst: f64::from(section.unauthenticated_burst),
        };
        let policy = BackoffPolicy {
            after_failures: section.failures_before_backoff,
            base: Duration::from_secs(section.backoff_base_secs),
            max: Duration::from_secs(section.backoff_max_secs),
        };
        SourceBudget {
            enabled: section.enabled,
            buckets: TokenBuckets::new(
                "pcscf_unauthenticated",
                rate,
                section.max_keys,
                metrics.clone(),
            ),
            failures: Backoff::new(
                "pcscf_auth_failures",
                policy,
                section.max_keys,
                metrics.clone(),
            ),
            refusals: Refusals::new("pcscf", metrics),
        }
    }

    /// The refusal of `request` from `source`, if it is over budget; `registered` when
    /// a registration was learnt over the flow it came on.
    pub fn refuse(
        &self,
        request: &SipMessage,
        source: IpAddr,
        registered: bool,
    ) -> Option<SipMessage> {
        if !self.enabled {
            return None;
        }
        let register = request.method() == Some(&Method::Register);
        if !register && registered {
            return None;
        }
        let now = Instant::now();
        if register {
            if let Some(left) = self.failures.blocked(&source, now) {
                self.refusals.refused(source, "auth back-off");
                return Some(busy(request, left));
            }
        }
        match self.buckets.take(source, now) {
            Ok(()) => None,
            Err(wait) => {
                self.refusals.refused(source, "rate");
                Some(busy(request, wait))
            }
        }
    }

    /// Learns from the final response to a REGISTER from `source`.
    pub fn answered(&self, request: &SipMessage, source: IpAddr, response: &SipMessage) {
        if !self.enabled || !carries_response(digest_credentials(request).0.as_ref()) {
            return;
        }
        match response.status() {
            Some(403) => {
                if let Some(d) = self.failures.failure(source, Instant::now()) {
                    // One line per back-off window and source at most.
                    tracing::info!(%source, secs = d.as_secs(), "authentication back-off");
                }
            }
            Some(200..=299) => self.failures.success(&source),
            _ => {}
        }
    }
}
