//! The engine's way out. The transaction layer's [`Transmit`] is synchronous and runs in
//! the engine's task: a message is written from there at once when the transport can
//! take it without waiting (a UDP `try_send_to`, or the write queue of an open
//! connection, [`TransportLayer::try_send`]). Only what would wait (a full socket
//! buffer or write queue, a connection to open) goes to a sender task, which writes it
//! with the transport layer and reports a client request it could not send back to the
//! engine (RFC 3261 §16.9).

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::message::key::TransactionKey;
use crate::proxy::via::response_destination;
use crate::transaction::Transmit;
use crate::transport::{Destination, Source, Target, TransportLayer, TrySend};
use crate::SipMessage;

use super::EngineConfig;

/// The peer of a transaction: the source of a server transaction's request (answers go
/// back over its flow) or the destination of a client transaction; once a server
/// transaction only retransmits its final response, where that goes.
#[derive(Debug, Clone)]
pub(super) enum Peer {
    /// Where a request came from.
    Upstream(Source),
    /// Where a client transaction sends: a destination, or a flow (RFC 5626 §5.3).
    Downstream(Target),
    /// Where a server transaction's final response goes, resolved once from the
    /// request's flow and the response's Via ([`Transmit::route`]).
    Response {
        /// The flow, or over UDP the Via's address when it is not the flow's.
        target: Target,
        /// Over a stream flow: the Via's address, should the flow have closed.
        fallback: Option<Box<Destination>>,
    },
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

/// The transaction layer's [`Transmit`]: writes at once when it can, else queues for
/// the sender task.
pub(super) struct Transmitter {
    transport: TransportLayer,
    resolver: Arc<EngineConfig>,
    queue: mpsc::Sender<Outgoing>,
}

/// Builds the transaction layer's [`Transmit`] and starts the sender task (returned
/// too); requests of client transactions that the task could not send are reported on
/// `failed`.
pub(super) fn start(
    transport: TransportLayer,
    resolver: Arc<EngineConfig>,
    queue: usize,
    failed: mpsc::Sender<TransactionKey>,
) -> (Transmitter, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<Outgoing>(queue.max(1));
    let task = tokio::spawn(run(transport.clone(), rx, failed));
    let transmitter = Transmitter {
        transport,
        resolver,
        queue: tx,
    };
    (transmitter, task)
}

impl Transmit<Peer> for Transmitter {
    fn transmit(&self, message: &SipMessage, bytes: Bytes, peer: &Peer) -> std::io::Result<()> {
        match peer {
            Peer::Upstream(source) => {
                let (target, fallback) = self.response_route(message, source);
                self.send_response(bytes, target, fallback)
            }
            Peer::Response { target, fallback } => {
                self.send_response(bytes, target.clone(), fallback.as_deref().cloned())
            }
            Peer::Downstream(target) => self.send_downstream(
                bytes,
                target,
                message
                    .is_request()
                    .then(|| TransactionKey::of(message).ok())
                    .flatten(),
            ),
        }
    }

    fn route(&self, message: &SipMessage, peer: &Peer) -> Peer {
        match peer {
            Peer::Upstream(source) => {
                let (target, fallback) = self.response_route(message, source);
                Peer::Response {
                    target,
                    fallback: fallback.map(Box::new),
                }
            }
            other => other.clone(),
        }
    }

    fn retransmit(&self, bytes: Bytes, peer: &Peer) -> std::io::Result<()> {
        match peer {
            Peer::Response { target, fallback } => {
                self.send_response(bytes, target.clone(), fallback.as_deref().cloned())
            }
            Peer::Upstream(source) => self.send_response(bytes, Target::Flow(source.flow), None),
            Peer::Downstream(target) => self.send_downstream(bytes, target, None),
        }
    }
}

impl Transmitter {
    fn queue(&self, out: Outgoing) -> std::io::Result<()> {
        self.queue
            .try_send(out)
            .map_err(|_| std::io::Error::other("send queue full"))
    }

    /// Where a response to a request from `source` goes, and where else should its
    /// stream flow have closed.
    fn response_route(
        &self,
        message: &SipMessage,
        source: &Source,
    ) -> (Target, Option<Destination>) {
        let per_via = message
            .status()
            .is_some()
            .then(|| response_fallback(message, &self.resolver))
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
        (target, per_via.filter(|_| reliable))
    }

    /// Writes a response. One that cannot be written is logged, as the sender task
    /// does: the transaction goes on (its retransmissions may get through).
    fn send_response(
        &self,
        bytes: Bytes,
        target: Target,
        fallback: Option<Destination>,
    ) -> std::io::Result<()> {
        let retry = fallback.as_ref().map(|_| bytes.clone());
        match self.transport.try_send(&target, bytes) {
            Ok(_) => Ok(()),
            Err(TrySend::Later(bytes)) => self.queue(Outgoing {
                bytes,
                target,
                fallback,
                client: None,
            }),
            Err(TrySend::Failed(error)) => match (fallback, retry) {
                (Some(dest), Some(bytes)) => {
                    tracing::debug!(%error, addr = %dest.addr, "flow closed, sending the response per its Via");
                    let target = Target::Destination(dest);
                    match self.transport.try_send(&target, bytes) {
                        Err(TrySend::Later(bytes)) => self.queue(Outgoing {
                            bytes,
                            target,
                            fallback: None,
                            client: None,
                        }),
                        Err(TrySend::Failed(error)) => {
                            tracing::warn!(%error, "response could not be sent");
                            Ok(())
                        }
                        Ok(_) => Ok(()),
                    }
                }
                _ => {
                    tracing::warn!(%error, "send failed");
                    Ok(())
                }
            },
        }
    }

    /// Writes a client transaction's message; `client` is the transaction reported
    /// if the sender task cannot write it.
    fn send_downstream(
        &self,
        bytes: Bytes,
        target: &Target,
        client: Option<TransactionKey>,
    ) -> std::io::Result<()> {
        match self.transport.try_send(target, bytes) {
            Ok(_) => Ok(()),
            Err(TrySend::Later(bytes)) => self.queue(Outgoing {
                bytes,
                target: target.clone(),
                fallback: None,
                client,
            }),
            Err(TrySend::Failed(error)) => {
                tracing::warn!(%error, "send failed");
                Err(std::io::Error::other(error))
            }
        }
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
/// §16.11, a 400 to a malformed request): at once when the transport can take it,
/// else from a task of its own; a failure is logged.
pub(super) fn stateless(transport: &TransportLayer, target: Target, message: &SipMessage) {
    let bytes = match transport.try_send(&target, message.to_bytes()) {
        Ok(_) => return,
        Err(TrySend::Failed(error)) => {
            tracing::warn!(%error, "stateless forward failed");
            return;
        }
        Err(TrySend::Later(bytes)) => bytes,
    };
    let transport = transport.clone();
    tokio::spawn(async move {
        if let Err(error) = transport.send(&target, bytes).await {
            tracing::warn!(%error, "stateless forward failed");
        }
    });
}
