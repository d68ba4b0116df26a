//! `ims-sip`: the SIP stack shared by every node of the IMS core.
//!
//! * [`message`]: a raw-preserving SIP message model (RFC 3261 §7, §25). Messages that
//!   are not changed re-serialize byte for byte; typed views (Via, CSeq, name-addr,
//!   URIs, credentials) are parsed on demand from the raw header values.
//! * [`proxy`]: the sans-IO logic of an RFC 3261 §16 stateful proxy.

pub mod message;
pub mod proxy;

pub use message::{
    Header, HeaderName, Headers, Method, ParseError, Request, Response, SipMessage, StartLine,
};
