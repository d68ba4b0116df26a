//! The running stateful proxy (RFC 3261 §16): a [`TransportLayer`], the transaction
//! layer and the response contexts, glued in the order documented in
//! [`crate::proxy`]. A CSCF is a [`Policy`] plugged into a [`ProxyEngine`].
//!
//! Run to completion: one task (`core`) owns the transaction layer, the response
//! contexts and the transaction timers. A message the transport delivers is stamped,
//! matched to its transaction, decided and forwarded in that task, by method calls; the
//! policy's [`Policy::decide`] is polled there once, and only a decision that waits for
//! I/O is kept (in the same task) until it completes ([`deciding`]); what goes out is
//! written to the socket from there too (the UDP datagrams of one pass of its loop
//! together, at the end of the pass), and only a write that would wait goes to a
//! sender task ([`send`]). While [`EngineConfig::queue`] decisions wait, new input
//! waits in the transport's bounded channel.
//!
//! What the engine does by itself:
//! * a framed message that fails to parse gets a best-effort `400` when it is a request
//!   ([`build::bad_request_from_raw`]); other garbage is dropped with a log line;
//! * each new request: `received`/`rport` (§18.2.1, RFC 3581), §16.3 validation
//!   (rejections answered, ACK never), §16.4 Route preprocessing, then the policy's
//!   [`Decision`]; forwarding per §16.6 with our Via (branch with the loop-detection
//!   hash, §16.6 step 8), optional (double, RFC 5658) Record-Route, and one client
//!   transaction per branch;
//! * ACK for a 2xx is forwarded statelessly per Route/Request-URI (or over the flow
//!   [`Policy::ack_route`] names, or dropped when it says so), with a Via branch derived from the incoming top Via
//!   so retransmissions keep it (§16.11);
//! * CANCEL (§16.10): matched to its INVITE's response context, answered 200, each
//!   pending branch cancelled toward the address that branch went to; 487 for the
//!   INVITE unless something better arrives. A CANCEL matching no transaction is
//!   answered `481` (§16.10 allows stateless forwarding; without state for the INVITE
//!   this proxy cannot know where that went);
//! * responses go through the response context (§16.7) and back on the server
//!   transaction; a stray 2xx to INVITE whose top Via is ours is forwarded statelessly
//!   per the next Via (§16.7, §18.2.2, RFC 3581);
//! * Timer B/F → 408, transport errors and connect failures → 503 (§16.8, §16.9),
//!   Timer C → CANCEL of the branch (§16.8); a branch silent for its forward's
//!   [`Forward::no_response_timeout`] → 408;
//! * serial forking: when every branch of a forward with [`Forward::on_failure`] has
//!   failed, the policy is asked again ([`Policy::on_failure`]) before the best
//!   response goes upstream, and may add new branches to the same context;
//! * a [`Decision::ForwardWith`] proxies the policy's edited request, over a given
//!   flow if any; a closed flow ends the branch with 430 (RFC 5626 §5.3);
//! * the policy sees each response before it goes upstream ([`Policy::on_response`]),
//!   and may hold a final one until something it waits for is done
//!   ([`Policy::hold_response`]: a P-CSCF's store write).

mod config;
mod deciding;
mod failover;
mod next_hop;
mod originate;
mod policy;
pub mod resolver;
mod send;
mod shard;
mod stats;
mod stopped;

use next_hop::next_hops;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use md5::{Digest, Md5};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::time::DelayQueue;

pub use config::EngineConfig;
pub use originate::{OriginateError, Originator};
pub use policy::{AckRoute, Decision, DefaultRouting, Forward, Policy};
pub use resolver::{Hop, HostCache, Servers};
pub use shard::MAX_SHARDS;
pub use stats::{method_index, ByCode, EngineStats, Latency, LATENCY_BUCKETS, METHODS};
pub use stopped::EngineStopped;

use self::deciding::{Decided, Deciding, Panicked};
use self::failover::{BranchSpec, Failover};
use self::originate::Originate;
use self::send::Peer;
use self::shard::{Handover, Shard};
use crate::message::build::{self, response_with};
use crate::message::key::TransactionKey;
use crate::message::via::{Via, BRANCH_MAGIC};
use crate::proxy::cancel::handle_cancel;
use crate::proxy::loops::LoopHash;
use crate::proxy::record_route::{insert_record_route, RecordRoute, RouteUri};
use crate::proxy::response_context::{Actions, BranchId, ResponseContext};
use crate::proxy::routing::{
    forward, needs_sips, pop_own_route, preprocess_route, ForwardSpec, Forwarded, RoutingError,
};
use crate::proxy::validate::validate;
use crate::proxy::via::{
    add_via, add_via_with, pop_via, response_destination, stamp_received, LocalVia,
};
use crate::proxy::{LocalAddr, TransportKind};
use crate::transaction::layer::shrink_map;
use crate::transaction::{TransactionLayer, TuEvent};
use crate::transport::{
    Destination, Face, Flow, Malformed, ShardInput, Source, Target, TransportConfig,
    TransportError, TransportEvent, TransportLayer,
};
use crate::{HeaderName, Method, SipMessage};

