//! The engine's way out: the transaction layer's [`Transmit`] is synchronous, so it
//! queues serialized messages for a sender task that writes them with the transport
//! layer and reports failed client requests back to the engine (RFC 3261 §16.9).

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::message::key::TransactionKey;
use crate::proxy::via::response_destination;
use crate::transaction::Transmit;
use crate::transport::{Destination, Source, Target, TransportLayer};
use crate::SipMessage;

use super::EngineConfig;

/// The peer of a transaction: the source of a server transaction's request (answers go
/// back over its flow) or the destination of a client transaction.
#[derive(Debug, Clone)]
pub(super) enum Peer {
    /// Where a request came from.
    Upstream(Source),
    /// Where a client transaction sends: a destination, or a flow (RFC 5626 §5.3).
    Downstream(Target),
}

/// One message to write.
struct Outgoing {
    bytes: Bytes,
    target: Target,
    /// For a response over a closed stream flow: where its Via says it goes
    /// (§18.2.2: `received` and the `rport` or sent-by port).
    fallback: Option<Destination>,
    /// For a client request: its transaction, reported on failure.
    client: Option<TransactionKey>,
}

/// Builds the transaction layer's [`Transmit`] and starts the sender task; failed
/// client requests are reported on `failed`.
pub(super) fn start(
    transport: TransportLayer,
    resolver: Arc<EngineConfig>,
    queue: usize,
    failed: mpsc::Sender<TransactionKey>,
) -> impl Transmit<Peer> + 'static {
    let (tx, rx) = mpsc::channel::<Outgoing>(queue.max(1));
    tokio::spawn(run(transport, rx, failed));
    move |message: &SipMessage, peer: &Peer| {
        let out = match peer {
            Peer::Upstream(source) => {
                let per_via = message
                    .status()
                    .is_some()
                    .then(|| response_fallback(message, &resolver))
                    .flatten();
                let reliable = source.flow.kind().is_reliable();
                // UDP: the Via decides (`received` and `rport`, else the sent-by port,
                // §18.2.2, RFC 3581 §4); the flow when that is where it came from.
                let target = match &per_via {
                    Some(dest) if !reliable && dest.addr != source.flow.remote() => {
                        Target::Destination(dest.clone())
                    }
                    _ => Target::Flow(source.flow),
                };
                Outgoing {
                    bytes: message.to_bytes(),
                    target,
                    fallback: per_via.filter(|_| reliable),
                    client: None,
                }
            }
            Peer::Downstream(target) => Outgoing {
                bytes: message.to_bytes(),
                target: target.clone(),
                fallback: None,
                client: message
                    .is_request()
                    .then(|| TransactionKey::of(message).ok())
                    .flatten(),
            },
        };
        tx.try_send(out)
            .map_err(|_| std::io::Error::other("send queue full"))
    }
}

/// Where a response goes when the flow it should use has closed.
fn response_fallback(response: &SipMessage, resolver: &EngineConfig) -> Option<Destination> {
    let dest = response_destination(response).ok()??;
    Some(Destination {
        kind: dest.hop.transport,
        addr: dest.hop.socket_addr(|h| resolver.resolve(h))?,
        server_name: None,
    })
}

async fn run(
    transport: TransportLayer,
    mut rx: mpsc::Receiver<Outgoing>,
    failed: mpsc::Sender<TransactionKey>,
) {
    while let Some(out) = rx.recv().await {
        // Opening a connection may take up to the connect timeout: do it aside, so
        // other peers are not held up. Everything else keeps its order.
        let connects = matches!(&out.target, Target::Destination(d) if d.kind.is_reliable());
        if connects {
            let (transport, failed) = (transport.clone(), failed.clone());
            tokio::spawn(async move { write(&transport, out, &failed).await });
        } else {
            write(&transport, out, &failed).await;
        }
    }
}

async fn write(transport: &TransportLayer, out: Outgoing, failed: &mpsc::Sender<TransactionKey>) {
    let Err(error) = transport.send(&out.target, out.bytes.clone()).await else {
        return;
    };
    if let Some(dest) = out.fallback {
        tracing::debug!(%error, addr = %dest.addr, "flow closed, sending the response per its Via");
        if let Err(error) = transport.send(&Target::Destination(dest), out.bytes).await {
            tracing::warn!(%error, "response could not be sent");
        }
        return;
    }
    tracing::warn!(%error, "send failed");
    if let Some(key) = out.client {
        let _ = failed.send(key).await;
    }
}

/// Sends a message outside any transaction (stateless forwarding of ACK and 2xx,
/// §16.11), logging a failure.
pub(super) fn stateless(transport: &TransportLayer, target: Target, message: &SipMessage) {
    let transport = transport.clone();
    let bytes = message.to_bytes();
    tokio::spawn(async move {
        if let Err(error) = transport.send(&target, bytes).await {
            tracing::warn!(%error, "stateless forward failed");
        }
    });
}
