//! The transaction layer proper: keeps the transactions by key, matches incoming
//! messages to them (RFC 3261 §17.1.3 for responses, §17.2.3 for requests), runs their
//! timers on tokio time and sends through a [`Transmit`] of the transport layer.
//!
//! It is synchronous: its owner feeds it messages ([`TransactionLayer::receive`]),
//! TU calls ([`TransactionLayer::send_request`], [`TransactionLayer::respond`]) and
//! the passing of time ([`TransactionLayer::handle_timeouts`] at
//! [`TransactionLayer::next_deadline`]), and drains [`TuEvent`]s with
//! [`TransactionLayer::poll_event`]. The proxy engine does that in its one task.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::client_invite::{self, ClientInvite};
use super::client_non_invite::{self, ClientNonInvite};
use super::server_invite::{self, ServerInvite};
use super::server_non_invite::{self, ServerNonInvite};
use super::{Action, Actions, Delivery, Timer, TimerConfig, TransactionError};
use crate::message::key::TransactionKey;
use crate::{Method, SipMessage};

/// How the layer hands a message to the transport layer. `D` is the transport
/// layer's destination type (an address, a flow/connection id, ...).
///
/// A final response that a server transaction keeps for its retransmissions is
/// kept as the bytes sent, with its destination resolved once ([`Transmit::route`]):
/// the transaction then holds neither the parsed message nor the request's source.
pub trait Transmit<D>: Send {
    /// Sends `bytes`, the encoding of `message`, to `destination`. An error makes the
    /// transaction report a transport error to its TU (RFC 3261 §17.1.4, §17.2.4).
    fn transmit(&self, message: &SipMessage, bytes: Bytes, destination: &D) -> std::io::Result<()>;

    /// Where `message`, a final response that its server transaction will only
    /// retransmit from now on, goes: resolved once, before it is first sent to the
    /// destination returned (which replaces `destination` in the transaction).
    fn route(&self, message: &SipMessage, destination: &D) -> D;

    /// Sends `bytes` again: a retransmission of a final response, to the destination
    /// [`Transmit::route`] gave for it. An error is reported as for
    /// [`Transmit::transmit`].
    fn retransmit(&self, bytes: Bytes, destination: &D) -> std::io::Result<()>;
}

/// A closure over the encoded bytes and the destination (tests, simple transports):
/// every message, retransmissions included, goes to the transaction's peer.
impl<D, F> Transmit<D> for F
where
    D: Clone,
    F: Fn(&Bytes, &D) -> std::io::Result<()> + Send,
{
    fn transmit(
        &self,
        _message: &SipMessage,
        bytes: Bytes,
        destination: &D,
    ) -> std::io::Result<()> {
        self(&bytes, destination)
    }

    fn route(&self, _message: &SipMessage, destination: &D) -> D {
        destination.clone()
    }

    fn retransmit(&self, bytes: Bytes, destination: &D) -> std::io::Result<()> {
        self(&bytes, destination)
    }
}

