//! Diameter base protocol (RFC 6733) and the 3GPP Cx/Dx application (TS 29.228/29.229).
//!
//! - [`avp`], [`message`], [`codec`]: the wire format (RFC 6733 §3, §4) and stream framing.
//! - [`dict`]: base, Cx and Digest dictionaries, command codes and result codes.
//! - [`cx`]: the six Cx command pairs as typed structs (TS 29.229 §6.1).
//! - [`peer`]: the peer state machine (RFC 6733 §5.6), watchdog (RFC 3539), TCP/TLS.

pub mod avp;
pub mod codec;
pub mod cx;
pub mod dict;
pub mod error;
pub mod message;
pub mod peer;

pub use avp::Avp;
pub use error::DecodeError;
pub use message::Message;
