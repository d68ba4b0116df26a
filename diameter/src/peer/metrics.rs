//! Diameter counters for `/metrics`: requests and answers by command and result code,
//! failed requests by reason, answer latency histograms, and the state of the peers a
//! node watches. One [`DiameterMetrics`] is shared by every connection of a node (it
//! travels in [`super::PeerConfig::metrics`]); the node registers it once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::shared::{lock, PeerState};
use crate::dict::{base, command};
use crate::message::Message;

/// A command's label: the request's abbreviation (`UAR`, `MAR`, ...; `other`).
pub fn command_name(code: u32) -> &'static str {
    match code {
        command::CAPABILITIES_EXCHANGE => "CER",
        command::DEVICE_WATCHDOG => "DWR",
        command::DISCONNECT_PEER => "DPR",
        command::USER_AUTHORIZATION => "UAR",
        command::SERVER_ASSIGNMENT => "SAR",
        command::LOCATION_INFO => "LIR",
        command::MULTIMEDIA_AUTH => "MAR",
        command::REGISTRATION_TERMINATION => "RTR",
        command::PUSH_PROFILE => "PPR",
        _ => "other",
    }
}

/// The result of an answer: its Result-Code, else the Experimental-Result-Code of its
/// Experimental-Result (Cx answers such as DIAMETER_FIRST_REGISTRATION 2001), else 0.
pub fn answer_code(answer: &Message) -> u32 {
    if let Some(code) = answer.result_code() {
        return code;
    }
    answer
        .find(&base::EXPERIMENTAL_RESULT)
        .and_then(|g| g.grouped_avps().ok())
        .and_then(|children| {
            children
                .iter()
                .find(|a| a.is(&base::EXPERIMENTAL_RESULT_CODE))
                .and_then(|a| a.as_u32().ok())
        })
        .unwrap_or(0)
}

/// The Cx commands, exported from the start.
const CX_COMMANDS: [&str; 6] = ["UAR", "SAR", "LIR", "MAR", "RTR", "PPR"];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabel {
    command: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    command: &'static str,
    result_code: u32,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailoverLabels {
    peer: String,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    command: &'static str,
    reason: &'static str,
}

/// Upper bounds (seconds) of the latency histograms' buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS.iter().copied())
}

/// A watched peer: its label and a function reading its state.
type Watched = (String, Box<dyn Fn() -> PeerState + Send + Sync>);

/// A node's Diameter counters (cheap to clone: shared).
#[derive(Clone)]
pub struct DiameterMetrics {
    requests_sent: Family<CommandLabel, Counter>,
    requests_received: Family<CommandLabel, Counter>,
    answers_sent: Family<ResultLabels, Counter>,
    answers_received: Family<ResultLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    failovers: Family<FailoverLabels, Counter>,
    round_trip: Family<CommandLabel, Histogram, fn() -> Histogram>,
    handling: Family<CommandLabel, Histogram, fn() -> Histogram>,
    peers: Arc<Mutex<Vec<Watched>>>,
}

impl Default for DiameterMetrics {
    fn default() -> Self {
        DiameterMetrics {
            requests_sent: Family::default(),
            requests_received: Family::default(),
            answers_sent: Family::default(),
            answers_received: Family::default(),
            failures: Family::default(),
            failovers: Family::default(),
            round_trip: Family::new_with_constructor(histogram),
            handling: Family::new_with_constructor(histogram),
            peers: Arc::default(),
        }
    }
}

impl std::fmt::Debug for DiameterMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DiameterMetrics")
    }
}

impl DiameterMetrics {
    /// Registers the counters and the watched peers' state in `registry`. The series of
    /// the Cx commands start at zero (a rate needs the first increase to be seen).
    pub fn register(&self, registry: &mut Registry) {
        for command in CX_COMMANDS {
            let label = CommandLabel { command };
            drop(self.requests_sent.get_or_create(&label));
            drop(self.requests_received.get_or_create(&label));
            drop(self.round_trip.get_or_create(&label));
            drop(self.handling.get_or_create(&label));
        }
        registry.register(
            "diameter_requests_sent",
            "Diameter requests sent by command (watchdog and capabilities exchange not counted)",
            self.requests_sent.clone(),
        );
        registry.register(
            "diameter_answers_received",
            "Diameter answers received by command and Result-Code (or Experimental-Result-Code)",
            self.answers_received.clone(),
        );
        registry.register(
            "diameter_request_failures",
            "Diameter requests sent that got no answer, by command and reason (not_open, timeout, disconnected, no_route)",
            self.failures.clone(),
        );
        registry.register(
            "diameter_failovers",
            "Diameter requests resent from this peer to the next one, by peer and reason (disconnected, too_busy, unable_to_deliver)",
            self.failovers.clone(),
        );
        registry.register(
            "diameter_request_duration_seconds",
            "Time from sending a Diameter request to its answer, by command",
            self.round_trip.clone(),
        );
        registry.register(
            "diameter_requests_received",
            "Diameter requests received by command (watchdog and capabilities exchange not counted)",
            self.requests_received.clone(),
        );
        registry.register(
            "diameter_answers_sent",
            "Diameter answers sent by command and Result-Code (or Experimental-Result-Code)",
            self.answers_sent.clone(),
        );
        registry.register(
            "diameter_answer_duration_seconds",
            "Time from receiving a Diameter request to its answer being ready, by command",
            self.handling.clone(),
        );
        registry.register_collector(Box::new(PeerCollector(self.peers.clone())));
    }

