//! `ims-sip`: the SIP stack shared by every node of the IMS core.
//!
//! * [`message`]: a raw-preserving SIP message model (RFC 3261 §7, §25). Messages that
//!   are not changed re-serialize byte for byte; typed views (Via, CSeq, name-addr,
//!   URIs, credentials) are parsed on demand from the raw header values.
//! * [`transport`]: UDP, TCP and TLS transports (RFC 3261 §18) with stream framing,
//!   connection reuse, keep-alives and limits against hostile peers.

pub mod message;
pub mod transport;

pub use message::{
    Header, HeaderName, Headers, Method, ParseError, Request, Response, SipMessage, StartLine,
};
