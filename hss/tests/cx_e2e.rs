//! End to end against the real `hss` binary on loopback: a Diameter client (the
//! ims-diameter `Peer`, as an S-CSCF) does CER, UAR, MAR (SIP Digest and AKA, the AKA
//! vector checked with ims-sip's USIM), SAR, LIR over TCP and over mutual TLS; DWR/DWA
//! keep the link; a killed and restarted HSS is detected by the watchdog and the client
//! reconnects; profile changes through the REST API bring a PPR, a deletion an RTR.
//! Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/cx.rs"]
mod fixture;
#[path = "common/process.rs"]
mod process;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fixture::*;
use ims_diameter::cx::*;
use ims_diameter::dict::{experimental, result};
use ims_diameter::peer::{BoxFuture, Connector, Handler, Peer, PeerConfig, PeerState};
use ims_diameter::Message;
use ims_sip::auth::aka::Usim;
use ims_sip::auth::milenage::Milenage;
use ims_sip::auth::Sqn;
use process::{free_port, start_hss, wait_healthy, Running};
use reqwest::Method;
use serde_json::json;
use tokio::sync::mpsc;

const BOUND: Duration = Duration::from_secs(15);
const TOKEN: &str = "e2e-admin-token-0123456789";

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Test PKI: a CA, the HSS's certificate, and the CSCFs' client certificates.
struct Pki {
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    scscf: (Vec<u8>, Vec<u8>),
    icscf: (Vec<u8>, Vec<u8>),
}

fn pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert, key)
    };
    let (cert, key) = leaf("hss.ims.example.net");
    std::fs::write(dir.join("hss.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("hss.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    let client = |name: &str| {
        let (c, k) = leaf(name);
        (c.der().to_vec(), k.serialize_der())
    };
    Pki {
        scscf: client("scscf.ims.example.net"),
        icscf: client("icscf.ims.example.net"),
        ca,
    }
}

/// TLS toward the HSS presenting the client certificate and key `client` (DER).
fn client_tls(pki: &Pki, client: &(Vec<u8>, Vec<u8>)) -> Connector {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from(client.0.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(client.1.clone())),
        )
        .unwrap();
    Connector::Tls {
        config: Arc::new(config),
        server_name: ServerName::try_from("hss.ims.example.net").unwrap(),
    }
}

/// An HSS of this test: its directory (config, TLS files, data), ports and PKI.
struct Node {
    dir: tempfile::TempDir,
    http: u16,
    tcp: u16,
    tls: u16,
    pki: Pki,
    config: PathBuf,
}

