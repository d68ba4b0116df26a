//! UDP datagrams written in batches: a task that sends several datagrams in one pass
//! (the proxy engine, for one batch of input) queues them in a [`UdpBatch`] and writes
//! them at the end of the pass with [`TransportLayer::flush_udp`]: one `sendmmsg` per
//! socket on Linux ([`mmsg`]), one `send_to` each elsewhere.
//!
//! Each socket's datagrams leave in the order queued, so the order toward each peer is
//! kept. What a socket cannot take without waiting (its buffer is full), and everything
//! queued after it for that socket, is handed back as [`TrySend::Later`], in order, for
//! [`TransportLayer::send`]; a datagram the kernel refuses is handed back as
//! [`TrySend::Failed`] and the rest still go.

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use smallvec::SmallVec;
use tokio::net::UdpSocket;

use super::mmsg::{self, MAX_BATCH};
use super::{Flow, SendError, Target, TransportLayer, TrySend};

/// UDP datagrams waiting to be written by [`TransportLayer::flush_udp`], each with a
/// tag of the caller's (what to do should it not go out).
#[derive(Debug)]
pub struct UdpBatch<T> {
    queued: Vec<Queued<T>>,
}

#[derive(Debug)]
struct Queued<T> {
    flow: Flow,
    bytes: Bytes,
    tag: T,
}

/// A queued datagram that [`TransportLayer::flush_udp`] did not write.
#[derive(Debug)]
pub struct Unsent<T> {
    /// The flow it was to leave by (a UDP socket and the peer's address).
    pub flow: Flow,
    /// The caller's tag.
    pub tag: T,
    /// [`TrySend::Later`] with the bytes when the socket would block (write them with
    /// [`TransportLayer::send`]); [`TrySend::Failed`] when the kernel refused them.
    pub outcome: TrySend,
}

impl<T> Default for UdpBatch<T> {
    fn default() -> Self {
        UdpBatch { queued: Vec::new() }
    }
}

impl<T> UdpBatch<T> {
    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// How many datagrams are queued.
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Takes every queued datagram out, in order, as not written: for a caller that
    /// must hand them to [`TransportLayer::send`] instead.
    pub fn take(&mut self) -> impl Iterator<Item = (Flow, Bytes, T)> + '_ {
        self.queued.drain(..).map(|q| (q.flow, q.bytes, q.tag))
    }
}

/// What became of one queued datagram.
enum Outcome {
    Sent,
    /// Not tried, or the socket would have blocked.
    Later,
    Failed(io::Error),
}

impl TransportLayer {
    /// Queues `bytes` in `batch` when `target` is UDP, returning the flow it will leave
    /// by; the bytes and tag back (`Ok(Err(..))`) when the target is not UDP; an error when
    /// no UDP socket can send to it (the flow's socket is unknown, or none of the
    /// destination's address family).
    pub fn queue_udp<T>(
        &self,
        batch: &mut UdpBatch<T>,
        target: &Target,
        bytes: Bytes,
        tag: T,
    ) -> Result<Result<Flow, (Bytes, T)>, SendError> {
        let Some(udp) = self.udp_flow(target) else {
            return Ok(Err((bytes, tag)));
        };
        let (flow, _) = udp?;
        batch.queued.push(Queued { flow, bytes, tag });
        Ok(Ok(flow))
    }

    /// Writes the datagrams queued in `batch`, each socket's in order, and empties it;
    /// each one not written is given to `unsent`, in the order queued.
    pub fn flush_udp<T>(&self, batch: &mut UdpBatch<T>, unsent: impl FnMut(Unsent<T>)) {
        self.flush_udp_with(batch, mmsg::send, unsent);
    }

