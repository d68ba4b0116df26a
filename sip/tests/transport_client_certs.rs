//! Client certificates on SIP over TLS (mutual TLS between nodes): a listener with a
//! client CA verifies what clients present and hands the certificate's names upward
//! with each message ([`PeerNames`] in the `Source`); a certificate of another CA fails
//! the handshake; a client without one is still served (a UE), without names; an
//! outgoing connection presents the layer's own certificate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod transport_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use ims_sip::transport::{
    Destination, PeerNames, PemIdentity, Target, TlsClientSource, TlsServerSource, TransportConfig,
    TransportEvent, TransportKind,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use transport_support::*;

/// A CA that issues certificates, written as PEM files into a scratch directory.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    dir: PathBuf,
    file: PathBuf,
}

/// A certificate with its key, as DER and as PEM files.
struct Issued {
    chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
    identity: PemIdentity,
}

impl Ca {
    fn new(tag: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        let dir = std::env::temp_dir().join(format!("ims-sip-mtls-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ca.pem");
        std::fs::write(&file, cert.pem()).unwrap();
        Ca {
            issuer: Issuer::new(params, key),
            der: cert.der().clone(),
            dir,
            file,
        }
    }

    fn issue(&self, file: &str, names: &[&str]) -> Issued {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let identity = PemIdentity {
            cert: self.dir.join(format!("{file}.pem")),
            key: self.dir.join(format!("{file}.key")),
        };
        std::fs::write(&identity.cert, cert.pem()).unwrap();
        std::fs::write(&identity.key, key.serialize_pem()).unwrap();
        Issued {
            chain: vec![cert.der().clone()],
            key_der: key.serialize_der(),
            identity,
        }
    }
}

/// A TLS listener presenting `server`, verifying clients against `client_ca`; outgoing
/// TLS trusts `ca` and presents `identity`.
fn config(
    ca: &Ca,
    server: &Issued,
    client_ca: Option<&Path>,
    identity: Option<&Issued>,
) -> TransportConfig {
    TransportConfig {
        tls: vec![any_v4()],
        tls_server: Some(TlsServerSource::Pem {
            cert: server.identity.cert.clone(),
            key: server.identity.key.clone(),
            client_ca: client_ca.map(Path::to_path_buf),
        }),
        tls_client: Some(TlsClientSource::Pem {
            ca: ca.file.clone(),
            identity: identity.map(|i| i.identity.clone()),
        }),
        ..TransportConfig::default()
    }
}

/// A raw TLS client trusting `ca`, presenting `cert` if given.
async fn connect(
    addr: std::net::SocketAddr,
    ca: &Ca,
    cert: Option<&Issued>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match cert {
        None => builder.with_no_client_auth(),
        Some(c) => {
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key_der.clone()));
            builder.with_client_auth_cert(c.chain.clone(), key).unwrap()
        }
    };
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// Sends a request over `client` and returns the names it arrived with.
async fn names_seen(
    client: &mut TlsStream<TcpStream>,
    rx: &mut tokio::sync::mpsc::Receiver<TransportEvent>,
    call_id: &str,
) -> Option<PeerNames> {
    client
        .write_all(&request("TLS", call_id, ""))
        .await
        .unwrap();
    let incoming = next_message(rx).await;
    assert_eq!(incoming.source.flow.kind(), TransportKind::Tls);
    incoming.source.peer_names
}

#[tokio::test]
async fn a_verified_client_certificate_names_every_message_of_its_connection() {
    let ca = Ca::new("verified");
    let server = ca.issue("server", &["localhost"]);
    let (layer, mut rx) = start(config(&ca, &server, Some(&ca.file), None)).await;
    let addr = layer.local_addr(TransportKind::Tls).unwrap();
    let pcscf = ca.issue("pcscf", &["pcscf.ims.example.net", "127.0.0.1"]);
    let mut client = connect(addr, &ca, Some(&pcscf)).await.unwrap();
    for call_id in ["first", "second"] {
        let names = names_seen(&mut client, &mut rx, call_id).await.unwrap();
        assert_eq!(
            names.iter().collect::<Vec<_>>(),
            ["pcscf.ims.example.net"],
            "{call_id}"
        );
    }
}

