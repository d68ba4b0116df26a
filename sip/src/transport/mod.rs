//! SIP transport layer (RFC 3261 §18): UDP, TCP and TLS listeners over IPv4 and IPv6,
//! stream framing by Content-Length ([`codec`]), connection reuse (RFC 3261 §18.2.2,
//! RFC 5626 §5: answers and requests to a peer go back over the connection it opened),
//! CRLF keep-alives (RFC 5626 §4.4.1), limits on message size and connections, and idle
//! timeouts.
//!
//! [`TransportLayer::bind`] starts the listeners and returns a channel of
//! [`TransportEvent`]s: parsed messages with the [`Flow`] they came over, and messages
//! that failed to parse (so the upper layer can answer `400` to a request).
//! [`TransportLayer::bind_reading_udp`] leaves the UDP sockets to be read by the
//! caller's own task ([`UdpIngress`]), with no hand-off between tasks.
//! [`TransportLayer::send`] writes to a [`Target`]: an existing flow, or a destination
//! for which a connection is reused or opened. A task that sends several datagrams in
//! one pass queues them in a [`UdpBatch`] and writes them together
//! ([`TransportLayer::flush_udp`]; `recvmmsg`/`sendmmsg` on Linux).
//!
//! Peers are hostile: oversize input, header bombs, binary garbage and truncated
//! messages are logged and dropped (closing the stream when framing is lost), and the
//! listeners keep serving.

pub mod codec;
mod config;
mod connections;
mod error;
mod face;
pub mod hep;
mod kind;
mod layer;
mod limits;
mod log_budget;
mod mmsg;
mod peer_names;
mod stats;
mod stream;
pub mod tls;
mod udp;
mod udp_batch;
mod upward;

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

pub use config::{CoreListeners, PemIdentity, TlsClientSource, TlsServerSource, TransportConfig};
pub use error::{SendError, TransportError};
pub use face::Face;
pub use kind::TransportKind;
pub use layer::{ShardInput, TransportLayer, TrySend};
pub use limits::TransportLimits;
pub use peer_names::PeerNames;
pub use stats::TransportStats;
pub use udp::UdpIngress;
pub use udp_batch::{UdpBatch, Unsent};

use crate::message::{ParseError, SipMessage};

/// Identifies the path a message came over, to answer over the same one (RFC 5626
/// "flow"): a stream connection, or a UDP listening socket paired with the remote
/// address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    kind: TransportKind,
    remote: SocketAddr,
    /// Connection id for streams, listener index for UDP.
    id: u64,
}

impl Flow {
    /// The transport of this flow.
    pub fn kind(&self) -> TransportKind {
        self.kind
    }

    /// The peer's address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}:{}", self.kind, self.id, self.remote)
    }
}

/// Text that is not a flow as [`Flow`]'s `Display` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a flow (TRANSPORT#id:address:port)")]
pub struct ParseFlowError;

/// The text `Display` writes, read back: how a flow is kept across a restart (a
/// P-CSCF's stored registrations). A UDP flow names the listening socket by its index
/// among the node's UDP listeners and the peer's address, both of which outlive the
/// process (as long as the listeners are configured alike). A stream flow names a
/// connection of the process that wrote it: connection ids start at a random point
/// each run (`transport::connections`), so such a flow names no connection of a later run, and
/// sending over it fails as over any closed flow.
impl std::str::FromStr for Flow {
    type Err = ParseFlowError;

    fn from_str(s: &str) -> Result<Flow, ParseFlowError> {
        let (kind, rest) = s.split_once('#').ok_or(ParseFlowError)?;
        let (id, remote) = rest.split_once(':').ok_or(ParseFlowError)?;
        Ok(Flow {
            kind: TransportKind::from_token(kind).ok_or(ParseFlowError)?,
            remote: remote.parse().map_err(|_| ParseFlowError)?,
            id: id.parse().map_err(|_| ParseFlowError)?,
        })
    }
}

/// A place to send to when no flow is given: an existing connection to `addr` over
/// `kind` is reused, otherwise one is opened (RFC 3261 §18.1.1, §18.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Transport to use.
    pub kind: TransportKind,
    /// Remote address.
    pub addr: SocketAddr,
    /// TLS server name to verify (RFC 5922); the IP address when `None`.
    pub server_name: Option<String>,
}

/// Where [`TransportLayer::send`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Over an existing flow only; fails if it has closed.
    Flow(Flow),
    /// Over any connection to the destination, opening one if needed.
    Destination(Destination),
}

/// Where a message came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The flow to answer over.
    pub flow: Flow,
    /// The local address of the listener or connection.
    pub local: SocketAddr,
    /// The peer's address (what `received`/`rport` record, RFC 3261 §18.2.1, RFC 3581).
    pub remote: SocketAddr,
    /// Over a TLS connection accepted by a listener that verifies client certificates:
    /// the names of the certificate the peer presented (shared by the connection's
    /// messages). `None` over UDP and TCP, without a client certificate, and over
    /// connections this layer opened.
    pub peer_names: Option<PeerNames>,
}

/// A message delivered by the transport layer.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The parsed message.
    pub message: SipMessage,
    /// Where it came from.
    pub source: Source,
}

/// A message that was framed (a datagram, or a Content-Length frame) but failed to
/// parse. If it was a request the upper layer may answer with
/// [`ParseError::status_code`].
#[derive(Debug, Clone)]
pub struct Malformed {
    /// Why parsing failed.
    pub error: ParseError,
    /// The raw bytes (bounded by the message size limit).
    pub raw: Bytes,
    /// Where it came from.
    pub source: Source,
}

/// What the transport layer hands upward.
#[derive(Debug, Clone)]
pub enum TransportEvent {
    /// A parsed message.
    Message(Incoming),
    /// A message that failed to parse.
    Malformed(Malformed),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_reads_back_from_its_text() {
        for text in ["UDP#0:127.0.0.1:5062", "TLS#42:[2001:db8::1]:40000"] {
            let flow: Flow = text.parse().unwrap();
            assert_eq!(flow.to_string(), text);
        }
        let flow: Flow = "UDP#1:192.0.2.7:5060".parse().unwrap();
        assert_eq!(flow.kind(), TransportKind::Udp);
        assert_eq!(flow.remote(), "192.0.2.7:5060".parse().unwrap());
        for bad in [
            "",
            "UDP",
            "UDP#0",
            "XYZ#0:127.0.0.1:5060",
            "UDP#x:127.0.0.1:5060",
            "UDP#0:127.0.0.1",
            "UDP#-1:127.0.0.1:5060",
        ] {
            assert_eq!(bad.parse::<Flow>(), Err(ParseFlowError), "{bad:?}");
        }
    }
}
