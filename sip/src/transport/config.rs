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
    /// Listeners toward the core ([`Face::Core`](super::Face::Core)); those above face
    /// UEs and peers ([`Face::Main`](super::Face::Main)).
    pub core: CoreListeners,
    /// Server certificate for TLS listeners, and the CA their clients' certificates are
    /// verified against.
    pub tls_server: Option<TlsServerSource>,
    /// Trust anchors for outgoing TLS connections, and the certificate they present;
    /// none means outgoing TLS fails.
    pub tls_client: Option<TlsClientSource>,
    /// Resource limits.
    pub limits: TransportLimits,
    /// With several shards ([`TransportLayer::bind_shards`](super::TransportLayer::bind_shards)):
    /// the port of shard 0's client socket, shard `i` binding `shard_ports + i` on the
    /// address of each UDP listener requests leave from; `None`: ports the kernel
    /// picks (ephemeral). Unused with one shard.
    pub shard_ports: Option<u16>,
}

/// The listeners of [`Face::Core`](super::Face::Core): a node reached at one address
/// by UEs and at another by its core peers (a P-CSCF behind a floating IP) sends
/// requests to destinations from these.
#[derive(Debug, Clone, Default)]
pub struct CoreListeners {
    /// UDP sockets to bind.
    pub udp: Vec<SocketAddr>,
    /// TCP listeners to bind.
    pub tcp: Vec<SocketAddr>,
    /// TLS listeners to bind; needs `tls_server`.
    pub tls: Vec<SocketAddr>,
}

/// The TLS server identity.
#[derive(Debug, Clone)]
pub enum TlsServerSource {
    /// PEM files: certificate chain (leaf first) and private key. TLS 1.2 and 1.3 are
    /// offered.
    ///
    /// With `client_ca`, the listener asks every client for a certificate: one that does
    /// not chain to a CA of that file fails the handshake; a client without one is still
    /// served (a UE), and its messages carry no [`PeerNames`](super::PeerNames).
    Pem {
        /// Certificate chain file.
        cert: PathBuf,
        /// Private key file (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
        /// CA certificates (PEM) client certificates are verified against; `None`: no
        /// client certificate is asked for.
        client_ca: Option<PathBuf>,
    },
    /// A ready rustls configuration.
    Rustls(Arc<rustls::ServerConfig>),
}

/// How outgoing TLS connections verify servers.
#[derive(Debug, Clone)]
pub enum TlsClientSource {
    /// PEM files. TLS 1.2 and 1.3 are offered.
    Pem {
        /// Trusted CA certificates (server certificates must chain to one).
        ca: PathBuf,
        /// The certificate presented when a server asks for one (mutual TLS); `None`:
        /// none is presented.
        identity: Option<PemIdentity>,
    },
    /// A ready rustls configuration.
    Rustls(Arc<rustls::ClientConfig>),
}

/// A certificate chain and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemIdentity {
    /// Certificate chain file (leaf first).
    pub cert: PathBuf,
    /// Private key file (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}
