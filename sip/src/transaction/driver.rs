//! A tokio task that owns a [`TransactionLayer`]: it takes messages from the transport
//! layer and calls from the TU over bounded channels, sleeps until the next timer
//! (`tokio::time::sleep_until`), and hands [`TuEvent`]s to the TU over a bounded
//! channel.
//!
//! The TU may await [`TransactionHandle::respond`] or
//! [`TransactionHandle::send_request`] while it handles an event: TU calls are served
//! even when the event channel is full. What the driver stops taking while the TU
//! lags is new input from the transport, once `queue` events wait undelivered, so
//! memory stays bounded.

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{TransactionError, TransactionLayer, TuEvent};
use crate::message::key::TransactionKey;
use crate::SipMessage;

/// A message received by the transport layer.
struct Incoming<D> {
    message: SipMessage,
    source: D,
    reliable: bool,
}

/// A call from the TU, with the channel for its answer.
enum Call<D> {
    Request {
        request: SipMessage,
        destination: D,
        reliable: bool,
        reply: oneshot::Sender<Result<TransactionKey, TransactionError>>,
    },
    Respond {
        key: TransactionKey,
        response: SipMessage,
        reply: oneshot::Sender<Result<(), TransactionError>>,
    },
}

/// The transport layer's and the TU's way into a running driver. Cheap to clone.
#[derive(Debug)]
pub struct TransactionHandle<D> {
    incoming: mpsc::Sender<Incoming<D>>,
    calls: mpsc::Sender<Call<D>>,
}

impl<D> Clone for TransactionHandle<D> {
    fn clone(&self) -> Self {
        TransactionHandle {
            incoming: self.incoming.clone(),
            calls: self.calls.clone(),
        }
    }
}

impl<D: Send + 'static> TransactionHandle<D> {
    /// Hands a message received by the transport layer to the transaction layer
    /// (waits while the TU lags behind).
    pub async fn incoming(
        &self,
        message: SipMessage,
        source: D,
        reliable: bool,
    ) -> Result<(), TransactionError> {
        self.incoming
            .send(Incoming {
                message,
                source,
                reliable,
            })
            .await
            .map_err(|_| TransactionError::Stopped)
    }

    /// Starts a client transaction (see [`TransactionLayer::send_request`]).
    pub async fn send_request(
        &self,
        request: SipMessage,
        destination: D,
        reliable: bool,
    ) -> Result<TransactionKey, TransactionError> {
        let (reply, answer) = oneshot::channel();
        self.calls
            .send(Call::Request {
                request,
                destination,
                reliable,
                reply,
            })
            .await
            .map_err(|_| TransactionError::Stopped)?;
        answer.await.map_err(|_| TransactionError::Stopped)?
    }

    /// Sends a response in a server transaction (see [`TransactionLayer::respond`]).
    pub async fn respond(
        &self,
        key: TransactionKey,
        response: SipMessage,
    ) -> Result<(), TransactionError> {
        let (reply, answer) = oneshot::channel();
        self.calls
            .send(Call::Respond {
                key,
                response,
                reply,
            })
            .await
            .map_err(|_| TransactionError::Stopped)?;
        answer.await.map_err(|_| TransactionError::Stopped)?
    }
}

/// Spawns the driver task for `layer`. Returns the handle for the transport layer and
/// the TU, the TU's event receiver, and the task. Each channel holds at most `queue`
/// items. The task ends when every handle is dropped or the event receiver is closed.
pub fn spawn<D: Clone + Send + 'static>(
    layer: TransactionLayer<D>,
    queue: usize,
) -> (
    TransactionHandle<D>,
    mpsc::Receiver<TuEvent<D>>,
    JoinHandle<()>,
) {
    let queue = queue.max(1);
    let (incoming, incoming_rx) = mpsc::channel(queue);
    let (calls, calls_rx) = mpsc::channel(queue);
    let (events, events_rx) = mpsc::channel(queue);
    let task = tokio::spawn(run(layer, incoming_rx, calls_rx, events, queue));
    (TransactionHandle { incoming, calls }, events_rx, task)
}

async fn run<D: Clone + Send + 'static>(
    mut layer: TransactionLayer<D>,
    mut incoming: mpsc::Receiver<Incoming<D>>,
    mut calls: mpsc::Receiver<Call<D>>,
    events: mpsc::Sender<TuEvent<D>>,
    backlog: usize,
) {
    let (mut incoming_open, mut calls_open) = (true, true);
    while incoming_open || calls_open {
        let deadline = layer.next_deadline();
        let pending = layer.pending_events();
        tokio::select! {
            biased;
            permit = events.reserve(), if pending > 0 => {
                let Ok(permit) = permit else { return };
                if let Some(event) = layer.poll_event() {
                    permit.send(event);
                }
            }
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                layer.handle_timeouts(Instant::now());
            }
            call = calls.recv(), if calls_open => match call {
                None => calls_open = false,
                // The TU may have stopped waiting; the transaction runs regardless.
                Some(Call::Request { request, destination, reliable, reply }) => {
                    let _ = reply.send(layer.send_request(request, destination, reliable));
                }
                Some(Call::Respond { key, response, reply }) => {
                    let _ = reply.send(layer.respond(&key, response));
                }
            },
            message = incoming.recv(), if incoming_open && pending < backlog => match message {
                None => incoming_open = false,
                Some(Incoming { message, source, reliable }) => {
                    layer.receive(message, source, reliable);
                }
            },
            else => return,
        }
    }
}
