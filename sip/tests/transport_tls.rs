//! TLS transport over loopback (RFC 3261 §26.2): a test CA and server certificate made
//! with rcgen, clients forcing TLS 1.2 and TLS 1.3, messages both ways, and outgoing
//! TLS from one layer to another.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod transport_support;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use ims_sip::transport::{
    Destination, SendError, Target, TlsClientSource, TlsServerSource, TransportConfig,
    TransportError, TransportKind,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use transport_support::*;

/// A CA and a server certificate for `localhost` and 127.0.0.1, written as PEM files.
struct Pki {
    ca_der: CertificateDer<'static>,
    ca_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
}

fn make_pki(tag: &str) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();

    let dir = std::env::temp_dir().join(format!("ims-sip-tls-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pki = Pki {
        ca_der: ca_cert.der().clone(),
        ca_file: dir.join("ca.pem"),
        cert_file: dir.join("server.pem"),
        key_file: dir.join("server.key"),
    };
    std::fs::write(&pki.ca_file, ca_cert.pem()).unwrap();
    std::fs::write(&pki.cert_file, cert.pem()).unwrap();
    std::fs::write(&pki.key_file, key.serialize_pem()).unwrap();
    pki
}

fn tls_config(pki: &Pki) -> TransportConfig {
    TransportConfig {
        tls: vec![any_v4()],
        tls_server: Some(TlsServerSource::Pem {
            cert: pki.cert_file.clone(),
            key: pki.key_file.clone(),
            client_ca: None,
        }),
        tls_client: Some(TlsClientSource::Pem {
            ca: pki.ca_file.clone(),
            identity: None,
        }),
        ..TransportConfig::default()
    }
}

fn client_connector(pki: &Pki, version: &'static rustls::SupportedProtocolVersion) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn exchange_with(version: &'static rustls::SupportedProtocolVersion, tag: &str) {
    let pki = make_pki(tag);
    let (layer, mut rx) = start(tls_config(&pki)).await;
    let addr = layer.local_addr(TransportKind::Tls).unwrap();

    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut client = client_connector(&pki, version)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(
        client.get_ref().1.protocol_version(),
        Some(version.version),
        "negotiated version"
    );

    client
        .write_all(&request("TLS", tag, "over tls"))
        .await
        .unwrap();
    let incoming = next_message(&mut rx).await;
    assert_eq!(incoming.message.body(), "over tls");
    assert_eq!(incoming.source.flow.kind(), TransportKind::Tls);

    layer
        .send(
            &Target::Flow(incoming.source.flow),
            Bytes::from(response("TLS", tag)),
        )
        .await
        .unwrap();
    expect_bytes(&mut client, &response("TLS", tag)).await;
}

#[tokio::test]
async fn tls12_exchange_both_ways() {
    exchange_with(&rustls::version::TLS12, "tls12").await;
}

#[tokio::test]
async fn tls13_exchange_both_ways() {
    exchange_with(&rustls::version::TLS13, "tls13").await;
}

#[tokio::test]
async fn outgoing_tls_verifies_the_server_name_and_reuses_the_connection() {
    let pki = make_pki("out");
    let (a, mut rx_a) = start(tls_config(&pki)).await;
    let (b, mut rx_b) = start(tls_config(&pki)).await;
    let b_addr = b.local_addr(TransportKind::Tls).unwrap();

    let dest = |name: &str| {
        Target::Destination(Destination {
            kind: TransportKind::Tls,
            addr: b_addr,
            server_name: Some(name.to_string()),
        })
    };
    // A name the certificate does not carry fails the handshake.
    let err = a
        .send(
            &dest("other.example.com"),
            Bytes::from(request("TLS", "x", "")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Io { .. }), "{err}");

    let flow = a
        .send(&dest("localhost"), Bytes::from(request("TLS", "o1", "")))
        .await
        .unwrap();
    let at_b = next_message(&mut rx_b).await;
    assert_eq!(
        a.send(&dest("localhost"), Bytes::from(request("TLS", "o2", "")))
            .await
            .unwrap(),
        flow
    );
    next_message(&mut rx_b).await;

    b.send(
        &Target::Flow(at_b.source.flow),
        Bytes::from(response("TLS", "o1")),
    )
    .await
    .unwrap();
    let answer = next_message(&mut rx_a).await;
    assert_eq!(answer.source.flow, flow);
}

#[tokio::test]
async fn failed_handshake_does_not_stop_the_listener() {
    let pki = make_pki("bad");
    let (layer, mut rx) = start(tls_config(&pki)).await;
    let addr = layer.local_addr(TransportKind::Tls).unwrap();

    // Plain SIP on the TLS port: the handshake fails and the connection is closed.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    let _ = plain.write_all(&request("TCP", "plain", "")).await;
    expect_closed(&mut plain).await;

    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut client = client_connector(&pki, &rustls::version::TLS13)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    client
        .write_all(&request("TLS", "after", ""))
        .await
        .unwrap();
    next_message(&mut rx).await;
}

#[tokio::test]
async fn tls_listener_without_certificate_is_a_config_error() {
    let cfg = TransportConfig {
        tls: vec![any_v4()],
        ..TransportConfig::default()
    };
    assert!(matches!(
        ims_sip::transport::TransportLayer::bind(cfg).await,
        Err(TransportError::NoTlsServerConfig)
    ));
    let cfg = TransportConfig {
        tls: vec![any_v4()],
        tls_server: Some(TlsServerSource::Pem {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
            client_ca: None,
        }),
        ..TransportConfig::default()
    };
    match ims_sip::transport::TransportLayer::bind(cfg).await {
        Err(TransportError::Pem { path, .. }) => {
            assert_eq!(path, PathBuf::from("/nonexistent/cert.pem"))
        }
        other => panic!("expected a PEM error, got {:?}", other.map(|_| ())),
    }
}
