//! Several peers toward one application (a CSCF's HSSs): a realm-based routing table
//! (RFC 6733 §2.7: Destination-Realm → peers), priorities, and failover.
//!
//! Each peer keeps its own connection, watchdog (RFC 3539) and reconnection back-off
//! ([`Peer::connect`]); the set only chooses. A request goes to the open peer of its
//! Destination-Realm with the lowest priority value (ties: the order given). It goes
//! to the next one, with the same End-to-End Identifier:
//!
//! * when its connection is lost before the answer (RFC 6733 §5.5.4: the request is
//!   resent to an alternate peer with the T flag, a possible duplicate);
//! * when the answer is DIAMETER_TOO_BUSY (3004) or DIAMETER_UNABLE_TO_DELIVER (3002)
//!   (RFC 6733 §7.1.3: the sender should try an alternate peer). That request was
//!   answered, not lost, so it is resent without the T flag, which RFC 6733 §3 keeps
//!   for requests not yet acknowledged.
//!
//! A request that times out is not resent: the peer may have acted on it, and its
//! watchdog closes a silent connection (after at most 2 Tw) so that the next requests
//! go elsewhere. A peer not open is skipped, and reconnects with back-off while the
//! others serve.

use std::sync::Arc;

use prometheus_client::registry::Registry;

use super::ids::IdGenerator;
use super::{Peer, PeerError, PeerState};
use crate::dict::{base, result};
use crate::message::{Message, FLAG_RETRANSMIT};

/// One peer of a [`PeerSet`]: its Diameter identity, the realm it serves, its priority
/// and the handle on its connection.
#[derive(Clone)]
pub struct RoutedPeer {
    /// The peer's Origin-Host (DiameterIdentity).
    pub host: String,
    /// The Destination-Realm it serves.
    pub realm: String,
    /// Lower is preferred.
    pub priority: u32,
    /// Its connection.
    pub peer: Peer,
}

impl std::fmt::Debug for RoutedPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedPeer")
            .field("host", &self.host)
            .field("realm", &self.realm)
            .field("priority", &self.priority)
            .field("state", &self.peer.state())
            .finish()
    }
}

/// Peers with priorities and a realm routing table (cheap to clone: shared).
#[derive(Clone, Debug)]
pub struct PeerSet {
    peers: Arc<[RoutedPeer]>,
    ids: Arc<IdGenerator>,
}

/// Why a peer is left for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failover {
    /// The connection closed before the answer.
    Disconnected,
    /// DIAMETER_TOO_BUSY.
    TooBusy,
    /// DIAMETER_UNABLE_TO_DELIVER.
    UnableToDeliver,
}

impl Failover {
    fn of(answer: &Message) -> Option<Failover> {
        match answer.result_code()? {
            result::DIAMETER_TOO_BUSY => Some(Failover::TooBusy),
            result::DIAMETER_UNABLE_TO_DELIVER => Some(Failover::UnableToDeliver),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Failover::Disconnected => "disconnected",
            Failover::TooBusy => "too_busy",
            Failover::UnableToDeliver => "unable_to_deliver",
        }
    }
}

impl PeerSet {
    /// The set of `peers`, ordered by priority (stable: equal priorities keep the
    /// given order).
    pub fn new(peers: impl IntoIterator<Item = RoutedPeer>) -> PeerSet {
        let mut peers: Vec<RoutedPeer> = peers.into_iter().collect();
        peers.sort_by_key(|p| p.priority);
        PeerSet {
            peers: peers.into(),
            ids: Arc::new(IdGenerator::new()),
        }
    }

    /// The peers, most preferred first.
    pub fn peers(&self) -> &[RoutedPeer] {
        &self.peers
    }

    /// Open while at least one peer is.
    pub fn state(&self) -> PeerState {
        if self.is_open() {
            PeerState::Open
        } else {
            self.peers
                .first()
                .map_or(PeerState::Closed, |p| p.peer.state())
        }
    }

    /// Whether at least one peer is open.
    pub fn is_open(&self) -> bool {
        self.peers.iter().any(|p| p.peer.state() == PeerState::Open)
    }

