//! Transports: TCP, or TLS on connect (RFC 6733 §2.1, §13; no in-band negotiation).
//! Mutual TLS is a matter of the rustls configurations given (a client certificate in the
//! `ClientConfig`, a client verifier in the `ServerConfig`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use ims_pki::certificate_names;

use super::binding::RemoteTransport;

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

/// Why a TLS [`Connector`] could not be built from its files.
#[derive(Debug, thiserror::Error)]
pub enum TlsClientError {
    /// The CA file cannot be read, or a certificate in it does not parse.
    #[error("CA file {}: {source}", path.display())]
    CaFile {
        /// The CA file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The CA file holds no PEM certificate.
    #[error("CA file {}: no certificate", path.display())]
    NoCertificate {
        /// The CA file.
        path: PathBuf,
    },
    /// The client certificate or key file cannot be read, or holds no certificate/key.
    #[error("client certificate file {}: {source}", path.display())]
    Identity {
        /// The certificate or key file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// rustls refused a CA certificate or the configuration.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// The server name is neither a DNS name nor an IP address.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
}

fn read_pem(
    path: &Path,
    error: impl Fn(std::io::Error) -> TlsClientError,
) -> Result<Vec<u8>, TlsClientError> {
    std::fs::read(path).map_err(error)
}

/// The certificate chain and key of `(cert, key)` PEM files.
fn read_identity(
    cert: &Path,
    key: &Path,
) -> Result<
    (
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ),
    TlsClientError,
> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsClientError::Identity {
            path: path.clone(),
            source,
        }
    };
    let missing = |path: &Path, what: &str| TlsClientError::Identity {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("no {what}")),
    };
    let pem = read_pem(cert, err(cert))?;
    let chain = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(err(cert))?;
    if chain.is_empty() {
        return Err(missing(cert, "PEM certificate"));
    }
    let pem = read_pem(key, err(key))?;
    let key_der = rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(err(key))?
        .ok_or_else(|| missing(key, "PEM private key"))?;
    Ok((chain, key_der))
}

impl Connector {
    /// A client's transport: plain TCP without `ca`; with it, TLS on connect (RFC 6733
    /// §13) verifying the server's certificate against that PEM CA bundle and
    /// `server_name`, and presenting the PEM certificate chain and key of `identity`
    /// (`(cert, key)`: mutual TLS; the certificate names our Origin-Host) if given.
    pub fn client(
        ca: Option<&Path>,
        server_name: &str,
        identity: Option<(&Path, &Path)>,
    ) -> Result<Connector, TlsClientError> {
        let Some(ca) = ca else {
            return Ok(Connector::Tcp);
        };
        let ca_error = |source| TlsClientError::CaFile {
            path: ca.to_path_buf(),
            source,
        };
        let pem = read_pem(ca, ca_error)?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(cert.map_err(ca_error)?)?;
        }
        if roots.is_empty() {
            return Err(TlsClientError::NoCertificate {
                path: ca.to_path_buf(),
            });
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let config = match identity {
            Some((cert, key)) => {
                let (chain, key) = read_identity(cert, key)?;
                builder.with_client_auth_cert(chain, key)?
            }
            None => builder.with_no_client_auth(),
        };
        let server_name = rustls::pki_types::ServerName::try_from(server_name.to_owned())
            .map_err(|_| TlsClientError::ServerName(server_name.to_owned()))?;
        Ok(Connector::Tls {
            config: Arc::new(config),
            server_name,
        })
    }

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
    /// The accepted stream and what it proves about the peer: with TLS, the names of the
    /// client certificate rustls verified (none asked for: `names: None`).
    pub(crate) async fn wrap(&self, tcp: TcpStream) -> std::io::Result<(BoxIo, RemoteTransport)> {
        match self {
            Acceptor::Tcp => Ok((Box::new(tcp), RemoteTransport::Tcp)),
            Acceptor::Tls(config) => {
                let a = tokio_rustls::TlsAcceptor::from(config.clone());
                let tls = a.accept(tcp).await?;
                let names = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(|leaf| certificate_names(leaf));
                Ok((Box::new(tls), RemoteTransport::Tls { names }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn ca_pem() -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap()
            .pem()
    }

    #[test]
    fn a_client_without_a_ca_is_plain_tcp() {
        assert!(matches!(
            Connector::client(None, "hss.ims.example", None).unwrap(),
            Connector::Tcp
        ));
    }

    #[test]
    fn a_client_with_a_ca_verifies_the_server_name() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_pem()).unwrap();
        match Connector::client(Some(&ca), "hss.ims.example", None).unwrap() {
            Connector::Tls { server_name, .. } => {
                assert_eq!(server_name.to_str(), "hss.ims.example");
            }
            Connector::Tcp => panic!("a CA file gave plain TCP"),
        }
        let bad_name = Connector::client(Some(&ca), "not a host name", None).err();
        assert!(
            matches!(bad_name, Some(TlsClientError::ServerName(_))),
            "{bad_name:?}"
        );
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = Connector::client(Some(&missing), "hss", None).err();
        assert!(
            matches!(err, Some(TlsClientError::CaFile { .. })),
            "{err:?}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = Connector::client(Some(&empty), "hss", None).err();
        assert!(
            matches!(err, Some(TlsClientError::NoCertificate { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn a_missing_or_empty_client_certificate_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_pem()).unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing\n").unwrap();
        let missing = dir.path().join("missing.pem");
        for (cert, key) in [(&missing, &ca), (&empty, &ca), (&ca, &empty)] {
            let err = Connector::client(Some(&ca), "hss", Some((cert, key))).err();
            assert!(
                matches!(&err, Some(TlsClientError::Identity { path, .. }) if path == cert || path == key),
                "{err:?}"
            );
        }
    }
}
