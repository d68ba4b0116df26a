//! The registrar in-process, against the test HSS, with hand-built REGISTERs: what SIPp
//! cannot produce (AKA resynchronisation with AUTS, replayed nonce counts, stale nonces,
//! Path and several contacts, concurrent REGISTERs and the store under them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::*;
use ims_config::CxClientSection;
use ims_diameter::cx::ServerAssignmentType;
use ims_runtime::budget::{Backoff, BackoffPolicy, BudgetMetrics};
use ims_sip::auth::aka::{AkaNonce, Usim, UsimFailure};
use ims_sip::auth::digest::{response, QopAuth};
use ims_sip::auth::{Algorithm, Ha1, Milenage, Sqn};
use ims_sip::message::auth_params::AuthParams;
use ims_sip::{HeaderName, SipMessage};
use scscf::auth::Challenges;
use scscf::cx::{CxClient, HssRequests};
use scscf::gruu::Gruus;
use scscf::location::ExpiryLimits;
use scscf::registrar::takeover::PoolSettings;
use scscf::registrar::{unix_now, Registrar, Settings};
use scscf::store::BindingStore;

const URI: &str = "sip:ims.example.net";

fn cx_section(hss: &TestHss) -> CxClientSection {
    cx_section_at(hss.server.local_addr())
}

/// The Cx client section toward an HSS at `hss`.
fn cx_section_at(hss: std::net::SocketAddr) -> CxClientSection {
    CxClientSection {
        hss: vec![hss.into()],
        origin_host: SCSCF_HOST.into(),
        origin_realm: DOMAIN.into(),
        destination_host: HSS_HOST.into(),
        destination_realm: DOMAIN.into(),
        watchdog_secs: 30,
        request_timeout_secs: 5,
        tls_ca: None,
        tls_server_name: None,
        tls_cert: None,
        tls_key: None,
        require_tls: false,
    }
}

async fn registrar(hss: &TestHss, dir: &std::path::Path, nonce_lifetime: u64) -> Arc<Registrar> {
    registrar_and_store(hss, dir, nonce_lifetime).await.0
}

/// A registrar and (a handle to the same pool of) its store.
async fn registrar_and_store(
    hss: &TestHss,
    dir: &std::path::Path,
    nonce_lifetime: u64,
) -> (Arc<Registrar>, BindingStore) {
    registrar_with(hss.server.local_addr(), dir, nonce_lifetime, None).await
}

/// The Server-Name of the registrars of these tests, but for the pool's.
const SERVER_NAME: &str = "sip:scscf.ims.example.net:5080";

/// [`registrar_and_store`] with a back-off per private identity.
async fn registrar_with(
    hss: std::net::SocketAddr,
    dir: &std::path::Path,
    nonce_lifetime: u64,
    failures: Option<Arc<Backoff<String>>>,
) -> (Arc<Registrar>, BindingStore) {
    let url = format!("sqlite://{}", dir.join("b.db").display());
    let store = BindingStore::open(&url).await.unwrap();
    let member = Member {
        server_name: SERVER_NAME,
        pool: false,
    };
    let r = registrar_on(hss, store.clone(), nonce_lifetime, failures, member).await;
    (r, store)
}

/// Who a registrar is: its Server-Name, and whether it is in a pool.
struct Member {
    server_name: &'static str,
    pool: bool,
}

/// A registrar of `member` on `store`.
async fn registrar_on(
    hss: std::net::SocketAddr,
    store: BindingStore,
    nonce_lifetime: u64,
    failures: Option<Arc<Backoff<String>>>,
    member: Member,
) -> Arc<Registrar> {
    let cfg = cx_section_at(hss);
    let handler = HssRequests::new(SCSCF_HOST, DOMAIN);
    let cx = CxClient::start(&cfg, member.server_name, handler.clone()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), cx.peers().wait_open())
        .await
        .expect("Cx peer opens");
    let settings = Settings {
        limits: ExpiryLimits {
            min: 60,
            max: 7200,
            default: 3600,
        },
        service_route: "<sip:orig@127.0.0.1:5080;lr>".into(),
        realm: DOMAIN.into(),
        cloud_auth: None,
        unregistered_ttl_secs: 60,
        max_unregistered_profiles: 100,
        failures,
        pool: member.pool,
        gruus: Arc::new(Gruus::new([5; 32], "127.0.0.1:5080")),
    };
    let store = store.owned_by(member.server_name);
    let r = Registrar::new(settings, Challenges::new(nonce_lifetime, 1000), cx, store)
        .await
        .unwrap();
    handler.bind(&r);
    r
}

fn register(user: &str, cseq: u32, auth: &str, contacts: &str) -> SipMessage {
    register_in(user, &format!("call-{user}"), cseq, auth, contacts)
}

/// A REGISTER of `user` with Call-ID `call_id`.
fn register_in(user: &str, call_id: &str, cseq: u32, auth: &str, contacts: &str) -> SipMessage {
    let text = format!(
        "REGISTER {URI} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{cseq}\r\n\
         From: <sip:{user}@{DOMAIN}>;tag=1\r\nTo: <sip:{user}@{DOMAIN}>\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n\
         Path: <sip:term@pcscf.ims.example.net;lr>\r\n\
         {contacts}Authorization: {auth}\r\nContent-Length: 0\r\n\r\n"
    );
    SipMessage::parse(text.into_bytes()).unwrap()
}

