//! Diameter peers (RFC 6733 §5): the state machine ([`state`]), the watchdog
//! (RFC 3539), capabilities exchange, reconnection with backoff, a client handle
//! ([`Peer`]) and an acceptor ([`Server`]) that believes a CER's Origin-Host only when
//! the connection proves it ([`binding`]: client certificate or source address). Both ends of a connection send and answer
//! requests, so an HSS serves UAR/MAR/SAR/LIR and sends RTR/PPR on the same connection.

mod address;
pub mod binding;
mod cer;
mod config;
mod conn;
mod dup;
mod ids;
mod metrics;
mod open;
mod server;
mod set;
mod shared;
pub mod state;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

pub use address::{PeerAddress, PeerAddresses};
pub use binding::{PeerBinding, Refusal, Refusals, Remote, RemoteTransport};
pub use cer::{advertised_applications, cea, cer, common, judge};
pub use config::PeerConfig;
pub use conn::{Acceptor, BoxIo, Connector, Io, TlsClientError};
pub use dup::{DuplicateCache, Seen};
pub use ids::IdGenerator;
pub use metrics::{answer_code, command_name, DiameterMetrics};
pub use server::Server;
pub use set::{PeerSet, RoutedPeer};
pub use shared::{CloseReason, PeerState, PeerStats};

use crate::dict::disconnect_cause;
use crate::message::{Message, FLAG_REQUEST};
use shared::{lock, Outgoing, Shared};
use state::Closed;

/// A boxed future, as returned by [`Handler::handle`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Answers the requests a peer receives (after the base-protocol checks of the Open
/// state). The returned answer gets the request's identifiers.
///
/// The future is polled once on the connection's task: an answer ready without waiting
/// (read from a cache) is sent from there, with no task hand-off; a future that waits
/// (for a database, another peer) goes on on a task of its own, its answer sent when
/// ready, so requests on one connection are answered out of order and many at a time.
/// What a handler does before its first wait should be short.
pub trait Handler: Send + Sync + 'static {
    /// Produces the answer to `request`.
    fn handle(&self, request: Message) -> BoxFuture<'_, Message>;
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The peer is not in the Open state.
    #[error("peer not open")]
    NotOpen,
    /// The connection closed before the answer came.
    #[error("connection closed before the answer")]
    Disconnected,
    /// No answer within the request timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// No peer serves the request's Destination-Realm (this realm).
    #[error("no Diameter route for realm `{0}`")]
    NoRoute(String),
}

impl PeerError {
    /// A short label (`not_open`, `disconnected`, `timeout`) for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            PeerError::NotOpen => "not_open",
            PeerError::Disconnected => "disconnected",
            PeerError::Timeout(_) => "timeout",
            PeerError::NoRoute(_) => "no_route",
        }
    }
}

/// A handle on one peer: send requests, watch the state, disconnect.
///
/// For an initiator ([`Peer::connect`]) dropping the last handle disconnects (DPR with
/// REBOOTING) and stops reconnecting.
#[derive(Clone)]
pub struct Peer {
    shared: Arc<Shared>,
    _owner: Option<Arc<Owner>>,
}

/// Stops an initiator's connection when the last [`Peer`] handle goes.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.request_stop();
        if let Some(link) = lock(&self.0.link).as_ref() {
            let _ = link.try_send(Outgoing::Disconnect(disconnect_cause::REBOOTING));
        }
    }
}

