//! Engine counters, readable by the node for metrics export.
//!
//! Every counter is an atomic in a fixed array, indexed by method, status code or
//! latency bucket: counting a message allocates nothing and formats nothing; the labels
//! are made when the node's `/metrics` is scraped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::shard::MAX_SHARDS;
use crate::message::Method;

/// The methods counted by name, in [`EngineStats::requests_in`] order; any other
/// method is counted as `other` (the last index).
pub const METHODS: [&str; 15] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "REGISTER",
    "OPTIONS",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "INFO",
    "REFER",
    "MESSAGE",
    "UPDATE",
    "other",
];

/// The index of `method` in [`METHODS`].
pub fn method_index(method: Option<&Method>) -> usize {
    match method {
        Some(Method::Invite) => 0,
        Some(Method::Ack) => 1,
        Some(Method::Bye) => 2,
        Some(Method::Cancel) => 3,
        Some(Method::Register) => 4,
        Some(Method::Options) => 5,
        Some(Method::Prack) => 6,
        Some(Method::Subscribe) => 7,
        Some(Method::Notify) => 8,
        Some(Method::Publish) => 9,
        Some(Method::Info) => 10,
        Some(Method::Refer) => 11,
        Some(Method::Message) => 12,
        Some(Method::Update) => 13,
        Some(Method::Extension(_)) | None => 14,
    }
}

/// Upper bounds, in seconds, of the buckets of [`Latency`] (the last bucket, `+Inf`,
/// is implicit).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A latency histogram of fixed buckets ([`LATENCY_BUCKETS`]), not cumulative: bucket
/// `i` counts observations in `(LATENCY_BUCKETS[i-1], LATENCY_BUCKETS[i]]`, the last
/// one those above the largest bound.
#[derive(Debug, Default)]
pub struct Latency {
    /// Observations per bucket.
    pub buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    /// Sum of the observations, in microseconds.
    pub sum_micros: AtomicU64,
}

