//! The P-CSCF and I-CSCF policies in process, each on its own proxy engine over
//! loopback, with a Diameter server answering UAR from test data and sockets playing
//! the UE and the S-CSCF registrar: registration through P -> I -> S with Path (flow
//! token), P-Visited-Network-ID and P-Charging-Vector; the registration learned from
//! the 200; a registered UE's request along its Service-Route with P-Asserted-Identity;
//! requests from the core over the UE's TCP flow (403 forged token, 430 after
//! de-registration); UAA errors answered (an unknown user: decoy 401, then 403, no
//! second UAR), an unreachable HSS (480), and a request
//! from an unregistered UE refused (403); a dialog with a TCP UE whose requests from the
//! core (ACK included) reach it over its connection by the flow token in the Record-Route.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use icscf::memory::ScscfMemory;
use icscf::unknown::UnknownUsers;
use icscf::IcscfPolicy;
use ims_config::{BudgetSection, RegistrationSection, ScscfEntry, ZonesSection};
use ims_diameter::cx::UserAuthorizationType;
use ims_diameter::peer::{PeerConfig, Server};
use ims_e2e::uar_hss::{self, UarHss};
use ims_node::cx::CxClient;
use ims_node::{Ingress, Role};
use ims_runtime::budget::BudgetMetrics;
use ims_sip::message::build::response;
use ims_sip::proxy::engine::{EngineConfig, Originator, ProxyEngine};
use ims_sip::proxy::record_route::route_user;
use ims_sip::transport::{TransportConfig, TransportKind};
use ims_sip::{HeaderName, Method, SipMessage};
use pcscf::budget::SourceBudget;
use pcscf::flow_token::FlowTokens;
use pcscf::store::{Persistence, RegistrationStore};
use pcscf::{Pcscf, PcscfPolicy, PcscfSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

async fn engine<P: ims_sip::proxy::engine::Policy>(policy: P, tcp: bool) -> ProxyEngine {
    let transport = TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        tcp: if tcp {
            vec!["127.0.0.1:0".parse().unwrap()]
        } else {
            Vec::new()
        },
        ..TransportConfig::default()
    };
    let mut config = EngineConfig::default();
    config.timers.t1 = Duration::from_millis(50);
    ProxyEngine::start(transport, config, policy).await.unwrap()
}

fn udp_of(e: &ProxyEngine) -> SocketAddr {
    e.transport().local_addr(TransportKind::Udp).unwrap()
}

async fn recv_udp(socket: &UdpSocket) -> (SipMessage, SocketAddr) {
    let mut buf = vec![0u8; 65_535];
    let (n, from) = timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .expect("a message within 5 s")
        .unwrap();
    (SipMessage::parse(buf[..n].to_vec()).unwrap(), from)
}

/// Reads one body-less message from a stream.
async fn recv_tcp(stream: &mut TcpStream) -> SipMessage {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("a message within 5 s")
            .unwrap();
        assert_eq!(n, 1, "stream closed");
        buf.push(byte[0]);
    }
    SipMessage::parse(buf).unwrap()
}

