//! Transports: TCP, or TLS on connect (RFC 6733 §2.1, §13; no in-band negotiation).
//! Mutual TLS is a matter of the rustls configurations given (a client certificate in the
//! `ClientConfig`, a client verifier in the `ServerConfig`).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A byte stream a peer runs over.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A boxed byte stream.
pub type BoxIo = Box<dyn Io>;

/// How the initiator opens its transport.
#[derive(Clone)]
pub enum Connector {
    /// Plain TCP.
    Tcp,
    /// TLS over TCP.
    Tls {
        /// rustls client configuration.
        config: Arc<rustls::ClientConfig>,
        /// Name the server certificate must carry.
        server_name: rustls::pki_types::ServerName<'static>,
    },
}

impl Connector {
    pub(crate) async fn wrap(&self, tcp: TcpStream) -> std::io::Result<BoxIo> {
        match self {
            Connector::Tcp => Ok(Box::new(tcp)),
            Connector::Tls {
                config,
                server_name,
            } => {
                let c = tokio_rustls::TlsConnector::from(config.clone());
                Ok(Box::new(c.connect(server_name.clone(), tcp).await?))
            }
        }
    }
}

/// How the responder accepts its transport.
#[derive(Clone)]
pub enum Acceptor {
    /// Plain TCP.
    Tcp,
    /// TLS over TCP.
    Tls(Arc<rustls::ServerConfig>),
}

impl Acceptor {
    pub(crate) async fn wrap(&self, tcp: TcpStream) -> std::io::Result<BoxIo> {
        match self {
            Acceptor::Tcp => Ok(Box::new(tcp)),
            Acceptor::Tls(config) => {
                let a = tokio_rustls::TlsAcceptor::from(config.clone());
                Ok(Box::new(a.accept(tcp).await?))
            }
        }
    }
}
