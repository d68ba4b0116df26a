//! `ims-sip`: the SIP stack shared by every node of the IMS core.
//!
//! * [`message`]: a raw-preserving SIP message model (RFC 3261 §7, §25). Messages that
//!   are not changed re-serialize byte for byte; typed views (Via, CSeq, name-addr,
//!   URIs, credentials) are parsed on demand from the raw header values.
//! * [`auth`]: authentication primitives: HTTP Digest (RFC 2617, RFC 7616), Milenage
//!   (TS 35.206), IMS AKA (RFC 3310, TS 33.203) and stale/replay-safe nonces.
//! * [`transaction`]: the transaction layer (RFC 3261 §17, RFC 6026), a sans-IO state
//!   machine per transaction kind behind one synchronous layer (timers on tokio time).
//! * [`transport`]: UDP, TCP and TLS transports (RFC 3261 §18) with stream framing,
//!   connection reuse, keep-alives and limits against hostile peers.
//! * [`proxy`]: the sans-IO logic of an RFC 3261 §16 stateful proxy.

pub mod auth;
pub mod message;
pub mod proxy;
pub mod transaction;
pub mod transport;

pub use message::{
    Header, HeaderName, Headers, Method, ParseError, Request, Response, SipMessage, StartLine,
};