fn request(method: &str, ruri: &str, via: &str, user: &str, call: &str, extra: &str) -> String {
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/{via};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\n\
         From: <sip:{user}@ims.example.net>;tag=ue\r\nTo: <sip:{user}@ims.example.net>\r\n\
         Call-ID: {call}\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

fn header(m: &SipMessage, name: HeaderName) -> Vec<String> {
    m.headers
        .values(&name)
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
        .collect()
}

/// The I-CSCF's decoys and UAR budget with the default `[budget]`.
fn unknown_users() -> Arc<UnknownUsers> {
    Arc::new(UnknownUsers::new(
        &BudgetSection::default(),
        "ims.example.net",
        BudgetMetrics::default(),
    ))
}

/// The I-CSCF's memory of challenged REGISTERs (30 s), giving a remembered S-CSCF
/// `silence_ms` to answer.
fn scscf_memory(silence_ms: u64) -> Arc<ScscfMemory> {
    Arc::new(ScscfMemory::new(
        &RegistrationSection {
            scscf_silence_ms: silence_ms,
            ..RegistrationSection::default()
        },
        BudgetMetrics::default(),
    ))
}

struct Chain {
    pcscf_state: Arc<Pcscf>,
    pcscf: ProxyEngine,
    _icscf: ProxyEngine,
    hss: Arc<UarHss>,
    _server: Server,
    scscf: UdpSocket,
}

/// `[zones]` of the dev core: loopback 127.0.0.1 is core.
fn loopback_core() -> ZonesSection {
    ZonesSection {
        core: vec!["127.0.0.1/32".parse().unwrap()],
        ..ZonesSection::default()
    }
}

async fn chain() -> Chain {
    chain_of(100).await
}

async fn chain_of(max_registrations: usize) -> Chain {
    chain_with(max_registrations, None).await
}

/// The chain with the P-CSCF writing its registrations through `persistence`.
async fn chain_with(max_registrations: usize, persistence: Option<Persistence>) -> Chain {
    let (server, hss) = uar_hss::start("icscf.ims.example.net").await.unwrap();
    let scscf = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let scscf_addr = scscf.local_addr().unwrap();
    let mut cx_cfg = PeerConfig::cx("icscf.ims.example.net", "ims.example.net");
    cx_cfg.allowed_peers = vec!["hss.ims.example.net".into()];
    let cx = CxClient::with_config(
        cx_cfg,
        server.local_addr(),
        Some("hss.ims.example.net".into()),
        "ims.example.net".into(),
    );
    timeout(Duration::from_secs(5), cx.peers().wait_open())
        .await
        .expect("the Cx peer opens");
    let icscf = engine(
        IcscfPolicy {
            cx,
            scscfs: vec![ScscfEntry {
                name: "sip:scscf.ims.example.net:5080".into(),
                uri: format!("sip:{scscf_addr};lr"),
                capabilities: vec![1, 2],
            }],
            home_network: "ims.example.net".into(),
            unknown: unknown_users(),
            memory: scscf_memory(4_000),
            ingress: Ingress::new(Role::Icscf, &loopback_core()),
        },
        false,
    )
    .await;
    let state = Pcscf::new(
        PcscfSettings {
            home_networks: vec![(
                "ims.example.net".into(),
                format!("<sip:{};lr>", udp_of(&icscf)),
            )],
            visited_network_id: "visited.example.net".into(),
            tokens: FlowTokens::random(),
            cloud_auth: None,
            budget: Arc::new(SourceBudget::new(
                &BudgetSection::default(),
                BudgetMetrics::default(),
            )),
            ingress: Ingress::new(Role::Pcscf, &loopback_core()),
            persistence,
            // Not bound to the engine: this chain has no reg event notifier to
            // subscribe to (the P-CSCF's subscriber is `pcscf_reg_event.rs`'s).
            originator: Originator::default(),
            reg_event: false,
        },
        max_registrations,
    );
    let pcscf = engine(PcscfPolicy(state.clone()), true).await;
    state.set_core_address(udp_of(&pcscf).to_string());
    Chain {
        pcscf_state: state,
        pcscf,
        _icscf: icscf,
        hss,
        _server: server,
        scscf,
    }
}

/// The S-CSCF's 200 to a REGISTER: the UE's contact bound for `expires` seconds (none
/// when 0), Service-Route and P-Associated-URI, Path echoed (RFC 3327 §5.3).
fn registrar_ok(reg: &SipMessage, scscf: SocketAddr, expires: u32) -> SipMessage {
    let mut ok = response(reg, 200);
    if expires > 0 {
        for c in header(reg, HeaderName::Contact) {
            ok.headers
                .push(HeaderName::Contact, format!("{c};expires={expires}"));
        }
    }
    for p in header(reg, HeaderName::Path) {
        ok.headers.push(HeaderName::Path, p);
    }
    ok.headers
        .push(HeaderName::ServiceRoute, format!("<sip:orig@{scscf};lr>"));
    ok.headers.push(
        HeaderName::PAssociatedUri,
        "<sip:alice@ims.example.net>, <tel:+15551230001>",
    );
    ok
}

#[tokio::test]
async fn registration_through_pcscf_and_icscf_then_requests_both_ways() {
    let c = chain().await;
    let scscf_addr = c.scscf.local_addr().unwrap();
    let pcscf_udp = udp_of(&c.pcscf);
    let pcscf_tcp = c.pcscf.transport().local_addr(TransportKind::Tcp).unwrap();

    // REGISTER over TCP from alice.
    let mut ue = TcpStream::connect(pcscf_tcp).await.unwrap();
    let ue_addr = ue.local_addr().unwrap();
    let contact = format!("Contact: <sip:alice@{ue_addr};transport=tcp>\r\nExpires: 600\r\n");
    let reg = request(
        "REGISTER",
        "sip:ims.example.net",
        &format!("TCP {ue_addr}"),
        "alice",
        "reg1",
        &contact,
    );
    ue.write_all(reg.as_bytes()).await.unwrap();

    // What the S-CSCF receives.
    let (at_s, from) = recv_udp(&c.scscf).await;
    assert_eq!(at_s.method(), Some(&Method::Register));
    let path = header(&at_s, HeaderName::Path);
    assert_eq!(path.len(), 1, "{path:?}");
    let token = route_user(&path[0]).expect("Path carries a flow token");
    assert!(path[0].ends_with(&format!("@{pcscf_udp};lr>")), "{path:?}");
    assert!(token.len() > 20, "{token}");
    assert_eq!(header(&at_s, HeaderName::Require), vec!["path"]);
    assert_eq!(
        header(&at_s, HeaderName::PVisitedNetworkId),
        vec!["visited.example.net"]
    );
    let pcv = header(&at_s, HeaderName::PChargingVector);
    assert!(pcv[0].starts_with("icid-value="), "{pcv:?}");
    assert!(pcv[0].ends_with(";icid-generated-at=127.0.0.1"), "{pcv:?}");
    // The I-CSCF's pre-loaded Route to the selected S-CSCF was consumed by the S-CSCF
    // hop only: it is still there for the S-CSCF to pop.
    assert_eq!(
        header(&at_s, HeaderName::Route),
        vec![format!("<sip:{scscf_addr};lr>")]
    );
    assert!(
        at_s.headers.get(&HeaderName::RecordRoute).is_none(),
        "REGISTER is not record-routed"
    );
    // The UAR the I-CSCF sent.
    {
        let uars = c.hss.uars();
        assert_eq!(uars.len(), 1);
        assert_eq!(uars[0].user_name, "alice@ims.example.net");
        assert_eq!(uars[0].public_identity, "sip:alice@ims.example.net");
        assert_eq!(uars[0].visited_network_identifier, "visited.example.net");
        assert_eq!(
            uars[0].user_authorization_type,
            Some(UserAuthorizationType::Registration)
        );
        assert_eq!(
            uars[0].header.destination_host.as_deref(),
            Some("hss.ims.example.net")
        );
        assert_eq!(uars[0].header.destination_realm, "ims.example.net");
    }
    c.scscf
        .send_to(&registrar_ok(&at_s, scscf_addr, 600).to_bytes(), from)
        .await
        .unwrap();
    let ok = recv_tcp(&mut ue).await;
    assert_eq!(ok.status(), Some(200));
    assert_eq!(
        c.pcscf_state
            .registrations
            .purge(tokio::time::Instant::now()),
        1
    );

    // A MESSAGE from the registered UE: along the Service-Route, identity asserted.
    let msg = request(
        "MESSAGE",
        "sip:bob@ims.example.net",
        &format!("TCP {ue_addr}"),
        "alice",
        "msg1",
        "P-Asserted-Identity: <sip:boss@ims.example.net>\r\n\
         P-Preferred-Identity: <tel:+15551230001>\r\n",
    );
    ue.write_all(msg.as_bytes()).await.unwrap();
    let (at_s, from) = recv_udp(&c.scscf).await;
    assert_eq!(at_s.method(), Some(&Method::Message));
    assert_eq!(
        header(&at_s, HeaderName::Route),
        vec![format!("<sip:orig@{scscf_addr};lr>")]
    );
    assert_eq!(
        header(&at_s, HeaderName::PAssertedIdentity),
        vec!["<tel:+15551230001>"]
    );
    assert!(at_s.headers.get(&HeaderName::PPreferredIdentity).is_none());
    assert!(header(&at_s, HeaderName::RecordRoute)
        .iter()
        .any(|r| r.contains(&pcscf_udp.to_string())));
    c.scscf
        .send_to(&response(&at_s, 200).to_bytes(), from)
        .await
        .unwrap();
    assert_eq!(recv_tcp(&mut ue).await.status(), Some(200));

    // From the core toward the UE's flow token: over the UE's TCP connection.
    let route = format!("Route: <sip:{token}@{pcscf_udp};lr>\r\n");
    let term = request(
        "MESSAGE",
        &format!("sip:alice@{ue_addr};transport=tcp"),
        &format!("UDP {scscf_addr}"),
        "carol",
        "term1",
        &route,
    );
    c.scscf.send_to(term.as_bytes(), pcscf_udp).await.unwrap();
    let at_ue = recv_tcp(&mut ue).await;
    assert_eq!(at_ue.method(), Some(&Method::Message));
    ue.write_all(&response(&at_ue, 200).to_bytes())
        .await
        .unwrap();
    let (answer, _) = recv_udp(&c.scscf).await;
    assert_eq!(answer.status(), Some(200));

    // A forged token is refused.
    let forged = request(
        "MESSAGE",
        "sip:alice@ims.example.net",
        &format!("UDP {scscf_addr}"),
        "carol",
        "term2",
        &format!(
            "Route: <sip:{}x@{pcscf_udp};lr>\r\n",
            &token[..token.len() - 1]
        ),
    );
    c.scscf.send_to(forged.as_bytes(), pcscf_udp).await.unwrap();
    let (answer, _) = recv_udp(&c.scscf).await;
    assert_eq!(answer.status(), Some(403));

    // De-registration: the UAR says DE_REGISTRATION, the P-CSCF forgets the UE.
    let dereg = request(
        "REGISTER",
        "sip:ims.example.net",
        &format!("TCP {ue_addr}"),
        "alice",
        "reg2",
        &contact.replace("Expires: 600", "Expires: 0"),
    );
    ue.write_all(dereg.as_bytes()).await.unwrap();
    let (at_s, from) = recv_udp(&c.scscf).await;
    assert_eq!(
        c.hss.uars()[1].user_authorization_type,
        Some(UserAuthorizationType::DeRegistration)
    );
    c.scscf
        .send_to(&registrar_ok(&at_s, scscf_addr, 0).to_bytes(), from)
        .await
        .unwrap();
    assert_eq!(recv_tcp(&mut ue).await.status(), Some(200));
    assert_eq!(
        c.pcscf_state
            .registrations
            .purge(tokio::time::Instant::now()),
        0
    );
    // The flow is no longer registered: 430 for the core, 403 for the UE.
    let term = request(
        "MESSAGE",
        "sip:alice@ims.example.net",
        &format!("UDP {scscf_addr}"),
        "carol",
        "term3",
        &route,
    );
    c.scscf.send_to(term.as_bytes(), pcscf_udp).await.unwrap();
    assert_eq!(recv_udp(&c.scscf).await.0.status(), Some(430));
    let msg = request(
        "MESSAGE",
        "sip:bob@ims.example.net",
        &format!("TCP {ue_addr}"),
        "alice",
        "msg2",
        "",
    );
    ue.write_all(msg.as_bytes()).await.unwrap();
    assert_eq!(recv_tcp(&mut ue).await.status(), Some(403));
}

#[tokio::test]
async fn capabilities_select_the_scscf_and_errors_are_answered() {
    let c = chain().await;
    let pcscf_udp = udp_of(&c.pcscf);
    let ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ue_addr = ue.local_addr().unwrap();
    let via = format!("UDP {ue_addr};rport");

    // bob: the HSS sends capabilities; the one configured S-CSCF has them.
    let reg = request(
        "REGISTER",
        "sip:ims.example.net",
        &via,
        "bob",
        "b1",
        &format!("Contact: <sip:bob@{ue_addr}>\r\n"),
    );
    ue.send_to(reg.as_bytes(), pcscf_udp).await.unwrap();
    let (at_s, _) = recv_udp(&c.scscf).await;
    assert_eq!(at_s.method(), Some(&Method::Register));

    // An unknown user: no 403 at once, which would tell a scanner who exists (issue
    // 11): a decoy Digest challenge from the I-CSCF, relayed by the P-CSCF, and 403
    // for the answer to it; the second REGISTER costs no UAR (negative cache).
    let reg = request(
        "REGISTER",
        "sip:ims.example.net",
        &via,
        "mallory",
        "m1",
        &format!("Contact: <sip:m@{ue_addr}>\r\n"),
    );
    ue.send_to(reg.as_bytes(), pcscf_udp).await.unwrap();
    let challenge = recv_udp(&ue).await.0;
    assert_eq!(challenge.status(), Some(401));
    let www = challenge
        .headers
        .get_str(&HeaderName::WwwAuthenticate)
        .unwrap()
        .to_string();
    assert!(
        www.starts_with("Digest realm=\"ims.example.net\", nonce=\"")
            && www.ends_with("\", algorithm=MD5, qop=\"auth\""),
        "{www}"
    );
    let nonce = www.split('"').nth(3).unwrap().to_string();
    let uars = c.hss.uars().len();
    let answer = format!(
        "Authorization: Digest username=\"mallory@ims.example.net\", realm=\"ims.example.net\", \
         nonce=\"{nonce}\", uri=\"sip:ims.example.net\", response=\"0123456789abcdef0123456789abcdef\", \
         algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c\"\r\nContact: <sip:m@{ue_addr}>\r\n"
    );
    let reg = request(
        "REGISTER",
        "sip:ims.example.net",
        &via,
        "mallory",
        "m2",
        &answer,
    );
    ue.send_to(reg.as_bytes(), pcscf_udp).await.unwrap();
    let refused = recv_udp(&ue).await.0;
    assert_eq!(refused.status(), Some(403));
    assert_eq!(&refused.response().unwrap().reason[..], b"Forbidden");
    assert_eq!(c.hss.uars().len(), uars, "no UAR for a cached unknown user");

    // A request from a UE that never registered: 403 at the P-CSCF.
    let msg = request(
        "MESSAGE",
        "sip:alice@ims.example.net",
        &via,
        "eve",
        "e1",
        "",
    );
    ue.send_to(msg.as_bytes(), pcscf_udp).await.unwrap();
    let (answer, _) = recv_udp(&ue).await;
    assert_eq!(answer.status(), Some(403));

    // A home network the P-CSCF does not serve: 403.
    let reg = request("REGISTER", "sip:other.example.org", &via, "alice", "o1", "");
    ue.send_to(reg.as_bytes(), pcscf_udp).await.unwrap();
    assert_eq!(recv_udp(&ue).await.0.status(), Some(403));
}

#[tokio::test]
async fn unreachable_hss_gives_480() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut cfg = PeerConfig::cx("icscf.ims.example.net", "ims.example.net");
    cfg.request_timeout = Duration::from_millis(200);
    let icscf = engine(
        IcscfPolicy {
            cx: CxClient::with_config(cfg, closed, None, "ims.example.net".into()),
            scscfs: Vec::new(),
            home_network: "ims.example.net".into(),
            unknown: unknown_users(),
            memory: scscf_memory(4_000),
            ingress: Ingress::new(Role::Icscf, &loopback_core()),
        },
        false,
    )
    .await;
    let ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ue_addr = ue.local_addr().unwrap();
    let reg = request(
        "REGISTER",
        "sip:ims.example.net",
        &format!("UDP {ue_addr}"),
        "alice",
        "h1",
        "",
    );
    ue.send_to(reg.as_bytes(), udp_of(&icscf)).await.unwrap();
    assert_eq!(recv_udp(&ue).await.0.status(), Some(480));
}

