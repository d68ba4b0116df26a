//! A node's HTTP listeners from its `[http]` section: HTTPS with `[http.tls]` (a client
//! trusting the CA gets `/health`; plain HTTP to the TLS port gets no HTTP answer; a
//! client without the CA fails the handshake), and `/metrics` on `metrics_listen` only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ims_config::{HttpSection, HttpTlsSection};
use ims_runtime::{serve_node, HttpError, NodeHttp, NodeStatus, Router};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A CA and a certificate for 127.0.0.1 signed by it, written to `dir`; the CA's PEM.
fn certificates(dir: &Path) -> String {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let mut ca_again = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_again.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = Issuer::new(ca_again, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join("node.crt"), leaf.pem()).unwrap();
    std::fs::write(dir.join("node.key"), key.serialize_pem()).unwrap();
    ca_cert.pem()
}

fn client(ca_pem: &str) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn get<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, path: &str) -> String {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn https_get(addr: SocketAddr, ca_pem: &str, path: &str) -> std::io::Result<String> {
    let tcp = TcpStream::connect(addr).await?;
    let tls = client(ca_pem)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await?;
    Ok(get(tls, path).await)
}

fn section(tls: Option<&Path>, metrics: bool) -> HttpSection {
    let tls = tls.map(|dir| {
        format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            dir.join("node.crt").display(),
            dir.join("node.key").display()
        )
    });
    let metrics = if metrics {
        "metrics_listen = \"127.0.0.1:0\"\n"
    } else {
        ""
    };
    ims_config::parse_str(
        &format!(
            "listen = \"127.0.0.1:0\"\n{metrics}{}",
            tls.unwrap_or_default()
        ),
        Path::new("http.toml"),
    )
    .unwrap()
}

/// Serves `/health` and `/metrics` of a test node per `http`.
async fn serve(http: &HttpSection) -> Result<NodeHttp, HttpError> {
    serve_node(
        http,
        NodeStatus::new("node-test", "hss"),
        Arc::new(Default::default()),
        Router::new(),
    )
    .await
}

#[tokio::test]
async fn https_with_the_ca_and_metrics_on_their_own_listener() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certificates(dir.path());
    let http = section(Some(dir.path()), true);
    let tls: Option<&HttpTlsSection> = http.tls.as_ref();
    assert!(tls.is_some());
    let served = serve(&http).await.unwrap();

    let health = https_get(served.addr, &ca, "/health").await.unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"node\":\"node-test\""), "{health}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = get(TcpStream::connect(served.addr).await.unwrap(), "/health").await;
    assert!(!plain.contains("HTTP/1.1"), "{plain}");

    // A client that does not trust the CA fails the handshake.
    let other = certificates(tempfile::tempdir().unwrap().path());
    assert!(https_get(served.addr, &other, "/health").await.is_err());

    // /metrics is on its own plain listener, not on the API listener.
    let metrics_addr = served.metrics_addr.expect("a metrics listener");
    let metrics = get(TcpStream::connect(metrics_addr).await.unwrap(), "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    let on_api = https_get(served.addr, &ca, "/metrics").await.unwrap();
    assert!(on_api.starts_with("HTTP/1.1 404"), "{on_api}");
    let health_on_metrics = get(TcpStream::connect(metrics_addr).await.unwrap(), "/health").await;
    assert!(
        health_on_metrics.starts_with("HTTP/1.1 404"),
        "{health_on_metrics}"
    );
    for t in served.tasks {
        t.abort();
    }
}

#[tokio::test]
async fn a_silent_client_does_not_block_other_handshakes() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certificates(dir.path());
    let served = serve(&section(Some(dir.path()), false)).await.unwrap();
    // Connected, never says hello.
    let _silent: Vec<TcpStream> = futures_connect(served.addr, 5).await;
    let health = tokio::time::timeout(
        Duration::from_secs(3),
        https_get(served.addr, &ca, "/health"),
    )
    .await
    .expect("answered while others stay silent")
    .unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    // Without metrics_listen, /metrics stays on the main listener.
    let metrics = https_get(served.addr, &ca, "/metrics").await.unwrap();
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    for t in served.tasks {
        t.abort();
    }
}

async fn futures_connect(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(TcpStream::connect(addr).await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_bad_certificate_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("node.crt"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("node.key"), "not a key").unwrap();
    let err = serve(&section(Some(dir.path()), false))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("node.crt"), "{err}");
}