/// What the layer tells its transaction user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TuEvent<D> {
    /// A new request created a server transaction (§17.2.3).
    Request {
        /// The new server transaction.
        key: TransactionKey,
        /// The request.
        request: SipMessage,
        /// Where it came from (responses go back there).
        source: D,
        /// Whether it came over a reliable transport.
        reliable: bool,
        /// For CANCEL: the INVITE server transaction it cancels, if it exists
        /// (same branch and sent-by, method INVITE; §9.2).
        cancels: Option<TransactionKey>,
    },
    /// An ACK that the layer does not absorb: the ACK for a 2xx, either matching no
    /// transaction (`key: None`, the usual case: it has its own branch) or matching an
    /// INVITE server transaction in the Accepted state (RFC 6026 §7.1).
    Ack {
        /// The INVITE server transaction it matched, if any.
        key: Option<TransactionKey>,
        /// The ACK.
        ack: SipMessage,
        /// Where it came from.
        source: D,
    },
    /// A response for a client transaction.
    Response {
        /// The client transaction.
        key: TransactionKey,
        /// The response.
        response: SipMessage,
    },
    /// A response that matches no client transaction (§17.1.3); a proxy forwards
    /// stray 2xx responses to INVITE statelessly (§16.7).
    StrayResponse {
        /// The response.
        response: SipMessage,
        /// Where it came from.
        source: D,
    },
    /// Timer B, F or H fired. For B and F the proxy answers 408 upstream.
    Timeout {
        /// The transaction.
        key: TransactionKey,
        /// Which timer.
        timer: Timer,
    },
    /// Timer C fired on an INVITE client transaction (RFC 3261 §16.8).
    TimerC {
        /// The client transaction.
        key: TransactionKey,
        /// True if a provisional response was received (the proxy sends CANCEL).
        provisional_received: bool,
    },
    /// The transport could not send a message of this transaction.
    TransportError {
        /// The transaction.
        key: TransactionKey,
    },
    /// The transaction ended and was removed.
    Terminated {
        /// The transaction.
        key: TransactionKey,
    },
}

/// Limits on the layer's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerLimits {
    /// New server transactions beyond this many live transactions are refused
    /// (the request is dropped and logged; a UDP peer retransmits).
    pub max_transactions: usize,
}

impl Default for LayerLimits {
    fn default() -> Self {
        LayerLimits {
            max_transactions: 100_000,
        }
    }
}

/// Client or server side: the two key spaces are separate, since a request that
/// loops back to us carries our own branch in its top Via.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// The four machines; the names follow RFC 3261 §17 (hence the shared postfix).
#[derive(Debug)]
#[allow(clippy::enum_variant_names)]
enum Machine {
    ClientInvite(ClientInvite),
    ClientNonInvite(ClientNonInvite),
    ServerInvite(ServerInvite),
    ServerNonInvite(ServerNonInvite),
}

impl Machine {
    fn on_timer(self, timer: Timer, config: &TimerConfig) -> (Machine, Actions) {
        match self {
            Machine::ClientInvite(m) => lift(m.on_timer(timer, config), Machine::ClientInvite),
            Machine::ClientNonInvite(m) => {
                lift(m.on_timer(timer, config), Machine::ClientNonInvite)
            }
            Machine::ServerInvite(m) => lift(m.on_timer(timer, config), Machine::ServerInvite),
            Machine::ServerNonInvite(m) => lift(m.on_timer(timer), Machine::ServerNonInvite),
        }
    }

    fn on_transport_error(self) -> (Machine, Actions) {
        match self {
            Machine::ClientInvite(m) => lift(m.on_transport_error(), Machine::ClientInvite),
            Machine::ClientNonInvite(m) => lift(m.on_transport_error(), Machine::ClientNonInvite),
            Machine::ServerInvite(m) => lift(m.on_transport_error(), Machine::ServerInvite),
            Machine::ServerNonInvite(m) => lift(m.on_transport_error(), Machine::ServerNonInvite),
        }
    }

    fn is_terminated(&self) -> bool {
        matches!(
            self,
            Machine::ClientInvite(ClientInvite::Terminated)
                | Machine::ClientNonInvite(ClientNonInvite::Terminated)
                | Machine::ServerInvite(ServerInvite::Terminated)
                | Machine::ServerNonInvite(ServerNonInvite::Terminated)
        )
    }
}

fn lift<S>((state, actions): (S, Actions), wrap: fn(S) -> Machine) -> (Machine, Actions) {
    (wrap(state), actions)
}

#[derive(Debug)]
struct Entry<D> {
    machine: Machine,
    /// The transaction's peer; for a server transaction that only retransmits its
    /// final response, where that goes ([`Transmit::route`]).
    peer: D,
    armed: Armed,
}

/// At most this many timers of a transaction run at once (A, B and C in Calling).
const MAX_ARMED: usize = 3;