#[tokio::test]
async fn a_full_registration_store_refuses_new_ues_with_503() {
    let c = chain_of(1).await;
    let scscf_addr = c.scscf.local_addr().unwrap();
    let pcscf_udp = udp_of(&c.pcscf);
    let ue1 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ue1_addr = ue1.local_addr().unwrap();
    let contact = format!("Contact: <sip:alice@{ue1_addr}>\r\nExpires: 600\r\n");
    let reg = request(
        "REGISTER",
        "sip:ims.example.net",
        &format!("UDP {ue1_addr}"),
        "alice",
        "f1",
        &contact,
    );
    ue1.send_to(reg.as_bytes(), pcscf_udp).await.unwrap();
    let (at_s, from) = recv_udp(&c.scscf).await;
    c.scscf
        .send_to(&registrar_ok(&at_s, scscf_addr, 600).to_bytes(), from)
        .await
        .unwrap();
    assert_eq!(recv_udp(&ue1).await.0.status(), Some(200));

    // A second UE does not fit: 503 with Retry-After, nothing forwarded.
    let ue2 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ue2_addr = ue2.local_addr().unwrap();
    let reg = request(
        "REGISTER",
        "sip:ims.example.net",
        &format!("UDP {ue2_addr}"),
        "alice",
        "f2",
        "",
    );
    ue2.send_to(reg.as_bytes(), pcscf_udp).await.unwrap();
    let (answer, _) = recv_udp(&ue2).await;
    assert_eq!(answer.status(), Some(503));
    assert_eq!(answer.headers.get_str(&HeaderName::RetryAfter), Some("60"));
    assert_eq!(c.hss.uars().len(), 1);

    // The registered UE refreshes: it still fits.
    ue1.send_to(
        reg.replace(&ue2_addr.to_string(), &ue1_addr.to_string())
            .replace("f2", "f3")
            .as_bytes(),
        pcscf_udp,
    )
    .await
    .unwrap();
    let (at_s, _) = recv_udp(&c.scscf).await;
    assert_eq!(at_s.method(), Some(&Method::Register));
}

