//! The transport layer: binds the configured listeners, delivers what arrives, and
//! sends over flows or destinations (RFC 3261 §18.1.1, §18.2.2).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::connections::{ConnectionTable, WriteTx};
use super::log_budget::LogBudget;
use super::stream::{self, StreamContext};
use super::udp::{self, UdpIngress, UdpListener};
use super::upward::Upward;
use super::{
    tls, Destination, Face, Flow, SendError, Target, TransportConfig, TransportError,
    TransportEvent, TransportKind, TransportStats,
};

/// What [`TransportLayer::try_send`] could not do at once.
#[derive(Debug)]
pub enum TrySend {
    /// Sending would wait: here are the bytes back, for [`TransportLayer::send`].
    Later(Bytes),
    /// Sending failed (as [`TransportLayer::send`] would have).
    Failed(SendError),
}

struct Shared {
    udp: Vec<UdpListener>,
    listeners: Vec<(TransportKind, SocketAddr)>,
    /// The face of each of `listeners`.
    faces: Vec<Face>,
    streams: Arc<StreamContext>,
    tls_connector: Option<TlsConnector>,
    stats: Arc<TransportStats>,
}

/// The running transport layer. Cheap to clone; listener and connection tasks run on
/// the tokio runtime it was bound in. Dropping the event receiver stops them: listeners
/// close and connections are shut down.
///
/// A layer bound for several shards ([`TransportLayer::bind_shards`]) has one UDP
/// socket per listener and shard; each clone names the shard it sends for
/// ([`TransportLayer::for_shard`]): a datagram to a destination leaves by that shard's
/// socket (all of a listener's sockets share its address).
#[derive(Clone)]
pub struct TransportLayer {
    shared: Arc<Shared>,
    /// The shard whose UDP sockets datagrams to destinations leave by.
    shard: usize,
    /// Whether datagrams to destinations leave by the shard's client socket (when it
    /// has one) rather than by the listener ([`TransportLayer::for_client_requests`]).
    clients: bool,
}

impl TransportLayer {
    /// Binds every configured listener and starts serving; events arrive on the
    /// returned channel (bounded by `limits.queue_depth`: a slow consumer slows the
    /// readers down).
    pub async fn bind(
        config: TransportConfig,
    ) -> Result<(TransportLayer, mpsc::Receiver<TransportEvent>), TransportError> {
        let (layer, events, udp) = TransportLayer::bind_reading_udp(config).await?;
        tokio::spawn(udp::serve(udp));
        Ok((layer, events))
    }

    /// Binds every configured listener like [`TransportLayer::bind`], but leaves the
    /// reading of the UDP sockets to the caller's task through the returned
    /// [`UdpIngress`] (what the proxy engine does, so that a datagram is not handed
    /// from task to task); the channel carries what the TCP and TLS connections
    /// receive. Dropping the receiver stops those; the UDP sockets are read only
    /// through the ingress.
    pub async fn bind_reading_udp(
        config: TransportConfig,
    ) -> Result<(TransportLayer, mpsc::Receiver<TransportEvent>, UdpIngress), TransportError> {
        let (layer, first, _) = TransportLayer::bind_inner(config, 1).await?;
        Ok((layer, first.events, first.udp))
    }

    /// [`TransportLayer::bind_reading_udp`] for `shards` readers (at least one): each
    /// UDP listener gets one socket per shard, bound to the same address with
    /// `SO_REUSEPORT` when there are several (the kernel spreads the datagrams over
    /// them by a hash of the source and destination addresses and ports, so one
    /// peer's datagrams all reach the same socket); the messages of a TCP or TLS
    /// connection all go to the channel of shard `connection id % shards`. The layer
    /// returned sends for shard 0; [`TransportLayer::for_shard`] gives each shard its
    /// own. Dropping every shard's receiver stops the connections.
    pub async fn bind_shards(
        config: TransportConfig,
        shards: usize,
    ) -> Result<(TransportLayer, Vec<ShardInput>), TransportError> {
        let (layer, first, rest) = TransportLayer::bind_inner(config, shards).await?;
        Ok((layer, std::iter::once(first).chain(rest).collect()))
    }

