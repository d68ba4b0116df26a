//! Errors of binding and of sending.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{Flow, TransportKind};

/// Why the transport layer could not start.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A socket could not be bound.
    #[error("cannot bind {kind} on {addr}: {source}")]
    Bind {
        /// Transport of the listener.
        kind: TransportKind,
        /// Address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// TLS listeners are configured without a server certificate.
    #[error("TLS listeners configured without tls_server")]
    NoTlsServerConfig,
    /// A PEM file could not be read or holds nothing usable.
    #[error("TLS file {path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the certificate, key or trust anchors.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The flow's connection has closed (the peer must reconnect, RFC 5626 §4.4).
    #[error("flow {0} is closed")]
    FlowClosed(Flow),
    /// No listener of this transport and address family to send from.
    #[error("no {kind} listener for {addr}")]
    NoListener {
        /// Transport asked for.
        kind: TransportKind,
        /// Destination.
        addr: SocketAddr,
    },
    /// This layer does not carry this transport (SCTP, WebSocket).
    #[error("transport {0} is not supported")]
    Unsupported(TransportKind),
    /// Outgoing TLS is not configured.
    #[error("no TLS client configuration")]
    NoTlsClientConfig,
    /// The TLS server name is not a valid DNS name.
    #[error("invalid TLS server name {0:?}")]
    InvalidServerName(String),
    /// A connection limit forbids opening another connection.
    #[error("connection limit reached towards {0}")]
    ConnectionLimit(SocketAddr),
    /// Connecting, the TLS handshake or the write did not finish in time.
    #[error("timed out towards {0}")]
    Timeout(SocketAddr),
    /// Connecting, the TLS handshake or the write failed.
    #[error("i/o error towards {addr}: {source}")]
    Io {
        /// Destination.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}
