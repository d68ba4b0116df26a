//! UDP listeners (RFC 3261 §18.1.2, §18.2.1): one datagram is one message.
//!
//! [`UdpIngress`] reads every UDP listening socket of a transport layer from the task
//! that owns it: the proxy engine's core polls it beside its timers, so a datagram is
//! parsed, matched and forwarded on the task that read it. Without an owner, a task of
//! its own ([`serve`]) pumps it into the transport's event channel.

use std::future::poll_fn;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::net::UdpSocket;

use super::mmsg;
use super::upward::{Delivered, Upward};
use super::{Flow, Source, TransportEvent, TransportKind, TransportStats};

/// One bound UDP listening socket.
pub(super) struct UdpListener {
    pub(super) socket: Arc<UdpSocket>,
    pub(super) local: SocketAddr,
    pub(super) face: super::Face,
    /// The shard that reads it ([`super::TransportLayer::bind_shards`]).
    pub(super) shard: usize,
    /// For a shard's client socket (the port its UDP client transactions leave from
    /// and their responses come back to): the address of the listener it sends for.
    /// `None` for a listening socket.
    pub(super) client_of: Option<SocketAddr>,
}

impl UdpListener {
    /// The address of the listener this socket belongs to: its own, or for a shard's
    /// client socket the listener's it sends for.
    pub(super) fn listener(&self) -> SocketAddr {
        self.client_of.unwrap_or(self.local)
    }
}

/// Reads the UDP listening sockets of a [`TransportLayer`](super::TransportLayer) and
/// parses what arrives, on the caller's task: each [`UdpIngress::recv`] takes what the
/// sockets hold at once (up to a batch), with no hand-off to another task. On Linux a
/// socket's waiting datagrams are taken with one `recvmmsg` ([`mmsg`]); elsewhere one
/// `recv_from` each. Oversize datagrams and bare CRLF keep-alives are dropped here.
pub struct UdpIngress {
    /// The sockets read, each with its address and index among the layer's (the id of
    /// its flows).
    sockets: Vec<(Arc<UdpSocket>, SocketAddr, usize)>,
    upward: Arc<Upward>,
    /// [`SLOTS`] slots of one byte more than the size limit each, to tell an oversize
    /// datagram from a full one. Pages are touched only as datagrams fill them.
    buf: Vec<u8>,
    /// The length of a slot of `buf`.
    slot: usize,
    /// Length and source of each datagram of the last receive call, by slot.
    got: Vec<(usize, SocketAddr)>,
    /// The socket read first by the next call (the others get their turn first when a
    /// batch fills up).
    next: usize,
}

/// Datagrams one receive call may take: a batch on Linux, one elsewhere.
const SLOTS: usize = if cfg!(target_os = "linux") {
    mmsg::MAX_BATCH
} else {
    1
};

impl UdpIngress {
    /// Reads the sockets of `listeners` that belong to `shard`.
    pub(super) fn new(listeners: &[UdpListener], shard: usize, upward: Arc<Upward>) -> UdpIngress {
        let slot = upward.limits.max_message_size.saturating_add(1);
        UdpIngress {
            sockets: listeners
                .iter()
                .enumerate()
                .filter(|(_, l)| l.shard == shard)
                .map(|(index, l)| (l.socket.clone(), l.local, index))
                .collect(),
            upward,
            buf: vec![0u8; slot.saturating_mul(SLOTS)],
            slot,
            got: Vec::with_capacity(SLOTS),
            next: 0,
        }
    }

    /// Waits until a datagram arrives on any socket, then appends to `out` every
    /// message the sockets hold, at most `max` (at least one). Cancel-safe: datagrams
    /// are read only in the poll that returns them. Never ready without sockets.
    pub async fn recv(&mut self, out: &mut Vec<TransportEvent>, max: usize) {
        let max = max.max(1);
        let start = out.len();
        poll_fn(|cx| {
            self.read_ready(cx, out, start + max);
            if out.len() > start {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// Reads every socket until it would block (registering the waker) or `out` holds
    /// `limit` events.
    fn read_ready(&mut self, cx: &mut Context<'_>, out: &mut Vec<TransportEvent>, limit: usize) {
        let UdpIngress {
            sockets,
            upward,
            buf,
            slot,
            got,
            next,
        } = self;
        let count = sockets.len();
        for turn in 0..count {
            let index = (*next + turn) % count;
            let Some((socket, local, id)) = sockets.get(index) else {
                continue;
            };
            // Each round takes at least one datagram or meets an error: bounded by the
            // batch, with room for as many errors.
            for _ in 0..limit.saturating_mul(2) {
                if out.len() >= limit {
                    // Full: this socket is read first next time.
                    *next = index;
                    return;
                }
                match socket.poll_recv_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(error)) => {
                        tracing::debug!(%local, %error, "UDP readiness error");
                        break;
                    }
                    Poll::Pending => break,
                }
                // Ready: take what the socket holds. A call that would block, or a
                // short batch, clears the readiness, so that the next
                // `poll_recv_ready` registers the waker.
                got.clear();
                match mmsg::recv(socket, buf, *slot, limit - out.len(), got) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(error) => tracing::debug!(%local, %error, "UDP receive error"),
                }
                for (&(n, remote), data) in got.iter().zip(buf.chunks(*slot)) {
                    if let Some(event) = datagram(upward, data, n, *id, *local, remote) {
                        out.push(event);
                    }
                }
            }
        }
        *next = (*next + 1) % count.max(1);
    }
}

/// The event for the datagram of `n` bytes at the start of `buf`, received on socket
/// `index`, if it is one to hand up.
fn datagram(
    upward: &Upward,
    buf: &[u8],
    n: usize,
    index: usize,
    local: SocketAddr,
    remote: SocketAddr,
) -> Option<TransportEvent> {
    let max = upward.limits.max_message_size;
    if n > max {
        TransportStats::inc(&upward.stats.parse_errors);
        if upward.may_log() {
            tracing::warn!(%local, %remote, limit = max, "oversize UDP datagram dropped");
        }
        return None;
    }
    let data = buf.get(..n).unwrap_or_default();
    if data.iter().all(|c| matches!(c, b'\r' | b'\n')) {
        tracing::trace!(%remote, "UDP keep-alive");
        return None;
    }
    let source = Source {
        flow: Flow {
            kind: TransportKind::Udp,
            remote,
            id: index as u64,
        },
        local,
        remote,
        peer_names: None,
    };
    let (event, _hostile) = upward.parse(Bytes::copy_from_slice(data), source);
    Some(event)
}

/// Pumps `ingress` into the transport's event channel until its receiver is dropped.
pub(super) async fn serve(mut ingress: UdpIngress) {
    let upward = ingress.upward.clone();
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            () = ingress.recv(&mut batch, 64) => {}
            () = upward.closed() => return,
        }
        for event in batch.drain(..) {
            if upward.send(event).await == Delivered::Closed {
                return;
            }
        }
    }
}
