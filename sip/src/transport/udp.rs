//! UDP listener (RFC 3261 §18.1.2, §18.2.1): one datagram is one message.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;

use super::upward::{Delivered, Upward};
use super::{Flow, Source, TransportKind, TransportStats};

/// Receives datagrams on `socket` (listener number `index`) until the event receiver
/// is dropped. Oversize datagrams and bare CRLF keep-alives are dropped.
pub(super) async fn serve(
    socket: Arc<UdpSocket>,
    index: u64,
    local: SocketAddr,
    upward: Arc<Upward>,
) {
    let max = upward.limits.max_message_size;
    // One byte more than the limit, to tell an oversize datagram from a full one.
    let mut buf = vec![0u8; max.saturating_add(1)];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            () = upward.events.closed() => return,
        };
        let (n, remote) = match received {
            Ok(r) => r,
            Err(error) => {
                tracing::debug!(%local, %error, "UDP receive error");
                continue;
            }
        };
        let data = buf.get(..n).unwrap_or_default();
        if n > max {
            TransportStats::inc(&upward.stats.parse_errors);
            tracing::warn!(%local, %remote, limit = max, "oversize UDP datagram dropped");
            continue;
        }
        if data.iter().all(|c| matches!(c, b'\r' | b'\n')) {
            tracing::trace!(%remote, "UDP keep-alive");
            continue;
        }
        let source = Source {
            flow: Flow {
                kind: TransportKind::Udp,
                remote,
                id: index,
            },
            local,
            remote,
            peer_names: None,
        };
        if upward.deliver(Bytes::copy_from_slice(data), source).await == Delivered::Closed {
            return;
        }
    }
}