    /// Exports the state of the peer named `name` as read by `state`
    /// (`diameter_peer_open{peer}`: 1 while open).
    pub fn watch_peer(&self, name: &str, state: impl Fn() -> PeerState + Send + Sync + 'static) {
        lock(&self.peers).push((name.to_owned(), Box::new(state)));
    }

    /// The labels of `answer`: a code outside the defined range 1000-5999 (RFC 6733
    /// §7.1) counts as 0, so a peer cannot create series without bound.
    fn result(&self, command: &'static str, answer: &Message) -> ResultLabels {
        let code = answer_code(answer);
        ResultLabels {
            command,
            result_code: if (1000..6000).contains(&code) {
                code
            } else {
                0
            },
        }
    }

    pub(crate) fn request_sent(&self, code: u32) {
        let command = command_name(code);
        self.requests_sent
            .get_or_create(&CommandLabel { command })
            .inc();
    }

    pub(crate) fn answer_received(&self, code: u32, answer: &Message, elapsed: Duration) {
        let command = command_name(code);
        let labels = self.result(command, answer);
        self.answers_received.get_or_create(&labels).inc();
        self.round_trip
            .get_or_create(&CommandLabel { command })
            .observe(elapsed.as_secs_f64());
    }

    pub(crate) fn request_failed(&self, code: u32, reason: &'static str) {
        let command = command_name(code);
        self.failures
            .get_or_create(&FailureLabels { command, reason })
            .inc();
    }

    /// A request left `peer` for the next one of its set (peer names are configured,
    /// so the series are bounded).
    pub(crate) fn failover(&self, peer: &str, reason: &'static str) {
        self.failovers
            .get_or_create(&FailoverLabels {
                peer: peer.to_owned(),
                reason,
            })
            .inc();
    }

    /// How many requests left `peer` for the next one for `reason`.
    pub fn failovers(&self, peer: &str, reason: &'static str) -> u64 {
        self.failovers
            .get_or_create(&FailoverLabels {
                peer: peer.to_owned(),
                reason,
            })
            .get()
    }

    pub(crate) fn request_received(&self, code: u32) {
        let command = command_name(code);
        self.requests_received
            .get_or_create(&CommandLabel { command })
            .inc();
    }

    /// An answer sent to a request received `elapsed` ago (None: not timed, e.g. a
    /// refusal or a duplicate's stored answer).
    pub(crate) fn answer_sent(&self, answer: &Message, elapsed: Option<Duration>) {
        let command = command_name(answer.command_code);
        let labels = self.result(command, answer);
        self.answers_sent.get_or_create(&labels).inc();
        if let Some(e) = elapsed {
            self.handling
                .get_or_create(&CommandLabel { command })
                .observe(e.as_secs_f64());
        }
    }

    /// How many answers with `result_code` to `command` (`UAR`, ...) were sent.
    pub fn answers_sent(&self, command: &'static str, result_code: u32) -> u64 {
        self.answers_sent
            .get_or_create(&ResultLabels {
                command,
                result_code,
            })
            .get()
    }

    /// How many answers with `result_code` to `command` were received.
    pub fn answers_received(&self, command: &'static str, result_code: u32) -> u64 {
        self.answers_received
            .get_or_create(&ResultLabels {
                command,
                result_code,
            })
            .get()
    }
}

struct PeerCollector(Arc<Mutex<Vec<Watched>>>);

impl std::fmt::Debug for PeerCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerCollector")
    }
}

impl Collector for PeerCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let peers = lock(&self.0);
        let mut family = enc.encode_descriptor(
            "diameter_peer_open",
            "1 while the Diameter peer is in the Open state (RFC 6733 §5.6), else 0",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (name, state) in peers.iter() {
            let open = i64::from(state() == PeerState::Open);
            ConstGauge::new(open).encode(family.encode_family(&[("peer", name.as_str())])?)?;
        }
        Ok(())
    }
}

impl super::Peer {
    /// Registers the Diameter counters of this peer's configuration in `registry`, with
    /// this peer's state as `diameter_peer_open{peer="<name>"}`, and returns a readiness
    /// check that is true while the peer is open (a CSCF is not ready without its HSS).
    pub fn register_metrics(
        &self,
        name: &str,
        registry: &mut Registry,
    ) -> impl Fn() -> bool + Send + Sync + 'static {
        let metrics = &self.shared.cfg.metrics;
        let watched = self.observer();
        metrics.watch_peer(name, move || watched.state());
        metrics.register(registry);
        let peer = self.observer();
        move || peer.state() == PeerState::Open
    }
}
