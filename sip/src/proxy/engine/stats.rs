//! Engine counters, readable by the node for metrics export.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of a [`super::ProxyEngine`] (read with `load(Ordering::Relaxed)`); all
/// are monotonic except `transactions_active`.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Requests received that created a server transaction, plus ACKs for 2xx.
    pub requests_in: AtomicU64,
    /// Responses sent upstream, by class: index 0 is 1xx, ..., 5 is 6xx. The automatic
    /// `100 Trying` of INVITE server transactions is not counted.
    pub responses_out: [AtomicU64; 6],
    /// Framed messages that failed to parse.
    pub parse_errors: AtomicU64,
    /// Live transactions (server and client).
    pub transactions_active: AtomicU64,
}

impl EngineStats {
    pub(super) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn response_out(&self, code: u16) {
        let class = usize::from(code / 100).saturating_sub(1);
        if let Some(c) = self.responses_out.get(class) {
            Self::inc(c);
        }
    }

    pub(super) fn transaction_started(&self) {
        Self::inc(&self.transactions_active);
    }

    pub(super) fn transaction_ended(&self) {
        let _ = self
            .transactions_active
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}
