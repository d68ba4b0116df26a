//! End to end over loopback TCP and TLS: CER/CEA, Cx requests both ways, DWR/DWA with a
//! short real Tw, watchdog failover and reconnection, DPR/DPA. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/samples.rs"]
#[allow(dead_code)]
mod samples;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ims_diameter::codec::{DiameterCodec, Frame};
use ims_diameter::cx::{CxRequest, CxResult, Rta, Uaa};
use ims_diameter::dict::{disconnect_cause, result};
use ims_diameter::peer::{
    cea, Acceptor, BoxFuture, CloseReason, Connector, Handler, Peer, PeerAddress, PeerAddresses,
    PeerBinding, PeerConfig, PeerState, Refusal, Server,
};
use ims_diameter::Message;
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

const BOUND: Duration = Duration::from_secs(10);

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Answers UAR like an HSS (and any malformed Cx request with its error answer), and
/// RTR like an S-CSCF.
struct Node(&'static str);

impl Handler for Node {
    fn handle(&self, req: Message) -> BoxFuture<'_, Message> {
        Box::pin(async move {
            match CxRequest::from_message(&req) {
                Ok(CxRequest::Uar(uar)) => {
                    let mut uaa = samples::uaa();
                    uaa.header.session_id = uar.header.session_id;
                    uaa.header.origin_host = self.0.into();
                    uaa.to_answer(&req)
                }
                Ok(CxRequest::Rtr(rtr)) => {
                    let mut rta = samples::rta();
                    rta.header.session_id = rtr.header.session_id;
                    rta.header.origin_host = self.0.into();
                    rta.to_answer(&req)
                }
                Ok(_) => Message::error_answer(
                    &req,
                    self.0,
                    "ims.example",
                    result::DIAMETER_UNABLE_TO_COMPLY,
                    None,
                ),
                Err(e) => e.answer(&req, self.0, "ims.example"),
            }
        })
    }
}

fn cfg(host: &str, peer: &str) -> PeerConfig {
    let mut c = PeerConfig::cx(host, "ims.example");
    c.allowed_peers = vec![peer.into()];
    // As a responder: the peer is believed from loopback over TCP, or by certificate.
    c.bindings = vec![PeerBinding::new(
        peer,
        vec!["127.0.0.1/32".parse().unwrap()],
    )];
    c.watchdog_interval = Duration::from_millis(200);
    c.watchdog_jitter = Duration::from_millis(20);
    c.reconnect_min = Duration::from_millis(50);
    c.reconnect_max = Duration::from_millis(400);
    c.exchange_timeout = Duration::from_secs(2);
    c.request_timeout = Duration::from_secs(3);
    c
}

fn hss_cfg() -> PeerConfig {
    cfg("hss.ims.example", "icscf.ims.example")
}

fn cscf_cfg() -> PeerConfig {
    cfg("icscf.ims.example", "hss.ims.example")
}

async fn serve(addr: SocketAddr, acceptor: Acceptor) -> Server {
    Server::bind(hss_cfg(), addr, acceptor, Arc::new(Node("hss.ims.example")))
        .await
        .unwrap()
}

