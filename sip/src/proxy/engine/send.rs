//! The engine's way out. The transaction layer's [`Transmit`] is synchronous and runs in
//! the engine's task: a message is written from there without waiting. UDP datagrams
//! are queued in a batch ([`Output`]) that the engine writes at the end of each pass of
//! its loop, one `sendmmsg` per socket on Linux ([`TransportLayer::flush_udp`]); a
//! message over a stream goes to the write queue of its open connection at once
//! ([`TransportLayer::try_send`]). Only what would wait (a full socket buffer or write
//! queue, a connection to open) goes to a sender task, which writes it with the
//! transport layer and reports a client request it could not send back to the engine
//! (RFC 3261 §16.9). A datagram of a client transaction that the kernel refuses at the
//! flush is a transport error of that transaction, as a refused write at once was.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::message::key::TransactionKey;
use crate::proxy::via::response_destination;
use crate::transaction::Transmit;
use crate::transport::{Destination, SendError, Source, Target, TransportLayer, TrySend, UdpBatch};
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

/// What [`Output::try_send`] did.
enum Attempt {
    /// Written, or queued for this pass's flush.
    Done,
    /// It would wait: the bytes and the client transaction back, for the sender task.
    Later(Bytes, Option<TransactionKey>),
    /// It cannot be sent.
    Failed(SendError),
}

/// Where the engine's messages go out: the transport, the UDP datagrams of the current
/// pass, and the sender task's queue. Shared by the transaction layer's [`Transmitter`]
/// and the engine's core (one task: the lock is never contended).
pub(super) struct Output {
    transport: TransportLayer,
    /// What client transactions send with: UDP requests leave by the shard's client
    /// socket when it has one ([`TransportLayer::for_client_requests`]).
    requests: TransportLayer,
    queue: mpsc::Sender<Outgoing>,
    /// The datagrams of this pass, each with the client transaction it belongs to.
    udp: Mutex<UdpBatch<Option<TransactionKey>>>,
}

/// The transaction layer's [`Transmit`]: queues or writes at once, else hands to the
/// sender task.
pub(super) struct Transmitter {
    output: Arc<Output>,
    resolver: Arc<EngineConfig>,
}

/// Builds the transaction layer's [`Transmit`] and the engine's [`Output`], and starts
/// the sender task (returned too); requests of client transactions that the task could
/// not send are reported on `failed`.
pub(super) fn start(
    transport: TransportLayer,
    resolver: Arc<EngineConfig>,
    queue: usize,
    failed: mpsc::Sender<TransactionKey>,
) -> (Transmitter, Arc<Output>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<Outgoing>(queue.max(1));
    let task = tokio::spawn(run(transport.clone(), rx, failed));
    let output = Arc::new(Output {
        requests: transport.for_client_requests(),
        transport,
        queue: tx,
        udp: Mutex::new(UdpBatch::default()),
    });
    let transmitter = Transmitter {
        output: output.clone(),
        resolver,
    };
    (transmitter, output, task)
}

impl Output {
    /// Writes `bytes` to `target` without waiting: a datagram is queued for
    /// [`Output::flush`] (`client`: its client transaction, told should the kernel
    /// refuse it), a stream message goes to its connection's write queue.
    /// `downstream`: a client transaction's request, which leaves by the shard's client
    /// socket when it has one.
    fn try_send(
        &self,
        target: &Target,
        bytes: Bytes,
        client: Option<TransactionKey>,
        downstream: bool,
    ) -> Attempt {
        let layer = if downstream {
            &self.requests
        } else {
            &self.transport
        };
        let mut udp = self.udp.lock().unwrap_or_else(PoisonError::into_inner);
        match layer.queue_udp(&mut udp, target, bytes, client) {
            Ok(Ok(_)) => Attempt::Done,
            Ok(Err((bytes, client))) => {
                drop(udp);
                match self.transport.try_send(target, bytes) {
                    Ok(_) => Attempt::Done,
                    Err(TrySend::Later(bytes)) => Attempt::Later(bytes, client),
                    Err(TrySend::Failed(error)) => Attempt::Failed(error),
                }
            }
            Err(error) => Attempt::Failed(error),
        }
    }