impl Peer {
    /// Starts an initiator peer connecting to `addrs` and keeping the connection up.
    /// Each attempt tries the addresses in order (a name resolved anew each time, each
    /// of its IP addresses in turn) until one completes the capabilities exchange;
    /// when none does, or the connection later closes, it tries again after a delay
    /// doubling from `reconnect_min` to `reconnect_max`, except after a DPR with
    /// DO_NOT_WANT_TO_TALK_TO_YOU or a local [`Peer::disconnect`]. `handler` answers
    /// requests the remote peer sends.
    pub fn connect(
        cfg: PeerConfig,
        addrs: impl Into<PeerAddresses>,
        connector: Connector,
        handler: Arc<dyn Handler>,
    ) -> Peer {
        let shared = Shared::new(Arc::new(cfg), Arc::new(IdGenerator::new()));
        tokio::spawn(supervise(shared.clone(), addrs.into(), connector, handler));
        Peer {
            _owner: Some(Arc::new(Owner(shared.clone()))),
            shared,
        }
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Peer {
        Peer {
            shared,
            _owner: None,
        }
    }

    /// Sends `request` with fresh Hop-by-Hop and End-to-End identifiers and waits for
    /// its answer (at most the configured request timeout).
    pub async fn request(&self, request: Message) -> Result<Message, PeerError> {
        let end_to_end = self.shared.ids.next_end_to_end();
        self.request_as(request, end_to_end).await
    }

    /// [`Peer::request`] with a given End-to-End Identifier (a request resent to
    /// another peer keeps its own, RFC 6733 §3).
    pub(crate) async fn request_as(
        &self,
        mut request: Message,
        end_to_end: u32,
    ) -> Result<Message, PeerError> {
        request.flags |= FLAG_REQUEST;
        request.hop_by_hop = self.shared.ids.next_hop_by_hop();
        request.end_to_end = end_to_end;
        let metrics = &self.shared.cfg.metrics;
        let code = request.command_code;
        metrics.request_sent(code);
        let sent = tokio::time::Instant::now();
        let result = self.send(request).await;
        match &result {
            Ok(answer) => metrics.answer_received(code, answer, sent.elapsed()),
            Err(e) => metrics.request_failed(code, e.label()),
        }
        result
    }

    /// A handle that watches this peer without keeping it alive (dropping the owner's
    /// handles still disconnects it): for metrics and readiness checks.
    pub fn observer(&self) -> Peer {
        Peer::from_shared(self.shared.clone())
    }

    async fn send(&self, request: Message) -> Result<Message, PeerError> {
        let hbh = request.hop_by_hop;
        let link = lock(&self.shared.link).clone().ok_or(PeerError::NotOpen)?;
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.pending).insert(hbh, tx);
        if link.send(Outgoing::Request(request)).await.is_err() {
            lock(&self.shared.pending).remove(&hbh);
            return Err(PeerError::NotOpen);
        }
        let t = self.shared.cfg.request_timeout;
        match tokio::time::timeout(t, rx).await {
            Ok(Ok(ans)) => Ok(ans),
            Ok(Err(_)) => Err(PeerError::Disconnected),
            Err(_) => {
                lock(&self.shared.pending).remove(&hbh);
                Err(PeerError::Timeout(t))
            }
        }
    }

    /// The current state.
    pub fn state(&self) -> PeerState {
        *self.shared.state.borrow()
    }

    /// Waits until the peer is in `state`.
    pub async fn wait_for(&self, state: PeerState) {
        let mut rx = self.shared.state.subscribe();
        let _ = rx.wait_for(|s| *s == state).await;
    }

    /// The Origin-Host of the remote peer, once known.
    pub fn remote_host(&self) -> Option<String> {
        lock(&self.shared.remote_host).clone()
    }

    /// Why the last connection ended (or failed to open).
    pub fn last_close_reason(&self) -> Option<CloseReason> {
        lock(&self.shared.last_reason).clone()
    }

    /// The Diameter counters this peer counts in (its configuration's).
    pub fn metrics(&self) -> &DiameterMetrics {
        &self.shared.cfg.metrics
    }

    /// Watchdog and connection counters.
    pub fn stats(&self) -> PeerStats {
        self.shared.stats()
    }

    /// Sends a DPR with `cause` (RFC 6733 §5.4), waits for the DPA or the exchange
    /// timeout, and stops reconnecting.
    pub async fn disconnect(&self, cause: i32) {
        self.shared.request_stop();
        let link = lock(&self.shared.link).clone();
        if let Some(link) = link {
            let mut rx = self.shared.state.subscribe();
            if link.send(Outgoing::Disconnect(cause)).await.is_ok() {
                let t = self.shared.cfg.exchange_timeout * 2;
                let _ = tokio::time::timeout(t, rx.wait_for(|s| *s == PeerState::Closed)).await;
            }
        }
    }
}

/// Keeps an initiator connection up (RFC 6733 §5.6 with §2.1 reconnection).
async fn supervise(
    shared: Arc<Shared>,
    addrs: PeerAddresses,
    connector: Connector,
    handler: Arc<dyn Handler>,
) {
    let cfg = shared.cfg.clone();
    let mut delay = cfg.reconnect_min;
    while !shared.is_stopped() {
        let mut attempt: Result<state::Open, Closed> = Err(Closed::new(shared.clone()));
        for addr in addrs.resolve(cfg.exchange_timeout).await {
            attempt = match attempt {
                Err(closed) => match closed.connect(addr, connector.clone()).conn_ack().await {
                    Ok(wait) => wait.receive_cea().await,
                    Err(c) => Err(c),
                },
                open => open,
            };
            match &attempt {
                Ok(_) => break,
                Err(c) => {
                    tracing::debug!(%addr, reason = ?c.reason, "diameter: connection attempt failed");
                }
            }
            if shared.is_stopped() {
                break;
            }
        }
        let closed = match attempt {
            Ok(open) => {
                delay = cfg.reconnect_min;
                open.run(handler.clone()).await
            }
            Err(c) => c,
        };
        match closed.reason {
            Some(CloseReason::PeerDisconnected(disconnect_cause::DO_NOT_WANT_TO_TALK_TO_YOU))
            | Some(CloseReason::LocalDisconnect(_)) => break,
            _ => {}
        }
        if shared.is_stopped() {
            break;
        }
        tracing::debug!(?delay, %addrs, "diameter: reconnecting after delay");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shared.stop.notified() => break,
        }
        delay = (delay * 2).min(cfg.reconnect_max);
    }
    shared.set_state(PeerState::Closed);
}

#[cfg(test)]
mod tests;
