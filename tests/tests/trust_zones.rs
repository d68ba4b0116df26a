#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Trust zones at the edge and in the core (issue 11 "Why" 1, 2 and 6; design brief
//! §7): the real binaries started by `imsctl up` with the dev configs (`[zones] core =
//! ["127.0.0.1/32", "::1/128"]`), an attacker on another loopback address (127.0.0.9,
//! not core) speaking raw SIP over UDP, and SIPp UEs for the legitimate traffic that
//! must keep working.
//!
//! The nodes listen on the fixed dev ports: these tests run one at a time (nextest test
//! group `e2e`).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ims_e2e::chain::{
    addr, assert_all_passed, assert_contacts, provision_digest, sipp_csv, start_core, stop_core,
    workdir, Ue, PCSCF,
};
use ims_e2e::free_port;
use ims_e2e::hss_api::{ifc, set_ifcs};
use ims_e2e::sipp::{scenario, Background};
use ims_sip::message::build::response;
use ims_sip::proxy::record_route::route_user;
use ims_sip::{HeaderName, Method, SipMessage};
use serde_json::json;

/// The I-CSCF's SIP port in the dev configs.
const ICSCF: u16 = 5070;
/// The S-CSCF's SIP port in the dev configs.
const SCSCF: u16 = 5080;
/// Where the attacker wants requests relayed: a host a UE must never reach through us.
const FORBIDDEN_HOST: u16 = 5999;
/// How long "nothing arrives" is waited for.
const QUIET: Duration = Duration::from_millis(1500);

/// The headers only the trust domain may write.
const IDENTITY: [HeaderName; 5] = [
    HeaderName::PAssertedIdentity,
    HeaderName::PPreferredIdentity,
    HeaderName::PServedUser,
    HeaderName::PChargingFunctionAddresses,
    HeaderName::PVisitedNetworkId,
];

/// What a forging UE adds to its requests.
const FORGED: &str = "P-Asserted-Identity: <sip:alice@ims.example.net>\r\n\
    P-Preferred-Identity: <sip:alice@ims.example.net>\r\n\
    P-Served-User: <sip:alice@ims.example.net>;sescase=orig;regstate=reg\r\n\
    P-Charging-Function-Addresses: ccf=192.0.2.66\r\n\
    P-Visited-Network-ID: evil.example.net\r\n";

