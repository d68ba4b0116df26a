//! Requests the node sends as a UAC of its own (RFC 3261 §8.1), through the engine's
//! transaction layer: an S-CSCF's NOTIFY of the reg event package (RFC 3680), later a
//! third-party REGISTER. The node hands an [`Originator`] a complete request (Request-URI,
//! Route set, From, To, Call-ID, CSeq, Max-Forwards, Contact, body: everything but our
//! Via) and waits for its final response; the engine adds the Via of the listener it
//! leaves by, sends it to the next hop its top Route (else its Request-URI) names
//! (RFC 3261 §8.1.2), and runs the client transaction (retransmissions, Timer F).
//!
//! The requests go to the engine's task over a bounded channel: a node that originates
//! faster than the engine sends is told [`OriginateError::Busy`], nothing waits
//! unbounded.

use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use super::next_hop::next_hops;
use super::{Decision, EngineConfig, Forward};
use crate::SipMessage;

/// Requests waiting for the engine's task at most.
pub(super) const QUEUE: usize = 1024;

/// Why an originated request got no final response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginateError {
    /// No engine runs yet (the [`Originator`] is not bound), or it has stopped.
    #[error("the SIP engine is not running")]
    NotRunning,
    /// Too many originated requests wait for the engine.
    #[error("too many requests waiting to be sent")]
    Busy,
    /// The request cannot be routed (no Route or Request-URI to send it to, no
    /// address for its next hop, no listener of its transport).
    #[error("cannot route the request: {0}")]
    Unroutable(String),
    /// Timer F (or B) ran out without a final response.
    #[error("no final response (timeout)")]
    Timeout,
    /// The transport failed to carry the request.
    #[error("transport error")]
    Transport,
}

/// A request to send and who waits for its final response.
pub(super) struct Originate {
    pub(super) request: SipMessage,
    pub(super) done: oneshot::Sender<Result<SipMessage, OriginateError>>,
}

/// The handle through which a node sends requests of its own. Cheap to clone; made
/// before the engine starts ([`Originator::default`]) and bound to it by
/// [`super::ProxyEngine::bind_originator`], so a policy built before the engine can hold
/// one.
#[derive(Debug, Clone, Default)]
pub struct Originator {
    inner: Arc<OnceLock<Bound>>,
}

#[derive(Debug)]
struct Bound {
    queue: mpsc::Sender<Originate>,
    config: Arc<EngineConfig>,
}

impl Originator {
    /// Binds this handle to an engine's queue; a second binding is ignored (false).
    pub(super) fn bind(&self, queue: mpsc::Sender<Originate>, config: Arc<EngineConfig>) -> bool {
        self.inner.set(Bound { queue, config }).is_ok()
    }

    /// Whether an engine is bound.
    pub fn is_bound(&self) -> bool {
        self.inner.get().is_some()
    }

    /// Sends `request` (complete but for our Via) and returns its final response.
    /// Provisional responses are absorbed.
    pub async fn send(&self, request: SipMessage) -> Result<SipMessage, OriginateError> {
        let bound = self.inner.get().ok_or(OriginateError::NotRunning)?;
        // The next hop's name is looked up here (RFC 3263), as for a decision, so the
        // engine's task never waits for DNS.
        let plain = Decision::Forward(Forward::default());
        bound.config.prepare(&next_hops(&request, &plain)).await;
        let (done, rx) = oneshot::channel();
        bound
            .queue
            .try_send(Originate { request, done })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => OriginateError::Busy,
                mpsc::error::TrySendError::Closed(_) => OriginateError::NotRunning,
            })?;
        rx.await.unwrap_or(Err(OriginateError::NotRunning))
    }
}