/// A running proxy. Dropping it stops its task (listeners close when the transport's
/// event receiver, owned by that task, goes away).
pub struct ProxyEngine {
    transport: TransportLayer,
    stats: Arc<EngineStats>,
    config: Arc<EngineConfig>,
    /// Where [`Originator`]s bound to this engine queue their requests.
    originate: mpsc::Sender<Originate>,
    /// The engine's own tasks by name: they run until the engine is dropped.
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl ProxyEngine {
    /// Binds the listeners of `transport` and starts proxying with `policy`, in
    /// [`EngineConfig::shards`] shards (`sip/README.md`, "Shards").
    pub async fn start<P: Policy>(
        transport: TransportConfig,
        mut config: EngineConfig,
        policy: P,
    ) -> Result<ProxyEngine, TransportError> {
        if config.shards > MAX_SHARDS {
            tracing::warn!(
                asked = config.shards,
                run = MAX_SHARDS,
                "more shards asked than the engine runs"
            );
        }
        config.shards = config.shards.clamp(1, MAX_SHARDS);
        let (layer, inputs) = TransportLayer::bind_shards(transport, config.shards).await?;
        let listeners: Vec<_> = layer.listeners().collect();
        let listener_hosts: Vec<_> = listeners
            .iter()
            .map(|(_, addr, _)| (addr.ip(), host_text(addr.ip())))
            .collect();
        for (kind, addr, face) in listeners {
            if !config.transports.contains(&kind) {
                config.transports.push(kind);
            }
            let port = Some(addr.port());
            config
                .proxy
                .local
                .push(LocalAddr::new(host_text(addr.ip()), port));
            if let Some(host) = config.advertised(face) {
                let host = host.to_string();
                config.proxy.local.push(LocalAddr::new(host, port));
            }
        }
        // The shards' client ports are ours too: in our Via (loop detection, a stray
        // 2xx's top Via), though never in Record-Route or Path.
        for (addr, face) in layer.client_addrs() {
            let port = Some(addr.port());
            let mut hosts = vec![host_text(addr.ip())];
            hosts.extend(config.advertised(face).map(str::to_string));
            for host in hosts {
                config.proxy.local.push(LocalAddr::new(host, port));
            }
        }
        let config = Arc::new(config);
        let stats = Arc::new(EngineStats::default());
        let queue = config.queue.max(1);
        let policy = Arc::new(policy);
        let (originate, originate_rx) = mpsc::channel(originate::QUEUE);
        // The node's own requests leave from shard 0.
        let mut originate_rx = Some(originate_rx);
        let mut tasks = Vec::new();
        let shards = Shard::all(config.shards, queue);
        for ((shard, handovers), input) in shards.into_iter().zip(inputs) {
            let transport = layer.for_shard(shard.index);
            let (failed_tx, failed_rx) = mpsc::channel(queue);
            let (transmit, output, sender) =
                send::start(transport.clone(), config.clone(), queue, failed_tx);
            let core = Core {
                layer: TransactionLayer::new(config.timers, config.limits, transmit),
                config: config.clone(),
                policy: policy.clone(),
                transport,
                output,
                stats: stats.clone(),
                listener_hosts: listener_hosts.clone(),
                deciding: FuturesUnordered::new(),
                silent: DelayQueue::new(),
                contexts: HashMap::new(),
                branches: HashMap::new(),
                answered: Vec::new(),
                originated: HashMap::new(),
                shard,
                reported: (0, 0),
            };
            let inbound = Inbound {
                input,
                failed: failed_rx,
                originate: originate_rx.take(),
                handovers,
            };
            tasks.push(("core", tokio::spawn(core.run(inbound))));
            tasks.push(("send", sender));
        }
        Ok(ProxyEngine {
            transport: layer,
            stats,
            config,
            originate,
            tasks,
        })
    }

    /// The transport layer (bound addresses, transport counters).
    pub fn transport(&self) -> &TransportLayer {
        &self.transport
    }

    /// The engine's counters.
    pub fn stats(&self) -> &Arc<EngineStats> {
        &self.stats
    }

    /// Binds `originator` to this engine: from now on the requests it is given are sent
    /// from here (see [`Originator`]). False when it was already bound.
    pub fn bind_originator(&self, originator: &Originator) -> bool {
        originator.bind(self.originate.clone(), self.config.clone())
    }
}

impl Drop for ProxyEngine {
    fn drop(&mut self) {
        for (_, task) in &self.tasks {
            task.abort();
        }
    }
}

/// An IP address as a SIP host (IPv6 in brackets).
fn host_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn answer_malformed(output: &send::Output, bad: &Malformed, stats: &EngineStats) {
    let reason = match bad.error.status_code() {
        513 => "Message Too Large",
        _ => "Bad Request",
    };
    match build::bad_request_from_raw(&bad.raw, reason) {
        Some(response) => {
            tracing::info!(remote = %bad.source.remote, error = %bad.error, "malformed request answered 400");
            stats.response_out(400);
            output.stateless(Target::Flow(bad.source.flow), &response);
        }
        None => {
            tracing::info!(remote = %bad.source.remote, error = %bad.error, "malformed message dropped");
        }
    }
}

/// One proxied request.
struct Context {
    rc: ResponseContext,
    /// The request after Route preprocessing: what each branch copies. Shared with
    /// the policy's decision while it runs (no copy of the header list per request).
    request: Arc<SipMessage>,
    source: Source,
    loop_hash: LoopHash,
    /// Where each branch went (its CANCEL goes there too, §9.1).
    dests: Vec<(BranchId, Target)>,
    /// [`Forward::on_failure`] of the current round of branches.
    on_failure: Option<String>,
    /// Branches whose next hop has more servers to try (RFC 3263 §4.3).
    failovers: Vec<Failover>,
    /// When the request arrived: its final response observes this hop's latency.
    arrived: Instant,
}

/// A client transaction's place in a response context.
#[derive(Clone)]
struct BranchRef {
    server: TransactionKey,
    id: BranchId,
}

/// Something that happened on a client branch.
enum BranchEvent {
    Response(SipMessage),
    Timeout,
    TimerC,
    TransportError,
    /// [`Forward::no_response_timeout`] ran out.
    NoResponse,
}

/// A branch's request and where it goes.
struct Built {
    request: SipMessage,
    /// `None` when the next hop has no address or we have no listener for it.
    dest: Option<Target>,
    /// The servers to try after `dest` (RFC 3263 §4.3).
    rest: Servers,
}

/// The engine's one task: it owns the transaction layer, the response contexts and
/// the decisions under way, and runs each received message through them to the
/// socket without handing it to another task.
struct Core<P> {
    config: Arc<EngineConfig>,
    policy: Arc<P>,
    transport: TransportLayer,
    /// What goes out: this pass's datagrams, written at its end ([`Core::flush`]).
    output: Arc<send::Output>,
    layer: TransactionLayer<Peer>,
    stats: Arc<EngineStats>,
    /// Each listener's address as a SIP host, written where a face has no advertised
    /// host (formatted once, not per message).
    listener_hosts: Vec<(IpAddr, String)>,
    /// Decisions that wait for I/O (a Diameter answer, a store write, a name lookup).
    deciding: FuturesUnordered<Deciding>,
    /// Client transactions by the end of their [`Forward::no_response_timeout`].
    silent: DelayQueue<TransactionKey>,
    /// Response contexts by server transaction.
    contexts: HashMap<TransactionKey, Context>,
    /// Client transactions of forwarded requests (not of CANCELs).
    branches: HashMap<TransactionKey, BranchRef>,
    /// Non-INVITE server transactions whose final response went upstream: nothing
    /// can change their response any more (later branch responses are absorbed,
    /// §16.7 step 5; CANCEL does not apply, §9.2), so their contexts are dropped once
    /// the input at hand is handled, while the transaction waits out Timer J.
    answered: Vec<TransactionKey>,
    /// Client transactions of the requests the node originated ([`Originator`]), with
    /// who waits for their final response.
    originated:
        HashMap<TransactionKey, tokio::sync::oneshot::Sender<Result<SipMessage, OriginateError>>>,
    /// This core's shard and the way to its siblings.
    shard: Shard,
    /// The transaction layer's retransmission counts last added to the counters.
    reported: (u64, u64),
}

/// What a core reads besides its timers and decisions.
struct Inbound {
    /// Its shard's UDP sockets and stream connections.
    input: ShardInput,
    /// Client requests the sender task could not write.
    failed: mpsc::Receiver<TransactionKey>,
    /// The node's own requests ([`Originator`]): shard 0's core only.
    originate: Option<mpsc::Receiver<Originate>>,
    /// Messages other shards hand to this one.
    handovers: mpsc::Receiver<Handover>,
}

/// The next request an [`Originator`] queued, if this core takes them; else pending.
async fn next_originated(originate: &mut Option<mpsc::Receiver<Originate>>) -> Option<Originate> {
    match originate {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Transport events handled in a row before the engine looks at its timers and
/// decisions again.
const BATCH: usize = 64;

/// Rounds of writing a pass's datagrams and handling the transport errors of those
/// refused, before what is left goes to the sender task.
const FLUSH_ROUNDS: usize = 4;

impl<P: Policy> Core<P> {
    /// Serves until the transport's event channel closes. Each input (a message, a
    /// timer, a decision, a failed send) is carried as far as it goes at once: the
    /// transaction layer's events it causes are handled before the next input.
    /// Datagrams are read from the UDP sockets here, in batches of what they hold.
    async fn run(mut self, inbound: Inbound) {
        let Inbound {
            input: ShardInput {
                mut events,
                mut udp,
            },
            mut failed,
            mut originate,
            mut handovers,
        } = inbound;
        self.serve(
            &mut events,
            &mut udp,
            &mut failed,
            &mut originate,
            &mut handovers,
        )
        .await;
    }

    /// The loop of [`Core::run`], until the transport's event channel closes.
    async fn serve(
        &mut self,
        events: &mut mpsc::Receiver<TransportEvent>,
        udp: &mut crate::transport::UdpIngress,
        failed: &mut mpsc::Receiver<TransactionKey>,
        originate: &mut Option<mpsc::Receiver<Originate>>,
        handovers: &mut mpsc::Receiver<Handover>,
    ) {
        let backlog = self.config.queue.max(1);
        let timer = tokio::time::sleep_until(Instant::now());
        tokio::pin!(timer);
        let mut armed = None;
        let mut inbox = Vec::with_capacity(BATCH);
        loop {
            let deadline = self.layer.next_deadline();
            if let Some(at) = deadline.filter(|at| armed != Some(*at)) {
                timer.as_mut().reset(at);
                armed = Some(at);
            }
            tokio::select! {
                biased;
                () = &mut timer, if deadline.is_some() => {
                    armed = None;
                    self.layer.handle_timeouts(Instant::now());
                    shrink_map(&mut self.contexts);
                    shrink_map(&mut self.branches);
                }
                Some(decided) = self.deciding.next(), if !self.deciding.is_empty() => {
                    self.on_decided(decided);
                }
                Some(expired) = self.silent.next(), if !self.silent.is_empty() => {
                    self.on_branch(expired.get_ref(), BranchEvent::NoResponse);
                }
                Some(key) = failed.recv() => self.on_branch(&key, BranchEvent::TransportError),
                Some(job) = next_originated(originate) => self.originate(job),
                Some(Handover { message, source }) = handovers.recv() => {
                    self.receive(message, source);
                }
                // While `queue` decisions wait, new input waits in the sockets and the
                // transport's bounded channel. After each batch of datagrams, what the
                // connections delivered gets its turn too: a datagram flood must not
                // starve TCP and TLS peers.
                () = udp.recv(&mut inbox, BATCH), if self.deciding.len() < backlog => {
                    for event in inbox.drain(..) {
                        self.on_transport(event);
                        self.drain();
                    }
                    self.take_ready(events, BATCH);
                }
                event = events.recv(), if self.deciding.len() < backlog => {
                    let Some(event) = event else {
                        self.flush();
                        return;
                    };
                    self.on_transport(event);
                    self.drain();
                    self.take_ready(events, BATCH - 1);
                }
            }
            self.drain();
            self.flush();
        }
    }

    /// Writes what this pass queued (one `sendmmsg` per UDP socket on Linux). A client
    /// transaction whose request could not be written takes it as a transport error,
    /// as when a write at once fails; what that causes (a 503 upstream, new branches)
    /// goes out in the next round.
    fn flush(&mut self) {
        for _ in 0..FLUSH_ROUNDS {
            let failed = self.output.flush();
            if failed.is_empty() {
                return;
            }
            for key in failed {
                self.layer.transport_error(&key);
            }
            self.drain();
        }
        // Nothing stays queued while the core waits.
        self.output.hand_over();
    }

    /// Handles up to `max` of the messages the connections have already delivered.
    fn take_ready(&mut self, events: &mut mpsc::Receiver<TransportEvent>, max: usize) {
        for _ in 0..max {
            match events.try_recv() {
                Ok(event) => self.on_transport(event),
                Err(_) => break,
            }
            self.drain();
        }
    }

    /// Handles the transaction layer's events until there are none, then drops the
    /// contexts of the non-INVITE requests answered meanwhile.
    fn drain(&mut self) {
        while let Some(event) = self.layer.poll_event() {
            self.on_event(event);
        }
        for key in self.answered.drain(..) {
            self.contexts.remove(&key);
        }
        let (received, sent) = self.layer.retransmissions();
        let (was_received, was_sent) = self.reported;
        self.stats.retransmissions(
            received.saturating_sub(was_received),
            sent.saturating_sub(was_sent),
        );
        self.reported = (received, sent);
    }

    /// What the transport delivers: stamped with `received`/`rport` and handed to the
    /// transaction layer; an unparsable request is answered 400 (RFC 3261 §8.2.6,
    /// §18.2.1).
    /// A message that belongs to another shard's transaction is handed to it
    /// ([`shard`]).
    fn on_transport(&mut self, event: TransportEvent) {
        self.stats.shard_message(self.shard.index);
        match event {
            TransportEvent::Message(incoming) if self.refused_on_client_port(&incoming) => {}
            TransportEvent::Message(incoming) => {
                let (message, source) = (incoming.message, incoming.source);
                if self.shard.is_sharded() {
                    self.receive_sharded(message, source);
                } else {
                    self.receive(message, source);
                }
            }
            TransportEvent::Malformed(bad) => {
                EngineStats::inc(&self.stats.parse_errors);
                if self.transport.is_client_flow(&bad.source.flow) {
                    EngineStats::inc(&self.stats.client_port_dropped);
                    tracing::debug!(remote = %bad.source.remote, "malformed message on a shard client port dropped");
                } else {
                    answer_malformed(&self.output, &bad, &self.stats);
                }
            }
        }
    }

    /// True (and counted) when `incoming` is a request that reached a shard's client
    /// socket: only the responses to the requests it sent are taken there. A request
    /// goes to a listener (it is advertised in Record-Route, Path and DNS; the client
    /// ports only in our Via), so nothing there is served, nor answered: a client
    /// port is no way around what a listener enforces.
    fn refused_on_client_port(&self, incoming: &crate::transport::Incoming) -> bool {
        let refused =
            incoming.message.is_request() && self.transport.is_client_flow(&incoming.source.flow);
        if refused {
            EngineStats::inc(&self.stats.client_port_dropped);
            tracing::debug!(remote = %incoming.source.remote, "request on a shard client port dropped");
        }
        refused
    }

    /// A message of this shard's, or of its transaction's owner when another shard
    /// has it.
    fn receive_sharded(&mut self, message: SipMessage, source: Source) {
        let key = match TransactionKey::of(&message) {
            Ok(key) => key,
            Err(e) => {
                tracing::warn!(error = %e, "dropping message that cannot be matched to a transaction");
                return;
            }
        };
        let layer = &self.layer;
        match self
            .shard
            .owner_elsewhere(&message, &key, |k| layer.has_server(k))
        {
            Some(owner) => {
                let handover = Handover { message, source };
                self.shard.hand_over(owner, handover, &self.stats);
            }
            None => self.receive_keyed(key, message, source),
        }
    }

    /// Stamps a request with `received`/`rport` and hands the message to the
    /// transaction layer.
    fn receive(&mut self, message: SipMessage, source: Source) {
        match TransactionKey::of(&message) {
            Ok(key) => self.receive_keyed(key, message, source),
            Err(e) => {
                tracing::warn!(error = %e, "dropping message that cannot be matched to a transaction");
            }
        }
    }

    fn receive_keyed(&mut self, key: TransactionKey, mut message: SipMessage, source: Source) {
        if message.is_request() {
            if let Err(error) = stamp_received(&mut message, source.remote) {
                tracing::debug!(%error, remote = %source.remote, "cannot stamp Via");
            }
        }
        let reliable = source.flow.kind().is_reliable();
        self.layer
            .receive_keyed(key, message, Peer::Upstream(source), reliable);
    }

    fn on_event(&mut self, event: TuEvent<Peer>) {
        match event {
            TuEvent::Request {
                key,
                request,
                source,
                cancels,
                ..
            } => {
                self.stats.request_in(request.method());
                self.stats.transaction_started();
                let Peer::Upstream(source) = source else {
                    return;
                };
                self.shard.own(&key);
                if request.method() == Some(&Method::Cancel) {
                    self.on_cancel(key, request, cancels);
                } else {
                    self.on_request(key, request, source);
                }
            }
            TuEvent::Ack { ack, source, .. } => {
                self.stats.request_in(Some(&Method::Ack));
                if let Peer::Upstream(source) = source {
                    self.forward_ack(ack, &source);
                }
            }
            TuEvent::Response { key, response } => {
                self.on_branch(&key, BranchEvent::Response(response));
            }
            TuEvent::StrayResponse { response, .. } => self.stray(response),
            TuEvent::Timeout { key, .. } => self.on_branch(&key, BranchEvent::Timeout),
            TuEvent::TimerC { key, .. } => self.on_branch(&key, BranchEvent::TimerC),
            TuEvent::TransportError { key } => {
                self.on_branch(&key, BranchEvent::TransportError);
            }
            TuEvent::Terminated { key } => {
                self.stats.transaction_ended();
                let client = self.branches.contains_key(&key) || self.originated.contains_key(&key);
                if !client {
                    self.shard.disown(&key);
                }
                self.branches.remove(&key);
                self.originated.remove(&key);
                self.contexts.remove(&key);
            }
        }
    }

    /// §16.3, §16.4, then the policy (asked in its own task).
    fn on_request(&mut self, key: TransactionKey, mut request: SipMessage, source: Source) {
        let validated = match validate(&request, &self.config.proxy) {
            Ok(v) => v,
            Err(rejection) => {
                if let Some(response) = rejection.response(&request) {
                    self.respond(&key, response);
                }
                return;
            }
        };
        let rc = ResponseContext::new(request.clone());
        let popped = preprocess_route(&mut request, &self.config.proxy).and_then(|p| {
            // Our second Record-Route value when we double record-routed (RFC 5658).
            if p.popped_route.is_some() {
                pop_own_route(&mut request, &self.config.proxy)?;
            }
            Ok(p.popped_route)
        });
        let popped = match popped {
            Ok(popped) => popped,
            Err(error) => {
                tracing::info!(%error, "Route preprocessing failed");
                let response = response_with(&request, 400, "Bad Route", None, &[]);
                self.respond(&key, response);
                return;
            }
        };
        let (policy, config) = (self.policy.clone(), self.config.clone());
        let request = Arc::new(request);
        let (req, src) = (request.clone(), source.clone());
        let deciding = deciding::start(key.clone(), async move {
            let decision = policy.decide_routed(&req, &src, popped.as_ref()).await;
            config.prepare(&next_hops(&req, &decision)).await;
            (decision, false)
        });
        self.contexts.insert(
            key,
            Context {
                rc,
                request,
                source,
                loop_hash: validated.loop_hash,
                dests: Vec::new(),
                on_failure: None,
                failovers: Vec::new(),
                arrived: Instant::now(),
            },
        );
        self.decide(deciding);
    }

    /// Polls a decision once, here: most need no I/O and are carried out at once; the
    /// others wait among [`Core::deciding`] and resume in this task.
    fn decide(&mut self, mut deciding: Deciding) {
        match (&mut deciding).now_or_never() {
            Some(decided) => self.on_decided(decided),
            None => self.deciding.push(deciding),
        }
    }

    /// §16.10: a CANCEL for a known INVITE cancels its branches; else 481.
    fn on_cancel(
        &mut self,
        key: TransactionKey,
        cancel: SipMessage,
        cancels: Option<TransactionKey>,
    ) {
        let ctx = cancels
            .as_ref()
            .and_then(|invite| self.contexts.get_mut(invite).map(|c| (invite, c)));
        let Some((invite, ctx)) = ctx else {
            tracing::debug!("CANCEL matches no transaction");
            self.respond(&key, build::response(&cancel, 481));
            return;
        };
        let outcome = handle_cancel(&mut ctx.rc, &cancel);
        let invite = invite.clone();
        self.respond(&key, outcome.ok);
        self.perform(&invite, outcome.actions);
    }

    fn on_decided(
        &mut self,
        Decided {
            key,
            decision,
            released,
            relay,
        }: Decided,
    ) {
        if relay {
            if let Ok(Decision::Respond(response)) = decision {
                self.upstream(&key, response);
            }
            return;
        }
        let Some(ctx) = self.contexts.get_mut(&key) else {
            return;
        };
        if ctx.rc.final_sent() {
            return;
        }
        let decision = decision.unwrap_or_else(|Panicked| {
            tracing::error!("the policy panicked deciding a request: answered 500");
            let code = 500;
            let reason = build::reason_phrase(code);
            let tag = Some(ctx.rc.local_tag());
            Decision::Respond(response_with(&ctx.request, code, reason, tag, &[]))
        });
        let (request, flow, forward) = match decision {
            Decision::Respond(mut response) => {
                // A held response the policy let go is a branch response like any.
                if ctx.rc.release() && released {
                    self.policy
                        .on_response(&ctx.request, &ctx.source, &mut response);
                }
                self.respond(&key, response);
                return;
            }
            Decision::Forward(forward) => (None, None, forward),
            Decision::ForwardWith {
                request,
                flow,
                forward,
            } => (Some(request), flow, forward),
        };
        // A new round after a held response forgets the failed one.
        ctx.rc.retry();
        if let Some(request) = request {
            ctx.request = Arc::new(request);
        }
        ctx.on_failure.clone_from(&forward.on_failure);
        if forward.on_failure.is_some() {
            ctx.rc.hold_final();
        }
        self.fork(&key, &forward, flow);
    }

    /// A held final response (every branch of a [`Forward::on_failure`] round
    /// failed): the policy decides, in its own task, whether the request goes on.
    fn ask_on_failure(&mut self, key: &TransactionKey, response: SipMessage) {
        let Some(ctx) = self.contexts.get_mut(key) else {
            return;
        };
        let tag = ctx.on_failure.take().unwrap_or_default();
        let (policy, config) = (self.policy.clone(), self.config.clone());
        let (req, src) = (ctx.request.clone(), ctx.source.clone());
        let deciding = deciding::start(key.clone(), async move {
            let (decision, released) = match policy.on_failure(&req, &src, &tag, &response).await {
                Some(decision) => (decision, false),
                None => (Decision::Respond(response), true),
            };
            config.prepare(&next_hops(&req, &decision)).await;
            (decision, released)
        });
        self.decide(deciding);
    }

    /// §16.6 for every target, one client transaction per branch.
    /// With `flow`, every branch goes over that flow (RFC 5626 §5.3).
    fn fork(&mut self, key: &TransactionKey, fwd: &Forward, flow: Option<Flow>) {
        let targets: Vec<Option<&str>> = if fwd.targets.is_empty() {
            vec![None]
        } else {
            fwd.targets.iter().map(|t| Some(t.as_str())).collect()
        };
        let mut last_error = None;
        let mut forked = false;
        for (i, target) in targets.into_iter().enumerate() {
            let mut routes = fwd.preload_routes.clone();
            if target.is_some() {
                routes.extend(fwd.target_routes.get(i).into_iter().flatten().cloned());
            }
            let spec = BranchSpec {
                target,
                routes: &routes,
                record_route: fwd.record_route,
                record_route_user: fwd.record_route_user.as_deref(),
                no_response_timeout: fwd.no_response_timeout,
            };
            match self.start_branch(key, &spec, flow, None) {
                Ok(started) => forked |= started,
                Err(error) => {
                    tracing::info!(%error, "cannot forward to target");
                    last_error = Some(error);
                }
            }
        }
        if !forked {
            let Some(ctx) = self.contexts.get(key) else {
                return;
            };
            let code = match last_error {
                Some(RoutingError::UnroutableScheme(_)) => 416,
                _ => 400,
            };
            let response = response_with(
                &ctx.request,
                code,
                build::reason_phrase(code),
                Some(ctx.rc.local_tag()),
                &[],
            );
            self.respond(key, response);
        }
    }

    /// Builds one branch of `key`'s request and starts its client transaction: to
    /// the first of `servers` when given (a failover), else of the servers its next hop
    /// resolves to. False when the response context refused the branch (or is gone).
    /// A branch that cannot be sent (no address, no listener, refused by the
    /// transaction layer) fails as by a transport error, which may fail over in turn.
    fn start_branch(
        &mut self,
        key: &TransactionKey,
        spec: &BranchSpec<'_>,
        flow: Option<Flow>,
        servers: Option<Servers>,
    ) -> Result<bool, RoutingError> {
        let Some(ctx) = self.contexts.get(key) else {
            return Ok(false);
        };
        let Built {
            request,
            dest,
            rest,
        } = self.build_branch(ctx, spec, flow, servers)?;
        let Some(ctx) = self.contexts.get_mut(key) else {
            return Ok(false);
        };
        let id = match ctx.rc.add_branch(&request) {
            Ok(id) => id,
            Err(error) => {
                tracing::warn!(%error, "branch refused by the response context");
                return Ok(false);
            }
        };
        let more = !rest.is_empty();
        if more {
            ctx.failovers.push(Failover::new(id, spec, rest));
        }
        let sent = match dest {
            Some(dest) => {
                ctx.dests.push((id, dest.clone()));
                let reliable = target_kind(&dest).is_reliable();
                self.layer
                    .send_request(request, Peer::Downstream(dest), reliable)
                    .map_err(|error| tracing::warn!(%error, "client transaction refused"))
                    .ok()
            }
            None => None,
        };
        match sent {
            Some(client) => {
                self.stats.transaction_started();
                let failover_after = self.config.failover_after.filter(|_| more);
                let silence = match (spec.no_response_timeout, failover_after) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if let Some(limit) = silence {
                    self.silent.insert(client.clone(), limit);
                }
                self.branches.insert(
                    client,
                    BranchRef {
                        server: key.clone(),
                        id,
                    },
                );
            }
            None => {
                // No address or listener for the next hop: as a transport error.
                self.fail_over(key, id, false);
                let actions = self
                    .contexts
                    .get_mut(key)
                    .and_then(|c| c.rc.on_transport_error(id).ok());
                if let Some(actions) = actions {
                    self.perform(key, actions);
                }
            }
        }
        Ok(true)
    }

    /// One branch's request (§16.6 steps 1-8) with `spec.routes` (the forward's and
    /// the target's own preloaded Routes) and where it goes: `flow` when given, else
    /// the first of `servers` (or of the servers the next hop resolves to), the others
    /// kept for failover; no destination when the next hop cannot be resolved or we
    /// have no listener of its transport.
    fn build_branch(
        &self,
        ctx: &Context,
        spec: &BranchSpec<'_>,
        flow: Option<Flow>,
        servers: Option<Servers>,
    ) -> Result<Built, RoutingError> {
        let forward_spec = ForwardSpec {
            target: spec.target,
            record_route: None,
            preload_routes: spec.routes,
        };
        let Forwarded {
            mut request,
            next_hop,
        } = forward(&ctx.request, &forward_spec)?;
        let mut servers = match flow {
            Some(_) => Servers::new(),
            None => servers.unwrap_or_else(|| self.config.targets(&next_hop)),
        };
        let first = (!servers.is_empty()).then(|| servers.remove(0));
        let kind = match (flow, first) {
            (Some(flow), _) => flow.kind(),
            (None, Some(hop)) => hop.kind,
            (None, None) => next_hop.transport,
        };
        let outbound = self.outbound(kind, flow);
        if spec.record_route {
            if let Some(out) = outbound {
                let rr = self.record_route(&ctx.source, kind, out, spec.record_route_user);
                let sips = needs_sips(&request);
                insert_record_route(&mut request, &rr, sips);
            }
        }
        let (via_addr, via_face) = outbound.unwrap_or((ctx.source.local, Face::Main));
        let to = first.filter(|_| flow.is_none()).map(|hop| hop.addr);
        let via = LocalVia {
            transport: kind,
            host: self.host(via_face, via_addr),
            port: Some(self.via_port(kind, to, via_addr)),
            rport: false,
        };
        add_via_with(&mut request, &via, |s| {
            self.shard.push_branch_start(s);
            ctx.loop_hash.push_after_magic(s);
        });
        if let Some(flow) = flow {
            return Ok(Built {
                request,
                dest: Some(Target::Flow(flow)),
                rest: Servers::new(),
            });
        }
        let dest = match (outbound, first) {
            (Some(_), Some(hop)) => Some(Target::Destination(Destination {
                kind,
                addr: hop.addr,
                server_name: (kind == TransportKind::Tls
                    && crate::proxy::ip_of(&next_hop.host).is_none())
                .then(|| next_hop.host.clone()),
            })),
            _ => {
                tracing::info!(host = %next_hop.host, %kind, "next hop unreachable: no address or listener");
                None
            }
        };
        Ok(Built {
            request,
            dest,
            rest: servers,
        })
    }

    /// Our Record-Route: one value when the request leaves on the listener it arrived
    /// on, else two (RFC 5658).
    /// `user`, if any, is the user part of each value.
    fn record_route(
        &self,
        source: &Source,
        out_kind: TransportKind,
        (out, out_face): (SocketAddr, Face),
        user: Option<&str>,
    ) -> RecordRoute {
        let in_kind = source.flow.kind();
        let (inbound_addr, in_face) = self
            .transport
            .listener_of(&source.flow, Some(source.local))
            .unwrap_or((source.local, Face::Main));
        let uri = |kind: TransportKind, addr: SocketAddr, face: Face| RouteUri {
            host: self.host(face, addr).into_owned(),
            port: Some(addr.port()),
            transport: (kind != TransportKind::Udp).then_some(kind),
            user: user.map(str::to_string),
        };
        if (in_kind, inbound_addr) == (out_kind, out) {
            RecordRoute::Single(uri(out_kind, out, out_face))
        } else {
            RecordRoute::Double {
                inbound: uri(in_kind, inbound_addr, in_face),
                outbound: uri(out_kind, out, out_face),
            }
        }
    }

    /// The listener a request of `kind` leaves by: the flow's when it goes over one,
    /// else the first listener of the kind on the face toward destinations.
    fn outbound(&self, kind: TransportKind, flow: Option<Flow>) -> Option<(SocketAddr, Face)> {
        match flow {
            Some(flow) => self.transport.listener_of(&flow, None),
            None => {
                let face = self.transport.face_toward_destinations(kind);
                let addr = self.transport.local_addr_on(kind, face)?;
                Some((addr, face))
            }
        }
    }

    /// The port of our Via on a client transaction's request of `kind` sent by the
    /// listener at `listener`: over UDP to the address `to` (not over a flow), the
    /// port of this shard's client socket it leaves by when the engine has them
    /// (several shards), so that the response comes back to this shard; else the
    /// listener's.
    fn via_port(&self, kind: TransportKind, to: Option<SocketAddr>, listener: SocketAddr) -> u16 {
        to.filter(|_| kind == TransportKind::Udp)
            .and_then(|to| self.transport.client_addr_toward(to))
            .map_or(listener.port(), |client| client.port())
    }

    /// Our host in Via and Record-Route for a listener at `addr` facing `face`: the
    /// face's advertised host, else the listener's address.
    fn host(&self, face: Face, addr: SocketAddr) -> Cow<'_, str> {
        if let Some(host) = self.config.advertised(face) {
            return Cow::Borrowed(host);
        }
        match self.listener_hosts.iter().find(|(ip, _)| *ip == addr.ip()) {
            Some((_, text)) => Cow::Borrowed(text),
            None => Cow::Owned(host_text(addr.ip())),
        }
    }

    fn on_branch(&mut self, key: &TransactionKey, event: BranchEvent) {
        if let BranchEvent::Response(response) = &event {
            self.stats
                .response_in(response.status().unwrap_or_default());
        }
        if self.originated.contains_key(key) {
            self.on_originated(key, event);
            return;
        }
        let branch = self.branches.get(key).cloned();
        let ctx = branch
            .as_ref()
            .and_then(|b| self.contexts.get(&b.server).map(|c| (b, c)));
        let Some((branch, ctx)) = ctx else {
            if let BranchEvent::Response(response) = event {
                self.stray(response);
            }
            return;
        };
        let over_flow = ctx
            .dests
            .iter()
            .any(|(id, t)| *id == branch.id && matches!(t, Target::Flow(_)));
        // RFC 3263 §4.3: the next server is tried before the failure is recorded, so
        // that the context waits for it instead of answering.
        if failover::fails_over(&event, ctx.rc.branch_state(branch.id), over_flow) {
            let down = !matches!(event, BranchEvent::Response(_));
            self.fail_over(&branch.server, branch.id, down);
        }
        let Some(ctx) = self.contexts.get_mut(&branch.server) else {
            return;
        };
        let result = match event {
            BranchEvent::Response(response) => ctx.rc.on_response(branch.id, response),
            BranchEvent::Timeout => ctx.rc.on_timeout(branch.id),
            BranchEvent::TimerC => ctx.rc.on_timer_c(branch.id),
            BranchEvent::TransportError if over_flow => ctx.rc.on_flow_failed(branch.id),
            BranchEvent::TransportError => ctx.rc.on_transport_error(branch.id),
            BranchEvent::NoResponse => ctx.rc.on_no_response(branch.id),
        };
        let server = branch.server.clone();
        match result {
            Ok(actions) => self.perform(&server, actions),
            Err(error) => tracing::debug!(%error, "branch event ignored"),
        }
    }

    /// Sends a request the node originated ([`Originator`]): our Via, toward the next
    /// hop of its Route set or Request-URI (RFC 3261 §8.1.2), in a client transaction.
    fn originate(&mut self, Originate { request, done }: Originate) {
        match self.send_originated(request) {
            Ok(key) => {
                self.stats.transaction_started();
                self.originated.insert(key, done);
            }
            Err(error) => {
                tracing::info!(%error, "originated request not sent");
                let _ = done.send(Err(error));
            }
        }
    }

    fn send_originated(&mut self, request: SipMessage) -> Result<TransactionKey, OriginateError> {
        let unroutable = |e: &dyn std::fmt::Display| OriginateError::Unroutable(e.to_string());
        let spec = ForwardSpec {
            target: None,
            record_route: None,
            preload_routes: &[],
        };
        // The routing step of a proxy decrements Max-Forwards: a UAC sends its own.
        let max_forwards = request
            .headers
            .get_str(&HeaderName::MaxForwards)
            .unwrap_or("70")
            .to_string();
        let Forwarded {
            mut request,
            next_hop,
        } = forward(&request, &spec).map_err(|e| unroutable(&e))?;
        request.headers.set(HeaderName::MaxForwards, max_forwards);
        // The first server the next hop resolves to (RFC 3263 §4.3); no failover to the
        // others for a request of our own.
        let server = self
            .config
            .targets(&next_hop)
            .first()
            .copied()
            .ok_or_else(|| unroutable(&format_args!("no address for {}", next_hop.host)))?;
        let kind = server.kind;
        let (addr, face) = self
            .outbound(kind, None)
            .ok_or_else(|| unroutable(&format_args!("no {kind} listener")))?;
        let mut branch = String::new();
        self.shard.push_branch_start(&mut branch);
        build::push_random_hex(&mut branch, 16);
        let via = LocalVia {
            transport: kind,
            host: self.host(face, addr),
            port: Some(self.via_port(kind, Some(server.addr), addr)),
            rport: false,
        };
        add_via(&mut request, &via, &branch);
        let dest = Target::Destination(Destination {
            kind,
            addr: server.addr,
            server_name: (kind == TransportKind::Tls
                && crate::proxy::ip_of(&next_hop.host).is_none())
            .then(|| next_hop.host.clone()),
        });
        self.layer
            .send_request(request, Peer::Downstream(dest), kind.is_reliable())
            .map_err(|e| unroutable(&e))
    }

    /// An event of an originated request's client transaction: its final response or
    /// failure goes to whoever waits ([`Originator::send`]); provisional responses are
    /// absorbed.
    fn on_originated(&mut self, key: &TransactionKey, event: BranchEvent) {
        let outcome = match event {
            BranchEvent::Response(response) if response.status().unwrap_or(0) < 200 => return,
            BranchEvent::Response(response) => Ok(response),
            BranchEvent::Timeout | BranchEvent::TimerC | BranchEvent::NoResponse => {
                Err(OriginateError::Timeout)
            }
            BranchEvent::TransportError => Err(OriginateError::Transport),
        };
        if let Some(done) = self.originated.remove(key) {
            let _ = done.send(outcome);
        }
    }

    /// Carries out a response context's actions.
    fn perform(&mut self, server: &TransactionKey, actions: Actions) {
        if let Some(held) = actions.held {
            self.ask_on_failure(server, held);
        }
        if let Some(mut response) = actions.forward {
            let mut hold = None;
            if let Some(ctx) = self.contexts.get(server) {
                self.policy
                    .on_response(&ctx.request, &ctx.source, &mut response);
                if response.status().is_some_and(|c| c >= 200) {
                    hold = self
                        .policy
                        .hold_response(&ctx.request, &ctx.source, &response);
                }
            }
            match hold {
                Some(hold) => self.decide(deciding::relay(server.clone(), hold, response)),
                None => self.upstream(server, response),
            }
        }
        for (id, cancel) in actions.cancel {
            let dest = self
                .contexts
                .get(server)
                .and_then(|c| c.dests.iter().find(|(b, _)| *b == id))
                .map(|(_, d)| d.clone());
            let Some(dest) = dest else {
                continue;
            };
            let reliable = target_kind(&dest).is_reliable();
            match self
                .layer
                .send_request(cancel, Peer::Downstream(dest), reliable)
            {
                Ok(_) => self.stats.transaction_started(),
                Err(error) => tracing::warn!(%error, "CANCEL not sent"),
            }
        }
    }

    /// Sends a response that went through the response context upstream; a 2xx to
    /// an INVITE whose server transaction has ended goes on statelessly (§16.7).
    fn upstream(&mut self, server: &TransactionKey, response: SipMessage) {
        let is_2xx_invite =
            response.status().is_some_and(|c| (200..300).contains(&c)) && cseq_is_invite(&response);
        let copy = is_2xx_invite.then(|| response.clone());
        if !self.respond(server, response) {
            if let Some(response) = copy {
                self.stateless_response(response);
            }
        }
    }

    /// Sends a response on a server transaction; false when the layer refused it.
    fn respond(&mut self, key: &TransactionKey, response: SipMessage) -> bool {
        let code = response.status().unwrap_or_default();
        match self.layer.respond(key, response) {
            Ok(()) => {
                self.stats.response_out(code);
                if code >= 200 {
                    if let Some(ctx) = self.contexts.get(key) {
                        self.stats.answered(key.method(), ctx.arrived.elapsed());
                    }
                }
                if code >= 200 && key.method() != &Method::Invite {
                    self.answered.push(key.clone());
                }
                true
            }
            Err(error) => {
                tracing::debug!(%error, code, "response not sent on its transaction");
                false
            }
        }
    }

    /// A response with no client transaction: a 2xx to INVITE whose top Via is ours
    /// is forwarded statelessly (§16.7, §18.2.2); anything else is dropped.
    fn stray(&self, mut response: SipMessage) {
        let code = response.status().unwrap_or_default();
        if !((200..300).contains(&code) && cseq_is_invite(&response)) {
            tracing::debug!(code, "stray response dropped");
            return;
        }
        let ours = response
            .headers
            .first_value(&HeaderName::Via)
            .and_then(|v| {
                let text = std::str::from_utf8(&v).ok()?;
                let via = Via::parse(text).ok()?;
                let default = TransportKind::from_token(via.transport)?.default_port();
                Some(self.config.proxy.is_local(via.host, via.port, default))
            })
            .unwrap_or(false);
        if !ours || pop_via(&mut response).is_err() {
            tracing::debug!(code, "stray 2xx not for us dropped");
            return;
        }
        self.stateless_response(response);
    }

    /// Sends a response (our Via already removed) per its top Via (§18.2.2, RFC 3581).
    /// Over a reliable transport this reuses the connection to `received`/`rport`,
    /// which is the one the request arrived on.
    fn stateless_response(&self, response: SipMessage) {
        let dest = match response_destination(&response) {
            Ok(Some(d)) => d,
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(%error, "response has no usable Via");
                return;
            }
        };
        let Some(addr) = dest.hop.socket_addr(|h| self.config.resolve(h)) else {
            tracing::info!(host = %dest.hop.host, "response destination unresolved");
            return;
        };
        self.stats
            .response_out(response.status().unwrap_or_default());
        let target = Target::Destination(Destination {
            kind: dest.hop.transport,
            addr,
            server_name: None,
        });
        self.output.stateless(target, &response);
    }

    /// §16.11: an ACK for a 2xx is routed like any request but without state or
    /// Record-Route; our Via branch is a hash of the incoming top Via, so an ACK
    /// retransmission carries the same branch.
    /// The policy may send it over a flow instead, or drop it ([`Policy::ack_route`]).
    fn forward_ack(&self, mut ack: SipMessage, source: &Source) {
        let validated = match validate(&ack, &self.config.proxy) {
            Ok(v) => v,
            Err(error) => {
                tracing::debug!(%error, "ACK dropped");
                return;
            }
        };
        drop(validated);
        let routed = preprocess_route(&mut ack, &self.config.proxy).and_then(|p| {
            if p.popped_route.is_some() {
                pop_own_route(&mut ack, &self.config.proxy)?;
            }
            let forwarded = forward(&ack, &ForwardSpec::default())?;
            Ok((forwarded, p.popped_route))
        });
        let (
            Forwarded {
                mut request,
                next_hop,
            },
            popped,
        ) = match routed {
            Ok(f) => f,
            Err(error) => {
                tracing::debug!(%error, "ACK not routable");
                return;
            }
        };
        let flow = match self.policy.ack_route(&mut request, source, popped.as_ref()) {
            AckRoute::NextHop => None,
            AckRoute::Over(flow) => Some(flow),
            AckRoute::Drop => return,
        };
        // Stateless: the first server of the next hop, no failover (§16.11).
        let server = match flow {
            Some(_) => None,
            None => self.config.targets(&next_hop).first().copied(),
        };
        let kind = match (flow, server) {
            (Some(flow), _) => flow.kind(),
            (None, Some(hop)) => hop.kind,
            (None, None) => next_hop.transport,
        };
        let Some((out, face)) = self.outbound(kind, flow) else {
            tracing::info!(host = %next_hop.host, %kind, "ACK next hop unreachable: no listener");
            return;
        };
        let via = LocalVia {
            transport: kind,
            host: self.host(face, out),
            port: Some(out.port()),
            rport: false,
        };
        add_via(&mut request, &via, &ack_branch(&ack));
        let destination = move |addr| {
            Target::Destination(Destination {
                kind,
                addr,
                server_name: None,
            })
        };
        if let Some(flow) = flow {
            self.output.stateless(Target::Flow(flow), &request);
        } else if let Some(hop) = server {
            self.output.stateless(destination(hop.addr), &request);
        } else {
            // A host name not looked up yet: look it up aside, then send to a server
            // of the transport the Via was written for.
            let (config, transport) = (self.config.clone(), self.transport.clone());
            tokio::spawn(async move {
                config.prepare(std::slice::from_ref(&next_hop)).await;
                let servers = config.targets(&next_hop);
                match servers.iter().find(|hop| hop.kind == kind) {
                    Some(hop) => send::stateless(&transport, destination(hop.addr), &request),
                    None => tracing::info!(host = %next_hop.host, "ACK next hop unresolved"),
                }
            });
        }
    }
}

/// The transport a branch is sent over.
fn target_kind(target: &Target) -> TransportKind {
    match target {
        Target::Flow(flow) => flow.kind(),
        Target::Destination(dest) => dest.kind,
    }
}

/// True when the CSeq method is INVITE.
fn cseq_is_invite(msg: &SipMessage) -> bool {
    msg.headers
        .get_str(&HeaderName::CSeq)
        .and_then(|v| v.split_whitespace().nth(1))
        .is_some_and(|m| m == "INVITE")
}

/// The branch of a statelessly forwarded ACK: a hash of the incoming top Via (its
/// branch and sent-by), stable across retransmissions (§16.11).
fn ack_branch(ack: &SipMessage) -> String {
    let top = ack
        .headers
        .first_value(&HeaderName::Via)
        .unwrap_or_default();
    let digest = Md5::digest(&top);
    format!(
        "{BRANCH_MAGIC}{}",
        hex::encode(digest.get(..8).unwrap_or_default())
    )
}