/// A transaction's running timers and the sequence number of each one's current
/// instance, inline (no allocation of its own).
#[derive(Debug, Default)]
struct Armed {
    timers: [Option<Timer>; MAX_ARMED],
    seqs: [u64; MAX_ARMED],
}

impl Armed {
    /// Records `seq` as the running instance of `timer`, replacing an earlier one.
    /// True when the transaction runs one timer more than before.
    fn arm(&mut self, timer: Timer, seq: u64) -> bool {
        let replaced = self.disarm(timer);
        let slot = match self.timers.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                // The machines never run more than MAX_ARMED timers at once; should
                // one do, the oldest instance gives way rather than the new one.
                tracing::error!(?timer, "more transaction timers than slots");
                let oldest = (0..MAX_ARMED).min_by_key(|&i| self.seqs[i]).unwrap_or(0);
                self.timers[oldest] = Some(timer);
                self.seqs[oldest] = seq;
                return false;
            }
        };
        self.timers[slot] = Some(timer);
        self.seqs[slot] = seq;
        !replaced
    }

    /// Forgets `timer`: an instance of it that fires later is ignored. True when it
    /// was running.
    fn disarm(&mut self, timer: Timer) -> bool {
        match self.timers.iter().position(|t| *t == Some(timer)) {
            Some(i) => {
                self.timers[i] = None;
                true
            }
            None => false,
        }
    }

    /// True when instance `seq` of `timer` is the running one.
    fn is_armed(&self, timer: Timer, seq: u64) -> bool {
        (0..MAX_ARMED).any(|i| self.timers[i] == Some(timer) && self.seqs[i] == seq)
    }

    /// How many timers run.
    fn count(&self) -> usize {
        self.timers.iter().flatten().count()
    }
}

/// One timer instance in the layer's heap. The key is shared with the transaction's
/// table slot.
#[derive(Debug)]
struct Scheduled {
    deadline: Instant,
    seq: u64,
    side: Side,
    key: Arc<TransactionKey>,
    timer: Timer,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

/// The timer heap is compacted (cancelled and orphaned instances dropped) once it
/// holds more than half again as many instances as there are running timers, plus
/// this many.
const HEAP_SLACK: usize = 64;
/// The timer heap's capacity is given back only above this many slots (as the
/// tables', [`shrink_map`]).
const HEAP_SMALL: usize = 1024;

/// The set of live transactions of one SIP element.
pub struct TransactionLayer<D> {
    config: TimerConfig,
    limits: LayerLimits,
    transmit: Box<dyn Transmit<D>>,
    /// Keys and entries are boxed: a table's slots (also the free ones: the tables
    /// are sized for their peak) then cost two pointers, and the timers share the key.
    clients: HashMap<Arc<TransactionKey>, Box<Entry<D>>>,
    servers: HashMap<Arc<TransactionKey>, Box<Entry<D>>>,
    timers: BinaryHeap<Reverse<Scheduled>>,
    next_seq: u64,
    /// Running timers of all transactions (the heap's live instances).
    armed: usize,
    events: VecDeque<TuEvent<D>>,
    /// Requests received again for a live server transaction (ACKs not counted).
    retransmissions_received: u64,
    /// Requests resent on a timer, final responses resent.
    retransmissions_sent: u64,
}

impl<D: Clone + Send + 'static> TransactionLayer<D> {
    /// A layer with these timer values and limits, sending through `transmit`.
    pub fn new(
        config: TimerConfig,
        limits: LayerLimits,
        transmit: impl Transmit<D> + 'static,
    ) -> Self {
        TransactionLayer {
            config,
            limits,
            transmit: Box::new(transmit),
            clients: HashMap::new(),
            servers: HashMap::new(),
            timers: BinaryHeap::new(),
            next_seq: 0,
            armed: 0,
            events: VecDeque::new(),
            retransmissions_received: 0,
            retransmissions_sent: 0,
        }
    }