/// "Nothing acknowledged is lost" (issue 15): the P-CSCF relays the registrar's 200 to
/// a UDP UE only once the registration is in its store. Another connection holds
/// SQLite's write lock, so the store's writer waits: the 200 waits with it, and reaches
/// the UE once the lock is released, with the registration stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_200_to_register_is_relayed_once_the_registration_is_stored() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/registrations.db", dir.path().display());
    let store = RegistrationStore::open(&url, "pcscf").await.unwrap();
    let c = chain_with(10, Some(Persistence::spawn(store.clone()))).await;
    let scscf_addr = c.scscf.local_addr().unwrap();
    let mut blocker = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();

    let ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ue_addr = ue.local_addr().unwrap();
    let contact = format!("Contact: <sip:alice@{ue_addr}>\r\nExpires: 600\r\n");
    let reg = request(
        "REGISTER",
        "sip:ims.example.net",
        &format!("UDP {ue_addr}"),
        "alice",
        "stored",
        &contact,
    );
    ue.send_to(reg.as_bytes(), udp_of(&c.pcscf)).await.unwrap();
    let (at_s, from) = recv_udp(&c.scscf).await;
    c.scscf
        .send_to(&registrar_ok(&at_s, scscf_addr, 600).to_bytes(), from)
        .await
        .unwrap();
    let mut buf = vec![0u8; 65_535];
    assert!(
        timeout(Duration::from_millis(700), ue.recv_from(&mut buf))
            .await
            .is_err(),
        "no 200 while the registration cannot be written"
    );
    let rows: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM pcscf_registration")
        .fetch_one(&mut blocker)
        .await
        .unwrap();
    assert_eq!(rows.0, 0, "nothing written yet");
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    assert_eq!(recv_udp(&ue).await.0.status(), Some(200));
    let stored = store.load(0).await.unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].public_identity, "sip:alice@ims.example.net");
    assert_eq!(stored[0].flow, format!("UDP#0:{ue_addr}"));
}