#[tokio::test]
async fn a_client_certificate_of_another_ca_fails_the_handshake() {
    let ca = Ca::new("wrong-ca");
    let server = ca.issue("server", &["localhost"]);
    let (layer, mut rx) = start(config(&ca, &server, Some(&ca.file), None)).await;
    let addr = layer.local_addr(TransportKind::Tls).unwrap();
    // Same name, issued by a CA the listener does not trust.
    let forger = Ca::new("forger");
    let forged = forger.issue("pcscf", &["pcscf.ims.example.net"]);
    // TLS 1.3: the client may finish its side before the server refuses; either the
    // handshake fails, or the connection closes before anything is delivered.
    if let Ok(mut client) = connect(addr, &ca, Some(&forged)).await {
        let _ = client.write_all(&request("TLS", "forged", "")).await;
        expect_closed(&mut client).await;
    }
    // Nothing was delivered: the next message is the honest client's.
    let mut honest = connect(addr, &ca, None).await.unwrap();
    assert_eq!(names_seen(&mut honest, &mut rx, "honest").await, None);
}

#[tokio::test]
async fn a_client_without_certificate_is_served_without_names() {
    let ca = Ca::new("optional");
    let server = ca.issue("server", &["localhost"]);
    let (layer, mut rx) = start(config(&ca, &server, Some(&ca.file), None)).await;
    let addr = layer.local_addr(TransportKind::Tls).unwrap();
    let mut ue = connect(addr, &ca, None).await.unwrap();
    assert_eq!(names_seen(&mut ue, &mut rx, "ue").await, None);
}

#[tokio::test]
async fn without_a_client_ca_no_certificate_is_asked_for() {
    let ca = Ca::new("no-client-ca");
    let server = ca.issue("server", &["localhost"]);
    let (layer, mut rx) = start(config(&ca, &server, None, None)).await;
    let addr = layer.local_addr(TransportKind::Tls).unwrap();
    let pcscf = ca.issue("pcscf", &["pcscf.ims.example.net"]);
    let mut client = connect(addr, &ca, Some(&pcscf)).await.unwrap();
    assert_eq!(names_seen(&mut client, &mut rx, "unasked").await, None);
}

#[tokio::test]
async fn outgoing_tls_presents_the_layers_certificate() {
    let ca = Ca::new("outgoing");
    let a_cert = ca.issue("a", &["localhost", "pcscf.ims.example.net"]);
    let b_cert = ca.issue("b", &["localhost", "scscf.ims.example.net"]);
    let (a, mut rx_a) = start(config(&ca, &a_cert, Some(&ca.file), Some(&a_cert))).await;
    let (b, mut rx_b) = start(config(&ca, &b_cert, Some(&ca.file), Some(&b_cert))).await;
    let dest = Target::Destination(Destination {
        kind: TransportKind::Tls,
        addr: b.local_addr(TransportKind::Tls).unwrap(),
        server_name: Some("localhost".into()),
    });
    a.send(&dest, Bytes::from(request("TLS", "a-to-b", "")))
        .await
        .unwrap();
    let at_b = next_message(&mut rx_b).await;
    let names = at_b.source.peer_names.clone().expect("A's certificate");
    assert!(names.contains("pcscf.ims.example.net"), "{names:?}");
    // The answer over that connection reaches A without names: A opened it, and a
    // server certificate is no client certificate.
    b.send(
        &Target::Flow(at_b.source.flow),
        Bytes::from(response("TLS", "a-to-b")),
    )
    .await
    .unwrap();
    assert_eq!(next_message(&mut rx_a).await.source.peer_names, None);
}