    /// Retransmissions so far: requests received again for a live server transaction
    /// (ACKs not counted), and messages sent again (requests on timers A and E, final
    /// responses on timer G or for a retransmitted request).
    pub fn retransmissions(&self) -> (u64, u64) {
        (self.retransmissions_received, self.retransmissions_sent)
    }

    /// Number of live transactions (client and server).
    pub fn len(&self) -> usize {
        self.clients.len() + self.servers.len()
    }

    /// True when no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of events waiting for [`TransactionLayer::poll_event`].
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// The next event for the TU, if any.
    pub fn poll_event(&mut self) -> Option<TuEvent<D>> {
        self.events.pop_front()
    }

    /// When [`TransactionLayer::handle_timeouts`] should next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse(s)| s.deadline)
    }

    /// Starts a client transaction for `request` towards `destination` (§17.1).
    /// The top Via must carry an RFC 3261 branch (see [`crate::message::build::new_branch`]); it is
    /// the transaction's key, returned here and carried by its [`TuEvent`]s.
    pub fn send_request(
        &mut self,
        request: SipMessage,
        destination: D,
        reliable: bool,
    ) -> Result<TransactionKey, TransactionError> {
        let method = request
            .method()
            .ok_or(TransactionError::WrongKind("request"))?;
        if *method == Method::Ack {
            return Err(TransactionError::AckRequest);
        }
        let key = TransactionKey::of(&request)?;
        if !matches!(key, TransactionKey::Rfc3261 { .. }) {
            return Err(TransactionError::NoBranch);
        }
        if self.clients.contains_key(&key) {
            return Err(TransactionError::Duplicate);
        }
        let (machine, actions) = if *method == Method::Invite {
            let (s, a) = client_invite::Calling::start(request, &self.config, reliable);
            (Machine::ClientInvite(ClientInvite::Calling(s)), a)
        } else {
            let (s, a) = client_non_invite::Trying::start(request, &self.config, reliable);
            (Machine::ClientNonInvite(ClientNonInvite::Trying(s)), a)
        };
        let entry = Box::new(Entry {
            machine,
            peer: destination,
            armed: Armed::default(),
        });
        self.run(Side::Client, Arc::new(key.clone()), entry, actions);
        Ok(key)
    }

    /// Sends the TU's response in server transaction `key` (§17.2). Refused when the
    /// transaction does not exist or its state does not allow it.
    pub fn respond(
        &mut self,
        key: &TransactionKey,
        response: SipMessage,
    ) -> Result<(), TransactionError> {
        if response.status().is_none() {
            return Err(TransactionError::WrongKind("response"));
        }
        let (key, mut entry) = self
            .servers
            .remove_entry(key)
            .ok_or(TransactionError::NotFound)?;
        let (machine, result) = match entry.machine {
            Machine::ServerInvite(m) => {
                let (m, r) = m.respond(response, &self.config);
                (Machine::ServerInvite(m), r)
            }
            Machine::ServerNonInvite(m) => {
                let (m, r) = m.respond(response, &self.config);
                (Machine::ServerNonInvite(m), r)
            }
            client => (client, Err(TransactionError::NotFound)),
        };
        entry.machine = machine;
        match result {
            Ok(actions) => {
                self.run(Side::Server, key, entry, actions);
                Ok(())
            }
            Err(e) => {
                self.servers.insert(key, entry);
                Err(e)
            }
        }
    }

    /// A message from the transport layer: matched to a transaction, or a new server
    /// transaction, or passed up as stray (§17.1.3, §17.2.3).
    pub fn receive(&mut self, message: SipMessage, source: D, reliable: bool) {
        let key = match TransactionKey::of(&message) {
            Ok(key) => key,
            Err(e) => {
                tracing::warn!(error = %e, "dropping message that cannot be matched to a transaction");
                return;
            }
        };
        self.receive_keyed(key, message, source, reliable);
    }

    /// [`TransactionLayer::receive`] of a message whose key the caller has already
    /// taken ([`TransactionKey::of`]).
    pub fn receive_keyed(
        &mut self,
        key: TransactionKey,
        message: SipMessage,
        source: D,
        reliable: bool,
    ) {
        if message.is_request() {
            self.receive_request(key, message, source, reliable);
        } else {
            self.receive_response(key, message, source);
        }
    }

    fn receive_response(&mut self, key: TransactionKey, response: SipMessage, source: D) {
        let Some((key, mut entry)) = self.clients.remove_entry(&key) else {
            self.events
                .push_back(TuEvent::StrayResponse { response, source });
            return;
        };
        let config = &self.config;
        let (machine, actions) = match entry.machine {
            Machine::ClientInvite(m) => {
                lift(m.on_response(response, config), Machine::ClientInvite)
            }
            Machine::ClientNonInvite(m) => {
                lift(m.on_response(response, config), Machine::ClientNonInvite)
            }
            server => (server, Vec::new()),
        };
        entry.machine = machine;
        self.run(Side::Client, key, entry, actions);
    }

    fn receive_request(
        &mut self,
        key: TransactionKey,
        request: SipMessage,
        source: D,
        reliable: bool,
    ) {
        if let Some((key, mut entry)) = self.servers.remove_entry(&key) {
            if request.method() != Some(&Method::Ack) {
                self.retransmissions_received += 1;
            }
            let (machine, actions) = match entry.machine {
                Machine::ServerInvite(m) => {
                    lift(m.on_request(request, &self.config), Machine::ServerInvite)
                }
                Machine::ServerNonInvite(m) => lift(m.on_request(), Machine::ServerNonInvite),
                client => (client, Vec::new()),
            };
            entry.machine = machine;
            self.run(Side::Server, key, entry, actions);
            return;
        }
        if request.method() == Some(&Method::Ack) {
            self.events.push_back(TuEvent::Ack {
                key: None,
                ack: request,
                source,
            });
            return;
        }
        if self.len() >= self.limits.max_transactions {
            tracing::warn!(
                limit = self.limits.max_transactions,
                "transaction table full, dropping new request"
            );
            return;
        }
        let (machine, actions, cancels) = match request.method() {
            Some(Method::Invite) => {
                let (proceeding, actions) = server_invite::Proceeding::start(&request, reliable);
                (
                    Machine::ServerInvite(ServerInvite::Proceeding(proceeding)),
                    actions,
                    None,
                )
            }
            method => {
                let cancels = if method == Some(&Method::Cancel) {
                    Some(key.with_method(Method::Invite)).filter(|k| self.servers.contains_key(k))
                } else {
                    None
                };
                let trying = server_non_invite::Trying::new(reliable);
                (
                    Machine::ServerNonInvite(ServerNonInvite::Trying(trying)),
                    Vec::new(),
                    cancels,
                )
            }
        };
        self.events.push_back(TuEvent::Request {
            key: key.clone(),
            request,
            source: source.clone(),
            reliable,
            cancels,
        });
        let entry = Box::new(Entry {
            machine,
            peer: source,
            armed: Armed::default(),
        });
        self.run(Side::Server, Arc::new(key), entry, actions);
    }

    /// Whether the server transaction `key` is live here.
    pub fn has_server(&self, key: &TransactionKey) -> bool {
        self.servers.contains_key(key)
    }

    /// The transport could not write a message of client transaction `key` after
    /// [`Transmit::transmit`] had accepted it (a datagram queued and written later, at
    /// the end of its owner's pass): the transaction takes it as it takes a failed
    /// [`Transmit::transmit`] (a transport error, RFC 3261 §17.1.4). Nothing happens
    /// when the transaction is gone.
    pub fn transport_error(&mut self, key: &TransactionKey) {
        let Some((key, mut entry)) = self.clients.remove_entry(key) else {
            return;
        };
        tracing::warn!("transport error in transaction");
        let (machine, actions) = entry.machine.on_transport_error();
        entry.machine = machine;
        self.run(Side::Client, key, entry, actions);
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeouts(&mut self, now: Instant) {
        while let Some(Reverse(next)) = self.timers.peek() {
            if next.deadline > now {
                break;
            }
            let Some(Reverse(due)) = self.timers.pop() else {
                break;
            };
            let map = match due.side {
                Side::Client => &mut self.clients,
                Side::Server => &mut self.servers,
            };
            let live = map
                .get(&*due.key)
                .is_some_and(|e| e.armed.is_armed(due.timer, due.seq));
            if !live {
                continue;
            }
            let Some(mut entry) = map.remove(&*due.key) else {
                continue;
            };
            if entry.armed.disarm(due.timer) {
                self.armed = self.armed.saturating_sub(1);
            }
            let (machine, actions) = entry.machine.on_timer(due.timer, &self.config);
            entry.machine = machine;
            // A transaction sends on a timer only what it sent before (A, E; G is a
            // `Retransmit`, counted where it is performed).
            let resent = actions
                .iter()
                .filter(|a| matches!(a, Action::Send(_)))
                .count();
            self.retransmissions_sent += resent as u64;
            self.run(due.side, due.key, entry, actions);
        }
        self.shrink();
    }

    /// Performs a transition's actions, then stores the transaction again or, if it
    /// terminated, drops it and tells the TU.
    fn run(
        &mut self,
        side: Side,
        key: Arc<TransactionKey>,
        mut entry: Box<Entry<D>>,
        actions: Actions,
    ) {
        let mut queue = VecDeque::from(actions);
        while let Some(action) = queue.pop_front() {
            let sent = match action {
                Action::Send(message) => {
                    let bytes = message.to_bytes();
                    Some(self.transmit.transmit(&message, bytes, &entry.peer))
                }
                Action::SendFinal(message, bytes) => {
                    entry.peer = self.transmit.route(&message, &entry.peer);
                    Some(self.transmit.transmit(&message, bytes, &entry.peer))
                }
                Action::Retransmit(bytes) => {
                    self.retransmissions_sent += 1;
                    Some(self.transmit.retransmit(bytes, &entry.peer))
                }
                Action::Deliver(delivery) => {
                    let event = match delivery {
                        Delivery::Response(response) => TuEvent::Response {
                            key: (*key).clone(),
                            response,
                        },
                        Delivery::Ack(ack) => TuEvent::Ack {
                            key: Some((*key).clone()),
                            ack,
                            source: entry.peer.clone(),
                        },
                        Delivery::Timeout(timer) => TuEvent::Timeout {
                            key: (*key).clone(),
                            timer,
                        },
                        Delivery::TimerC {
                            provisional_received,
                        } => TuEvent::TimerC {
                            key: (*key).clone(),
                            provisional_received,
                        },
                        Delivery::TransportError => TuEvent::TransportError {
                            key: (*key).clone(),
                        },
                    };
                    self.events.push_back(event);
                    None
                }
                Action::StartTimer(timer, after) => {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    if entry.armed.arm(timer, seq) {
                        self.armed += 1;
                    }
                    self.timers.push(Reverse(Scheduled {
                        deadline: Instant::now() + after,
                        seq,
                        side,
                        key: key.clone(),
                        timer,
                    }));
                    None
                }
                Action::CancelTimer(timer) => {
                    if entry.armed.disarm(timer) {
                        self.armed = self.armed.saturating_sub(1);
                    }
                    None
                }
            };
            if let Some(Err(e)) = sent {
                tracing::warn!(error = %e, "transport error in transaction");
                let (machine, more) = entry.machine.on_transport_error();
                entry.machine = machine;
                queue.extend(more);
            }
        }
        if entry.machine.is_terminated() {
            self.armed = self.armed.saturating_sub(entry.armed.count());
            self.events.push_back(TuEvent::Terminated {
                key: Arc::unwrap_or_clone(key),
            });
        } else {
            match side {
                Side::Client => self.clients.insert(key, entry),
                Side::Server => self.servers.insert(key, entry),
            };
        }
        self.compact_timers();
    }

    /// Gives the memory of the tables back once they hold far less than at their peak
    /// (a table keeps its capacity otherwise: a burst of load would stay resident).
    fn shrink(&mut self) {
        shrink_map(&mut self.clients);
        shrink_map(&mut self.servers);
        let len = self.timers.len();
        if self.timers.capacity() > 4 * len + HEAP_SMALL {
            self.timers.shrink_to(2 * len);
        }
    }

    /// Drops cancelled and orphaned timer instances once they are a third of the
    /// heap: cancelling a timer (E and F once a response came, G and H on ACK) then
    /// frees its memory before its deadline, and a peer that makes us restart timers
    /// (e.g. Timer C on every 18x) cannot grow the heap. Each compaction leaves only
    /// the running instances, so its cost is spread over as many cancellations.
    fn compact_timers(&mut self) {
        let bound = HEAP_SLACK + self.armed + self.armed / 2;
        if self.timers.len() <= bound {
            return;
        }
        let (clients, servers) = (&self.clients, &self.servers);
        self.timers.retain(|Reverse(s)| {
            let map = match s.side {
                Side::Client => clients,
                Side::Server => servers,
            };
            map.get(&*s.key)
                .is_some_and(|e| e.armed.is_armed(s.timer, s.seq))
        });
    }
}