    /// Waits until at least one peer is open (forever for an empty set).
    pub async fn wait_open(&self) {
        if self.peers.is_empty() {
            std::future::pending::<()>().await;
        }
        let waits = self
            .peers
            .iter()
            .map(|p| Box::pin(p.peer.wait_for(PeerState::Open)));
        futures_util::future::select_all(waits).await;
    }

    /// Sends `request` to the best open peer of its Destination-Realm (or, when its
    /// Destination-Host names one of them, to that peer only) and fails over as the
    /// module describes. Returns the answer, or the last peer's 3004/3002 answer when
    /// every peer refused so, or why none answered ([`PeerError::NoRoute`] when no
    /// peer serves the realm).
    pub async fn request(&self, mut request: Message) -> Result<Message, PeerError> {
        let candidates = match self.route(&request) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "diameter: request not sent");
                if let Some(p) = self.peers.first() {
                    let metrics = p.peer.metrics();
                    metrics.request_failed(request.command_code, e.label());
                }
                return Err(e);
            }
        };
        request.end_to_end = self.ids.next_end_to_end();
        let mut outcome = Err(PeerError::NotOpen);
        for (i, p) in candidates.iter().enumerate() {
            if p.peer.state() != PeerState::Open {
                continue;
            }
            let failover = match p.peer.request_as(request.clone(), request.end_to_end).await {
                Err(PeerError::NotOpen) => continue,
                Err(PeerError::Disconnected) => {
                    outcome = Err(PeerError::Disconnected);
                    Failover::Disconnected
                }
                Ok(answer) => match Failover::of(&answer) {
                    Some(f) => {
                        outcome = Ok(answer);
                        f
                    }
                    None => return Ok(answer),
                },
                Err(e) => return Err(e),
            };
            if failover == Failover::Disconnected {
                request.flags |= FLAG_RETRANSMIT;
            }
            let next = candidates.get(i + 1..).unwrap_or_default();
            if next.iter().any(|n| n.peer.state() == PeerState::Open) {
                // Counted on /metrics; a busy peer would make a line per request.
                tracing::debug!(peer = %p.host, reason = failover.label(), "diameter: failing over to the next peer");
                p.peer.metrics().failover(&p.host, failover.label());
            }
        }
        outcome
    }

    /// The peers a request may go to, most preferred first.
    fn route(&self, request: &Message) -> Result<Vec<&RoutedPeer>, PeerError> {
        let utf8 = |def| request.find(def).and_then(|a| a.as_utf8().ok());
        let realm = utf8(&base::DESTINATION_REALM).unwrap_or_default();
        let serving: Vec<&RoutedPeer> = self
            .peers
            .iter()
            .filter(|p| p.realm.eq_ignore_ascii_case(realm))
            .collect();
        if serving.is_empty() {
            return Err(PeerError::NoRoute(realm.to_owned()));
        }
        let named = utf8(&base::DESTINATION_HOST).map(|host| {
            serving
                .iter()
                .copied()
                .filter(|p| p.host.eq_ignore_ascii_case(host))
                .collect::<Vec<_>>()
        });
        Ok(match named {
            Some(named) if !named.is_empty() => named,
            _ => serving,
        })
    }

    /// Registers the Diameter counters in `registry` (those of the first peer's
    /// configuration: a node's peers are made from clones of one
    /// [`super::PeerConfig`], so they count in one [`super::DiameterMetrics`]), with
    /// each peer's state as `diameter_peer_open{peer="<host>"}`, and returns a
    /// readiness check true while at least one peer is open.
    pub fn register_metrics(&self, registry: &mut Registry) -> impl Fn() -> bool + Send + Sync {
        for p in self.peers.iter() {
            let watched = p.peer.observer();
            p.peer
                .metrics()
                .watch_peer(&p.host, move || watched.state());
        }
        if let Some(first) = self.peers.first() {
            first.peer.metrics().register(registry);
        }
        let observers: Vec<Peer> = self.peers.iter().map(|p| p.peer.observer()).collect();
        move || observers.iter().any(|p| p.state() == PeerState::Open)
    }
}