/// A request in the dialog `call` (To tagged), from `via` with `extra` headers.
fn in_dialog(method: &str, ruri: &str, via: &str, call: &str, cseq: u32, extra: &str) -> String {
    request(method, ruri, via, "alice", call, extra)
        .replace(
            "To: <sip:alice@ims.example.net>",
            "To: <sip:alice@ims.example.net>;tag=callee",
        )
        .replace(
            &format!("CSeq: 1 {method}"),
            &format!("CSeq: {cseq} {method}"),
        )
}

#[tokio::test]
async fn a_dialog_with_a_tcp_ue_reaches_it_over_its_flow_both_ways() {
    let c = chain().await;
    let scscf_addr = c.scscf.local_addr().unwrap();
    let pcscf_udp = udp_of(&c.pcscf);
    let pcscf_tcp = c.pcscf.transport().local_addr(TransportKind::Tcp).unwrap();

    // alice registers over TCP.
    let mut ue = TcpStream::connect(pcscf_tcp).await.unwrap();
    let ue_addr = ue.local_addr().unwrap();
    let reg = request(
        "REGISTER",
        "sip:ims.example.net",
        &format!("TCP {ue_addr}"),
        "alice",
        "dreg",
        &format!("Contact: <sip:alice@{ue_addr};transport=tcp>\r\nExpires: 600\r\n"),
    );
    ue.write_all(reg.as_bytes()).await.unwrap();
    let (at_s, from) = recv_udp(&c.scscf).await;
    let token = route_user(&header(&at_s, HeaderName::Path)[0]).unwrap();
    c.scscf
        .send_to(&registrar_ok(&at_s, scscf_addr, 600).to_bytes(), from)
        .await
        .unwrap();
    assert_eq!(recv_tcp(&mut ue).await.status(), Some(200));

    // Her INVITE: record-routed twice (TCP in, UDP out, RFC 5658), each value with the
    // token of her flow.
    let invite = request(
        "INVITE",
        "sip:bob@ims.example.net",
        &format!("TCP {ue_addr}"),
        "alice",
        "dlg1",
        &format!("Contact: <sip:alice@{ue_addr};transport=tcp>\r\n"),
    );
    ue.write_all(invite.as_bytes()).await.unwrap();
    let (at_s, from) = recv_udp(&c.scscf).await;
    assert_eq!(at_s.method(), Some(&Method::Invite));
    let rr = header(&at_s, HeaderName::RecordRoute);
    assert_eq!(
        rr,
        [
            format!("<sip:{token}@{pcscf_udp};lr>"),
            format!("<sip:{token}@{pcscf_tcp};transport=tcp;lr>")
        ]
    );
    let mut ok = response(&at_s, 200);
    ok.headers
        .set(HeaderName::To, "<sip:alice@ims.example.net>;tag=callee");
    c.scscf.send_to(&ok.to_bytes(), from).await.unwrap();
    assert_eq!(recv_tcp(&mut ue).await.status(), Some(100));
    assert_eq!(recv_tcp(&mut ue).await.status(), Some(200));

    // From the core, along the Record-Route, to a Contact nobody can reach: the ACK
    // and a BYE still arrive over her connection.
    let route = format!(
        "Route: <sip:{token}@{pcscf_udp};lr>, <sip:{token}@{pcscf_tcp};transport=tcp;lr>\r\n"
    );
    let unreachable = "sip:alice@192.0.2.1:5999;transport=tcp";
    let via = format!("UDP {scscf_addr}");
    let ack = in_dialog("ACK", unreachable, &via, "dlg1", 1, &route);
    c.scscf.send_to(ack.as_bytes(), pcscf_udp).await.unwrap();
    let at_ue = recv_tcp(&mut ue).await;
    assert_eq!(at_ue.method(), Some(&Method::Ack));
    assert!(at_ue.headers.get(&HeaderName::Route).is_none());
    let bye = in_dialog("BYE", unreachable, &via, "dlg1", 2, &route);
    c.scscf.send_to(bye.as_bytes(), pcscf_udp).await.unwrap();
    let at_ue = recv_tcp(&mut ue).await;
    assert_eq!(at_ue.method(), Some(&Method::Bye));
    assert!(
        at_ue.headers.get(&HeaderName::RecordRoute).is_none(),
        "requests in a dialog are not record-routed"
    );
    ue.write_all(&response(&at_ue, 200).to_bytes())
        .await
        .unwrap();
    assert_eq!(recv_udp(&c.scscf).await.0.status(), Some(200));

    // From her, in the dialog: her route set starts with our values (her own token):
    // up to the S-CSCF, not back to her.
    let route = format!(
        "Route: <sip:{token}@{pcscf_tcp};transport=tcp;lr>, <sip:{token}@{pcscf_udp};lr>, \
         <sip:{scscf_addr};lr>\r\n"
    );
    let update = in_dialog(
        "UPDATE",
        "sip:bob@192.0.2.2",
        &format!("TCP {ue_addr}"),
        "dlg1",
        3,
        &route,
    );
    ue.write_all(update.as_bytes()).await.unwrap();
    let (at_s, from) = recv_udp(&c.scscf).await;
    assert_eq!(at_s.method(), Some(&Method::Update));
    assert_eq!(
        header(&at_s, HeaderName::Route),
        [format!("<sip:{scscf_addr};lr>")]
    );
    c.scscf
        .send_to(&response(&at_s, 200).to_bytes(), from)
        .await
        .unwrap();
    assert_eq!(recv_tcp(&mut ue).await.status(), Some(200));
}