impl Node {
    /// Writes the configuration and TLS files; [`Node::start`] runs the binary.
    fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let (http, tcp, tls) = (free_port(), free_port(), free_port());
        let pki = pki(dir.path());
        let config = dir.path().join("hss.toml");
        std::fs::write(
            &config,
            format!(
                "[node]\nname = \"hss-e2e\"\ndomain = \"ims.example.net\"\n\
                 [http]\nlisten = \"127.0.0.1:{http}\"\n\
                 [store]\nurl = \"sqlite://data/hss.db\"\n\
                 [provisioning]\nadmin_token = \"{TOKEN}\"\n\
                 [security]\nkey_file = \"data/store.key\"\ngenerate_missing = true\n\
                 [diameter]\norigin_host = \"hss.ims.example.net\"\norigin_realm = \"ims.example.net\"\n\
                 tcp = [\"127.0.0.1:{tcp}\"]\ntls = [\"127.0.0.1:{tls}\"]\n\
                 tw_ms = 1000\n\
                 [diameter.tls_files]\ncert = \"hss.crt\"\nkey = \"hss.key\"\nclient_ca = \"ca.crt\"\n\
                 [diameter.capabilities]\nmandatory = [1]\noptional = [2, 3]\n\
                 server_names = [\"{SCSCF}\"]\n\
                 [[diameter.peer]]\nhost = \"scscf.ims.example.net\"\nfrom = [\"127.0.0.1/32\"]\n\
                 [[diameter.peer]]\nhost = \"icscf.ims.example.net\"\nfrom = [\"127.0.0.1/32\"]\n\
                 [[diameter.peer]]\nhost = \"icscf-b.ims.example.net\"\nfrom = [\"127.0.0.1/32\"]\n\
                 commands = [\"UAR\", \"LIR\"]\n"
            ),
        )
        .unwrap();
        Node {
            dir,
            http,
            tcp,
            tls,
            pki,
            config,
        }
    }

    /// Starts the binary and waits until it is healthy.
    async fn start(&self) -> Running {
        let mut hss = start_hss(self.dir.path(), &self.config);
        wait_healthy(&mut hss, ([127, 0, 0, 1], self.http).into(), BOUND).await;
        hss
    }

    /// A provisioning API request to `path` (under `/api/v1`) with the admin token.
    fn api(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(
                method,
                format!("http://127.0.0.1:{}/api/v1{path}", self.http),
            )
            .bearer_auth(TOKEN)
    }

    /// Provisions alice (digest and AKA credentials, cloud project `p1`).
    async fn provision(&self) {
        let body = json!({
            "id": "alice",
            "cloud": {"project_id": "p1"},
            "private_identities": [{"impi": ALICE_IMPI, "password": "secret",
                "aka": {"k": hex::encode(K), "op": hex::encode(OP), "amf": "8000"}}],
            "public_identities": [{"impu": ALICE, "implicit_set": 1},
                                  {"impu": ALICE_TEL, "implicit_set": 1}],
        });
        let r = self
            .api(Method::POST, "/subscribers")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }

    /// A Diameter client toward the HSS's TCP listener, as the S-CSCF, once open: it
    /// answers RTR and PPR and hands them to the returned receiver.
    async fn scscf_peer(&self) -> (Peer, mpsc::UnboundedReceiver<CxRequest>) {
        self.peer("scscf.ims.example.net").await
    }

    /// A peer claiming Origin-Host `host`, over TCP from 127.0.0.1, open.
    async fn peer(&self, host: &str) -> (Peer, mpsc::UnboundedReceiver<CxRequest>) {
        let (tx, pushed) = mpsc::unbounded_channel();
        let peer = Peer::connect(
            client_cfg(host),
            SocketAddr::from(([127, 0, 0, 1], self.tcp)),
            Connector::Tcp,
            Arc::new(Scscf(tx)),
        );
        bounded("TCP open", peer.wait_for(PeerState::Open)).await;
        (peer, pushed)
    }
}

/// The S-CSCF side: answers RTR and PPR with success and hands them to the test.
struct Scscf(mpsc::UnboundedSender<CxRequest>);

impl Handler for Scscf {
    fn handle(&self, req: Message) -> BoxFuture<'_, Message> {
        Box::pin(async move {
            let ok = |h: &RequestHeader| {
                AnswerHeader::for_request(
                    h,
                    "scscf.ims.example.net",
                    HOME,
                    CxResult::Base(result::DIAMETER_SUCCESS),
                )
            };
            let ans = match CxRequest::from_message(&req) {
                Ok(CxRequest::Rtr(r)) => Rta {
                    header: ok(&r.header),
                    associated_identities: None,
                    supported_features: Vec::new(),
                }
                .to_answer(&req),
                Ok(CxRequest::Ppr(r)) => Ppa {
                    header: ok(&r.header),
                    supported_features: Vec::new(),
                }
                .to_answer(&req),
                _ => Message::error_answer(
                    &req,
                    "scscf.ims.example.net",
                    HOME,
                    result::DIAMETER_UNABLE_TO_COMPLY,
                    None,
                ),
            };
            if let Ok(r) = CxRequest::from_message(&req) {
                let _ = self.0.send(r);
            }
            ans
        })
    }
}

fn client_cfg(host: &str) -> PeerConfig {
    let mut c = PeerConfig::cx(host, HOME);
    c.allowed_peers = vec!["hss.ims.example.net".into()];
    c.watchdog_interval = Duration::from_millis(200);
    c.watchdog_jitter = Duration::from_millis(20);
    c.reconnect_min = Duration::from_millis(50);
    c.reconnect_max = Duration::from_millis(300);
    c.exchange_timeout = Duration::from_secs(2);
    c.request_timeout = Duration::from_secs(3);
    c
}

async fn request(peer: &Peer, m: Message) -> Message {
    bounded("answer", peer.request(m)).await.unwrap()
}

