//! rustls configurations for TLS listeners and outgoing TLS (RFC 3261 §26.2.1 via
//! RFC 5630: TLS 1.2 and 1.3 offered, ring provider).
//!
//! Mutual TLS between nodes: a listener with a client CA asks its clients for a
//! certificate and verifies it (rustls' `WebPkiClientVerifier`, unauthenticated clients
//! allowed: UEs have none); outgoing connections present the node's certificate when
//! a server asks for one.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use super::{PemIdentity, TlsClientSource, TlsServerSource, TransportError};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn open(path: &Path) -> Result<BufReader<File>, TransportError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| pem_error(path, e.to_string()))
}

fn pem_error(path: &Path, reason: impl Into<String>) -> TransportError {
    TransportError::Pem {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let certs = rustls_pemfile::certs(&mut open(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error(path, "no certificate found"));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TransportError> {
    rustls_pemfile::private_key(&mut open(path)?)
        .map_err(|e| pem_error(path, e.to_string()))?
        .ok_or_else(|| pem_error(path, "no private key found"))
}

fn roots(path: &Path) -> Result<rustls::RootCertStore, TransportError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// Verifies client certificates against the CAs of `path`; a client without one is
/// let through (a UE), one whose certificate does not chain to them fails the handshake.
fn client_verifier(
    path: &Path,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TransportError> {
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots(path)?), provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| pem_error(path, e.to_string()))
}

/// The server configuration for TLS listeners (also used by the nodes' HTTPS
/// listeners, `ims-runtime`).
pub fn server_config(
    source: &TlsServerSource,
) -> Result<Arc<rustls::ServerConfig>, TransportError> {
    match source {
        TlsServerSource::Rustls(config) => Ok(config.clone()),
        TlsServerSource::Pem {
            cert,
            key,
            client_ca,
        } => {
            let builder = rustls::ServerConfig::builder_with_provider(provider())
                .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])?;
            let builder = match client_ca {
                None => builder.with_no_client_auth(),
                Some(path) => builder.with_client_cert_verifier(client_verifier(path)?),
            };
            let config = builder.with_single_cert(load_certs(cert)?, load_key(key)?)?;
            Ok(Arc::new(config))
        }
    }
}

/// The client configuration for outgoing TLS connections.
pub fn client_config(
    source: &TlsClientSource,
) -> Result<Arc<rustls::ClientConfig>, TransportError> {
    match source {
        TlsClientSource::Rustls(config) => Ok(config.clone()),
        TlsClientSource::Pem { ca, identity } => {
            let builder = rustls::ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])?
                .with_root_certificates(roots(ca)?);
            let config = match identity {
                None => builder.with_no_client_auth(),
                Some(PemIdentity { cert, key }) => {
                    builder.with_client_auth_cert(load_certs(cert)?, load_key(key)?)?
                }
            };
            Ok(Arc::new(config))
        }
    }
}