/// A REGISTER of bob (Server-Capabilities from the test HSS) in call `call` with CSeq
/// `cseq`, from `ue`, answering a challenge when `auth`; `expires` seconds.
fn bob_register(ue: SocketAddr, call: &str, cseq: u32, auth: bool, expires: u32) -> String {
    let authorization = if auth {
        "Authorization: Digest username=\"bob@ims.example.net\", realm=\"ims.example.net\", \
         nonce=\"n\", uri=\"sip:ims.example.net\", response=\"0123456789abcdef0123456789abcdef\", \
         algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c\"\r\n"
    } else {
        ""
    };
    format!(
        "REGISTER sip:ims.example.net SIP/2.0\r\nVia: SIP/2.0/UDP {ue};branch=z9hG4bK{call}x{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@ims.example.net>;tag=ue\r\nTo: <sip:bob@ims.example.net>\r\n\
         Call-ID: {call}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:bob@{ue}>\r\nExpires: {expires}\r\n\
         {authorization}Content-Length: 0\r\n\r\n"
    )
}

/// The S-CSCF's challenge.
fn challenge(reg: &SipMessage) -> SipMessage {
    let mut c = response(reg, 401);
    c.headers.push(
        HeaderName::WwwAuthenticate,
        "Digest realm=\"ims.example.net\", nonce=\"n\", algorithm=MD5, qop=\"auth\"",
    );
    c
}