fn initial(user: &str, alg: &str) -> String {
    format!(
        "Digest username=\"{user}@{DOMAIN}\", realm=\"{DOMAIN}\", nonce=\"\", uri=\"{URI}\", \
         response=\"\"{alg}"
    )
}

fn challenge(resp: &SipMessage) -> AuthParams<'_> {
    assert_eq!(resp.status(), Some(401), "{resp:?}");
    AuthParams::parse(resp.headers.get_str(&HeaderName::WwwAuthenticate).unwrap()).unwrap()
}

fn answer(
    user: &str,
    alg: Algorithm,
    nonce: &str,
    password: &[u8],
    nc: u32,
    extra: &str,
) -> String {
    let impi = format!("{user}@{DOMAIN}");
    let ha1 = Ha1::compute(alg, &impi, DOMAIN, password);
    let nc = format!("{nc:08x}");
    let q = QopAuth {
        nc: &nc,
        cnonce: "abc",
    };
    let rsp = response(alg, &ha1, "REGISTER", URI, nonce, Some(q)).unwrap();
    format!(
        "Digest username=\"{impi}\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", uri=\"{URI}\", \
         response=\"{rsp}\", algorithm={alg}, qop=auth, nc={nc}, cnonce=\"abc\"{extra}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aka_resync_then_success_with_path_and_contacts() {
    let dir = tempfile::tempdir().unwrap();
    let hss = TestHss::start(0).await;
    let r = registrar(&hss, dir.path(), 30).await;
    let contact = "Contact: <sip:akauser@10.0.0.1:5070>;+sip.instance=\"<urn:uuid:1>\";reg-id=1, \
                   <sip:akauser@10.0.0.1:5071>;expires=120\r\n";

    let first = r
        .register(&register(
            "akauser",
            1,
            &initial("akauser", ", algorithm=AKAv1-MD5"),
            contact,
        ))
        .await;
    let nonce = challenge(&first).get("nonce").unwrap();
    assert_eq!(
        challenge(&first).get("algorithm").as_deref(),
        Some("AKAv1-MD5")
    );
    let aka = AkaNonce::parse(&nonce).unwrap();

    // A USIM that has seen a much higher SQN rejects AUTN: AUTS.
    let mut usim = Usim::new(
        Milenage::with_op(AKA_K, AKA_OP),
        Sqn::new(1 << 20).unwrap(),
        1 << 28,
    );
    let Err(UsimFailure::SyncFailure { auts }) = usim.authenticate(&aka.rand, &aka.autn) else {
        panic!("USIM should ask for resynchronisation");
    };
    let extra = format!(", auts=\"{}\"", STANDARD.encode(auts));
    let resync = answer("akauser", Algorithm::AkaV1Md5, &nonce, b"", 1, &extra);
    let second = r.register(&register("akauser", 2, &resync, contact)).await;
    assert!(hss.seen().contains(&Seen::Mar(
        "akauser@ims.example.net".into(),
        "Digest-AKAv1-MD5".into(),
        true
    )));
    let nonce2 = challenge(&second).get("nonce").unwrap();
    let aka2 = AkaNonce::parse(&nonce2).unwrap();
    let res = usim
        .authenticate(&aka2.rand, &aka2.autn)
        .expect("resynchronised SQN accepted")
        .res;

    let good = answer("akauser", Algorithm::AkaV1Md5, &nonce2, &res, 1, "");
    let ok = r.register(&register("akauser", 3, &good, contact)).await;
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    let contacts: Vec<String> = ok
        .headers
        .get_all(&HeaderName::Contact)
        .map(|h| h.value_str().unwrap().to_string())
        .collect();
    assert_eq!(contacts.len(), 2, "{contacts:?}");
    assert!(
        contacts[0].contains("reg-id=1") && contacts[0].contains("expires=3600"),
        "{contacts:?}"
    );
    assert!(contacts[1].ends_with("expires=120"), "{contacts:?}");
    assert_eq!(
        ok.headers.get_str(&HeaderName::ServiceRoute),
        Some("<sip:orig@127.0.0.1:5080;lr>")
    );
    assert_eq!(
        ok.headers.get_str(&HeaderName::PAssociatedUri),
        Some("<sip:akauser@ims.example.net>, <tel:+15550000007>")
    );
    assert_eq!(
        ok.headers.get_str(&HeaderName::Path),
        Some("<sip:term@pcscf.ims.example.net;lr>")
    );
    let reg = r
        .registration("tel:+15550000007")
        .expect("implicit set resolves");
    assert_eq!(
        reg.bindings[0].path,
        ["<sip:term@pcscf.ims.example.net;lr>"]
    );

    // The same credentials again (same nc): a replay, challenged afresh, nothing changes.
    let replay = r.register(&register("akauser", 4, &good, contact)).await;
    challenge(&replay);
    // The next nc on the same nonce is a valid re-registration.
    let next = answer("akauser", Algorithm::AkaV1Md5, &nonce2, &res, 2, "");
    let again = r.register(&register("akauser", 5, &next, contact)).await;
    assert_eq!(again.status(), Some(200));
    assert_eq!(r.contacts(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapsed_nonce_gets_stale_true() {
    let dir = tempfile::tempdir().unwrap();
    let hss = TestHss::start(0).await;
    let r = registrar(&hss, dir.path(), 1).await;
    let contact = "Contact: <sip:alice@10.0.0.1:5070>\r\n";
    // A Bearer token before the Digest credentials (design brief §3) is skipped
    // (stale=true below proves the Digest credentials were read).
    let both = format!("Bearer abc.def\r\nAuthorization: {}", initial("alice", ""));
    let first = r.register(&register("alice", 1, &both, contact)).await;
    let nonce = challenge(&first).get("nonce").unwrap();
    assert!(challenge(&first).get("stale").is_none());
    // Nonce lifetime 1 s: answer after it lapsed.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let late = format!(
        "Bearer abc.def\r\nAuthorization: {}",
        answer("alice", Algorithm::Md5, &nonce, b"secret", 1, "")
    );
    let again = r.register(&register("alice", 2, &late, contact)).await;
    assert_eq!(challenge(&again).get("stale").as_deref(), Some("true"));
    assert_eq!(r.contacts(), 0);
}

/// Password guessing (issue 11): after 2 wrong answers alice is backed off for 1 s:
/// meanwhile even the right password gets 403, unverified and without MAR, and a
/// REGISTER without credentials a decoy 401 of the real shape; once the back-off lapsed
/// the right password registers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_answers_back_the_identity_off() {
    let dir = tempfile::tempdir().unwrap();
    let hss = TestHss::start(0).await;
    let policy = BackoffPolicy {
        after_failures: 2,
        base: Duration::from_secs(1),
        max: Duration::from_secs(60),
    };
    let failures = Arc::new(Backoff::new("t", policy, 16, BudgetMetrics::default()));
    let (r, _store) = registrar_with(hss.server.local_addr(), dir.path(), 60, Some(failures)).await;
    let mars = || {
        hss.seen()
            .iter()
            .filter(|s| matches!(s, Seen::Mar(..)))
            .count()
    };
    let (real, status) = attempt(&r, 1, b"guess1").await;
    assert_eq!(status, Some(403));
    assert_eq!(attempt(&r, 3, b"guess2").await.1, Some(403));
    let before = mars();
    let (decoy, status) = attempt(&r, 5, b"secret").await;
    assert_eq!(
        status,
        Some(403),
        "the right password is not verified meanwhile"
    );
    assert_eq!(mars(), before, "no MAR while backed off");
    assert_eq!(shape(&real), shape(&decoy), "{real}\n{decoy}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(attempt(&r, 7, b"secret").await.1, Some(200));
    assert_eq!(r.contacts(), 1);
}

/// A REGISTER of alice (CSeq `cseq`) and the answer to its challenge with `pw`: the
/// challenge header and the final status.
async fn attempt(r: &Registrar, cseq: u32, pw: &[u8]) -> (String, Option<u16>) {
    let contact = "Contact: <sip:alice@10.0.0.1:5070>\r\n";
    let first = r
        .register(&register("alice", cseq, &initial("alice", ""), contact))
        .await;
    let nonce = challenge(&first).get("nonce").unwrap();
    let header = first
        .headers
        .get_str(&HeaderName::WwwAuthenticate)
        .unwrap()
        .to_string();
    let auth = answer("alice", Algorithm::Md5, &nonce, pw, 1, "");
    let second = r
        .register(&register("alice", cseq + 1, &auth, contact))
        .await;
    (header, second.status())
}

/// Parameter names of a challenge in order, with the length of each value.
fn shape(header: &str) -> Vec<(String, usize)> {
    header
        .split(", ")
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.len())
        })
        .collect()
}