    /// [`TransportLayer::flush_udp`] with `send` writing to a socket (tests put a
    /// socket that would block in its place).
    fn flush_udp_with<T>(
        &self,
        batch: &mut UdpBatch<T>,
        mut send: impl FnMut(&UdpSocket, &[(&[u8], SocketAddr)]) -> io::Result<usize>,
        mut unsent: impl FnMut(Unsent<T>),
    ) {
        let queued = &batch.queued;
        if queued.is_empty() {
            return;
        }
        let mut outcomes: SmallVec<[Outcome; MAX_BATCH]> =
            queued.iter().map(|_| Outcome::Later).collect();
        for (index, listener) in (0u64..).zip(self.udp_listeners()) {
            let mine =
                || (0..queued.len()).filter(|&i| queued.get(i).is_some_and(|q| q.flow.id == index));
            let mut rest = mine().peekable();
            // Each round writes at least one datagram or meets an error: bounded by the
            // datagrams queued.
            while rest.peek().is_some() {
                let chunk: SmallVec<[usize; MAX_BATCH]> = rest.by_ref().take(MAX_BATCH).collect();
                let datagrams: SmallVec<[(&[u8], SocketAddr); MAX_BATCH]> = chunk
                    .iter()
                    .filter_map(|&i| queued.get(i))
                    .map(|q| (&q.bytes[..], q.flow.remote))
                    .collect();
                let mut write = |d: &[(&[u8], SocketAddr)]| send(&listener.socket, d);
                if !write_chunk(&mut write, &datagrams, &chunk, &mut outcomes) {
                    // Would block: this socket's other datagrams wait too, in order.
                    break;
                }
            }
        }
        for (q, outcome) in batch.queued.drain(..).zip(outcomes) {
            let outcome = match outcome {
                Outcome::Sent => {
                    let listener = usize::try_from(q.flow.id)
                        .ok()
                        .and_then(|i| self.udp_listeners().get(i));
                    if let Some(listener) = listener {
                        self.sent_udp(listener.local, q.flow.remote, &q.bytes);
                    }
                    continue;
                }
                Outcome::Later => TrySend::Later(q.bytes),
                Outcome::Failed(source) => TrySend::Failed(SendError::Io {
                    addr: q.flow.remote,
                    source,
                }),
            };
            unsent(Unsent {
                flow: q.flow,
                tag: q.tag,
                outcome,
            });
        }
    }
}

