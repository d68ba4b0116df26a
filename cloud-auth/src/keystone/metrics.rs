//! Counters of the token validator.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, updated with relaxed atomics.
#[derive(Debug, Default)]
pub(super) struct Metrics {
    pub(super) hits: AtomicU64,
    pub(super) misses: AtomicU64,
    pub(super) coalesced: AtomicU64,
    pub(super) invalid: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) keystone_requests: AtomicU64,
    pub(super) logins: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Validations answered from the cache (valid or invalid).
    pub hits: u64,
    /// Validations that had to ask Keystone (one per token while a request is in flight).
    pub misses: u64,
    /// Validations that waited for another caller's request for the same token.
    pub coalesced: u64,
    /// Validations answered `Invalid` (cached, fresh or malformed).
    pub invalid: u64,
    /// Validations answered `Unavailable`.
    pub errors: u64,
    /// `GET /v3/auth/tokens` requests sent.
    pub keystone_requests: u64,
    /// Service-user logins (`POST /v3/auth/tokens`) sent.
    pub logins: u64,
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub(super) fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            hits: get(&self.hits),
            misses: get(&self.misses),
            coalesced: get(&self.coalesced),
            invalid: get(&self.invalid),
            errors: get(&self.errors),
            keystone_requests: get(&self.keystone_requests),
            logins: get(&self.logins),
        }
    }
}
