//! Counters readable by the node (for metrics export).

use std::sync::atomic::{AtomicU64, Ordering};

/// Transport counters (read with `load(Ordering::Relaxed)`); all are monotonic
/// except `connections_open`.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Messages delivered upward (parsed).
    pub messages_in: AtomicU64,
    /// Messages written to the network.
    pub messages_out: AtomicU64,
    /// Framed messages that failed to parse.
    pub parse_errors: AtomicU64,
    /// Streams closed because framing was lost (oversize, bad Content-Length).
    pub framing_errors: AtomicU64,
    /// Connections currently open (TCP and TLS).
    pub connections_open: AtomicU64,
    /// Connections refused by a limit.
    pub connections_refused: AtomicU64,
    /// Log lines about peers' input (malformed or oversize messages, failed handshakes,
    /// refused connections) not written because the log budget was spent.
    pub log_lines_suppressed: AtomicU64,
}

impl TransportStats {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