/// Two fake S-CSCFs behind an I-CSCF with the test HSS: bob's Server-Capabilities
/// (mandatory 1, optional 2) select `a` (1, 2) over `b` (1).
struct Scscfs {
    icscf: ProxyEngine,
    hss: Arc<UarHss>,
    _server: Server,
    memory: Arc<ScscfMemory>,
    a: UdpSocket,
    b: UdpSocket,
}

async fn two_scscfs() -> Scscfs {
    let (server, hss) = uar_hss::start("icscf.ims.example.net").await.unwrap();
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut cx_cfg = PeerConfig::cx("icscf.ims.example.net", "ims.example.net");
    cx_cfg.allowed_peers = vec!["hss.ims.example.net".into()];
    let cx = CxClient::with_config(
        cx_cfg,
        server.local_addr(),
        Some("hss.ims.example.net".into()),
        "ims.example.net".into(),
    );
    timeout(Duration::from_secs(5), cx.peers().wait_open())
        .await
        .expect("the Cx peer opens");
    let entry = |name: &str, at: &UdpSocket, capabilities: Vec<u32>| ScscfEntry {
        name: format!("sip:{name}.ims.example.net"),
        uri: format!("sip:{};lr", at.local_addr().unwrap()),
        capabilities,
    };
    let memory = scscf_memory(300);
    // Every loopback address is a P-CSCF of ours (core).
    let zones = ZonesSection {
        core: vec!["127.0.0.0/8".parse().unwrap()],
        ..ZonesSection::default()
    };
    let icscf = engine(
        IcscfPolicy {
            cx,
            scscfs: vec![entry("a", &a, vec![1, 2]), entry("b", &b, vec![1])],
            home_network: "ims.example.net".into(),
            unknown: unknown_users(),
            memory: memory.clone(),
            ingress: Ingress::new(Role::Icscf, &zones),
        },
        false,
    )
    .await;
    Scscfs {
        icscf,
        hss,
        _server: server,
        memory,
        a,
        b,
    }
}

