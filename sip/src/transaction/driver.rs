//! A tokio task that owns a [`TransactionLayer`]: it takes messages from the transport
//! layer and calls from the TU over one bounded channel, sleeps until the next timer
//! (`tokio::time::sleep_until`), and hands [`TuEvent`]s to the TU over another bounded
//! channel (waiting when the TU is slow, so memory stays bounded).

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{TransactionError, TransactionLayer, TuEvent};
use crate::message::key::TransactionKey;
use crate::SipMessage;

enum Command<D> {
    Incoming {
        message: SipMessage,
        source: D,
        reliable: bool,
    },
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
    commands: mpsc::Sender<Command<D>>,
}

impl<D> Clone for TransactionHandle<D> {
    fn clone(&self) -> Self {
        TransactionHandle {
            commands: self.commands.clone(),
        }
    }
}

impl<D: Send + 'static> TransactionHandle<D> {
    /// Hands a message received by the transport layer to the transaction layer.
    pub async fn incoming(
        &self,
        message: SipMessage,
        source: D,
        reliable: bool,
    ) -> Result<(), TransactionError> {
        self.commands
            .send(Command::Incoming {
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
        self.commands
            .send(Command::Request {
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
        self.commands
            .send(Command::Respond {
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
/// the TU, the TU's event receiver, and the task. Both channels hold at most
/// `queue` items. The task ends when every handle is dropped or the event receiver
/// is closed.
pub fn spawn<D: Clone + Send + 'static>(
    layer: TransactionLayer<D>,
    queue: usize,
) -> (
    TransactionHandle<D>,
    mpsc::Receiver<TuEvent<D>>,
    JoinHandle<()>,
) {
    let (commands, command_rx) = mpsc::channel(queue.max(1));
    let (events, event_rx) = mpsc::channel(queue.max(1));
    let task = tokio::spawn(run(layer, command_rx, events));
    (TransactionHandle { commands }, event_rx, task)
}

async fn run<D: Clone + Send + 'static>(
    mut layer: TransactionLayer<D>,
    mut commands: mpsc::Receiver<Command<D>>,
    events: mpsc::Sender<TuEvent<D>>,
) {
    loop {
        while let Some(event) = layer.poll_event() {
            if events.send(event).await.is_err() {
                return;
            }
        }
        let deadline = layer.next_deadline();
        tokio::select! {
            biased;
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                layer.handle_timeouts(Instant::now());
            }
            command = commands.recv() => match command {
                None => return,
                Some(Command::Incoming { message, source, reliable }) => {
                    layer.receive(message, source, reliable);
                }
                Some(Command::Request { request, destination, reliable, reply }) => {
                    // The TU may have stopped waiting; the transaction runs regardless.
                    let _ = reply.send(layer.send_request(request, destination, reliable));
                }
                Some(Command::Respond { key, response, reply }) => {
                    let _ = reply.send(layer.respond(&key, response));
                }
            },
        }
    }
}