/// The I-CSCF peer over TCP toward `addr`, once open.
async fn open_tcp_client(addr: impl Into<PeerAddresses>) -> Peer {
    let client = Peer::connect(
        cscf_cfg(),
        addr,
        Connector::Tcp,
        Arc::new(Node("icscf.ims.example")),
    );
    bounded("open", client.wait_for(PeerState::Open)).await;
    client
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    bounded(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// CER/CEA, UAR/UAA, a missing-AVP error, RTR/RTA from the server side, DWR/DWA, DPR/DPA.
async fn full_session(acceptor: Acceptor, connector: Connector) {
    let server = serve("127.0.0.1:0".parse().unwrap(), acceptor).await;
    let client = Peer::connect(
        cscf_cfg(),
        server.local_addr(),
        connector,
        Arc::new(Node("icscf.ims.example")),
    );
    bounded("open", client.wait_for(PeerState::Open)).await;
    assert_eq!(client.remote_host().as_deref(), Some("hss.ims.example"));

    let ans = bounded("UAA", client.request(samples::uar().to_message()))
        .await
        .unwrap();
    let uaa = Uaa::from_message(&ans).unwrap();
    assert_eq!(uaa.header.result, CxResult::experimental(2001));
    assert_eq!(uaa.header.session_id, samples::uar().header.session_id);

    let mut bad = samples::uar().to_message();
    bad.avps
        .retain(|a| !a.is(&ims_diameter::dict::cx::VISITED_NETWORK_IDENTIFIER));
    let ans = bounded("error answer", client.request(bad)).await.unwrap();
    assert_eq!(ans.result_code(), Some(result::DIAMETER_MISSING_AVP));

    // The HSS sends an RTR over the same connection.
    wait_until("server-side peer", || {
        server.peer("icscf.ims.example").is_some()
    })
    .await;
    let towards_cscf = server.peer("ICSCF.ims.example").unwrap();
    let ans = bounded("RTA", towards_cscf.request(samples::rtr().to_message()))
        .await
        .unwrap();
    let rta = Rta::from_message(&ans).unwrap();
    assert_eq!(rta.header.origin_host, "icscf.ims.example");

    // Watchdog: DWAs arrive on both sides with Tw = 200 ms.
    wait_until("two DWAs", || client.stats().dwa_received >= 2).await;
    assert!(towards_cscf.stats().dwr_received >= 1 || towards_cscf.stats().dwa_received >= 1);
    assert_eq!(client.state(), PeerState::Open);

    bounded("DPR/DPA", client.disconnect(disconnect_cause::REBOOTING)).await;
    assert_eq!(client.state(), PeerState::Closed);
    assert_eq!(
        client.last_close_reason(),
        Some(CloseReason::LocalDisconnect(0))
    );
    wait_until("server-side close", || {
        server.peer("icscf.ims.example").is_none()
    })
    .await;
    assert_eq!(
        client
            .request(samples::uar().to_message())
            .await
            .unwrap_err(),
        ims_diameter::peer::PeerError::NotOpen
    );
    server.abort();
}

#[tokio::test]
async fn tcp_session() {
    full_session(Acceptor::Tcp, Connector::Tcp).await;
}

#[tokio::test]
async fn mutual_tls_session() {
    let tls = tls::Pki::new();
    full_session(
        Acceptor::Tls(tls.server_config()),
        Connector::Tls {
            config: tls.client_config(),
            server_name: "hss.ims.example".try_into().unwrap(),
        },
    )
    .await;
}

/// A mutual-TLS server of `tls`, and the I-CSCF peer (claiming `icscf.ims.example`)
/// connecting to it with `config`, once its first attempt has ended.
async fn tls_attempt(tls: &tls::Pki, config: Arc<rustls::ClientConfig>) -> (Server, Peer) {
    let server = serve(
        "127.0.0.1:0".parse().unwrap(),
        Acceptor::Tls(tls.server_config()),
    )
    .await;
    let client = Peer::connect(
        cscf_cfg(),
        server.local_addr(),
        Connector::Tls {
            config,
            server_name: "hss.ims.example".try_into().unwrap(),
        },
        Arc::new(Node("icscf.ims.example")),
    );
    wait_until("a failed attempt", || client.last_close_reason().is_some()).await;
    (server, client)
}

#[tokio::test]
async fn tls_client_without_certificate_is_refused() {
    let tls = tls::Pki::new();
    let (server, client) = tls_attempt(&tls, tls.client_config_without_cert()).await;
    assert_ne!(client.state(), PeerState::Open);
    assert_eq!(client.stats().opened, 0);
    client.disconnect(0).await;
    server.abort();
}

#[tokio::test]
async fn unknown_peer_is_refused_over_tcp() {
    let server = serve("127.0.0.1:0".parse().unwrap(), Acceptor::Tcp).await;
    let stranger = cfg("stranger.ims.example", "hss.ims.example");
    let client = Peer::connect(
        stranger,
        server.local_addr(),
        Connector::Tcp,
        Arc::new(Node("stranger")),
    );
    wait_until("refusal", || client.last_close_reason().is_some()).await;
    assert_eq!(
        client.last_close_reason(),
        Some(CloseReason::CapabilitiesRejected(
            result::DIAMETER_UNKNOWN_PEER
        ))
    );
    client.disconnect(0).await;
    server.abort();
}

/// Mutual TLS with a valid certificate of our CA, issued to another Origin-Host than
/// the one the CER claims: DIAMETER_UNKNOWN_PEER, never open, so no request is served.
#[tokio::test]
async fn a_certificate_for_another_origin_host_is_refused() {
    let tls = tls::Pki::with_client("scscf.ims.example");
    // Claims icscf.ims.example (allowed, and from an allowed address) with scscf's
    // certificate: the certificate decides.
    let (server, client) = tls_attempt(&tls, tls.client_config()).await;
    assert_eq!(
        client.last_close_reason(),
        Some(CloseReason::CapabilitiesRejected(
            result::DIAMETER_UNKNOWN_PEER
        ))
    );
    assert_eq!(client.stats().opened, 0);
    assert!(server.peer("icscf.ims.example").is_none());
    assert_eq!(server.refusals().count(Refusal::CertificateName), 1);
    client.disconnect(0).await;
    server.abort();
}

/// A plain TCP connection from 127.0.0.9 claiming the Origin-Host of a peer allowed
/// from 127.0.0.1 gets DIAMETER_UNKNOWN_PEER and is closed before any request is read,
/// while the real peer from 127.0.0.1 is served.
#[tokio::test]
async fn an_origin_host_from_another_address_is_refused_over_tcp() {
    use ims_diameter::peer::cer;

    let server = serve("127.0.0.1:0".parse().unwrap(), Acceptor::Tcp).await;
    let real = open_tcp_client(server.local_addr()).await;

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.9:0".parse().unwrap()).unwrap();
    let tcp = bounded("connect", socket.connect(server.local_addr()))
        .await
        .unwrap();
    let mut f = Framed::new(tcp, DiameterCodec::default());
    f.send(&cer(&cscf_cfg())).await.unwrap();
    let cea = next_non_dwr(&mut f).await.unwrap();
    assert_eq!(cea.result_code(), Some(result::DIAMETER_UNKNOWN_PEER));
    let _ = f.send(&samples::uar().to_message()).await;
    assert!(next_non_dwr(&mut f).await.is_none(), "closed, no UAA");
    assert_eq!(server.refusals().count(Refusal::Address), 1);

    // The real peer is still the one the server knows, and is served.
    assert!(Uaa::from_message(
        &bounded("UAA", real.request(samples::uar().to_message()))
            .await
            .unwrap()
    )
    .is_ok());
    real.disconnect(0).await;
    server.abort();
}

/// A server that completes CER/CEA and then stops answering (a hung process): the
/// client's watchdog must detect it; when a real server comes back on the same port the
/// client reconnects; when that one crashes the client reconnects to its successor.
#[tokio::test]
async fn watchdog_failover_and_reconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hung = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut f = Framed::new(tcp, DiameterCodec::default());
        let Some(Ok(Frame::Message(cer))) = f.next().await else {
            panic!("no CER")
        };
        f.send(&cea(&hss_cfg(), &cer, 2001)).await.unwrap();
        // Read and ignore everything (DWRs included) until the client gives up.
        while let Some(Ok(_)) = f.next().await {}
    });
    let client = Peer::connect(
        cscf_cfg(),
        addr,
        Connector::Tcp,
        Arc::new(Node("icscf.ims.example")),
    );
    bounded("open to the hung server", client.wait_for(PeerState::Open)).await;
    wait_until("watchdog failover", || {
        client.last_close_reason() == Some(CloseReason::WatchdogExpired)
    })
    .await;
    assert!(client.stats().dwr_sent >= 1);
    assert_eq!(client.stats().dwa_received, 0);
    bounded("hung server sees the close", hung).await.unwrap();

    // The server comes back on the same port.
    let server = serve(addr, Acceptor::Tcp).await;
    wait_until("reconnect", || {
        client.stats().opened == 2 && client.state() == PeerState::Open
    })
    .await;
    let ans = bounded(
        "UAA after reconnect",
        client.request(samples::uar().to_message()),
    )
    .await
    .unwrap();
    assert!(Uaa::from_message(&ans).is_ok());

    // A crash (connections dropped without DPR) is seen at once; the client keeps trying.
    server.abort();
    wait_until("loss detected", || {
        client.last_close_reason() == Some(CloseReason::ConnectionLost)
            || client.state() != PeerState::Open
    })
    .await;
    let server = serve(addr, Acceptor::Tcp).await;
    wait_until("second reconnect", || {
        client.stats().opened == 3 && client.state() == PeerState::Open
    })
    .await;
    bounded("DPR", client.disconnect(disconnect_cause::REBOOTING)).await;
    server.abort();
}