/// The SARs of `kind` the test HSS saw.
fn sars(hss: &TestHss, kind: ServerAssignmentType) -> usize {
    hss.seen()
        .iter()
        .filter(|s| matches!(s, Seen::Sar(k, _, _) if *k == kind))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_profile_is_kept_released_when_it_lapses_and_dropped_on_registration() {
    use ServerAssignmentType::{TimeoutDeregistration, UnregisteredUser};
    let dir = tempfile::tempdir().unwrap();
    let hss = TestHss::start(0).await;
    let r = registrar(&hss, dir.path(), 30).await;
    const ALICE: &str = "sip:alice@ims.example.net";
    // The first request asks the HSS; the next ones use the kept profile.
    for _ in 0..3 {
        let reg = r.unregistered(ALICE).await.expect("profile from SAA");
        assert!(reg.bindings.is_empty() && reg.profile.contains(ALICE));
        assert_eq!(reg.impi, "alice@ims.example.net");
    }
    assert_eq!(sars(&hss, UnregisteredUser), 1);
    // Not yet lapsed (ttl 60 s): nothing released.
    let now = scscf::registrar::unix_now();
    r.expire(now + 30).await;
    assert_eq!(sars(&hss, TimeoutDeregistration), 0);
    // Lapsed: the HSS is told, for that identity, with the private identity.
    r.expire(now + 61).await;
    assert_eq!(sars(&hss, TimeoutDeregistration), 1);
    assert!(hss
        .seen()
        .contains(&Seen::Sar(TimeoutDeregistration, vec![ALICE.into()], false)));
    // Asked again, then Alice registers: the unregistered profile goes without a
    // release (the HSS now holds her registered).
    r.unregistered(ALICE).await.expect("profile from SAA");
    assert_eq!(sars(&hss, UnregisteredUser), 2);
    let contact = "Contact: <sip:alice@10.0.0.1:5070>\r\n";
    let first = r
        .register(&register("alice", 1, &initial("alice", ""), contact))
        .await;
    let nonce = challenge(&first).get("nonce").unwrap();
    let auth = answer("alice", Algorithm::Md5, &nonce, b"secret", 1, "");
    let ok = r.register(&register("alice", 2, &auth, contact)).await;
    assert_eq!(ok.status(), Some(200));
    // A request resumed for her as unregistered (its odi said so) gets her
    // registration: no SAR, nothing kept, so nothing released later.
    let reg = r.unregistered(ALICE).await.expect("her registration");
    assert_eq!(reg.bindings.len(), 1);
    assert_eq!(sars(&hss, UnregisteredUser), 2);
    r.expire(scscf::registrar::unix_now() + 61).await;
    assert_eq!(
        sars(&hss, TimeoutDeregistration),
        1,
        "nothing left to release"
    );
}

/// A CA (PEM) and a rustls server configuration for `hss.ims.example.net` it signed.
fn hss_tls() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![HSS_HOST.to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    (ca.pem(), Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cx_over_tls_verified_against_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, server) = hss_tls();
    let hss = TestHss::start_with(
        "127.0.0.1:0".parse().unwrap(),
        0,
        ims_diameter::peer::Acceptor::Tls(server),
    )
    .await;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let mut cfg = cx_section(&hss);
    cfg.tls_ca = Some(ca_file);
    let cx = CxClient::start(
        &cfg,
        "sip:scscf.ims.example.net:5080",
        HssRequests::new(SCSCF_HOST, DOMAIN),
    )
    .unwrap();
    tokio::time::timeout(Duration::from_secs(10), cx.peers().wait_open())
        .await
        .expect("Cx over TLS opens");
    let item = cx
        .mar(
            "alice@ims.example.net",
            "sip:alice@ims.example.net",
            "Unknown",
            None,
        )
        .await
        .unwrap();
    assert_eq!(item.authentication_scheme.as_deref(), Some("SIP Digest"));

    // Another CA: the HSS certificate is refused, the peer never opens.
    let (other_ca, _) = hss_tls();
    let other = dir.path().join("other.pem");
    std::fs::write(&other, other_ca).unwrap();
    cfg.tls_ca = Some(other);
    let cx = CxClient::start(
        &cfg,
        "sip:scscf.ims.example.net:5080",
        HssRequests::new(SCSCF_HOST, DOMAIN),
    )
    .unwrap();
    let opened = tokio::time::timeout(Duration::from_secs(2), cx.peers().wait_open()).await;
    assert!(
        opened.is_err(),
        "a certificate from an unknown CA was accepted"
    );
    assert!(matches!(
        cx.mar(
            "alice@ims.example.net",
            "sip:alice@ims.example.net",
            "Unknown",
            None
        )
        .await,
        Err(scscf::cx::CxFailure::Unreachable(_))
    ));
}

/// A Digest registration of `user` (password `secret`) with `contacts`, in its dialog
/// `call_id`: challenged, answered; the final response.
async fn digest_register(r: &Registrar, user: &str, call_id: &str, contacts: &str) -> SipMessage {
    let first = r
        .register(&register_in(user, call_id, 1, &initial(user, ""), contacts))
        .await;
    let nonce = challenge(&first).get("nonce").unwrap();
    let auth = answer(user, Algorithm::Md5, &nonce, b"secret", 1, "");
    r.register(&register_in(user, call_id, 2, &auth, contacts))
        .await
}

/// The contacts of `impu` in the store, as a restarted S-CSCF would load them.
async fn stored_contacts(store: &BindingStore, impu: &str) -> Vec<String> {
    let mut contacts: Vec<String> = store
        .load_all()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.impu == impu)
        .flat_map(|r| r.bindings.into_iter().map(|b| b.contact))
        .collect();
    contacts.sort();
    contacts
}

