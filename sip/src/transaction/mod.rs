//! The SIP transaction layer (RFC 3261 §17, with the RFC 6026 corrections for 2xx
//! responses to INVITE).
//!
//! Why our own and not rsipstack's: rsipstack's transaction layer is built around its
//! own user-agent endpoint and message types and has no notion of a stateful proxy's
//! forked client transactions (one INVITE server transaction feeding several INVITE
//! client transactions, each with its own branch, Timer C and CANCEL). Ours works on
//! [`crate::SipMessage`] and leaves forking to the proxy core above it.
//!
//! The layer is split in two:
//!
//! * a sans-IO core: each state of each of the four machines is its own type
//!   ([`client_invite::Calling`], [`server_invite::Completed`], ...). A transition is a
//!   method that consumes the state and returns the next one plus the [`Action`]s to
//!   perform (send a message to the transaction's peer, deliver something to the TU,
//!   start or cancel a [`Timer`]). The core knows no clock, socket or destination type.
//! * [`layer::TransactionLayer`], which keeps the transactions by
//!   [`TransactionKey`](crate::message::key::TransactionKey), matches incoming
//!   messages to them (§17.1.3, §17.2.3), runs their timers on tokio time and hands
//!   messages to a [`layer::Transmit`] implementation with a destination of the
//!   transport layer's choosing. Its owner (the proxy engine's task) calls it
//!   directly: no task or channel of its own.

pub mod client_invite;
pub mod client_non_invite;
pub mod layer;
pub mod server_invite;
pub mod server_non_invite;
pub mod timers;

use std::time::Duration;

use bytes::Bytes;

use crate::SipMessage;

pub use layer::{LayerLimits, TransactionLayer, Transmit, TuEvent};
pub use timers::{Timer, TimerConfig};

/// Something a transaction asks its owner to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this message to the transaction's peer.
    Send(SipMessage),
    /// Send this final response, encoded as these bytes, which the transaction keeps
    /// for its retransmissions: from now on it sends nothing else, so the layer
    /// resolves once where those go ([`layer::Transmit::route`]) and keeps that
    /// instead of the peer.
    SendFinal(SipMessage, Bytes),
    /// Send again the bytes of the earlier [`Action::SendFinal`].
    Retransmit(Bytes),
    /// Hand this to the transaction user.
    Deliver(Delivery),
    /// (Re)start a timer: fire it after the duration, replacing any running instance.
    StartTimer(Timer, Duration),
    /// Stop a timer if it is running.
    CancelTimer(Timer),
}

/// What a transaction passes up to its transaction user (RFC 3261 §17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A response for a client transaction (provisional, final, or with RFC 6026 a
    /// retransmitted 2xx to INVITE).
    Response(SipMessage),
    /// An ACK that matched an INVITE server transaction in the Accepted state
    /// (RFC 6026 §7.1): it belongs to the TU, not to the transaction.
    Ack(SipMessage),
    /// Timer B, F or H fired: no response (or no ACK) in time. The TU treats a client
    /// timeout as a 408 (RFC 3261 §8.1.3.1; a proxy answers 408 upstream, §16.7).
    Timeout(Timer),
    /// Timer C fired on a proxy's INVITE client transaction (RFC 3261 §16.8): the proxy
    /// sends CANCEL if a provisional response was seen, or acts as on a 408.
    TimerC {
        /// True when a provisional response had been received.
        provisional_received: bool,
    },
    /// The transport failed to send a message of this transaction (§17.1.4, §17.2.4).
    TransportError,
}

/// A transaction's output for one event.
pub type Actions = Vec<Action>;

/// Errors from the transaction user's calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    /// The message is not usable to key a transaction (no top Via / CSeq).
    #[error("cannot key the transaction: {0}")]
    Key(#[from] crate::ParseError),
    /// A client request must carry an RFC 3261 branch in its top Via (§8.1.1.7).
    #[error("top Via has no z9hG4bK branch")]
    NoBranch,
    /// A client transaction with this key already exists.
    #[error("a transaction with this key already exists")]
    Duplicate,
    /// ACK is never sent in a client transaction (§17.1).
    #[error("ACK does not start a client transaction")]
    AckRequest,
    /// No transaction with this key.
    #[error("no such transaction")]
    NotFound,
    /// The message is not a response / not a request where one is required.
    #[error("expected a {0}")]
    WrongKind(&'static str),
    /// The transaction is in a state that does not accept this response from the TU
    /// (e.g. a final response was already sent).
    #[error("response not allowed in state {0}")]
    NotAllowed(&'static str),
}

/// The bytes a transaction keeps to retransmit `message`, in a buffer of their own
/// size (an encoding buffer is sized on an estimate).
fn kept_encoding(message: &SipMessage) -> Bytes {
    Bytes::copy_from_slice(&message.to_bytes())
}

/// True for 1xx.
fn is_provisional(code: u16) -> bool {
    (100..200).contains(&code)
}

/// True for 2xx.
fn is_success(code: u16) -> bool {
    (200..300).contains(&code)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Messages shared by the state machine tests.
    use crate::SipMessage;

    pub const INVITE: &str = "INVITE sip:bob@ims.example.net SIP/2.0\r\n\
Via: SIP/2.0/UDP pcscf.example.net:5060;branch=z9hG4bKabc123\r\n\
Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKue1;rport=5060\r\n\
Route: <sip:scscf.ims.example.net;lr>\r\n\
Route: <sip:as.ims.example.net;lr>\r\n\
Max-Forwards: 69\r\n\
From: <sip:alice@ims.example.net>;tag=a1\r\n\
To: <sip:bob@ims.example.net>\r\n\
Call-ID: call-1@ue\r\n\
CSeq: 7 INVITE\r\n\
Contact: <sip:alice@[2001:db8::1]:5060>\r\n\
Content-Length: 0\r\n\r\n";

    pub fn invite() -> SipMessage {
        SipMessage::parse(INVITE.as_bytes().to_vec()).unwrap()
    }

    pub fn request(method: &str) -> SipMessage {
        SipMessage::parse(
            format!(
                "{method} sip:bob@ims.example.net SIP/2.0\r\n\
Via: SIP/2.0/UDP pcscf.example.net:5060;branch=z9hG4bKnon1\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@ims.example.net>;tag=a1\r\n\
To: <sip:bob@ims.example.net>\r\n\
Call-ID: call-2@ue\r\n\
CSeq: 3 {method}\r\n\
Content-Length: 0\r\n\r\n"
            )
            .into_bytes(),
        )
        .unwrap()
    }

    pub fn response_to(req: &SipMessage, code: u16) -> SipMessage {
        let cseq = req.headers.get_str(&crate::HeaderName::CSeq).unwrap();
        let via = req.headers.first_value(&crate::HeaderName::Via).unwrap();
        let via = std::str::from_utf8(&via).unwrap();
        let to_tag = if code > 100 { ";tag=b2" } else { "" };
        SipMessage::parse(
            format!(
                "SIP/2.0 {code} Whatever\r\n\
Via: {via}\r\n\
From: <sip:alice@ims.example.net>;tag=a1\r\n\
To: <sip:bob@ims.example.net>{to_tag}\r\n\
Call-ID: call-1@ue\r\n\
CSeq: {cseq}\r\n\
Content-Length: 0\r\n\r\n"
            )
            .into_bytes(),
        )
        .unwrap()
    }
}