    /// [`TransportLayer::bind_shards`] with shard 0's input apart from the others'.
    async fn bind_inner(
        config: TransportConfig,
        shards: usize,
    ) -> Result<(TransportLayer, ShardInput, Vec<ShardInput>), TransportError> {
        let shards = shards.max(1);
        let limits = &config.limits;
        let stats = Arc::new(TransportStats::default());
        let (first_tx, first_rx) = mpsc::channel(limits.queue_depth.max(1));
        let (more_tx, more_rx): (Vec<_>, Vec<_>) = (1..shards)
            .map(|_| mpsc::channel(limits.queue_depth.max(1)))
            .unzip();
        let upward = Arc::new(Upward {
            events: first_tx,
            more: more_tx,
            limits: limits.parse_limits(),
            stats: stats.clone(),
            log: LogBudget::new(),
            capture: std::sync::OnceLock::new(),
        });
        let tls_acceptor = match (&config.tls_server, config.tls.is_empty()) {
            (Some(source), _) => Some(TlsAcceptor::from(tls::server_config(source)?)),
            (None, false) => return Err(TransportError::NoTlsServerConfig),
            (None, true) => None,
        };
        let tls_connector = match &config.tls_client {
            Some(source) => Some(TlsConnector::from(tls::client_config(source)?)),
            None => None,
        };
        let streams = Arc::new(StreamContext {
            upward: upward.clone(),
            table: Arc::new(ConnectionTable::new(limits, stats.clone())),
            tls_acceptor,
            idle_timeout: limits.idle_timeout,
            io_timeout: limits.connect_timeout,
        });

        let mut listeners = Vec::new();
        let mut faces = Vec::new();
        let mut udp_sockets = Vec::new();
        let core = &config.core;
        let udp_binds = config.udp.iter().map(|a| (Face::Main, a));
        for (face, &addr) in udp_binds.chain(core.udp.iter().map(|a| (Face::Core, a))) {
            let mut bound = addr;
            for shard in 0..shards {
                let (socket, local) = bind_sized(bound, shards > 1, limits.udp_recv_buffer).await?;
                // The other shards' sockets join the first one's port (chosen by the
                // kernel when 0 was asked).
                bound = local;
                udp_sockets.push(UdpListener {
                    socket: Arc::new(socket),
                    local,
                    face,
                    shard,
                    client_of: None,
                });
            }
            listeners.push((TransportKind::Udp, bound));
            faces.push(face);
        }
        if shards > 1 {
            let clients = bind_clients(
                &udp_sockets,
                shards,
                config.shard_ports,
                limits.udp_recv_buffer,
            )
            .await?;
            udp_sockets.extend(clients);
        }
        let mut tcp = Vec::new();
        for (face, kind, addrs) in [
            (Face::Main, TransportKind::Tcp, &config.tcp),
            (Face::Main, TransportKind::Tls, &config.tls),
            (Face::Core, TransportKind::Tcp, &core.tcp),
            (Face::Core, TransportKind::Tls, &core.tls),
        ] {
            for &addr in addrs {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| bind_error(kind, addr, source))?;
                let local = listener
                    .local_addr()
                    .map_err(|source| bind_error(kind, addr, source))?;
                listeners.push((kind, local));
                faces.push(face);
                tcp.push((kind, listener));
            }
        }
        // Everything is bound: start serving.
        let first = ShardInput {
            events: first_rx,
            udp: UdpIngress::new(&udp_sockets, 0, upward.clone()),
        };
        let rest = (1..)
            .zip(more_rx)
            .map(|(shard, events)| ShardInput {
                events,
                udp: UdpIngress::new(&udp_sockets, shard, upward.clone()),
            })
            .collect();
        for (kind, listener) in tcp {
            tokio::spawn(stream::accept_loop(listener, kind, streams.clone()));
        }
        for ((kind, local), face) in listeners.iter().zip(&faces) {
            tracing::info!(%kind, %local, ?face, "SIP listener bound");
        }
        let shared = Arc::new(Shared {
            udp: udp_sockets,
            listeners,
            faces,
            streams,
            tls_connector,
            stats,
        });
        let layer = TransportLayer {
            shared,
            shard: 0,
            clients: false,
        };
        Ok((layer, first, rest))
    }

    /// This layer sending for `shard`: datagrams to destinations leave by that shard's
    /// UDP socket of the listener (shard 0's when there is no such shard).
    pub fn for_shard(&self, shard: usize) -> TransportLayer {
        TransportLayer {
            shared: self.shared.clone(),
            shard,
            clients: false,
        }
    }

    /// This layer with UDP datagrams to destinations leaving by its shard's client
    /// socket, when the layer has client sockets (bound for more than one shard,
    /// [`TransportLayer::bind_shards`]), else by the listener as before: the layer a
    /// proxy's client transactions send with, so that their responses come back to
    /// the shard that sent them. Their Via must name that socket's port
    /// ([`TransportLayer::client_addr_toward`]).
    pub fn for_client_requests(&self) -> TransportLayer {
        TransportLayer {
            shared: self.shared.clone(),
            shard: self.shard,
            clients: true,
        }
    }

    /// The address of this layer's shard's client socket a UDP request to `to` leaves
    /// by with [`TransportLayer::for_client_requests`]; `None` without client sockets
    /// (it leaves by the listener).
    pub fn client_addr_toward(&self, to: SocketAddr) -> Option<SocketAddr> {
        let (_, listener) = self.listener_toward(to)?;
        let (_, client) = self.client_socket_of(listener)?;
        Some(client.local)
    }

    /// Every shard's client sockets: each one's address and face (its listener's).
    pub fn client_addrs(&self) -> impl Iterator<Item = (SocketAddr, Face)> + '_ {
        self.shared
            .udp
            .iter()
            .filter(|l| l.client_of.is_some())
            .map(|l| (l.local, l.face))
    }

    /// True when `flow` is over a shard's client socket (what arrives there should be
    /// a response to a request it sent).
    pub fn is_client_flow(&self, flow: &Flow) -> bool {
        flow.kind == TransportKind::Udp
            && usize::try_from(flow.id)
                .ok()
                .and_then(|i| self.shared.udp.get(i))
                .is_some_and(|l| l.client_of.is_some())
    }

    /// Copies every message received and sent from now on to the HEP v3 collector
    /// `collector` over UDP as capture agent `agent_id` ([`super::hep`]); false when a
    /// collector was already set.
    pub fn capture_to(&self, collector: SocketAddr, agent_id: u32) -> std::io::Result<bool> {
        let capture = super::hep::Capture::new(collector, agent_id)?;
        Ok(self.shared.streams.upward.capture.set(capture).is_ok())
    }

    /// The bound listeners with their actual addresses (ports chosen when 0 was asked).
    pub fn local_addrs(&self) -> &[(TransportKind, SocketAddr)] {
        &self.shared.listeners
    }

    /// The first bound listener of `kind` (of either face).
    pub fn local_addr(&self, kind: TransportKind) -> Option<SocketAddr> {
        self.shared
            .listeners
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, a)| *a)
    }

    /// The first bound listener of `kind` facing `face`.
    pub fn local_addr_on(&self, kind: TransportKind, face: Face) -> Option<SocketAddr> {
        self.listeners()
            .find(|&(k, _, f)| k == kind && f == face)
            .map(|(_, a, _)| a)
    }

    /// The bound listeners with their faces.
    pub fn listeners(&self) -> impl Iterator<Item = (TransportKind, SocketAddr, Face)> + '_ {
        let shared = &self.shared;
        shared
            .listeners
            .iter()
            .zip(&shared.faces)
            .map(|(&(kind, addr), &face)| (kind, addr, face))
    }

    /// Whether the node has listeners toward its core ([`Face::Core`]).
    pub fn has_core_face(&self) -> bool {
        self.shared.faces.contains(&Face::Core)
    }

    /// The face requests to a destination leave from: [`Face::Core`] when the node has
    /// listeners of `kind` there, else [`Face::Main`].
    pub fn face_toward_destinations(&self, kind: TransportKind) -> Face {
        match self.local_addr_on(kind, Face::Core) {
            Some(_) => Face::Core,
            None => Face::Main,
        }
    }

    /// The listener a message of `flow` arrived on or leaves by, and its face: the UDP
    /// socket of a UDP flow (for a shard's client socket, the listener it sends for);
    /// for a stream, the listener of its kind whose address is
    /// `local` (the connection's local address), else (a connection we opened has an
    /// ephemeral port, or `local` is unknown) the first listener of the kind on the
    /// main face.
    pub fn listener_of(
        &self,
        flow: &Flow,
        local: Option<SocketAddr>,
    ) -> Option<(SocketAddr, Face)> {
        if flow.kind == TransportKind::Udp {
            let udp = usize::try_from(flow.id)
                .ok()
                .and_then(|i| self.shared.udp.get(i))?;
            return Some((udp.listener(), udp.face));
        }
        let of_kind = || self.listeners().filter(|&(k, _, _)| k == flow.kind);
        let is_local = |addr: SocketAddr| {
            local.is_some_and(|l| {
                addr.port() == l.port() && (addr.ip() == l.ip() || addr.ip().is_unspecified())
            })
        };
        of_kind()
            .find(|&(_, addr, _)| is_local(addr))
            .or_else(|| of_kind().find(|&(_, _, f)| f == Face::Main))
            .map(|(_, addr, face)| (addr, face))
    }

    /// Counters for metrics.
    pub fn stats(&self) -> &TransportStats {
        &self.shared.stats
    }

    /// Sends serialized message bytes and returns the flow used.
    ///
    /// Over a [`Target::Flow`], only that flow is used (a UDP flow sends from the
    /// socket the request arrived on). Over a [`Target::Destination`], UDP sends from
    /// the first listening socket of the destination's address family (so the source
    /// port is the listening port and `rport` works, RFC 3581), on the core face when
    /// the node has one; TCP and TLS reuse the
    /// newest open connection to the address (including one the peer opened) or open
    /// one within `connect_timeout`. SCTP and WebSocket destinations are refused.
    pub async fn send(&self, target: &Target, bytes: Bytes) -> Result<Flow, SendError> {
        if let Some(udp) = self.udp_flow(target) {
            let (flow, listener) = udp?;
            return self.send_udp(listener, flow, &bytes).await;
        }
        match target {
            Target::Flow(flow) => {
                let tx = self
                    .shared
                    .streams
                    .table
                    .writer(flow)
                    .ok_or(SendError::FlowClosed(*flow))?;
                tx.send(bytes)
                    .await
                    .map_err(|_| SendError::FlowClosed(*flow))?;
                Ok(*flow)
            }
            Target::Destination(dest)
                if !matches!(
                    dest.kind,
                    TransportKind::Udp | TransportKind::Tcp | TransportKind::Tls
                ) =>
            {
                Err(SendError::Unsupported(dest.kind))
            }
            Target::Destination(dest) => {
                let table = &self.shared.streams.table;
                if let Some((flow, tx)) = table.by_remote(dest.kind, dest.addr) {
                    // The connection may close between lookup and send: then connect anew.
                    if tx.send(bytes.clone()).await.is_ok() {
                        return Ok(flow);
                    }
                }
                let (flow, tx) = self.connect(dest).await?;
                tx.send(bytes)
                    .await
                    .map_err(|_| SendError::FlowClosed(flow))?;
                Ok(flow)
            }
        }
    }

    /// Sends without waiting, from the caller's task: a UDP datagram with
    /// `try_send_to`, or the bytes queued on the writer of an open stream connection
    /// (the flow's, or the newest to the destination). Returns the bytes in
    /// [`TrySend::Later`] when that would wait (socket buffer or writer queue full, or
    /// no connection open yet): give them to [`TransportLayer::send`] then.
    pub fn try_send(&self, target: &Target, bytes: Bytes) -> Result<Flow, TrySend> {
        if let Some(udp) = self.udp_flow(target) {
            let (flow, listener) = udp.map_err(TrySend::Failed)?;
            return self.try_send_udp(listener, flow, bytes);
        }
        let (flow, tx) = match target {
            Target::Flow(flow) => {
                let tx = self.shared.streams.table.writer(flow);
                (
                    *flow,
                    tx.ok_or(TrySend::Failed(SendError::FlowClosed(*flow)))?,
                )
            }
            Target::Destination(dest) => {
                let table = &self.shared.streams.table;
                match table.by_remote(dest.kind, dest.addr) {
                    Some(open) => open,
                    None => return Err(TrySend::Later(bytes)),
                }
            }
        };
        match tx.try_send(bytes) {
            Ok(()) => Ok(flow),
            Err(mpsc::error::TrySendError::Full(bytes)) => Err(TrySend::Later(bytes)),
            Err(mpsc::error::TrySendError::Closed(bytes)) => match target {
                Target::Flow(_) => Err(TrySend::Failed(SendError::FlowClosed(flow))),
                // Closed between lookup and send: `send` connects anew.
                Target::Destination(_) => Err(TrySend::Later(bytes)),
            },
        }
    }

    /// The flow a message to a UDP `target` leaves by, with its socket; `None` when
    /// the target is not UDP.
    pub(super) fn udp_flow(
        &self,
        target: &Target,
    ) -> Option<Result<(Flow, &UdpListener), SendError>> {
        match target {
            Target::Flow(flow) if flow.kind == TransportKind::Udp => Some(
                usize::try_from(flow.id)
                    .ok()
                    .and_then(|i| self.shared.udp.get(i))
                    .map(|listener| (*flow, listener))
                    .ok_or(SendError::FlowClosed(*flow)),
            ),
            Target::Destination(dest) if dest.kind == TransportKind::Udp => {
                Some(match self.udp_toward(dest) {
                    Some((index, listener)) => Ok((
                        Flow {
                            kind: TransportKind::Udp,
                            remote: dest.addr,
                            id: index,
                        },
                        listener,
                    )),
                    None => Err(SendError::NoListener {
                        kind: dest.kind,
                        addr: dest.addr,
                    }),
                })
            }
            _ => None,
        }
    }

    /// The UDP listening sockets, by flow id.
    pub(super) fn udp_listeners(&self) -> &[UdpListener] {
        &self.shared.udp
    }

    /// Counts a message written to `to` from the UDP socket at `from` and copies it to
    /// the HEP collector, if any.
    pub(super) fn sent_udp(&self, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        TransportStats::inc(&self.shared.stats.messages_out);
        let upward = &self.shared.streams.upward;
        upward.copy(TransportKind::Udp, from, to, bytes);
    }

    /// The UDP socket (and its index) requests to `dest` leave from: the first of the
    /// destination's address family facing [`Self::face_toward_destinations`], this
    /// layer's shard's (else shard 0's).
    /// With [`TransportLayer::for_client_requests`], the shard's client socket of that
    /// listener when it has one.
    fn udp_toward(&self, dest: &Destination) -> Option<(u64, &UdpListener)> {
        let listener = self.listener_toward(dest.addr)?;
        if self.clients {
            if let Some(client) = self.client_socket_of(listener.1) {
                return Some(client);
            }
        }
        Some(listener)
    }

    /// The listening socket (and its index) of this layer's shard (else shard 0's)
    /// requests to `to` leave from: the first of the address's family facing
    /// [`Self::face_toward_destinations`].
    fn listener_toward(&self, to: SocketAddr) -> Option<(u64, &UdpListener)> {
        let face = self.face_toward_destinations(TransportKind::Udp);
        let of_shard = |shard: usize| {
            (0u64..)
                .zip(&self.shared.udp)
                .filter(|(_, l)| l.client_of.is_none() && l.face == face && l.shard == shard)
                .find(|(_, l)| l.local.is_ipv4() == to.is_ipv4())
        };
        of_shard(self.shard).or_else(|| of_shard(0))
    }

    /// The client socket (and its index) of `listener`'s shard sending for it, if any.
    fn client_socket_of(&self, listener: &UdpListener) -> Option<(u64, &UdpListener)> {
        (0u64..)
            .zip(&self.shared.udp)
            .find(|(_, l)| l.client_of == Some(listener.local) && l.shard == listener.shard)
    }

    fn try_send_udp(
        &self,
        listener: &UdpListener,
        flow: Flow,
        bytes: Bytes,
    ) -> Result<Flow, TrySend> {
        let addr = flow.remote;
        match listener.socket.try_send_to(&bytes, addr) {
            Ok(_) => {
                self.sent_udp(listener.local, addr, &bytes);
                Ok(flow)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(TrySend::Later(bytes)),
            Err(source) => Err(TrySend::Failed(SendError::Io { addr, source })),
        }
    }

    async fn send_udp(
        &self,
        listener: &UdpListener,
        flow: Flow,
        bytes: &[u8],
    ) -> Result<Flow, SendError> {
        let addr = flow.remote;
        listener
            .socket
            .send_to(bytes, addr)
            .await
            .map_err(|source| SendError::Io { addr, source })?;
        self.sent_udp(listener.local, addr, bytes);
        Ok(flow)
    }

    /// Opens a TCP or TLS connection to `dest` and starts serving it.
    async fn connect(&self, dest: &Destination) -> Result<(Flow, WriteTx), SendError> {
        let addr = dest.addr;
        let ctx = &self.shared.streams;
        let mut slot = ctx
            .table
            .reserve(addr.ip())
            .ok_or(SendError::ConnectionLimit(addr))?;
        let tcp = timeout(ctx.io_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| SendError::Timeout(addr))?
            .map_err(|source| SendError::Io { addr, source })?;
        let local = tcp
            .local_addr()
            .map_err(|source| SendError::Io { addr, source })?;
        let _ = tcp.set_nodelay(true);
        if dest.kind == TransportKind::Tls {
            let connector = self
                .shared
                .tls_connector
                .as_ref()
                .ok_or(SendError::NoTlsClientConfig)?;
            let name = match &dest.server_name {
                Some(name) => ServerName::try_from(name.clone())
                    .map_err(|_| SendError::InvalidServerName(name.clone()))?,
                None => ServerName::IpAddress(addr.ip().into()),
            };
            let tls = timeout(ctx.io_timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| SendError::Timeout(addr))?
                .map_err(|source| SendError::Io { addr, source })?;
            let (flow, tx, rx) = slot.register(dest.kind, addr);
            tokio::spawn(stream::serve(tls, slot, flow, local, None, rx, ctx.clone()));
            Ok((flow, tx))
        } else {
            let (flow, tx, rx) = slot.register(dest.kind, addr);
            tokio::spawn(stream::serve(tcp, slot, flow, local, None, rx, ctx.clone()));
            Ok((flow, tx))
        }
    }
}

