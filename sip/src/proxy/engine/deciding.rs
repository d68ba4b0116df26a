//! The policy's decisions as futures the engine's task owns. A decision is polled once
//! where the request is handled; most are ready then (no I/O) and are carried out at
//! once. One that waits (a Diameter answer, a store write, a name lookup) is kept in a
//! [`futures_util::stream::FuturesUnordered`] of the same task and carried out when it
//! completes, without going through a channel or another task.
//!
//! A policy that panics while deciding must not take the engine down with it (the
//! engine runs every request): the panic is caught and the request answered 500.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use futures_util::FutureExt;

use super::Decision;
use crate::message::key::TransactionKey;
use crate::SipMessage;

/// A decision under way.
pub(super) type Deciding = Pin<Box<dyn Future<Output = Decided> + Send>>;

/// The policy's answer for a server transaction.
pub(super) struct Decided {
    pub(super) key: TransactionKey,
    /// The decision, or `Err` when the policy panicked.
    pub(super) decision: Result<Decision, Panicked>,
    /// The decision is a held response the policy let go ([`super::Policy::on_failure`]
    /// answered `None`).
    pub(super) released: bool,
    /// The decision is a final response [`super::Policy::hold_response`] held: it goes
    /// upstream as it is.
    pub(super) relay: bool,
}

/// The policy panicked while deciding.
#[derive(Debug)]
pub(super) struct Panicked;

/// Wraps `decide` (the decision and whether it releases a held response) for `key`.
pub(super) fn start(
    key: TransactionKey,
    decide: impl Future<Output = (Decision, bool)> + Send + 'static,
) -> Deciding {
    Box::pin(async move {
        match AssertUnwindSafe(decide).catch_unwind().await {
            Ok((decision, released)) => Decided {
                key,
                decision: Ok(decision),
                released,
                relay: false,
            },
            Err(_) => Decided {
                key,
                decision: Err(Panicked),
                released: false,
                relay: false,
            },
        }
    })
}

/// `response`, held for `key` until `hold` completes ([`super::Policy::hold_response`]);
/// a `hold` that panics lets it go too.
pub(super) fn relay(
    key: TransactionKey,
    hold: impl Future<Output = ()> + Send + 'static,
    response: SipMessage,
) -> Deciding {
    Box::pin(async move {
        if AssertUnwindSafe(hold).catch_unwind().await.is_err() {
            tracing::error!("the policy panicked holding a response: relayed as it is");
        }
        Decided {
            key,
            decision: Ok(Decision::Respond(response)),
            released: false,
            relay: true,
        }
    })
}