/// A DPR with DO_NOT_WANT_TO_TALK_TO_YOU stops the client from reconnecting.
#[tokio::test]
async fn no_reconnect_after_do_not_want_to_talk_to_you() {
    let server = serve("127.0.0.1:0".parse().unwrap(), Acceptor::Tcp).await;
    let client = open_tcp_client(server.local_addr()).await;
    wait_until("server-side peer", || {
        server.peer("icscf.ims.example").is_some()
    })
    .await;
    let towards_cscf = server.peer("icscf.ims.example").unwrap();
    bounded(
        "server DPR",
        towards_cscf.disconnect(disconnect_cause::DO_NOT_WANT_TO_TALK_TO_YOU),
    )
    .await;
    wait_until("client closed", || {
        client.last_close_reason() == Some(CloseReason::PeerDisconnected(2))
    })
    .await;
    // Well past reconnect_max, the client has not come back.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(client.stats().opened, 1);
    assert_eq!(client.state(), PeerState::Closed);
    server.abort();
}

mod tls {
    use std::sync::Arc;

    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::server::WebPkiClientVerifier;
    use rustls::{ClientConfig, RootCertStore, ServerConfig};

    pub struct Pki {
        ca: CertificateDer<'static>,
        server: (CertificateDer<'static>, Vec<u8>),
        client: (CertificateDer<'static>, Vec<u8>),
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    impl Pki {
        pub fn new() -> Pki {
            Pki::with_client("icscf.ims.example")
        }

        /// A PKI whose client certificate names `client`.
        pub fn with_client(client: &str) -> Pki {
            let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
            let leaf = |name: &str| {
                let key = KeyPair::generate().unwrap();
                let cert = CertificateParams::new(vec![name.to_owned()])
                    .unwrap()
                    .signed_by(&key, &ca)
                    .unwrap();
                (cert.der().clone(), key.serialize_der())
            };
            Pki {
                ca: ca.der().clone(),
                server: leaf("hss.ims.example"),
                client: leaf(client),
            }
        }

        fn roots(&self) -> Arc<RootCertStore> {
            let mut r = RootCertStore::empty();
            r.add(self.ca.clone()).unwrap();
            Arc::new(r)
        }

        fn key(der: &[u8]) -> PrivateKeyDer<'static> {
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.to_vec()))
        }