/// Writes `datagrams` (queued at `positions`) with `send`, recording each one's
/// outcome; false when the socket would block (the rest stay [`Outcome::Later`]).
fn write_chunk(
    send: &mut impl FnMut(&[(&[u8], SocketAddr)]) -> io::Result<usize>,
    datagrams: &[(&[u8], SocketAddr)],
    positions: &[usize],
    outcomes: &mut [Outcome],
) -> bool {
    let mut record = |at: usize, outcome: Outcome| {
        if let Some(slot) = positions.get(at).and_then(|&i| outcomes.get_mut(i)) {
            *slot = outcome;
        }
    };
    let mut done = 0;
    // Each call writes at least one datagram or fails one: bounded by the chunk.
    for _ in 0..datagrams.len() {
        let Some(rest) = datagrams.get(done..).filter(|r| !r.is_empty()) else {
            break;
        };
        match send(rest) {
            Ok(0) => return false,
            Ok(n) => {
                for at in done..done + n {
                    record(at, Outcome::Sent);
                }
                done += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            // The kernel refused the first of the rest; the others still go.
            Err(e) => {
                record(done, Outcome::Failed(e));
                done += 1;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::time::Duration;

    use super::*;
    use crate::transport::{Destination, TransportConfig, TransportKind};

    async fn peer() -> (UdpSocket, SocketAddr) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        (socket, addr)
    }

    fn to(addr: SocketAddr) -> Target {
        Target::Destination(Destination {
            kind: TransportKind::Udp,
            addr,
            server_name: None,
        })
    }

    async fn next(socket: &UdpSocket) -> Vec<u8> {
        let mut buf = vec![0u8; 2048];
        let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
            .await
            .expect("a datagram in time")
            .unwrap();
        buf.truncate(n);
        buf
    }

    /// When a socket would block after its first datagram, that socket's other
    /// datagrams come back as `Later`, in the order queued and with their bytes, and
    /// still go out through `send`; the other socket's all go at once.
    #[tokio::test]
    async fn datagrams_a_socket_would_block_on_come_back_in_order_and_go_out_later() {
        let config = TransportConfig {
            udp: vec!["127.0.0.1:0".parse().unwrap()],
            core: crate::transport::CoreListeners {
                udp: vec!["127.0.0.1:0".parse().unwrap()],
                ..Default::default()
            },
            ..TransportConfig::default()
        };
        let (layer, _events) = TransportLayer::bind(config).await.unwrap();
        let main_socket = layer.udp_listeners()[0].local;
        let (a, a_addr) = peer().await;
        let (b, b_addr) = peer().await;
        let mut batch = UdpBatch::default();
        // Four to `a` from the main socket, interleaved with two to `b` from the core
        // socket (a destination leaves by the core face).
        for i in 0..4u8 {
            let main = Target::Flow(Flow {
                kind: TransportKind::Udp,
                remote: a_addr,
                id: 0,
            });
            let queued = layer.queue_udp(&mut batch, &main, Bytes::from(vec![b'a', i]), i);
            assert!(matches!(queued, Ok(Ok(_))), "{queued:?}");
            if i % 2 == 0 {
                let bytes = Bytes::from(vec![b'b', i]);
                let queued = layer.queue_udp(&mut batch, &to(b_addr), bytes, 10 + i);
                assert_eq!(queued.unwrap().unwrap().id, 1);
            }
        }
        assert_eq!(batch.len(), 6);
        // A socket is writable once the runtime has seen it so (until then tokio's
        // readiness says it would block, as it does for `try_send_to`).
        for listener in layer.udp_listeners() {
            listener.socket.writable().await.unwrap();
        }
        let mut calls = 0;
        let blocking_after_one = |socket: &UdpSocket, d: &[(&[u8], SocketAddr)]| {
            if socket.local_addr().unwrap() != main_socket {
                return mmsg::send(socket, d);
            }
            calls += 1;
            match calls {
                1 => mmsg::send(socket, d.get(..1).unwrap()),
                _ => Err(io::ErrorKind::WouldBlock.into()),
            }
        };
        let mut later = Vec::new();
        layer.flush_udp_with(&mut batch, blocking_after_one, |u| match u.outcome {
            TrySend::Later(bytes) => later.push((u.flow, bytes, u.tag)),
            TrySend::Failed(error) => panic!("{error}"),
        });
        assert!(batch.is_empty());
        assert_eq!(calls, 2, "no write after the socket would block");
        assert_eq!(next(&a).await, b"a\x00");
        assert_eq!(next(&b).await, b"b\x00");
        assert_eq!(next(&b).await, b"b\x02");
        let tags: Vec<u8> = later.iter().map(|(_, _, tag)| *tag).collect();
        assert_eq!(tags, [1, 2, 3]);
        assert_eq!(
            layer
                .stats()
                .messages_out
                .load(std::sync::atomic::Ordering::Relaxed),
            3
        );
        // What would have blocked goes out later, as the engine's sender task does it.
        for (flow, bytes, _) in later {
            layer.send(&Target::Flow(flow), bytes).await.unwrap();
        }
        for i in 1..4u8 {
            assert_eq!(next(&a).await, [b'a', i]);
        }
    }

    /// A datagram the kernel refuses (larger than UDP can carry) is handed back as
    /// failed with its tag; those queued after it on the same socket still go.
    #[tokio::test]
    async fn a_refused_datagram_is_reported_and_the_rest_still_go() {
        let config = TransportConfig {
            udp: vec!["127.0.0.1:0".parse().unwrap()],
            ..TransportConfig::default()
        };
        let (layer, _events) = TransportLayer::bind(config).await.unwrap();
        let (a, a_addr) = peer().await;
        let (c, c_addr) = peer().await;
        let mut batch = UdpBatch::default();
        let too_big = Bytes::from(vec![b'x'; 70_000]);
        for (addr, bytes, tag) in [
            (a_addr, Bytes::from_static(b"first"), "first"),
            (a_addr, too_big, "too big"),
            (c_addr, Bytes::from_static(b"third"), "third"),
        ] {
            layer
                .queue_udp(&mut batch, &to(addr), bytes, tag)
                .unwrap()
                .unwrap();
        }
        layer.udp_listeners()[0].socket.writable().await.unwrap();
        let mut unsent = Vec::new();
        layer.flush_udp(&mut batch, |u| unsent.push(u));
        assert_eq!(unsent.len(), 1, "{unsent:?}");
        let failed = unsent.pop().unwrap();
        assert_eq!(failed.tag, "too big");
        assert_eq!(failed.flow.remote(), a_addr);
        assert!(
            matches!(&failed.outcome, TrySend::Failed(SendError::Io { source, .. })
                if source.raw_os_error().is_some()),
            "{:?}",
            failed.outcome
        );
        assert_eq!(next(&a).await, b"first");
        assert_eq!(next(&c).await, b"third");
        assert_eq!(
            layer
                .stats()
                .messages_out
                .load(std::sync::atomic::Ordering::Relaxed),
            2
        );
    }

    /// A target that is not UDP is not queued: its bytes and tag come back.
    #[tokio::test]
    async fn a_stream_target_is_not_queued() {
        let config = TransportConfig {
            udp: vec!["127.0.0.1:0".parse().unwrap()],
            ..TransportConfig::default()
        };
        let (layer, _events) = TransportLayer::bind(config).await.unwrap();
        let tcp = Target::Destination(Destination {
            kind: TransportKind::Tcp,
            addr: "127.0.0.1:9".parse().unwrap(),
            server_name: None,
        });
        let mut batch = UdpBatch::default();
        let back = layer.queue_udp(&mut batch, &tcp, Bytes::from_static(b"x"), 7);
        assert!(
            matches!(back, Ok(Err((ref b, 7))) if &b[..] == b"x"),
            "{back:?}"
        );
        assert!(batch.is_empty());
    }
}
