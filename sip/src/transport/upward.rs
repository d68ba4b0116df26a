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
    pub(super) events: mpsc::Sender<TransportEvent>,
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

    /// Hands a parsed event upward.
    pub(super) async fn send(&self, event: TransportEvent) -> Delivered {
        if self.events.send(event).await.is_err() {
            Delivered::Closed
        } else {
            Delivered::Ok
        }
    }
}