#[tokio::test]
async fn one_uar_per_registration_and_a_failed_remembered_scscf_falls_back() {
    let c = two_scscfs().await;
    let icscf = udp_of(&c.icscf);
    let ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ue_addr = ue.local_addr().unwrap();
    let uars = |n: usize| {
        let got = c.hss.uars();
        assert_eq!(got.len(), n, "UARs: {got:?}");
        got
    };

    // REGISTER, 401 from a; the answer to the challenge goes to a without a UAR.
    let (at_a, from) =
        register_via(&ue, bob_register(ue_addr, "k1", 1, false, 600), icscf, &c.a).await;
    assert_eq!(answer(&c.a, challenge(&at_a), from, &ue).await, Some(401));
    uars(1);
    let (at_a, from) =
        register_via(&ue, bob_register(ue_addr, "k1", 2, true, 600), icscf, &c.a).await;
    assert_eq!(at_a.headers.get_str(&HeaderName::CSeq), Some("2 REGISTER"));
    uars(1);
    assert_eq!(
        answer(&c.a, response(&at_a, 200), from, &ue).await,
        Some(200)
    );
    assert!(c.memory.is_empty(), "the 200 ends the memory of k1");

    // A re-registration in the same call after the 200 asks the HSS again; a REGISTER
    // with credentials for that Call-ID from another P-CSCF address gets its own UAR.
    let (at_a, from) =
        register_via(&ue, bob_register(ue_addr, "k1", 3, true, 600), icscf, &c.a).await;
    uars(2);
    assert_eq!(answer(&c.a, challenge(&at_a), from, &ue).await, Some(401));
    let other = UdpSocket::bind("127.0.0.9:0").await.unwrap();
    let other_addr = other.local_addr().unwrap();
    let (at_a, from) = register_via(
        &other,
        bob_register(other_addr, "k1", 4, true, 600),
        icscf,
        &c.a,
    )
    .await;
    uars(3);
    assert_eq!(
        answer(&c.a, response(&at_a, 403), from, &other).await,
        Some(403)
    );

    // A de-registration in a challenged call asks the HSS (DE_REGISTRATION).
    let (at_a, from) =
        register_via(&ue, bob_register(ue_addr, "k1", 5, true, 0), icscf, &c.a).await;
    assert_eq!(
        uars(4)[3].user_authorization_type,
        Some(UserAuthorizationType::DeRegistration)
    );
    assert_eq!(answer(&c.a, challenge(&at_a), from, &ue).await, Some(401));

    // a challenges a new call, then goes away: the answer to its challenge waits for
    // it 300 ms, then a UAR with REGISTRATION_AND_CAPABILITIES selects b.
    let (at_a, from) =
        register_via(&ue, bob_register(ue_addr, "k2", 1, false, 600), icscf, &c.a).await;
    assert_eq!(answer(&c.a, challenge(&at_a), from, &ue).await, Some(401));
    uars(5);
    drop(c.a);
    let (at_b, from) =
        register_via(&ue, bob_register(ue_addr, "k2", 2, true, 600), icscf, &c.b).await;
    assert_eq!(at_b.headers.get_str(&HeaderName::CSeq), Some("2 REGISTER"));
    assert_eq!(
        uars(6)[5].user_authorization_type,
        Some(UserAuthorizationType::RegistrationAndCapabilities)
    );
    // b challenges again; the answer goes to b without a UAR, and registers.
    assert_eq!(answer(&c.b, challenge(&at_b), from, &ue).await, Some(401));
    let (at_b, from) =
        register_via(&ue, bob_register(ue_addr, "k2", 3, true, 600), icscf, &c.b).await;
    assert_eq!(at_b.headers.get_str(&HeaderName::CSeq), Some("3 REGISTER"));
    uars(6);
    assert_eq!(
        answer(&c.b, response(&at_b, 200), from, &ue).await,
        Some(200)
    );
}

/// `ue` sends `register` to the I-CSCF at `icscf`; the request as the S-CSCF `scscf`
/// receives it, and where it came from.
async fn register_via(
    ue: &UdpSocket,
    register: String,
    icscf: SocketAddr,
    scscf: &UdpSocket,
) -> (SipMessage, SocketAddr) {
    ue.send_to(register.as_bytes(), icscf).await.unwrap();
    recv_udp(scscf).await
}

/// The S-CSCF `scscf` sends `answer` back to `to`; the status `ue` receives.
async fn answer(
    scscf: &UdpSocket,
    answer: SipMessage,
    to: SocketAddr,
    ue: &UdpSocket,
) -> Option<u16> {
    scscf.send_to(&answer.to_bytes(), to).await.unwrap();
    recv_udp(ue).await.0.status()
}
