//! Parsing framed bytes and handing the result to the upper layer.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::log_budget::LogBudget;
use super::{Incoming, Malformed, Source, TransportEvent, TransportKind, TransportStats};
use crate::message::{parse_message, ParseError, ParseLimits};

/// What became of one framed message.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Delivered {
    /// Handed upward (parsed or as malformed); keep serving.
    Ok,
    /// A header bomb or oversize message: handed upward, and a stream must be closed.
    Hostile,
    /// The upper layer is gone.
    Closed,
}

/// The upward channel with what parsing needs.
pub(super) struct Upward {
    /// Shard 0's channel (the only one unless the layer was bound for several shards).
    pub(super) events: mpsc::Sender<TransportEvent>,
    /// The channels of shards 1 and up: a stream connection's messages go to shard
    /// `connection id % shards`, so that they stay on one shard.
    pub(super) more: Vec<mpsc::Sender<TransportEvent>>,
    pub(super) limits: ParseLimits,
    pub(super) stats: Arc<TransportStats>,
    /// Bounds the log lines about what peers send.
    pub(super) log: LogBudget,
    /// The HEP collector every message is copied to, once configured.
    pub(super) capture: std::sync::OnceLock<super::hep::Capture>,
}

impl Upward {
    /// Copies `bytes` sent over `kind` from `from` to `to` to the HEP collector, if any.
    pub(super) fn copy(&self, kind: TransportKind, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        if let Some(capture) = self.capture.get() {
            capture.copy(kind, from, to, bytes);
        }
    }

    /// Whether a log line about a peer's input may be written (see [`LogBudget`]).
    pub(super) fn may_log(&self) -> bool {
        self.log.allow(&self.stats.log_lines_suppressed)
    }

    /// Parses `raw` into a message or a malformed one (with a log line); `true` with a
    /// header bomb or oversize message, after which a stream must be closed.
    pub(super) fn parse(&self, raw: Bytes, source: Source) -> (TransportEvent, bool) {
        self.copy(source.flow.kind(), source.remote, source.local, &raw);
        match parse_message(raw.clone(), &self.limits) {
            Ok(message) => {
                TransportStats::inc(&self.stats.messages_in);
                (TransportEvent::Message(Incoming { message, source }), false)
            }
            Err(error) => {
                TransportStats::inc(&self.stats.parse_errors);
                if self.may_log() {
                    tracing::warn!(flow = %source.flow, %error, len = raw.len(), "malformed SIP message");
                }
                let hostile = matches!(
                    error,
                    ParseError::TooManyHeaders { .. } | ParseError::TooLarge { .. }
                );
                let event = TransportEvent::Malformed(Malformed { error, raw, source });
                (event, hostile)
            }
        }
    }

    /// Parses `raw` and delivers it as a message or as malformed.
    pub(super) async fn deliver(&self, raw: Bytes, source: Source) -> Delivered {
        let (event, hostile) = self.parse(raw, source);
        match self.send(event).await {
            Delivered::Ok if hostile => Delivered::Hostile,
            delivered => delivered,
        }
    }

    /// Resolves once every shard's receiver is gone.
    pub(super) async fn closed(&self) {
        self.events.closed().await;
        for events in &self.more {
            events.closed().await;
        }
    }

    /// The channel of the shard a message of `flow` goes to.
    fn channel(&self, flow: &super::Flow) -> &mpsc::Sender<TransportEvent> {
        let shards = self.more.len() as u64 + 1;
        match (flow.id % shards).checked_sub(1) {
            Some(i) => usize::try_from(i)
                .ok()
                .and_then(|i| self.more.get(i))
                .unwrap_or(&self.events),
            None => &self.events,
        }
    }

    /// Hands a parsed event upward, to the channel of its flow's shard.
    pub(super) async fn send(&self, event: TransportEvent) -> Delivered {
        let flow = match &event {
            TransportEvent::Message(m) => &m.source.flow,
            TransportEvent::Malformed(m) => &m.source.flow,
        };
        if self.channel(flow).send(event).await.is_err() {
            Delivered::Closed
        } else {
            Delivered::Ok
        }
    }
}
