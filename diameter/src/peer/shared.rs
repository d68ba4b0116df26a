//! State shared between a peer's handle and its connection task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot, watch, Notify};

use super::config::PeerConfig;
use super::ids::IdGenerator;
use crate::message::Message;

/// The observable state of a peer (RFC 6733 §5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Closed.
    Closed,
    /// Wait-Conn-Ack.
    WaitConnAck,
    /// Wait-I-CEA.
    WaitICea,
    /// Connection accepted, CER not yet received.
    WaitCer,
    /// I-Open / R-Open.
    Open,
    /// Closing.
    Closing,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The transport connection could not be made.
    Connect(String),
    /// CER/CEA or DPR/DPA took too long.
    Timeout,
    /// The capabilities exchange failed with this Result-Code.
    CapabilitiesRejected(u32),
    /// The peer sent something unexpected for the state.
    Protocol(&'static str),
    /// Unframeable input (bad length); the stream cannot be resynchronised.
    Framing,
    /// No DWA within Tw after a DWR (RFC 3539 failover).
    WatchdogExpired,
    /// The transport closed.
    ConnectionLost,
    /// The peer sent a DPR with this Disconnect-Cause.
    PeerDisconnected(i32),
    /// We sent a DPR with this Disconnect-Cause.
    LocalDisconnect(i32),
}

/// Counters of a peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// DWRs sent.
    pub dwr_sent: u64,
    /// DWAs received.
    pub dwa_received: u64,
    /// DWRs received (and answered).
    pub dwr_received: u64,
    /// Times the peer reached the Open state.
    pub opened: u64,
    /// DPAs received in answer to our DPR.
    pub dpa_received: u64,
    /// Requests received that the handler answered at once, on the connection's task.
    pub answered_inline: u64,
    /// Requests received whose answer waited for I/O, on a task of their own.
    pub answered_on_task: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub dwr_sent: AtomicU64,
    pub dwa_received: AtomicU64,
    pub dwr_received: AtomicU64,
    pub opened: AtomicU64,
    pub dpa_received: AtomicU64,
    pub answered_inline: AtomicU64,
    pub answered_on_task: AtomicU64,
}

/// A message for the connection task.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Request(Message),
    Disconnect(i32),
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) struct Shared {
    pub cfg: Arc<PeerConfig>,
    pub ids: Arc<IdGenerator>,
    pub pending: Mutex<HashMap<u32, oneshot::Sender<Message>>>,
    pub link: Mutex<Option<mpsc::Sender<Outgoing>>>,
    pub state: watch::Sender<PeerState>,
    pub remote_host: Mutex<Option<String>>,
    pub last_reason: Mutex<Option<CloseReason>>,
    pub counters: Counters,
    pub stopped: AtomicBool,
    pub stop: Notify,
}

impl Shared {
    pub fn new(cfg: Arc<PeerConfig>, ids: Arc<IdGenerator>) -> Arc<Shared> {
        Arc::new(Shared {
            cfg,
            ids,
            pending: Mutex::new(HashMap::new()),
            link: Mutex::new(None),
            state: watch::Sender::new(PeerState::Closed),
            remote_host: Mutex::new(None),
            last_reason: Mutex::new(None),
            counters: Counters::default(),
            stopped: AtomicBool::new(false),
            stop: Notify::new(),
        })
    }

    pub fn set_state(&self, s: PeerState) {
        self.state.send_replace(s);
    }

    pub fn name(&self) -> String {
        lock(&self.remote_host).clone().unwrap_or_default()
    }

    pub fn stats(&self) -> PeerStats {
        let c = &self.counters;
        PeerStats {
            dwr_sent: c.dwr_sent.load(Ordering::Relaxed),
            dwa_received: c.dwa_received.load(Ordering::Relaxed),
            dwr_received: c.dwr_received.load(Ordering::Relaxed),
            opened: c.opened.load(Ordering::Relaxed),
            dpa_received: c.dpa_received.load(Ordering::Relaxed),
            answered_inline: c.answered_inline.load(Ordering::Relaxed),
            answered_on_task: c.answered_on_task.load(Ordering::Relaxed),
        }
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks the peer as stopping; wakes a supervisor waiting to reconnect (the permit
    /// is kept if it is not waiting yet).
    pub fn request_stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.stop.notify_one();
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }
}