/// What one shard of a layer bound by [`TransportLayer::bind_shards`] reads: its UDP
/// sockets and the channel of its stream connections' messages.
pub struct ShardInput {
    /// What the shard's TCP and TLS connections receive.
    pub events: mpsc::Receiver<TransportEvent>,
    /// The shard's UDP sockets.
    pub udp: UdpIngress,
}

/// A UDP socket bound to `addr`; with `shared`, with `SO_REUSEPORT` so that the other
/// shards' sockets can bind the same address.
async fn bind_udp(addr: SocketAddr, shared: bool) -> std::io::Result<UdpSocket> {
    if !shared {
        return UdpSocket::bind(addr).await;
    }
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// [`bind_udp`] with a receive buffer of `recv_buffer` bytes (up to the kernel's cap):
/// the socket and its bound address.
async fn bind_sized(
    addr: SocketAddr,
    shared: bool,
    recv_buffer: usize,
) -> Result<(UdpSocket, SocketAddr), TransportError> {
    let socket = bind_udp(addr, shared)
        .await
        .map_err(|source| bind_error(TransportKind::Udp, addr, source))?;
    let local = socket
        .local_addr()
        .map_err(|source| bind_error(TransportKind::Udp, addr, source))?;
    if let Err(error) = socket2::SockRef::from(&socket).set_recv_buffer_size(recv_buffer) {
        tracing::warn!(%error, %local, "cannot size the UDP receive buffer");
    }
    Ok((socket, local))
}

/// The shards' client sockets: for each address family, the first UDP listener
/// requests leave from (on the core face when there are UDP listeners there) gets one
/// per shard, bound to its IP address and port `base + shard` (ephemeral without a
/// base), with a receive buffer of `recv_buffer` bytes.
async fn bind_clients(
    sockets: &[UdpListener],
    shards: usize,
    base: Option<u16>,
    recv_buffer: usize,
) -> Result<Vec<UdpListener>, TransportError> {
    let out_face = if sockets.iter().any(|l| l.face == Face::Core) {
        Face::Core
    } else {
        Face::Main
    };
    let firsts = [true, false].into_iter().filter_map(|v4| {
        sockets
            .iter()
            .find(|l| l.shard == 0 && l.face == out_face && l.local.is_ipv4() == v4)
    });
    let mut clients = Vec::new();
    for listener in firsts {
        for shard in 0..shards {
            let port = match base {
                Some(base) => u16::try_from(shard)
                    .ok()
                    .and_then(|s| base.checked_add(s))
                    .ok_or_else(|| {
                        let error = std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            "shard_ports + shards goes beyond port 65535",
                        );
                        bind_error(TransportKind::Udp, listener.local, error)
                    })?,
                None => 0,
            };
            let addr = SocketAddr::new(listener.local.ip(), port);
            let (socket, local) = bind_sized(addr, false, recv_buffer).await?;
            tracing::info!(%local, listener = %listener.local, shard, "SIP shard client socket bound");
            clients.push(UdpListener {
                socket: Arc::new(socket),
                local,
                face: listener.face,
                shard,
                client_of: Some(listener.local),
            });
        }
    }
    Ok(clients)
}