    fn queue(&self, out: Outgoing) -> std::io::Result<()> {
        self.queue
            .try_send(out)
            .map_err(|_| std::io::Error::other("send queue full"))
    }

    /// Writes the datagrams of this pass (one `sendmmsg` per socket on Linux). Those
    /// that would wait go to the sender task in order; returns the client
    /// transactions whose request could not be sent (refused by the kernel, or the
    /// sender task's queue full), for the transaction layer.
    pub(super) fn flush(&self) -> Vec<TransactionKey> {
        let mut udp = self.udp.lock().unwrap_or_else(PoisonError::into_inner);
        let mut failed = Vec::new();
        self.transport.flush_udp(&mut udp, |unsent| {
            let error = match unsent.outcome {
                TrySend::Later(bytes) => {
                    let out = Outgoing {
                        bytes,
                        target: Target::Flow(unsent.flow),
                        fallback: None,
                        client: unsent.tag.clone(),
                    };
                    match self.queue(out) {
                        Ok(()) => return,
                        Err(error) => error.to_string(),
                    }
                }
                TrySend::Failed(error) => error.to_string(),
            };
            tracing::warn!(%error, "send failed");
            failed.extend(unsent.tag);
        });
        failed
    }

    /// Hands the datagrams still queued to the sender task, in order (when the engine
    /// stops flushing within a pass).
    pub(super) fn hand_over(&self) {
        let mut udp = self.udp.lock().unwrap_or_else(PoisonError::into_inner);
        for (flow, bytes, client) in udp.take() {
            let out = Outgoing {
                bytes,
                target: Target::Flow(flow),
                fallback: None,
                client,
            };
            if self.queue(out).is_err() {
                tracing::warn!("send queue full: datagram dropped");
            }
        }
    }

    /// Sends a message outside any transaction (stateless forwarding of ACK and 2xx,
    /// §16.11, a 400 to a malformed request): a datagram with this pass's, anything
    /// else at once when the transport can take it, else from a task of its own; a
    /// failure is logged.
    pub(super) fn stateless(&self, target: Target, message: &SipMessage) {
        let bytes = message.to_bytes();
        let mut udp = self.udp.lock().unwrap_or_else(PoisonError::into_inner);
        match self.transport.queue_udp(&mut udp, &target, bytes, None) {
            Ok(Ok(_)) => {}
            Ok(Err((bytes, _))) => {
                drop(udp);
                stateless_bytes(&self.transport, target, bytes);
            }
            Err(error) => tracing::warn!(%error, "stateless forward failed"),
        }
    }
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
        match self.output.try_send(&target, bytes, None, false) {
            Attempt::Done => Ok(()),
            Attempt::Later(bytes, _) => self.output.queue(Outgoing {
                bytes,
                target,
                fallback,
                client: None,
            }),
            Attempt::Failed(error) => match (fallback, retry) {
                (Some(dest), Some(bytes)) => {
                    tracing::debug!(%error, addr = %dest.addr, "flow closed, sending the response per its Via");
                    let target = Target::Destination(dest);
                    match self.output.try_send(&target, bytes, None, false) {
                        Attempt::Later(bytes, _) => self.output.queue(Outgoing {
                            bytes,
                            target,
                            fallback: None,
                            client: None,
                        }),
                        Attempt::Failed(error) => {
                            tracing::warn!(%error, "response could not be sent");
                            Ok(())
                        }
                        Attempt::Done => Ok(()),
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
        match self.output.try_send(target, bytes, client, true) {
            Attempt::Done => Ok(()),
            Attempt::Later(bytes, client) => self.output.queue(Outgoing {
                bytes,
                target: target.clone(),
                fallback: None,
                client,
            }),
            Attempt::Failed(error) => {
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

/// Sends a message outside any transaction from a task other than the engine's core
/// (nothing flushes a batch there): at once when the transport can take it, else from a
/// task of its own; a failure is logged.
pub(super) fn stateless(transport: &TransportLayer, target: Target, message: &SipMessage) {
    stateless_bytes(transport, target, message.to_bytes());
}

fn stateless_bytes(transport: &TransportLayer, target: Target, bytes: Bytes) {
    let bytes = match transport.try_send(&target, bytes) {
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