/// A socket bound on `ip` (a free port), reads bounded by 2 s.
fn socket(ip: &str) -> UdpSocket {
    let s = UdpSocket::bind(format!("{ip}:0")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

/// A request from `from` with `extra` header lines (Route, forged identities); a To tag
/// when `to_tag` is given.
fn request(
    method: &str,
    ruri: &str,
    from: SocketAddr,
    to_tag: Option<&str>,
    extra: &str,
) -> String {
    let branch = format!("z9hG4bK{}", rand_tag());
    let tag = to_tag.map_or(String::new(), |t| format!(";tag={t}"));
    let cseq = if method == "ACK" { 1 } else { 2 };
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch={branch};rport\r\n\
         From: <sip:mallory@ims.example.net>;tag=m1\r\nTo: <{ruri}>{tag}\r\n\
         Call-ID: {branch}@attacker\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n\
         Contact: <sip:mallory@{from}>\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

fn rand_tag() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The next message on `s` and where it came from, if one arrives within its read
/// timeout.
fn recv_from(s: &UdpSocket) -> Option<(SipMessage, SocketAddr)> {
    let mut buf = vec![0u8; 65_535];
    let (n, peer) = s.recv_from(&mut buf).ok()?;
    Some((SipMessage::parse(buf[..n].to_vec()).ok()?, peer))
}

/// The next message on `s`.
fn recv(s: &UdpSocket) -> Option<SipMessage> {
    recv_from(s).map(|(m, _)| m)
}

/// The final response on `s` to the request `sent` (provisional ones, and answers to
/// other requests, skipped), within 5 s; an INVITE's is acknowledged (hop by hop, RFC
/// 3261 §17.1.1.3), so it is not retransmitted.
fn final_response(s: &UdpSocket, sent: &str) -> Option<u16> {
    let sent = SipMessage::parse(sent.as_bytes().to_vec()).unwrap();
    let call_id = sent.headers.get_str(&HeaderName::CallId)?.to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let (answer, peer) = recv_from(s)?;
        let status = answer.status()?;
        if status < 200 || answer.headers.get_str(&HeaderName::CallId) != Some(call_id.as_str()) {
            continue;
        }
        if sent.method() == Some(&Method::Invite) {
            let field = |m: &SipMessage, h| m.headers.get_str(&h).unwrap_or_default().to_string();
            let uri = sent
                .request()
                .map(|r| String::from_utf8_lossy(&r.uri).into_owned());
            let ack = format!(
                "ACK {} SIP/2.0\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {call_id}\r\n\
                 CSeq: 2 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                uri.unwrap_or_default(),
                field(&sent, HeaderName::Via),
                field(&sent, HeaderName::From),
                field(&answer, HeaderName::To),
            );
            s.send_to(ack.as_bytes(), peer).unwrap();
        }
        return Some(status);
    }
    None
}

/// Asserts nothing arrives on `s` within [`QUIET`].
fn assert_quiet(s: &UdpSocket, what: &str) {
    s.set_read_timeout(Some(QUIET)).unwrap();
    let mut buf = vec![0u8; 65_535];
    if let Ok(n) = s.recv(&mut buf) {
        panic!("{what}: {}", String::from_utf8_lossy(&buf[..n]));
    }
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
}

/// Sends `text` from `s` to `to`.
fn send(s: &UdpSocket, text: &str, to: SocketAddr) {
    s.send_to(text.as_bytes(), to).unwrap();
}

/// Sends the request `text` from `s` to `to`; its final response's status.
fn ask(s: &UdpSocket, text: &str, to: SocketAddr) -> Option<u16> {
    send(s, text, to);
    final_response(s, text)
}

#[test]
fn the_pcscf_relays_nothing_for_a_sender_that_never_registered() {
    let (_dir, _data, core) = start_core("zones-relay", None);
    let forbidden = UdpSocket::bind(addr(FORBIDDEN_HOST)).unwrap();
    let attacker = socket("127.0.0.9");
    let from = attacker.local_addr().unwrap();
    let route = format!("Route: <sip:127.0.0.1:{FORBIDDEN_HOST};lr>\r\n{FORGED}");
    let ruri = format!("sip:victim@127.0.0.1:{FORBIDDEN_HOST}");
    // In-dialog requests with a made-up To tag, and an initial one: 403 each.
    for (method, tag) in [
        ("MESSAGE", Some("madeup")),
        ("INVITE", Some("madeup")),
        ("BYE", Some("madeup")),
        ("MESSAGE", None),
    ] {
        let sent = request(method, &ruri, from, tag, &route);
        assert_eq!(
            ask(&attacker, &sent, addr(PCSCF)),
            Some(403),
            "{method} {tag:?}"
        );
    }
    // An ACK has no response: dropped.
    send(
        &attacker,
        &request("ACK", &ruri, from, Some("madeup"), &route),
        addr(PCSCF),
    );
    assert_quiet(&forbidden, "a request reached the forbidden host");
    stop_core(core);
}

#[test]
fn the_scscf_serves_no_sender_outside_the_core() {
    let (dir, data, core) = start_core("zones-scscf", None);
    let names: Vec<String> = ["alice", "bob"].map(String::from).to_vec();
    provision_digest(&data, &dir, &names, "secret", None);
    let bob = Ue::register(&dir, "bob", "alice");
    let _alice = Ue::register(&dir, "alice", "bob");
    assert_contacts(2);
    let phone = UdpSocket::bind(bob.local).unwrap();
    let attacker = socket("127.0.0.9");
    let from = attacker.local_addr().unwrap();
    let bob_uri = "sip:bob@ims.example.net";
    // Alice's originating case, as her Service-Route names it, with a forged PAI.
    let orig = format!("Route: <sip:orig@127.0.0.1:{SCSCF};lr>\r\n{FORGED}");
    let sent = request("INVITE", bob_uri, from, None, &orig);
    assert_eq!(
        ask(&attacker, &sent, addr(SCSCF)),
        Some(403),
        "originating INVITE"
    );
    // A terminating INVITE straight to the S-CSCF (not through the I-CSCF).
    let sent = request("INVITE", bob_uri, from, None, FORGED);
    assert_eq!(
        ask(&attacker, &sent, addr(SCSCF)),
        Some(403),
        "terminating INVITE"
    );
    // A REGISTER: 403, never a challenge.
    let register = request("REGISTER", "sip:ims.example.net", from, None, "")
        .replace("To: <sip:ims.example.net>", "To: <sip:bob@ims.example.net>");
    assert_eq!(
        ask(&attacker, &register, addr(SCSCF)),
        Some(403),
        "REGISTER"
    );
    assert_quiet(&phone, "Bob's phone rang");
    stop_core(core);
}

#[test]
fn the_icscf_takes_only_terminating_requests_from_other_networks_and_believes_none_of_their_identities(
) {
    let (dir, data, core) = start_core("zones-icscf", None);
    provision_digest(&data, &dir, &["bob".to_string()], "secret", None);
    let bob = Ue::register(&dir, "bob", "alice");
    assert_contacts(1);
    let phone = UdpSocket::bind(bob.local).unwrap();
    phone
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let forbidden = UdpSocket::bind(addr(FORBIDDEN_HOST)).unwrap();
    let attacker = socket("127.0.0.9");
    let from = attacker.local_addr().unwrap();
    let bob_uri = "sip:bob@ims.example.net";
    // On behalf of a user (`orig`, TS 24.229 5.3.2.1): only core and application servers.
    let orig = format!("Route: <sip:127.0.0.1:{ICSCF};lr;orig>\r\n{FORGED}");
    let sent = request("INVITE", bob_uri, from, None, &orig);
    assert_eq!(ask(&attacker, &sent, addr(ICSCF)), Some(403), "orig INVITE");
    // In-dialog requests: the I-CSCF is on no dialog's path, and relays none for them.
    let relay = format!("Route: <sip:127.0.0.1:{FORBIDDEN_HOST};lr>\r\n");
    let ruri = format!("sip:victim@127.0.0.1:{FORBIDDEN_HOST}");
    let sent = request("MESSAGE", &ruri, from, Some("madeup"), &relay);
    assert_eq!(
        ask(&attacker, &sent, addr(ICSCF)),
        Some(403),
        "in-dialog MESSAGE"
    );
    assert_quiet(&forbidden, "the I-CSCF relayed for a stranger");
    // A terminating request is what a peer network may send: Bob gets it, without the
    // identities it claimed (TS 24.229 4.4).
    let sent = request("MESSAGE", bob_uri, from, None, FORGED);
    send(&attacker, &sent, addr(ICSCF));
    let delivered = std::iter::from_fn(|| recv(&phone))
        .find(|m| m.method() == Some(&Method::Message))
        .expect("the MESSAGE reaches Bob");
    for h in IDENTITY {
        assert!(delivered.headers.get(&h).is_none(), "kept {}", h.as_str());
    }
    let ok = response(&delivered, 200).to_bytes();
    phone.send_to(&ok, addr(PCSCF)).unwrap();
    assert_eq!(final_response(&attacker, &sent), Some(200));
    stop_core(core);
}

/// Bob's phone (raw UDP on his registered flow) sends himself a MESSAGE through the
/// chain and answers it; returns the flow token of the P-CSCF's Record-Route value
/// naming his flow, as any party of a dialog with him would see it.
fn bobs_flow_token(phone: &UdpSocket) -> String {
    let me = phone.local_addr().unwrap();
    let msg = request(
        "MESSAGE",
        "sip:bob@ims.example.net",
        me,
        None,
        &format!("Route: <sip:127.0.0.1:{PCSCF};lr>\r\n{FORGED}"),
    )
    .replace("sip:mallory@", "sip:bob@");
    send(phone, &msg, addr(PCSCF));
    let deadline = Instant::now() + Duration::from_secs(5);
    let delivered = loop {
        assert!(Instant::now() < deadline, "the MESSAGE did not come back");
        let Some(m) = recv(phone) else { continue };
        if m.method() == Some(&Method::Message) {
            break m;
        }
    };
    // The P-CSCF asserted Bob, not the identity he forged.
    assert_eq!(
        delivered.headers.get_str(&HeaderName::PAssertedIdentity),
        Some("<sip:bob@ims.example.net>")
    );
    send(
        phone,
        &String::from_utf8_lossy(&response(&delivered, 200).to_bytes()),
        addr(PCSCF),
    );
    assert_eq!(final_response(phone, &msg), Some(200), "Bob's MESSAGE");
    let token = delivered
        .headers
        .values(&HeaderName::RecordRoute)
        .filter(|v| v.windows(5).any(|w| w == b":5060"))
        .filter_map(|v| route_user(std::str::from_utf8(&v).ok()?))
        .next()
        .expect("a Record-Route value with a flow token");
    token
}

#[test]
fn a_flow_token_lets_only_the_core_reach_the_phone_and_ues_assert_nothing_in_dialogs() {
    let (dir, data, core) = start_core("zones-token", None);
    provision_digest(&data, &dir, &["bob".to_string()], "secret", None);
    let bob = Ue::register(&dir, "bob", "bob");
    assert_contacts(1);
    let phone = UdpSocket::bind(bob.local).unwrap();
    phone
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let token = bobs_flow_token(&phone);

    // A stranger with the token, initial and in-dialog: 403, the phone hears nothing.
    let attacker = socket("127.0.0.9");
    let from = attacker.local_addr().unwrap();
    let via_token = format!("Route: <sip:{token}@127.0.0.1:{PCSCF};lr>\r\n");
    let to_phone = format!("sip:bob@{}", bob.local);
    for tag in [None, Some("madeup")] {
        let sent = request("MESSAGE", &to_phone, from, tag, &via_token);
        assert_eq!(
            ask(&attacker, &sent, addr(PCSCF)),
            Some(403),
            "MESSAGE {tag:?}"
        );
    }
    send(
        &attacker,
        &request("ACK", &to_phone, from, Some("madeup"), &via_token),
        addr(PCSCF),
    );
    assert_quiet(&phone, "a stranger reached Bob's phone");

    // Bob himself, in a dialog (his token on top of his route set): relayed, with every
    // identity header he forged removed; his ACK too.
    let forbidden = UdpSocket::bind(addr(FORBIDDEN_HOST)).unwrap();
    forbidden
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let me = phone.local_addr().unwrap();
    let route_set = format!(
        "Route: <sip:{token}@127.0.0.1:{PCSCF};lr>, <sip:127.0.0.1:{FORBIDDEN_HOST};lr>\r\n{FORGED}"
    );
    let peer = format!("sip:peer@127.0.0.1:{FORBIDDEN_HOST}");
    for method in ["MESSAGE", "ACK"] {
        send(
            &phone,
            &request(method, &peer, me, Some("dlg"), &route_set),
            addr(PCSCF),
        );
        // (Skipping retransmissions of the MESSAGE before its 200 got through.)
        let relayed = std::iter::from_fn(|| recv(&forbidden))
            .find(|m| m.method().is_some_and(|m| m.to_string() == method))
            .unwrap_or_else(|| panic!("Bob's {method} is relayed"));
        if method == "MESSAGE" {
            let ok = response(&relayed, 200).to_bytes();
            forbidden.send_to(&ok, addr(PCSCF)).unwrap();
        }
        for h in IDENTITY {
            assert!(
                relayed.headers.get(&h).is_none(),
                "{method} kept {}",
                h.as_str()
            );
        }
    }
    stop_core(core);
}

#[test]
fn legitimate_traffic_keeps_working() {
    let (dir, data, core) = start_core("zones-legit", None);
    let names: Vec<String> = ["alice", "bob", "carol"].map(String::from).to_vec();
    provision_digest(&data, &dir, &names, "secret", None);
    // Alice's calls pass her application server, which sends the INVITE back.
    let as_port = free_port();
    set_ifcs(
        &data,
        "sip:alice@ims.example.net",
        json!([ifc(10, "ORIGINATING", as_port, "SESSION_TERMINATED")]),
    );
    let bob = Ue::register(&dir, "bob", "alice");
    let alice = Ue::register(&dir, "alice", "bob");
    assert_contacts(2);
    let server = Background::uas(
        &scenario("session/as_forward.xml"),
        addr(as_port),
        1,
        60,
        &workdir(&dir),
        false,
    )
    .expect("SIPp AS starts");
    let callee = bob.serve(&dir, "session/uas_answer.xml", 1);
    assert_all_passed(&alice.run(&dir, "session/uac_call.xml"), 1);
    assert_all_passed(&server.finish(), 1);
    assert_all_passed(&callee.finish(), 1);

    // Bob calls Alice: re-INVITE, ACK and UPDATE from Bob, BYE from Alice.
    let callee = alice.serve(&dir, "session/uas_answer_hangup.xml", 1);
    assert_all_passed(&bob.run(&dir, "session/uac_call_in_dialog.xml"), 1);
    assert_all_passed(&callee.finish(), 1);

    // Bob calls Carol, who is not registered: 480 and its ACK (non-2xx).
    let to_carol = Ue {
        csv: sipp_csv(&dir, "bob-carol.csv", &names[1..2], "secret", Some("carol")),
        ..bob
    };
    assert_all_passed(&to_carol.run(&dir, "session/uac_call_unavailable.xml"), 1);
    stop_core(core);
}