fn bind_error(kind: TransportKind, addr: SocketAddr, source: std::io::Error) -> TransportError {
    TransportError::Bind { kind, addr, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::TransportLimits;

    /// `net.core.rmem_max`, the kernel's cap on what `SO_RCVBUF` may ask.
    fn rmem_max() -> usize {
        std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(212_992)
    }

    #[tokio::test]
    async fn udp_sockets_get_the_receive_buffer_asked_up_to_the_kernel_cap() {
        let asked = 1 << 20;
        let config = TransportConfig {
            udp: vec!["127.0.0.1:0".parse().unwrap()],
            limits: TransportLimits {
                udp_recv_buffer: asked,
                ..TransportLimits::default()
            },
            ..TransportConfig::default()
        };
        let (layer, _events) = TransportLayer::bind(config).await.unwrap();
        let socket = &layer.shared.udp[0].socket;
        let got = socket2::SockRef::from(&**socket)
            .recv_buffer_size()
            .unwrap();
        // Linux doubles the value for its bookkeeping; the cap applies before that.
        assert!(got >= asked.min(rmem_max()), "{got}");
    }

    /// Two free UDP ports in a row on 127.0.0.1 (as free as a probe can tell).
    fn two_free_ports() -> u16 {
        for _ in 0..100 {
            let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = probe.local_addr().unwrap().port();
            if port < u16::MAX && std::net::UdpSocket::bind(("127.0.0.1", port + 1)).is_ok() {
                return port;
            }
        }
        panic!("no two free ports in a row");
    }

    #[tokio::test]
    async fn shard_client_sockets_take_the_base_ports_on_the_core_listener_ip() {
        let base = two_free_ports();
        let config = TransportConfig {
            udp: vec!["127.0.0.1:0".parse().unwrap()],
            core: crate::transport::CoreListeners {
                udp: vec!["127.0.0.2:0".parse().unwrap()],
                ..Default::default()
            },
            shard_ports: Some(base),
            ..TransportConfig::default()
        };
        let (layer, _inputs) = TransportLayer::bind_shards(config, 2).await.unwrap();
        let clients: Vec<_> = layer.client_addrs().collect();
        let core_ip = "127.0.0.2".parse::<std::net::IpAddr>().unwrap();
        assert_eq!(
            clients,
            [
                (SocketAddr::new(core_ip, base), Face::Core),
                (SocketAddr::new(core_ip, base + 1), Face::Core)
            ]
        );
        let core = layer.local_addr_on(TransportKind::Udp, Face::Core).unwrap();
        let to: SocketAddr = "127.0.0.9:5060".parse().unwrap();
        let dest = Target::Destination(Destination {
            kind: TransportKind::Udp,
            addr: to,
            server_name: None,
        });
        for (shard, (client, _)) in clients.iter().enumerate() {
            let layer = layer.for_shard(shard);
            assert_eq!(layer.client_addr_toward(to), Some(*client));
            // A client socket belongs to its listener (the face, Record-Route).
            let (flow, _) = layer
                .for_client_requests()
                .udp_flow(&dest)
                .unwrap()
                .unwrap();
            assert!(layer.is_client_flow(&flow));
            assert_eq!(layer.listener_of(&flow, None), Some((core, Face::Core)));
            // Without `for_client_requests`, requests leave by the listener.
            let (flow, _) = layer.udp_flow(&dest).unwrap().unwrap();
            assert!(!layer.is_client_flow(&flow));
        }
        // The listeners are where they were: the client sockets are not listeners.
        assert_eq!(layer.local_addrs().len(), 2);
    }

    #[tokio::test]
    async fn one_shard_has_no_client_socket_and_ports_past_65535_are_refused() {
        let udp = vec!["127.0.0.1:0".parse().unwrap()];
        let config = TransportConfig {
            udp: udp.clone(),
            shard_ports: Some(5300),
            ..TransportConfig::default()
        };
        let (layer, _inputs) = TransportLayer::bind_shards(config, 1).await.unwrap();
        assert_eq!(layer.client_addrs().count(), 0);
        let to = "127.0.0.9:5060".parse().unwrap();
        assert_eq!(layer.client_addr_toward(to), None);
        let config = TransportConfig {
            udp,
            shard_ports: Some(u16::MAX),
            ..TransportConfig::default()
        };
        assert!(TransportLayer::bind_shards(config, 2).await.is_err());
    }
}
