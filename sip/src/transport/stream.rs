//! Stream connections (TCP, TLS; RFC 3261 §18.3): the accept loop and the task that
//! serves one connection, reading frames with [`SipStreamCodec`] and writing what the
//! write queue holds, until the peer closes, framing is lost or the idle timeout hits.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Duration, Instant};
use tokio_util::codec::{Decoder, Encoder};

use super::codec::{Frame, SipStreamCodec, PONG};
use super::connections::{ConnectionTable, Slot};
use super::upward::{Delivered, Upward};
use super::{Flow, PeerNames, Source, TransportKind, TransportStats};

/// Read buffer growth step.
const READ_CHUNK: usize = 8 * 1024;

/// What a connection task needs besides its stream.
pub(super) struct StreamContext {
    pub(super) upward: Arc<Upward>,
    pub(super) table: Arc<ConnectionTable>,
    pub(super) tls_acceptor: Option<tokio_rustls::TlsAcceptor>,
    pub(super) idle_timeout: Duration,
    pub(super) io_timeout: Duration,
}

/// Accepts connections on `listener` until the event receiver is dropped; connections
/// over a limit are closed at once with a log line.
pub(super) async fn accept_loop(
    listener: TcpListener,
    kind: TransportKind,
    ctx: Arc<StreamContext>,
) {
    loop {
        let accepted_or_closed = tokio::select! {
            r = listener.accept() => Some(r),
            () = ctx.upward.closed() => None,
        };
        let Some(accepted_result) = accepted_or_closed else {
            tracing::debug!(%kind, "event receiver dropped; listener stops");
            return;
        };
        let (stream, remote) = match accepted_result {
            Ok(r) => r,
            Err(error) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(%kind, %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = ctx.table.reserve(remote.ip()) else {
            if ctx.upward.may_log() {
                tracing::warn!(%kind, %remote, "connection refused: connection limit reached");
            }
            drop(stream);
            continue;
        };
        tokio::spawn(accepted(stream, slot, kind, remote, ctx.clone()));
    }
}

/// Finishes setting up an accepted connection (TLS handshake) and serves it.
async fn accepted(
    stream: TcpStream,
    mut slot: Slot,
    kind: TransportKind,
    remote: SocketAddr,
    ctx: Arc<StreamContext>,
) {
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(error) => {
            tracing::debug!(%remote, %error, "accepted socket has no local address");
            return;
        }
    };
    // SIP messages are small and latency matters more than segment count.
    let _ = stream.set_nodelay(true);
    match (kind, &ctx.tls_acceptor) {
        (TransportKind::Tls, Some(acceptor)) => {
            match timeout(ctx.io_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    // rustls has verified the chain against the client CA, if it asked.
                    let peer_names = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(|leaf| PeerNames::of_certificate(leaf));
                    let (flow, _, rx) = slot.register(kind, remote);
                    serve(tls, slot, flow, local, peer_names, rx, ctx).await;
                }
                Ok(Err(error)) if ctx.upward.may_log() => {
                    tracing::warn!(%remote, %error, "TLS handshake failed");
                }
                Err(_) if ctx.upward.may_log() => {
                    tracing::warn!(%remote, "TLS handshake timed out");
                }
                Ok(Err(_)) | Err(_) => {}
            }
        }
        _ => {
            let (flow, _, rx) = slot.register(kind, remote);
            serve(stream, slot, flow, local, None, rx, ctx).await;
        }
    }
}

/// Serves one registered connection until it ends; dropping `slot` at the end removes
/// it from the table and releases its place in the limits. `peer_names`: those of the
/// peer's verified client certificate, delivered with each of its messages.
pub(super) async fn serve<S>(
    mut stream: S,
    slot: Slot,
    flow: Flow,
    local: SocketAddr,
    peer_names: Option<PeerNames>,
    mut writes: mpsc::Receiver<Bytes>,
    ctx: Arc<StreamContext>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let source = Source {
        flow,
        local,
        remote: flow.remote(),
        peer_names,
    };
    let upward = &ctx.upward;
    let mut codec = SipStreamCodec::new(upward.limits.max_message_size);
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut output = BytesMut::new();
    let mut deadline = Instant::now() + ctx.idle_timeout;
    tracing::debug!(%flow, %local, peer_names = ?source.peer_names, "connection open");
    'conn: loop {
        loop {
            let outgoing = match codec.decode(&mut input) {
                Ok(None) => break,
                Ok(Some(Frame::Ping)) => Bytes::from_static(PONG),
                Ok(Some(Frame::Message(raw))) => match upward.deliver(raw, source.clone()).await {
                    Delivered::Ok => continue,
                    Delivered::Hostile => {
                        if upward.may_log() {
                            tracing::warn!(%flow, "closing connection after hostile message");
                        }
                        break 'conn;
                    }
                    Delivered::Closed => break 'conn,
                },
                Err(error) => {
                    TransportStats::inc(&upward.stats.framing_errors);
                    if upward.may_log() {
                        tracing::warn!(%flow, %error, "stream framing lost; closing connection");
                    }
                    break 'conn;
                }
            };
            if !write(&mut stream, &mut codec, &mut output, outgoing, &ctx, flow).await {
                break 'conn;
            }
        }
        if input.capacity() - input.len() < READ_CHUNK {
            input.reserve(READ_CHUNK);
        }
        tokio::select! {
            read = stream.read_buf(&mut input) => match read {
                Ok(0) => {
                    tracing::debug!(%flow, "closed by peer");
                    break;
                }
                Ok(_) => deadline = Instant::now() + ctx.idle_timeout,
                Err(error) => {
                    tracing::debug!(%flow, %error, "read error");
                    break;
                }
            },
            out = writes.recv() => {
                let Some(bytes) = out else { break };
                let copy = upward.capture.get().map(|_| bytes.clone());
                if !write(&mut stream, &mut codec, &mut output, bytes, &ctx, flow).await {
                    break;
                }
                TransportStats::inc(&upward.stats.messages_out);
                if let Some(bytes) = copy {
                    upward.copy(flow.kind(), local, flow.remote(), &bytes);
                }
                deadline = Instant::now() + ctx.idle_timeout;
            }
            () = upward.closed() => break,
            () = sleep_until(deadline) => {
                tracing::info!(%flow, "closing idle connection");
                break;
            }
        }
    }
    // Leave the table first, so that nothing is queued to a closing connection.
    drop(slot);
    let _ = timeout(ctx.io_timeout, stream.shutdown()).await;
    tracing::debug!(%flow, "connection closed");
}

/// Writes one message (or pong) within the I/O timeout; false when the connection
/// must be dropped.
async fn write<S: AsyncWrite + Unpin>(
    stream: &mut S,
    codec: &mut SipStreamCodec,
    output: &mut BytesMut,
    bytes: Bytes,
    ctx: &StreamContext,
    flow: Flow,
) -> bool {
    if codec.encode(bytes, output).is_err() {
        return false;
    }
    match timeout(ctx.io_timeout, stream.write_all_buf(output)).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::debug!(%flow, %error, "write error");
            false
        }
        Err(_) => {
            tracing::warn!(%flow, "write timed out");
            false
        }
    }
}