/// The contacts of `impu` in the registrar's memory.
fn held_contacts(r: &Registrar, impu: &str) -> Vec<String> {
    let mut contacts: Vec<String> = r
        .registration(impu)
        .map(|reg| reg.bindings.into_iter().map(|b| b.contact).collect())
        .unwrap_or_default();
    contacts.sort();
    contacts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_registration_is_in_the_store() {
    const USERS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let hss = TestHss::start(USERS).await;
    let (r, store) = registrar_and_store(&hss, dir.path(), 30).await;
    // Another pool on the same file: what a restarted S-CSCF would read.
    let reader = BindingStore::open(&format!("sqlite://{}", dir.path().join("b.db").display()))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..USERS)
        .map(|i| {
            let (r, reader) = (r.clone(), reader.clone());
            tokio::spawn(async move {
                let user = format!("user{i}");
                let contact = format!("<sip:{user}@10.0.0.{i}:5070>");
                let ok = digest_register(&r, &user, "c1", &format!("Contact: {contact}\r\n")).await;
                assert_eq!(ok.status(), Some(200), "{ok:?}");
                // Read as soon as the 200 is out: the commit came before it.
                let impu = format!("sip:{user}@{DOMAIN}");
                assert_eq!(stored_contacts(&reader, &impu).await, [contact]);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stats = r.store_stats();
    assert_eq!(stats.changes, USERS as u64);
    eprintln!("{USERS} concurrent registrations: {stats:?}");

    // A REGISTER whose commit fails is refused, and nothing changes in memory.
    store.close().await;
    let contact = "Contact: <sip:alice@10.0.0.1:5070>\r\n";
    let refused = digest_register(&r, "alice", "c1", contact).await;
    assert_eq!(refused.status(), Some(500), "{refused:?}");
    assert!(r.registration("sip:alice@ims.example.net").is_none());
    assert_eq!(r.contacts(), USERS);
    reader.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registers_of_one_identity_lose_no_binding() {
    const DEVICES: usize = 12;
    const ALICE: &str = "sip:alice@ims.example.net";
    let dir = tempfile::tempdir().unwrap();
    let hss = TestHss::start(0).await;
    let (r, store) = registrar_and_store(&hss, dir.path(), 30).await;
    // Each device its own dialog and contact, all at once: each REGISTER reads the
    // bindings the others left, so every contact stays.
    let tasks: Vec<_> = (0..DEVICES)
        .map(|i| {
            let r = r.clone();
            tokio::spawn(async move {
                let contact = format!("Contact: <sip:alice@10.0.1.{i}:5070>\r\n");
                digest_register(&r, "alice", &format!("device-{i}"), &contact).await
            })
        })
        .collect();
    for t in tasks {
        let ok = t.await.unwrap();
        assert_eq!(ok.status(), Some(200), "{ok:?}");
    }
    let held = held_contacts(&r, ALICE);
    assert_eq!(held.len(), DEVICES, "{held:?}");
    assert_eq!(stored_contacts(&store, ALICE).await, held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_racing_a_register_leaves_the_store_as_the_memory() {
    const ALICE: &str = "sip:alice@ims.example.net";
    let dir = tempfile::tempdir().unwrap();
    let hss = TestHss::start(0).await;
    let (r, store) = registrar_and_store(&hss, dir.path(), 30).await;
    let short = "Contact: <sip:alice@10.0.0.1:5070>;expires=60\r\n";
    let ok = digest_register(&r, "alice", "c1", short).await;
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    // The short binding lapses while another device registers: whichever goes first,
    // the other sees its result.
    let long = "Contact: <sip:alice@10.0.0.2:5070>;expires=3600\r\n";
    let at = scscf::registrar::unix_now() + 61;
    let (ok, ()) = tokio::join!(digest_register(&r, "alice", "c2", long), r.expire(at));
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    // The REGISTER may have gone second, keeping the short binding (not lapsed at its
    // own time): the next sweep removes it.
    r.expire(at).await;
    assert_eq!(held_contacts(&r, ALICE), ["<sip:alice@10.0.0.2:5070>"]);
    assert_eq!(
        stored_contacts(&store, ALICE).await,
        held_contacts(&r, ALICE)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_an_identity_of_the_implicit_set_replaces_the_stored_registration() {
    let dir = tempfile::tempdir().unwrap();
    let hss = TestHss::start(0).await;
    let (r, _store) = registrar_and_store(&hss, dir.path(), 30).await;
    let reader = BindingStore::open(&format!("sqlite://{}", dir.path().join("b.db").display()))
        .await
        .unwrap();
    let sip = format!("sip:alice@{DOMAIN}");
    let ok = digest_register(&r, "alice", "c1", "Contact: <sip:alice@10.0.0.1:5070>\r\n").await;
    assert_eq!(ok.status(), Some(200));
    // alice's tel URI (same implicit set) registers from another phone.
    let tel = "tel:+15550000005";
    let to_tel = |cseq: u32, auth: &str| {
        let text = String::from_utf8(
            register_in(
                "alice",
                "c2",
                cseq,
                auth,
                "Contact: <sip:alice@10.0.0.2:5070>\r\n",
            )
            .to_bytes()
            .to_vec(),
        )
        .unwrap()
        .replace(&format!("To: <{sip}>"), &format!("To: <{tel}>"));
        SipMessage::parse(text.into_bytes()).unwrap()
    };
    let first = r.register(&to_tel(1, &initial("alice", ""))).await;
    let nonce = challenge(&first).get("nonce").unwrap();
    let auth = answer("alice", Algorithm::Md5, &nonce, b"secret", 1, "");
    let ok = r.register(&to_tel(2, &auth)).await;
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    // Memory holds one registration of the set; so does the store (what a restart loads).
    let held = r.registration(&sip).expect("the set is registered");
    assert_eq!(held.impu, tel);
    let stored: Vec<String> = reader
        .load_all()
        .await
        .unwrap()
        .into_iter()
        .map(|reg| reg.impu)
        .collect();
    assert_eq!(stored, [tel], "the replaced registration's rows are gone");
}

/// The real HSS behind the registrar (issue 13, mixed deployments): a subscriber
/// written through the provisioning API with two public identities and no
/// `implicit_set`, as `imsctl subscriber add --impu A --impu B` writes it. One REGISTER
/// of A registers the set: the 200's P-Associated-URI lists A and B (TS 24.229
/// §5.4.1.2.2), B resolves to the registration, and the HSS holds both registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_register_registers_every_identity_provisioned_together() {
    use hss::cx::{CxContext, CxServer};
    use hss::store::{RegistrationState, Store};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("hss.db").display());
    let key = hss::secrets::StoreKey::from_hex(&"5a".repeat(32), "test").unwrap();
    let store = Store::open(&url, 4, key).await.unwrap();
    let tel = "tel:+15550000099";
    let input: hss::provisioning::SubscriberInput = serde_json::from_value(serde_json::json!({
        "private_identities": [{"impi": format!("carol@{DOMAIN}"), "password": "secret"}],
        "public_identities": [{"impu": format!("sip:carol@{DOMAIN}")}, {"impu": tel}],
    }))
    .unwrap();
    store
        .create("carol", &input.into_data(DOMAIN).unwrap())
        .await
        .unwrap();
    let handler = CxServer::new(CxContext {
        store: store.clone(),
        origin_host: HSS_HOST.into(),
        origin_realm: DOMAIN.into(),
        capabilities: Default::default(),
    });
    let server = hss_server(
        "127.0.0.1:0".parse().unwrap(),
        ims_diameter::peer::Acceptor::Tcp,
        Arc::new(handler),
    )
    .await;
    let (r, _bindings) = registrar_with(server.local_addr(), dir.path(), 30, None).await;
    let ok = digest_register(&r, "carol", "c1", "Contact: <sip:carol@10.0.0.1:5070>\r\n").await;
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    assert_eq!(
        ok.headers.get_str(&HeaderName::PAssociatedUri),
        Some(format!("<sip:carol@{DOMAIN}>, <{tel}>").as_str())
    );
    assert!(r.registration(tel).is_some(), "the tel URI resolves");
    for impu in [format!("sip:carol@{DOMAIN}"), tel.to_string()] {
        let reg = store.registration(&impu).await.unwrap().unwrap();
        assert_eq!(reg.state, RegistrationState::Registered, "{impu}");
    }
}

/// The owner of the registration of `impu` in the shared store.
async fn owner_of(store: &BindingStore, impu: &str) -> String {
    store.load_covering(impu).await.unwrap().unwrap().owner
}

/// Two S-CSCFs of a pool on one store (`url`), A and B. Alice, Bob (`user0`) and Carol
/// (`user1`) register at A. A request for Alice reaching B (A failed) is served from the store: SAR
/// REGISTRATION from B, the row B's, her bindings as A stored them. Bob's next REGISTER
/// reaching B is a re-registration on the bindings A stored (SAR RE_REGISTRATION, the
/// 200 lists both contacts). Once A's lease has ended, B's sweep takes Carol over. A's
/// expiry of the three, later, leaves what B stores alone.
async fn pool_takeover(url: &str) {
    let hss = TestHss::start(2).await;
    let store = BindingStore::open(url).await.unwrap();
    let member = |server_name| Member {
        server_name,
        pool: true,
    };
    let addr = hss.server.local_addr();
    let a = registrar_on(addr, store.clone(), 60, None, member(A_NAME)).await;
    let b = registrar_on(addr, store.clone(), 60, None, member(B_NAME)).await;
    let settings = PoolSettings {
        lease_secs: 15,
        takeover_batch: 10,
    };
    let now = unix_now();
    a.sweep_pool(settings, now).await;
    for user in ["alice", "user0", "user1"] {
        let contact = format!("Contact: <sip:{user}@10.0.0.1:5070>\r\n");
        let ok = digest_register(&a, user, &format!("a-{user}"), &contact).await;
        assert_eq!(ok.status(), Some(200), "{ok:?}");
    }
    let alice = format!("sip:alice@{DOMAIN}");
    assert!(b.registration(&alice).is_none());
    let registrations = sars(&hss, ServerAssignmentType::Registration);
    let restored = b
        .restore(&alice)
        .await
        .expect("Alice restored from the store");
    assert_eq!(restored.bindings, a.registration(&alice).unwrap().bindings);
    assert_eq!(
        sars(&hss, ServerAssignmentType::Registration),
        registrations + 1,
        "B told the HSS it serves Alice"
    );
    assert_eq!(held_contacts(&b, &alice), ["<sip:alice@10.0.0.1:5070>"]);
    assert_eq!(owner_of(&store, &alice).await, B_NAME);

    let bob = format!("sip:user0@{DOMAIN}");
    let re = sars(&hss, ServerAssignmentType::ReRegistration);
    let ok = digest_register(
        &b,
        "user0",
        "b-bob",
        "Contact: <sip:user0@10.0.0.2:5070>\r\n",
    )
    .await;
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    assert_eq!(
        ok.headers.get_all(&HeaderName::Contact).count(),
        2,
        "{ok:?}"
    );
    assert_eq!(sars(&hss, ServerAssignmentType::ReRegistration), re + 1);
    assert_eq!(owner_of(&store, &bob).await, B_NAME);

    let carol = format!("sip:user1@{DOMAIN}");
    assert_eq!(b.sweep_pool(settings, now + 1).await, 0, "A's lease runs");
    assert_eq!(b.sweep_pool(settings, now + 16).await, 1, "A's lease ended");
    assert_eq!(held_contacts(&b, &carol), ["<sip:user1@10.0.0.1:5070>"]);
    assert_eq!(owner_of(&store, &carol).await, B_NAME);

    a.expire(now + 100_000).await;
    assert!(a.registration(&carol).is_none());
    for impu in [&alice, &bob, &carol] {
        assert_eq!(owner_of(&store, impu).await, B_NAME, "{impu}");
    }
    assert_eq!(stored_contacts(&store, &bob).await.len(), 2);
}

/// The next REGISTER of Alice's dialog `c1` (CSeq `cseq`, the nonce answered with count
/// `nc`) with `contacts`; its 200.
async fn alice_again(r: &Registrar, nonce: &str, nc: u32, cseq: u32, contacts: &str) -> SipMessage {
    let auth = answer("alice", Algorithm::Md5, nonce, b"secret", nc, "");
    let ok = r
        .register(&register_in("alice", "c1", cseq, &auth, contacts))
        .await;
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    ok
}

/// Alice's one stored binding: what a restarted S-CSCF would load.
async fn stored_binding(store: &BindingStore) -> scscf::location::Binding {
    let all = store.load_all().await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].bindings[0].clone()
}

/// Issue 12. Alice registers (written). A refresh in her dialog that changes only the
/// expiry, the stored one lagging by at most min(3 630 / 20, 60) s, is not written; a
/// registrar restarted on the store then holds her binding with an expiry no earlier
/// than the acknowledged one less that bound, and knows what is stored (a refresh
/// within the bound is not written there either). A refresh beyond the bound is written, as
/// is one with another Contact value within it, and the de-registration.
async fn refreshes(url: &str) {
    const ALICE: &str = "sip:alice@ims.example.net";
    let contact = |params: &str| format!("Contact: <sip:alice@10.0.0.1:5070>{params}\r\n");
    let hss = TestHss::start(0).await;
    let addr = hss.server.local_addr();
    let member = || Member {
        server_name: SERVER_NAME,
        pool: false,
    };
    let store = BindingStore::open(url).await.unwrap();
    let r = registrar_on(addr, store.clone(), 60, None, member()).await;
    let first = r
        .register(&register_in("alice", "c1", 1, &initial("alice", ""), ""))
        .await;
    let nonce = challenge(&first).get("nonce").unwrap();
    let held = |r: &Registrar| r.registration(ALICE).unwrap().bindings[0].clone();

    alice_again(&r, &nonce, 1, 2, &contact(";expires=3600")).await;
    assert_eq!(r.store_stats().changes, 1);
    let written = stored_binding(&store).await;
    assert_eq!(written, held(&r));

    // Within the bound: not written.
    alice_again(&r, &nonce, 2, 3, &contact(";expires=3630")).await;
    let acknowledged = held(&r);
    assert_eq!(r.store_stats().changes, 1, "not written");
    assert_eq!(r.refreshes_unwritten().get(), 1);
    assert_eq!(stored_binding(&store).await, written);
    assert!(acknowledged.expires_at > written.expires_at);
    assert_eq!(acknowledged.cseq, 3);

    // Restarted on the store: at most the bound early.
    let restarted = registrar_on(
        addr,
        BindingStore::open(url).await.unwrap(),
        60,
        None,
        member(),
    )
    .await;
    let restored = held(&restarted);
    let bound = ims_runtime::expiry_lag::bound(3_630);
    assert!(
        restored.expires_at >= acknowledged.expires_at - bound,
        "{restored:?} {acknowledged:?}"
    );
    assert_eq!(restored.contact, acknowledged.contact);
    // It knows what the store holds: a refresh within the bound of the stored expiry
    // is not written either.
    let challenged = restarted
        .register(&register_in("alice", "c1", 10, &initial("alice", ""), ""))
        .await;
    let again = challenge(&challenged).get("nonce").unwrap();
    alice_again(&restarted, &again, 1, 11, &contact(";expires=3630")).await;
    assert_eq!(restarted.store_stats().changes, 0, "not written");
    assert_eq!(restarted.refreshes_unwritten().get(), 1);
    assert_eq!(stored_binding(&store).await, written);

    // Beyond the bound: written.
    alice_again(&r, &nonce, 3, 4, &contact(";expires=3700")).await;
    assert_eq!(r.store_stats().changes, 2, "written");
    assert_eq!(stored_binding(&store).await, held(&r));

    // Another Contact value, within the bound: written.
    alice_again(&r, &nonce, 4, 5, &contact(";audio;expires=3700")).await;
    assert_eq!(r.store_stats().changes, 3, "written");
    assert_eq!(stored_binding(&store).await, held(&r));
    assert!(held(&r).contact.contains("audio"), "{:?}", held(&r));

    // De-registration: written.
    alice_again(&r, &nonce, 5, 6, &contact(";expires=0")).await;
    assert_eq!(r.store_stats().changes, 4, "written");
    assert!(store.load_all().await.unwrap().is_empty());
    assert_eq!(r.refreshes_unwritten().get(), 1);
}

/// Two tests running `$check(url)`: on SQLite in a temporary directory, and on
/// PostgreSQL in a fresh schema named after `$schema` when `IMS_TEST_POSTGRES_URL` is
/// set.
macro_rules! on_both_backends {
    ($check:ident, $schema:literal, $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let dir = tempfile::tempdir().unwrap();
            $check(&format!("sqlite://{}", dir.path().join("b.db").display())).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            if let Some(pg) = ims_runtime::test_db::PgSchema::create($schema)
                .await
                .unwrap()
            {
                $check(pg.url()).await;
                pg.drop_schema().await.unwrap();
            }
        }
    };
}

on_both_backends!(
    refreshes,
    "scscf_refresh",
    sqlite_a_refresh_within_the_bound_is_not_written,
    postgres_a_refresh_within_the_bound_is_not_written
);

const A_NAME: &str = "sip:scscf-a.ims.example.net:5080";
const B_NAME: &str = "sip:scscf-b.ims.example.net:5080";

on_both_backends!(
    pool_takeover,
    "scscf_pool",
    sqlite_a_pool_member_takes_over_a_failed_peers_users,
    postgres_a_pool_member_takes_over_a_failed_peers_users
);

/// The value of Contact parameter `name` (quoted) in the 200's Contact holding `needle`.
fn contact_param(ok: &SipMessage, needle: &str, name: &str) -> Option<String> {
    let contact = ok
        .headers
        .values(&HeaderName::Contact)
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .find(|c| c.contains(needle))?;
    let at = contact.find(&format!("{name}=\""))? + name.len() + 2;
    Some(contact[at..].split('"').next()?.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gruus_in_the_200_for_a_ue_that_asks_and_their_set_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let hss = TestHss::start(2).await;
    let (r, store) = registrar_and_store(&hss, dir.path(), 30).await;
    let alice = "sip:alice@ims.example.net";
    let asks = "Supported: path, gruu\r\n\
                Contact: <sip:alice@10.0.0.1:5070>;+sip.instance=\"<urn:uuid:a1>\"\r\n";
    let ok = digest_register(&r, "alice", "c1", asks).await;
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    // RFC 5627 §5.3: pub-gruu (the AOR with the instance) and temp-gruu in the Contact.
    assert_eq!(
        contact_param(&ok, "urn:uuid:a1", "pub-gruu").as_deref(),
        Some("sip:alice@ims.example.net;gr=urn:uuid:a1")
    );
    let temp = contact_param(&ok, "urn:uuid:a1", "temp-gruu").unwrap();
    assert!(temp.starts_with("sip:tgruu.") && temp.ends_with("@127.0.0.1:5080;gr"));
    assert!(!temp.contains("alice") && !temp.contains("a1"), "{temp}");
    // The binding keeps where its set of temporary GRUUs started (the REGISTER's
    // CSeq), in memory and in the store.
    let held = r.registration(alice).unwrap();
    assert_eq!(held.bindings[0].gruu_first_cseq, Some(2));
    let stored = store.load_all().await.unwrap();
    assert_eq!(stored[0].bindings[0].gruu_first_cseq, Some(2));
    let gruus = Gruus::new([5; 32], "127.0.0.1:5080");
    let target = gruus.target(&temp).unwrap();
    assert!(target.reaches(&held.bindings[0]));

    // The UE re-registers after a reboot (new Call-ID): a new set, the old temporary
    // GRUU no longer reaches it; the public GRUU is the same.
    let ok = digest_register(&r, "alice", "c2", asks).await;
    let again = contact_param(&ok, "urn:uuid:a1", "temp-gruu").unwrap();
    assert_ne!(again, temp);
    assert_eq!(
        contact_param(&ok, "urn:uuid:a1", "pub-gruu").as_deref(),
        Some("sip:alice@ims.example.net;gr=urn:uuid:a1")
    );
    let held = r.registration(alice).unwrap();
    assert!(!target.reaches(&held.bindings[0]));
    assert!(gruus.target(&again).unwrap().reaches(&held.bindings[0]));

    // A UE that does not say Supported: gruu gets none.
    let plain = "Contact: <sip:user1@10.0.0.2:5070>;+sip.instance=\"<urn:uuid:b1>\"\r\n";
    let ok = digest_register(&r, "user1", "c1", plain).await;
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    assert_eq!(contact_param(&ok, "urn:uuid:b1", "pub-gruu"), None);
    assert_eq!(
        r.registration("sip:user1@ims.example.net")
            .unwrap()
            .bindings[0]
            .gruu_first_cseq,
        None
    );
}