/// Shrinks `map` to twice what it holds when its capacity is over four times that (and
/// more than a small table's): rehashing then costs less than the inserts that emptied
/// it.
pub(crate) fn shrink_map<K: Eq + Hash, V>(map: &mut HashMap<K, V>) {
    const SMALL: usize = 1024;
    let len = map.len();
    if map.capacity() > 4 * len + SMALL {
        map.shrink_to(2 * len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::test_support::{invite, response_to};
    use std::time::Duration;

    /// A layer with the default timers whose sends all succeed.
    fn quiet_layer() -> TransactionLayer<u8> {
        TransactionLayer::new(
            TimerConfig::default(),
            LayerLimits::default(),
            |_: &Bytes, _: &u8| Ok(()),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn restarting_timer_c_on_every_18x_does_not_grow_the_timer_heap() {
        let mut layer = quiet_layer();
        let inv = invite();
        layer.send_request(inv.clone(), 0, true).unwrap();
        let ringing = response_to(&inv, 180);
        for _ in 0..10_000 {
            layer.receive(ringing.clone(), 0, true);
        }
        assert!(layer.timers.len() <= HEAP_SLACK + 2 * MAX_ARMED);
        // The live Timer C instance survived compaction and still fires.
        tokio::time::advance(Duration::from_secs(181)).await;
        layer.handle_timeouts(Instant::now());
        let timer_c = std::iter::from_fn(|| layer.poll_event())
            .filter(|e| matches!(e, TuEvent::TimerC { .. }))
            .count();
        assert_eq!(timer_c, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_timers_leave_the_heap_before_their_deadline() {
        let mut layer = quiet_layer();
        const N: usize = 5_000;
        for n in 0..N {
            let mut req = crate::transaction::test_support::request("REGISTER");
            req.headers.set(
                crate::HeaderName::Via,
                format!("SIP/2.0/UDP pcscf.example.net:5060;branch=z9hG4bKc{n}"),
            );
            layer.send_request(req.clone(), 0, false).unwrap();
            // The 200 cancels Timers E and F and starts K.
            layer.receive(response_to(&req, 200), 0, false);
        }
        while layer.poll_event().is_some() {}
        assert_eq!(layer.armed, N, "Timer K of each transaction");
        assert!(
            layer.timers.len() <= HEAP_SLACK + N + N / 2,
            "{} timer instances for {N} running",
            layer.timers.len()
        );
        tokio::time::advance(Duration::from_secs(64)).await;
        layer.handle_timeouts(Instant::now());
        assert!(layer.is_empty());
        assert_eq!(layer.armed, 0);
        assert!(layer.timers.is_empty());
    }
}