        pub fn server_config(&self) -> Arc<ServerConfig> {
            let verifier = WebPkiClientVerifier::builder_with_provider(self.roots(), provider())
                .build()
                .unwrap();
            Arc::new(
                ServerConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_client_cert_verifier(verifier)
                    .with_single_cert(vec![self.server.0.clone()], Self::key(&self.server.1))
                    .unwrap(),
            )
        }

        pub fn client_config(&self) -> Arc<ClientConfig> {
            Arc::new(
                ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_root_certificates(self.roots())
                    .with_client_auth_cert(vec![self.client.0.clone()], Self::key(&self.client.1))
                    .unwrap(),
            )
        }

        pub fn client_config_without_cert(&self) -> Arc<ClientConfig> {
            Arc::new(
                ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_root_certificates(self.roots())
                    .with_no_client_auth(),
            )
        }
    }
}

/// Hostile input on an open connection: each malformed request gets the right error
/// answer; an unframeable length closes the connection; the server keeps serving.
#[tokio::test]
async fn malformed_requests_get_error_answers_or_a_clean_disconnect() {
    use ims_diameter::peer::cer;
    use tokio::io::AsyncWriteExt;

    let server = serve("127.0.0.1:0".parse().unwrap(), Acceptor::Tcp).await;
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let mut f = Framed::new(tcp, DiameterCodec::default());
    f.send(&cer(&cscf_cfg())).await.unwrap();
    assert_eq!(
        next_non_dwr(&mut f).await.unwrap().result_code(),
        Some(2001)
    );

    let uar = |hbh: u32| {
        let mut m = samples::uar().to_message();
        m.hop_by_hop = hbh;
        m.end_to_end = hbh;
        m
    };
    let mut cases: Vec<(Vec<u8>, u32)> = Vec::new();
    // AVP length 7 (below the 8-octet header) in the first AVP.
    let mut b = uar(1).to_bytes().to_vec();
    b[27] = 7;
    cases.push((b, result::DIAMETER_INVALID_AVP_LENGTH));
    // Version 2.
    let mut b = uar(2).to_bytes().to_vec();
    b[0] = 2;
    cases.push((b, result::DIAMETER_UNSUPPORTED_VERSION));
    // E bit on a request.
    let mut b = uar(3).to_bytes().to_vec();
    b[4] |= 0x20;
    cases.push((b, result::DIAMETER_INVALID_HDR_BITS));
    // Unknown application.
    let mut m = uar(4);
    m.application_id = 16_777_217;
    cases.push((
        m.to_bytes().to_vec(),
        result::DIAMETER_APPLICATION_UNSUPPORTED,
    ));
    // Missing Public-Identity.
    let mut m = uar(5);
    m.avps
        .retain(|a| !a.is(&ims_diameter::dict::cx::PUBLIC_IDENTITY));
    cases.push((m.to_bytes().to_vec(), result::DIAMETER_MISSING_AVP));
    // Unknown vendor AVP with the M bit.
    let mut m = uar(6);
    m.avps.push(ims_diameter::Avp {
        code: 1,
        flags: 0xc0,
        vendor_id: Some(9),
        data: bytes::Bytes::from_static(b"x"),
    });
    cases.push((m.to_bytes().to_vec(), result::DIAMETER_AVP_UNSUPPORTED));
    for (i, (bytes, code)) in cases.into_iter().enumerate() {
        f.get_mut().write_all(&bytes).await.unwrap();
        let ans = next_non_dwr(&mut f).await.unwrap();
        assert_eq!(ans.hop_by_hop, i as u32 + 1);
        assert!(!ans.is_request());
        assert_eq!(ans.result_code(), Some(code), "case {}", i + 1);
    }
    // A length that cannot be framed by: the server closes the connection.
    f.get_mut()
        .write_all(&[1, 0, 0, 16, 0x80, 0, 1, 44, 0, 0, 0, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    assert!(next_non_dwr(&mut f).await.is_none(), "connection closed");

    // The server still serves.
    let client = open_tcp_client(server.local_addr()).await;
    assert!(Uaa::from_message(
        &bounded("UAA", client.request(samples::uar().to_message()))
            .await
            .unwrap()
    )
    .is_ok());
    client.disconnect(0).await;
    server.abort();
}

type RawClient = Framed<tokio::net::TcpStream, DiameterCodec>;

/// The next message that is not a DWR (DWRs are answered), or None at close.
async fn next_non_dwr(f: &mut RawClient) -> Option<Message> {
    loop {
        match bounded("answer", f.next()).await {
            Some(Ok(Frame::Message(m))) if m.command_code == 280 && m.is_request() => {
                let mut dwa = Message::answer_to(&m, "icscf.ims.example", "ims.example");
                dwa.avps.push(ims_diameter::Avp::u32(
                    &ims_diameter::dict::base::RESULT_CODE,
                    2001,
                ));
                f.send(&dwa).await.unwrap();
            }
            Some(Ok(Frame::Message(m))) => return Some(m),
            None => return None,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Dropping the last client handle disconnects with DPR; the server forgets the peer.
#[tokio::test]
async fn dropping_the_client_handle_disconnects() {
    let server = serve("127.0.0.1:0".parse().unwrap(), Acceptor::Tcp).await;
    let client = open_tcp_client(server.local_addr()).await;
    wait_until("server-side peer", || {
        server.peer("icscf.ims.example").is_some()
    })
    .await;
    let towards_cscf = server.peer("icscf.ims.example").unwrap();
    let second = client.clone();
    drop(client);
    assert_eq!(second.state(), PeerState::Open, "a clone keeps the peer up");
    drop(second);
    bounded(
        "DPR seen by the server",
        towards_cscf.wait_for(PeerState::Closed),
    )
    .await;
    assert_eq!(
        towards_cscf.last_close_reason(),
        Some(CloseReason::PeerDisconnected(disconnect_cause::REBOOTING))
    );
    wait_until("server forgets the peer", || {
        server.peer("icscf.ims.example").is_none()
    })
    .await;
    server.abort();
}

/// A peer listed by several addresses: a dead one first, then the HSS by host name.
/// The connection attempt moves on to the next address and resolves the name.
#[tokio::test]
async fn an_initiator_moves_on_to_the_next_address_and_resolves_names() {
    let server = serve("127.0.0.1:0".parse().unwrap(), Acceptor::Tcp).await;
    // A port with no listener: taken, then released.
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let addrs = PeerAddresses::new([
        PeerAddress::from(dead),
        PeerAddress::new("localhost", server.local_addr().port()),
    ]);
    let client = open_tcp_client(addrs).await;
    let ans = bounded("UAA", client.request(samples::uar().to_message()))
        .await
        .unwrap();
    assert_eq!(
        Uaa::from_message(&ans).unwrap().header.result,
        CxResult::experimental(2001)
    );
}

/// A name that does not resolve is skipped like a dead address.
#[tokio::test]
async fn an_unresolvable_name_is_skipped() {
    let server = serve("127.0.0.1:0".parse().unwrap(), Acceptor::Tcp).await;
    let addrs = PeerAddresses::new([
        PeerAddress::new("hss.invalid", 3868),
        PeerAddress::from(server.local_addr()),
    ]);
    open_tcp_client(addrs).await;
}