/// UAR for alice's IMPI and SIP IMPU.
async fn alice_uar(peer: &Peer) -> Uaa {
    Uaa::from_message(&request(peer, uar(ALICE_IMPI, ALICE, HOME, None).to_message()).await)
        .unwrap()
}

/// SAR of type `t` for alice at [`SCSCF`].
async fn alice_sar(peer: &Peer, t: ServerAssignmentType) -> Saa {
    let sar = sar(Some(ALICE_IMPI), &[ALICE], SCSCF, t);
    Saa::from_message(&request(peer, sar.to_message()).await).unwrap()
}

/// UAR, MAR (digest and AKA), SAR REGISTRATION, LIR, SAR USER_DEREGISTRATION.
async fn registration(peer: &Peer) {
    let uaa = alice_uar(peer).await;
    assert_eq!(
        uaa.header.result,
        CxResult::experimental(experimental::DIAMETER_FIRST_REGISTRATION)
    );
    assert_eq!(uaa.server_capabilities.unwrap().mandatory, vec![1]);
    let maa = Maa::from_message(
        &request(
            peer,
            mar(ALICE_IMPI, ALICE, "SIP Digest", 1, None).to_message(),
        )
        .await,
    )
    .unwrap();
    let d = maa.sip_auth_data_items[0].digest.clone().unwrap();
    assert_eq!(&d.ha1[..], digest_ha1(ALICE_IMPI).as_hex().as_bytes());
    let maa = Maa::from_message(
        &request(
            peer,
            mar(ALICE_IMPI, ALICE, "Digest-AKAv1-MD5", 1, None).to_message(),
        )
        .await,
    )
    .unwrap();
    let item = &maa.sip_auth_data_items[0];
    let (rand, autn) = rand_autn(item);
    let mut usim = Usim::new(Milenage::new(&K, &opc()), Sqn::new(0).unwrap(), 1 << 28);
    let res = usim.authenticate(&rand, &autn).unwrap();
    assert_eq!(&res.res[..], &item.authorization.as_ref().unwrap()[..]);
    assert_eq!(&res.ck[..], &item.confidentiality_key.as_ref().unwrap()[..]);
    let saa = alice_sar(peer, ServerAssignmentType::Registration).await;
    assert_eq!(saa.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    let xml = String::from_utf8(saa.user_data.unwrap().to_vec()).unwrap();
    assert!(xml.contains("<Identity>tel:+15550001</Identity>"), "{xml}");
    assert!(xml.contains("<ProjectId>p1</ProjectId>"), "{xml}");
    let lia = Lia::from_message(&request(peer, lir(ALICE_TEL, false).to_message()).await).unwrap();
    assert_eq!(lia.server_name.as_deref(), Some(SCSCF));
    let saa = alice_sar(peer, ServerAssignmentType::UserDeregistration).await;
    assert_eq!(saa.header.result, CxResult::Base(result::DIAMETER_SUCCESS));
    let lia = Lia::from_message(&request(peer, lir(ALICE, false).to_message()).await).unwrap();
    assert_eq!(
        lia.header.result,
        CxResult::experimental(experimental::DIAMETER_ERROR_IDENTITY_NOT_REGISTERED)
    );
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    bounded(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cx_over_tcp_and_tls_with_watchdog_restart_rtr_and_ppr() {
    let node = Node::new();
    let hss = node.start().await;
    node.provision().await;

    // TCP.
    let (peer, mut pushed) = node.scscf_peer().await;
    assert_eq!(peer.remote_host().as_deref(), Some("hss.ims.example.net"));
    registration(&peer).await;
    // The watchdog keeps the link: DWAs come back, the connection stays the first one.
    let dwa = peer.stats().dwa_received;
    wait_until("DWAs", || peer.stats().dwa_received >= dwa + 3).await;
    assert_eq!(peer.stats().opened, 1);

    // TLS with the I-CSCF's client certificate (as the I-CSCF).
    let (tls_tx, _tls_pushed) = mpsc::unbounded_channel();
    let tls_peer = Peer::connect(
        client_cfg("icscf.ims.example.net"),
        SocketAddr::from(([127, 0, 0, 1], node.tls)),
        client_tls(&node.pki, &node.pki.icscf),
        Arc::new(Scscf(tls_tx)),
    );
    bounded("TLS open", tls_peer.wait_for(PeerState::Open)).await;
    registration(&tls_peer).await;
    tls_peer.disconnect(0).await;

    // Hang the HSS (SIGSTOP: the connection stays up, nothing answers): only the
    // watchdog can notice (RFC 3539 §3.4). Then kill and restart it: the client
    // reconnects and is served.
    let stopped = Command::new("kill")
        .args(["-s", "STOP", &hss.0.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    wait_until("watchdog failover", || peer.state() != PeerState::Open).await;
    assert!(
        matches!(
            peer.last_close_reason(),
            Some(ims_diameter::peer::CloseReason::WatchdogExpired)
        ),
        "{:?}",
        peer.last_close_reason()
    );
    drop(hss);
    let hss = node.start().await;
    bounded("reconnect", peer.wait_for(PeerState::Open)).await;
    assert_eq!(peer.stats().opened, 2);
    // Registered again after the restart: state survived in the store.
    let saa = alice_sar(&peer, ServerAssignmentType::Registration).await;
    assert_eq!(saa.header.result, CxResult::Base(result::DIAMETER_SUCCESS));

    // PPR on a profile change of a registered subscriber.
    let r = node
        .api(Method::PATCH, "/subscribers/alice")
        .json(&json!({"cloud": {"project_id": "p2"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let Some(CxRequest::Ppr(ppr)) = bounded("PPR", pushed.recv()).await else {
        panic!("expected a PPR");
    };
    assert_eq!(ppr.user_name, ALICE_IMPI);
    assert_eq!(
        ppr.header.destination_host.as_deref(),
        Some("scscf.ims.example.net")
    );
    let xml = String::from_utf8(ppr.user_data.unwrap().to_vec()).unwrap();
    assert!(xml.contains("<ProjectId>p2</ProjectId>"), "{xml}");

    // Operator de-registration: RTR (SERVER_CHANGE by default), state cleared.
    let r = node
        .api(Method::POST, "/subscribers/alice/deregister")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let Some(CxRequest::Rtr(rtr)) = bounded("RTR", pushed.recv()).await else {
        panic!("expected an RTR");
    };
    assert_eq!(
        rtr.deregistration_reason.reason_code,
        ReasonCode::ServerChange
    );
    let mut impus = rtr.public_identities.clone();
    impus.sort();
    assert_eq!(impus, vec![ALICE.to_string(), ALICE_TEL.to_string()]);
    let uaa = alice_uar(&peer).await;
    assert_eq!(
        uaa.header.result,
        CxResult::experimental(experimental::DIAMETER_FIRST_REGISTRATION)
    );

    // Deletion of a registered subscriber: RTR with PERMANENT_TERMINATION.
    alice_sar(&peer, ServerAssignmentType::Registration).await;
    let r = node
        .api(Method::DELETE, "/subscribers/alice")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let Some(CxRequest::Rtr(rtr)) = bounded("RTR", pushed.recv()).await else {
        panic!("expected an RTR");
    };
    assert_eq!(
        rtr.deregistration_reason.reason_code,
        ReasonCode::PermanentTermination
    );
    assert_eq!(rtr.user_name, ALICE_IMPI);
    peer.disconnect(0).await;
    drop(hss);
}

/// Reads one Diameter message from `tcp`, skipping DWRs; None when the connection
/// closes first.
async fn read_message(tcp: &mut tokio::net::TcpStream) -> Option<Message> {
    use tokio::io::AsyncReadExt;
    loop {
        let mut head = [0u8; 20];
        bounded("a message", tcp.read_exact(&mut head)).await.ok()?;
        let len = usize::from(head[1]) << 16 | usize::from(head[2]) << 8 | usize::from(head[3]);
        let mut buf = head.to_vec();
        buf.resize(len, 0);
        bounded("a message", tcp.read_exact(&mut buf[20..]))
            .await
            .ok()?;
        let m = Message::decode(buf.into()).unwrap();
        if m.command_code != 280 {
            return Some(m);
        }
    }
}

/// The HSS's `/metrics` text.
async fn metrics(node: &Node) -> String {
    reqwest::get(format!("http://127.0.0.1:{}/metrics", node.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Issue 11, attack 4: a plain TCP connection from 127.0.0.9 claiming the S-CSCF's
/// Origin-Host (allowed from 127.0.0.1 only) while the real S-CSCF is connected gets
/// DIAMETER_UNKNOWN_PEER and is closed: its MAR for alice gets no HA1. The real S-CSCF
/// keeps being served; the refusal is counted on `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cscf_origin_host_from_another_address_gets_no_credentials() {
    use tokio::io::AsyncWriteExt;
    let node = Node::new();
    let hss = node.start().await;
    node.provision().await;
    let (peer, _pushed) = node.scscf_peer().await;

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.9:0".parse().unwrap()).unwrap();
    let mut tcp = bounded("connect", socket.connect(([127, 0, 0, 1], node.tcp).into()))
        .await
        .unwrap();
    let cer = ims_diameter::peer::cer(&client_cfg("scscf.ims.example.net"));
    tcp.write_all(&cer.to_bytes()).await.unwrap();
    let cea = read_message(&mut tcp).await.expect("a CEA");
    assert_eq!(cea.result_code(), Some(result::DIAMETER_UNKNOWN_PEER));
    let mar = mar(ALICE_IMPI, ALICE, "SIP Digest", 1, None).to_message();
    let _ = tcp.write_all(&mar.to_bytes()).await;
    assert!(
        read_message(&mut tcp).await.is_none(),
        "the connection is closed and the MAR not answered"
    );

    let maa = Maa::from_message(&request(&peer, mar).await).unwrap();
    assert!(
        maa.sip_auth_data_items[0].digest.is_some(),
        "real S-CSCF served"
    );
    let m = metrics(&node).await;
    assert!(
        m.contains("diameter_peers_refused_total{reason=\"address\"} 1"),
        "{m}"
    );
    peer.disconnect(0).await;
    drop(hss);
}

/// Per-command authorisation (`[[diameter.peer]] commands`): a second I-CSCF
/// (`icscf-b`), bound by its address and allowed UAR and LIR as its role is, asks for alice's credentials with a MAR, which only
/// an S-CSCF may send: DIAMETER_AUTHORIZATION_REJECTED, no credentials. Its UAR is
/// served, and the S-CSCF (no `commands`: every Cx request) still gets the MAR answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_icscf_may_not_ask_for_credentials() {
    let node = Node::new();
    let hss = node.start().await;
    node.provision().await;
    let (icscf, _) = node.peer("icscf-b.ims.example.net").await;

    let mar = || mar(ALICE_IMPI, ALICE, "SIP Digest", 1, None).to_message();
    let refused = request(&icscf, mar()).await;
    assert_eq!(
        refused.result_code(),
        Some(result::DIAMETER_AUTHORIZATION_REJECTED)
    );
    assert!(
        Maa::from_message(&refused).map_or(true, |m| m.sip_auth_data_items.is_empty()),
        "no credentials in {refused:?}"
    );
    let uaa = alice_uar(&icscf).await;
    assert_eq!(
        uaa.header.result,
        CxResult::experimental(experimental::DIAMETER_FIRST_REGISTRATION)
    );

    let (scscf, _) = node.scscf_peer().await;
    let maa = Maa::from_message(&request(&scscf, mar()).await).unwrap();
    assert!(
        maa.sip_auth_data_items[0].digest.is_some(),
        "the S-CSCF is served"
    );
    icscf.disconnect(0).await;
    scscf.disconnect(0).await;
    drop(hss);
}

/// Mutual TLS: a valid client certificate of the HSS's CA, issued to the S-CSCF,
/// presented by a peer claiming the I-CSCF's Origin-Host (from an allowed address) is
/// refused with DIAMETER_UNKNOWN_PEER; a peer with no client certificate fails the TLS
/// handshake. Neither ever opens, so neither gets a request answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_peers_must_present_a_certificate_naming_their_origin_host() {
    let node = Node::new();
    let hss = node.start().await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let wrong = Peer::connect(
        client_cfg("icscf.ims.example.net"),
        SocketAddr::from(([127, 0, 0, 1], node.tls)),
        client_tls(&node.pki, &node.pki.scscf),
        Arc::new(Scscf(tx.clone())),
    );
    wait_until("refusal", || wrong.last_close_reason().is_some()).await;
    assert_eq!(
        wrong.last_close_reason(),
        Some(ims_diameter::peer::CloseReason::CapabilitiesRejected(
            result::DIAMETER_UNKNOWN_PEER
        ))
    );
    assert_eq!(wrong.stats().opened, 0);
    wrong.disconnect(0).await;

    let ca = node.dir.path().join("ca.crt");
    let no_cert = Peer::connect(
        client_cfg("icscf.ims.example.net"),
        SocketAddr::from(([127, 0, 0, 1], node.tls)),
        Connector::client(Some(&ca), "hss.ims.example.net", None).unwrap(),
        Arc::new(Scscf(tx)),
    );
    wait_until("a failed attempt", || no_cert.last_close_reason().is_some()).await;
    assert_eq!(no_cert.stats().opened, 0);
    no_cert.disconnect(0).await;
    let m = metrics(&node).await;
    assert!(
        m.contains("diameter_peers_refused_total{reason=\"certificate_name\"} 1"),
        "{m}"
    );
    assert!(
        !m.contains("diameter_peers_refused_total{reason=\"tls_handshake\"} 0"),
        "the handshake without a certificate is counted: {m}"
    );
    drop(hss);
}

/// A live capture of a CER, UAR, MAR (digest and AKA), SAR, LIR and DWR exchange with
/// the binary decodes in tshark with the Cx command names, no malformed packet and no
/// error expert info. Skipped when tshark is absent or cannot capture on `lo`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_capture_decodes_in_tshark() {
    use std::io::{BufRead, BufReader};
    if Command::new("tshark").arg("--version").output().is_err() {
        println!("SKIPPED: tshark is not installed");
        return;
    }
    let node = Node::new();
    let pcap = node.dir.path().join("cx.pcap");
    let mut tshark = Running(
        Command::new("tshark")
            .args([
                "-i",
                "lo",
                "-f",
                &format!("tcp port {}", node.tcp),
                "-a",
                "duration:60",
                "-w",
            ])
            .arg(&pcap)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Wait (bounded) for "Capturing on".
    let stderr = tshark.0.stderr.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("Capturing on") {
                let _ = ready_tx.send(());
            }
        }
    });
    if ready_rx.recv_timeout(BOUND).is_err() {
        println!("SKIPPED: tshark cannot capture on lo");
        return;
    }
    let hss = node.start().await;
    node.provision().await;
    let (peer, _pushed) = node.scscf_peer().await;
    registration(&peer).await;
    let dwa = peer.stats().dwa_received;
    wait_until("a DWA", || peer.stats().dwa_received > dwa).await;
    peer.disconnect(0).await;
    drop(hss);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // SIGINT: tshark finishes the file and exits.
    let stopped = Command::new("kill")
        .args(["-s", "INT", &tshark.0.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let deadline = Instant::now() + BOUND;
    while tshark.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "tshark did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = Command::new("tshark")
        .args([
            "-n",
            "-V",
            "-d",
            &format!("tcp.port=={},diameter", node.tcp),
            "-r",
        ])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Command Code: Capabilities-Exchange (257)",
        "Command Code: User-Authorization (300)",
        "Command Code: Server-Assignment (301)",
        "Command Code: Location-Info (302)",
        "Command Code: Multimedia-Auth (303)",
        "Command Code: Device-Watchdog (280)",
        "Command Code: Disconnect-Peer (282)",
        "Experimental-Result-Code: DIAMETER_FIRST_REGISTRATION (2001)",
        "Experimental-Result-Code: DIAMETER_ERROR_IDENTITY_NOT_REGISTERED (5003)",
        "SIP-Authentication-Scheme: Digest-AKAv1-MD5",
        "Digest-HA1",
        "Server-Assignment-Type: USER_DEREGISTRATION (5)",
        "User-Data",
    ] {
        assert!(
            text.contains(needle),
            "tshark output lacks {needle:?}:\n{text}"
        );
    }
    assert!(!text.contains("Malformed"), "malformed packet:\n{text}");
    assert!(
        !text.contains("Expert Info (Error"),
        "error expert info:\n{text}"
    );
}
