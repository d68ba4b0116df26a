//! What the transport layer binds and how it secures TLS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::TransportLimits;

/// Listeners, TLS material and limits of a [`TransportLayer`](super::TransportLayer).
#[derive(Debug, Clone, Default)]
pub struct TransportConfig {
    /// UDP sockets to bind (port 0 picks a free port).
    pub udp: Vec<SocketAddr>,
    /// TCP listeners to bind.
    pub tcp: Vec<SocketAddr>,
    /// TLS listeners to bind; needs `tls_server`.
    pub tls: Vec<SocketAddr>,
    /// Server certificate for TLS listeners.
    pub tls_server: Option<TlsServerSource>,
    /// Trust anchors for outgoing TLS connections; none means outgoing TLS fails.
    pub tls_client: Option<TlsClientSource>,
    /// Resource limits.
    pub limits: TransportLimits,
}

/// The TLS server identity.
#[derive(Debug, Clone)]
pub enum TlsServerSource {
    /// PEM files: certificate chain (leaf first) and private key. TLS 1.2 and 1.3 are
    /// offered.
    Pem {
        /// Certificate chain file.
        cert: PathBuf,
        /// Private key file (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// A ready rustls configuration.
    Rustls(Arc<rustls::ServerConfig>),
}

/// How outgoing TLS connections verify servers.
#[derive(Debug, Clone)]
pub enum TlsClientSource {
    /// PEM file of trusted CA certificates. TLS 1.2 and 1.3 are offered.
    CaFile(PathBuf),
    /// A ready rustls configuration.
    Rustls(Arc<rustls::ClientConfig>),
}