impl Latency {
    /// Counts one observation.
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(b) = self.buckets.get(i) {
            EngineStats::inc(b);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// Status codes 100 to 699, one counter each.
const CODES: usize = 600;

/// Counters by status code (100 to 699).
#[derive(Debug)]
pub struct ByCode(pub [AtomicU64; CODES]);

impl Default for ByCode {
    fn default() -> Self {
        ByCode(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl ByCode {
    fn inc(&self, code: u16) {
        if let Some(c) = usize::from(code)
            .checked_sub(100)
            .and_then(|i| self.0.get(i))
        {
            EngineStats::inc(c);
        }
    }

    /// The count of `code` (0 outside 100 to 699).
    pub fn get(&self, code: u16) -> u64 {
        usize::from(code)
            .checked_sub(100)
            .and_then(|i| self.0.get(i))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The codes counted at least once, with their counts, in order.
    pub fn counted(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        (100u16..).zip(self.0.iter()).filter_map(|(code, c)| {
            let n = c.load(Ordering::Relaxed);
            (n > 0).then_some((code, n))
        })
    }
}

/// Counters of a [`super::ProxyEngine`] (read with `load(Ordering::Relaxed)`); all
/// are monotonic except `transactions_active`.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Requests received that created a server transaction, plus ACKs for 2xx, by
    /// method ([`METHODS`]).
    pub requests_in: [AtomicU64; METHODS.len()],
    /// Responses sent upstream, by class: index 0 is 1xx, ..., 5 is 6xx. The automatic
    /// `100 Trying` of INVITE server transactions is not counted.
    pub responses_out: [AtomicU64; 6],
    /// Responses sent upstream by status code (as `responses_out`).
    pub responses_out_by_code: ByCode,
    /// Responses received from downstream on our client transactions, by status code.
    pub responses_in_by_code: ByCode,
    /// Framed messages that failed to parse.
    pub parse_errors: AtomicU64,
    /// Branches sent on to the next server of their next hop (RFC 3263 §4.3).
    pub failovers: AtomicU64,
    /// Live transactions (server and client).
    pub transactions_active: AtomicU64,
    /// Requests received again for a live server transaction (absorbed or answered
    /// with the last response), ACKs not included.
    pub retransmissions_received: AtomicU64,
    /// Messages we sent again: requests on timers A and E, final responses on timer G
    /// or for a retransmitted request.
    pub retransmissions_sent: AtomicU64,
    /// Time from a request's arrival to its final response going upstream, by method
    /// ([`METHODS`]): the latency of this hop, the next hops' included.
    pub latency: [Latency; METHODS.len()],
    /// Messages each shard read from its own sockets and connections, by shard
    /// ([`super::EngineConfig::shards`]); handed-over messages are not counted again.
    pub shard_messages: [AtomicU64; MAX_SHARDS],
    /// Messages handed from the shard they reached to the one owning their
    /// transaction ([`super::EngineConfig::shards`]).
    pub handovers: AtomicU64,
    /// Messages not handed over because the owner's queue was full (dropped).
    pub handovers_dropped: AtomicU64,
    /// The responses among [`EngineStats::handovers`]: those that reached another
    /// shard than the one that sent their request (a next hop that answered to the
    /// listener instead of the shard's client port in our Via, or over a flow).
    pub response_handovers: AtomicU64,
    /// Requests (and unparsable messages) that reached a shard's client socket, where
    /// only responses are taken: dropped unanswered.
    pub client_port_dropped: AtomicU64,
}

impl EngineStats {
    pub(super) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn request_in(&self, method: Option<&Method>) {
        if let Some(c) = self.requests_in.get(method_index(method)) {
            Self::inc(c);
        }
    }

    /// All requests received, whatever the method.
    pub fn requests_in_total(&self) -> u64 {
        self.requests_in
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    pub(super) fn response_out(&self, code: u16) {
        let class = usize::from(code / 100).saturating_sub(1);
        if let Some(c) = self.responses_out.get(class) {
            Self::inc(c);
        }
        self.responses_out_by_code.inc(code);
    }

    pub(super) fn response_in(&self, code: u16) {
        self.responses_in_by_code.inc(code);
    }

    pub(super) fn answered(&self, method: &Method, elapsed: Duration) {
        if let Some(l) = self.latency.get(method_index(Some(method))) {
            l.observe(elapsed);
        }
    }

    /// Adds a shard's retransmissions since it last reported.
    pub(super) fn retransmissions(&self, received: u64, sent: u64) {
        if received > 0 {
            self.retransmissions_received
                .fetch_add(received, Ordering::Relaxed);
        }
        if sent > 0 {
            self.retransmissions_sent.fetch_add(sent, Ordering::Relaxed);
        }
    }

    pub(super) fn shard_message(&self, shard: usize) {
        if let Some(c) = self.shard_messages.get(shard) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_codes_index_fixed_arrays() {
        let s = EngineStats::default();
        s.request_in(Some(&Method::Register));
        s.request_in(Some(&Method::Extension("FOO".into())));
        assert_eq!(s.requests_in[4].load(Ordering::Relaxed), 1);
        assert_eq!(METHODS[4], "REGISTER");
        assert_eq!(s.requests_in[METHODS.len() - 1].load(Ordering::Relaxed), 1);
        s.response_out(401);
        s.response_out(401);
        s.response_out(200);
        s.response_out(99);
        s.response_out(700);
        assert_eq!(s.responses_out_by_code.get(401), 2);
        assert_eq!(s.responses_out[3].load(Ordering::Relaxed), 2);
        let counted: Vec<_> = s.responses_out_by_code.counted().collect();
        assert_eq!(counted, vec![(200, 1), (401, 2)]);
    }

    #[test]
    fn latency_lands_in_its_bucket() {
        let l = Latency::default();
        l.observe(Duration::from_micros(300));
        l.observe(Duration::from_millis(7));
        l.observe(Duration::from_secs(60));
        let n: Vec<u64> = l
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(n[0], 1);
        assert_eq!(n[4], 1, "7 ms is in (5 ms, 10 ms]");
        assert_eq!(n[LATENCY_BUCKETS.len()], 1);
        assert_eq!(l.sum_micros.load(Ordering::Relaxed), 60_007_300);
    }
}
