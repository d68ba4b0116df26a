#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! IMS registration through the whole chain (TS 24.229 §5.2.2, §5.3.1, §5.4.1; TS 29.228/
//! 29.229 Cx): the real `policyd`, `hss`, `scscf`, `icscf` and `pcscf` binaries with the
//! dev configs and a scratch data directory, subscribers provisioned with the real
//! `imsctl subscriber`, and real SIPp UEs (UDP, TCP, and TLS through stunnel) running
//! the scenarios of `sipp-scenarios/register/`. After each run the HSS's state (through
//! `imsctl subscriber show`) and the S-CSCF's `registered_contacts` (on `/health`) are
//! checked. Restarts of the S-CSCF and the HSS, and a tshark decode of a capture, too.
//!
//! The nodes listen on the fixed dev ports: these tests run one at a time (nextest test
//! group `e2e`).

use std::time::Duration;

use ims_e2e::chain::{
    addr, assert_all_passed, assert_contacts, assert_not_registered, assert_registered,
    decode_cleanly, edited_dev_configs, impu, imsctl, plain_cx_configs, provision_digest, run,
    scscf_contacts, sipp_csv, start_core, stop_core, users, Capture, PCSCF, PCSCF_TLS,
};
use ims_e2e::nodes::Nodes;
use ims_e2e::sipp::{self, SippTransport};
use ims_e2e::{free_port, http_get, repo_root, stunnel, wait_for};
use ims_sip::auth::digest::{self, QopAuth};
use ims_sip::auth::{Algorithm, Ha1};
use ims_sip::{HeaderName, SipMessage};

#[test]
fn digest_registration_over_udp_and_tcp() {
    const N: usize = 20;
    let (dir, data, core) = start_core("chain-digest", None);
    for (prefix, transport, total) in [
        ("udp", SippTransport::Udp, N),
        ("tcp", SippTransport::Tcp, 2 * N),
    ] {
        let names = users(prefix, N);
        provision_digest(&data, &dir, &names, "secret", None);
        assert_not_registered(&data, &names);
        let csv = sipp_csv(&dir, &format!("{prefix}.csv"), &names, "secret", None);
        let r = run(
            &dir,
            "register/digest.xml",
            &csv,
            transport,
            N as u32,
            addr(PCSCF),
        );
        assert_all_passed(&r, N);
        assert_registered(&data, &names);
        assert_contacts(total as u64);
    }
    // `imsctl status` shows each node and the S-CSCF's count.
    let status = imsctl(&data, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "imsctl status: {status:?}");
    let scscf = text
        .lines()
        .find(|l| l.starts_with("scscf "))
        .unwrap_or_else(|| panic!("no scscf line in:\n{text}"));
    assert!(
        scscf.contains(&format!("registered_contacts={}", 2 * N)),
        "{text}"
    );
    stop_core(core);
}

#[test]
fn wrong_password_and_unknown_user_get_403_and_stay_unregistered() {
    let (dir, data, core) = start_core("chain-failures", None);
    let alice = users("alice", 1);
    provision_digest(&data, &dir, &alice, "secret", None);
    let wrong = sipp_csv(&dir, "wrong.csv", &alice, "not-the-password", None);
    let nobody = users("nobody", 1);
    let unknown = sipp_csv(&dir, "unknown.csv", &nobody, "secret", None);
    for transport in [SippTransport::Udp, SippTransport::Tcp] {
        // The scenarios expect the 403 (TS 24.229 §5.4.1.2.3A; TS 29.228 §6.1.1). An
        // unknown user is answered like a wrong password (issue 11, no enumeration): a
        // decoy 401 from the I-CSCF, then 403.
        let r = run(
            &dir,
            "register/wrong_password.xml",
            &wrong,
            transport,
            1,
            addr(PCSCF),
        );
        assert_all_passed(&r, 1);
        let r = run(
            &dir,
            "register/wrong_password.xml",
            &unknown,
            transport,
            1,
            addr(PCSCF),
        );
        assert_all_passed(&r, 1);
    }
    assert_not_registered(&data, &alice);
    let out = imsctl(&data, &["subscriber", "show", &impu(&nobody[0])]);
    assert!(!out.status.success(), "the HSS knows nobody: {out:?}");
    assert_contacts(0);
    stop_core(core);
}

#[test]
fn aka_registration_over_udp_and_tcp() {
    let (dir, data, core) = start_core("chain-aka", None);
    // The keys of sipp-scenarios/register/aka_users.csv: K = "abcdefghijklmnop",
    // OP = "0123456789abcdef", AMF = "AA" (0x4141).
    let out = imsctl(
        &data,
        &[
            "subscriber",
            "add",
            "--impi",
            "akauser@ims.example.net",
            "--impu",
            "sip:akauser@ims.example.net",
            "--k",
            &hex(b"abcdefghijklmnop"),
            "--op",
            &hex(b"0123456789abcdef"),
            "--amf",
            "4141",
        ],
    );
    assert!(out.status.success(), "imsctl subscriber add: {out:?}");
    let aka = vec!["akauser".to_string()];
    assert_not_registered(&data, &aka);
    let csv = repo_root().join("sipp-scenarios/register/aka_users.csv");
    for transport in [SippTransport::Udp, SippTransport::Tcp] {
        // SIPp 3.6 misanswers the ~3 % of AKA challenges whose RES holds a zero octet
        // (`sipp::sipp_misanswers_aka`); such runs, and only those, are run again.
        let work = dir.join(format!("aka-{transport:?}"));
        let r = sipp::run_aka_uac(
            &sipp::scenario("register/aka.xml"),
            addr(PCSCF),
            &csv,
            addr(free_port()),
            transport,
            1,
            (b"abcdefghijklmnop", b"0123456789abcdef"),
            3,
            &work,
        )
        .expect("sipp runs");
        assert_all_passed(&r, 1);
        assert_registered(&data, &aka);
        // One binding: the TCP registration replaces the UDP one (same +sip.instance,
        // RFC 5627 §4.2).
        assert_contacts(1);
    }
    stop_core(core);
}

#[test]
fn a_barred_identity_gets_403() {
    let (dir, data, core) = start_core("chain-barred", None);
    let barred = users("barred", 1);
    provision_digest(&data, &dir, &barred, "secret", None);
    let out = imsctl(
        &data,
        &[
            "subscriber",
            "update",
            &impu(&barred[0]),
            "--bar",
            &impu(&barred[0]),
        ],
    );
    assert!(
        out.status.success(),
        "imsctl subscriber update --bar: {out:?}"
    );
    let csv = sipp_csv(&dir, "barred.csv", &barred, "secret", None);
    for transport in [SippTransport::Udp, SippTransport::Tcp] {
        // The UAA refuses a barred identity (TS 29.228 §6.1.1); the I-CSCF answers it
        // like a wrong password (issue 11: barring must not reveal who exists): a decoy
        // 401, then 403 even for the right password.
        let r = run(
            &dir,
            "register/wrong_password.xml",
            &csv,
            transport,
            1,
            addr(PCSCF),
        );
        assert_all_passed(&r, 1);
    }
    assert_not_registered(&data, &barred);
    assert_contacts(0);
    stop_core(core);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn deregistration_drops_contacts_and_hss_state() {
    const N: usize = 6;
    let (dir, data, core) = start_core("chain-dereg", None);
    let names = users("dereg", N);
    provision_digest(&data, &dir, &names, "secret", None);
    let csv = sipp_csv(&dir, "all.csv", &names, "secret", None);
    let r = run(
        &dir,
        "register/digest.xml",
        &csv,
        SippTransport::Udp,
        N as u32,
        addr(PCSCF),
    );
    assert_all_passed(&r, N);
    assert_contacts(N as u64);
    // deregister.xml refreshes the registration, then sends Expires: 0.
    let (gone, kept) = names.split_at(2);
    let csv = sipp_csv(&dir, "gone.csv", gone, "secret", None);
    let r = run(
        &dir,
        "register/deregister.xml",
        &csv,
        SippTransport::Udp,
        2,
        addr(PCSCF),
    );
    assert_all_passed(&r, 2);
    assert_contacts((N - 2) as u64);
    assert_not_registered(&data, gone);
    assert_registered(&data, kept);
    stop_core(core);
}

#[test]
fn digest_registration_over_tls_through_stunnel() {
    const N: usize = 5;
    let (dir, data, core) = start_core("chain-tls", None);
    let names = users("tls", N);
    provision_digest(&data, &dir, &names, "secret", None);
    let entry = addr(free_port());
    let _tunnel = stunnel::start(&dir, entry, addr(PCSCF_TLS), &data.join("tls/ca.crt")).unwrap();
    let csv = sipp_csv(&dir, "tls.csv", &names, "secret", None);
    let r = run(
        &dir,
        "register/digest.xml",
        &csv,
        SippTransport::Tcp,
        N as u32,
        entry,
    );
    assert_all_passed(&r, N);
    assert_registered(&data, &names);
    assert_contacts(N as u64);
    stop_core(core);
}

#[test]
fn a_udp_registration_decodes_in_tshark() {
    // Cx in plaintext (bound by address) so tshark decodes it; the dev core runs it over
    // mutual TLS.
    let (dir, data, core) = start_core("chain-tshark", Some(&plain_cx_configs("chain-tshark")));
    let names = users("cap", 2);
    provision_digest(&data, &dir, &names, "secret", None);
    let capture = Capture::start(&dir.join("registration.pcapng"));
    // Two registrations a second apart: with one UAR per registration (the first
    // REGISTER's), a capture that starts late on a loaded machine (tshark says it
    // captures a little before it does) would miss the only UAR of a single one.
    for (i, name) in names.iter().enumerate() {
        let csv = sipp_csv(
            &dir,
            &format!("cap{i}.csv"),
            std::slice::from_ref(name),
            "secret",
            None,
        );
        let r = run(
            &dir,
            "register/digest.xml",
            &csv,
            SippTransport::Udp,
            1,
            addr(PCSCF),
        );
        assert_all_passed(&r, 1);
        std::thread::sleep(Duration::from_secs(1));
    }
    let pcap = capture.stop();
    stop_core(core);

    let text = decode_cleanly(&pcap);
    for needle in [
        "Path: ",
        "Service-Route: ",
        "P-Associated-URI: ",
        "Command Code: User-Authorization (300)",
        "Command Code: Multimedia-Auth (303)",
        "Command Code: Server-Assignment (301)",
    ] {
        assert!(
            text.contains(needle),
            "no {needle:?} in the decode of {}",
            pcap.display()
        );
    }
}

#[test]
fn registrations_survive_an_scscf_restart() {
    const N: usize = 100;
    let (dir, mut nodes) = Nodes::start("chain-scscf-restart");
    let data = nodes.data.clone();
    let names = users("many", N);
    provision_digest(&data, &dir, &names, "secret", None);
    let csv = sipp_csv(&dir, "many.csv", &names, "secret", None);
    let r = run(
        &dir,
        "register/digest.xml",
        &csv,
        SippTransport::Udp,
        N as u32,
        addr(PCSCF),
    );
    assert_all_passed(&r, N);
    assert_contacts(N as u64);

    nodes.kill_node("scscf");
    assert_eq!(scscf_contacts(), None, "the S-CSCF is down");
    nodes.start_node("scscf");
    assert_contacts(N as u64);
    assert_registered(&data, &names);

    // It still serves: a re-registration refreshes its binding (same +sip.instance).
    let one = sipp_csv(&dir, "one.csv", &names[..1], "secret", None);
    let r = run(
        &dir,
        "register/digest.xml",
        &one,
        SippTransport::Udp,
        1,
        addr(PCSCF),
    );
    assert_all_passed(&r, 1);
    assert_contacts(N as u64);
}

#[test]
fn registrations_succeed_after_an_hss_restart() {
    let (dir, mut nodes) = Nodes::start("chain-hss-restart");
    let data = nodes.data.clone();
    let names = users("hss", 6);
    provision_digest(&data, &dir, &names, "secret", None);
    let (before, after) = names.split_at(2);
    let csv = sipp_csv(&dir, "before.csv", before, "secret", None);
    let r = run(
        &dir,
        "register/digest.xml",
        &csv,
        SippTransport::Udp,
        2,
        addr(PCSCF),
    );
    assert_all_passed(&r, 2);

    nodes.kill_node("hss");
    nodes.start_node("hss");

    // The I-CSCF and S-CSCF reconnect on their own (RFC 6733 §5.1, RFC 3539): the first
    // user registers within a bounded time...
    let first = sipp_csv(&dir, "first.csv", &after[..1], "secret", None);
    let mut attempts = Vec::new();
    let ok = wait_for(Duration::from_secs(90), || {
        let r = run(
            &dir,
            "register/digest.xml",
            &first,
            SippTransport::Udp,
            1,
            addr(PCSCF),
        );
        let ok = r.successful == 1 && r.exit_code == Some(0);
        attempts.push(r);
        if !ok {
            std::thread::sleep(Duration::from_secs(1));
        }
        ok.then_some(())
    });
    assert!(
        ok.is_some(),
        "no registration after the HSS restart: {attempts:?}"
    );
    // ...and then every one does, at once.
    let rest = sipp_csv(&dir, "rest.csv", &after[1..], "secret", None);
    let r = run(
        &dir,
        "register/digest.xml",
        &rest,
        SippTransport::Udp,
        3,
        addr(PCSCF),
    );
    assert_all_passed(&r, 3);
    assert_registered(&data, &names);
    assert_contacts(names.len() as u64);
}

/// The I-CSCF's plain `/metrics` port.
const ICSCF_HTTP: u16 = 9102;

/// The I-CSCF's count of `event` (`budget_events_total`): `icscf_uar_sent` is every UAR
/// it sends.
fn icscf_events(event: &str) -> u64 {
    let text = http_get(addr(ICSCF_HTTP), "/metrics").expect("/metrics answers");
    let series = format!("budget_events_total{{event=\"{event}\"}}");
    text.lines()
        .find_map(|l| l.strip_prefix(&series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[test]
fn a_digest_registration_through_the_chain_costs_one_uar() {
    const N: usize = 10;
    let (dir, data, core) = start_core("chain-one-uar", None);
    let names = users("oneuar", N);
    provision_digest(&data, &dir, &names, "secret", None);
    let (uars, recalled) = (
        icscf_events("icscf_uar_sent"),
        icscf_events("icscf_scscf_recalled"),
    );
    let csv = sipp_csv(&dir, "oneuar.csv", &names, "secret", None);
    // REGISTER, 401, REGISTER with credentials, 200 for each user.
    let r = run(
        &dir,
        "register/digest.xml",
        &csv,
        SippTransport::Udp,
        N as u32,
        addr(PCSCF),
    );
    assert_all_passed(&r, N);
    assert_registered(&data, &names);
    assert_eq!(icscf_events("icscf_uar_sent") - uars, N as u64);
    assert_eq!(icscf_events("icscf_scscf_recalled") - recalled, N as u64);
    stop_core(core);
}

/// A REGISTER of `user` through the P-CSCF from `ue` in call `call`.
fn register_text(
    ue: std::net::SocketAddr,
    user: &str,
    call: &str,
    cseq: u32,
    auth: &str,
) -> String {
    format!(
        "REGISTER sip:ims.example.net SIP/2.0\r\nVia: SIP/2.0/UDP {ue};branch=z9hG4bK{call}x{cseq};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@ims.example.net>;tag=t{call}\r\n\
         To: <sip:{user}@ims.example.net>\r\nCall-ID: {call}\r\nCSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{user}@{ue}>\r\nExpires: 600\r\n{auth}Content-Length: 0\r\n\r\n"
    )
}

/// Sends `text` to the P-CSCF and returns the first final response (within 10 s).
fn exchange(socket: &std::net::UdpSocket, text: &str) -> SipMessage {
    socket.send_to(text.as_bytes(), addr(PCSCF)).unwrap();
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, _) = socket.recv_from(&mut buf).expect("an answer within 10 s");
        let r = SipMessage::parse(buf[..n].to_vec()).unwrap();
        if r.status().is_some_and(|s| s >= 200) {
            return r;
        }
    }
}

/// The Authorization header answering the challenge `www` for `user`.
fn digest_answer(user: &str, password: &str, www: &str) -> String {
    let param = |name: &str| {
        www.split(&format!("{name}=\""))
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_string()
    };
    let (realm, nonce) = (param("realm"), param("nonce"));
    let username = format!("{user}@ims.example.net");
    let ha1 = Ha1::compute(Algorithm::Md5, &username, &realm, password.as_bytes());
    let uri = "sip:ims.example.net";
    let qop = QopAuth {
        nc: "00000001",
        cnonce: "c0ffee",
    };
    let response =
        digest::response(Algorithm::Md5, &ha1, "REGISTER", uri, &nonce, Some(qop)).unwrap();
    format!(
        "Authorization: Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", \
         uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, \
         cnonce=\"c0ffee\"\r\n"
    )
}

#[test]
fn a_registration_works_when_the_remembered_scscf_is_gone() {
    // The I-CSCF gives a remembered S-CSCF 1 s to answer.
    let configs = edited_dev_configs("chain-memory-gone", |node, text| match node {
        "icscf" => {
            let edited = text.replace("scscf_silence_ms = 4000", "scscf_silence_ms = 1000");
            assert_ne!(edited, text, "config/dev/icscf.toml sets scscf_silence_ms");
            edited
        }
        _ => text,
    });
    let (dir, mut nodes) = Nodes::start_with("chain-memory-gone", Some(configs));
    let data = nodes.data.clone();
    let user = users("gone", 1);
    provision_digest(&data, &dir, &user, "secret", None);
    let ue = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ue.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let ue_addr = ue.local_addr().unwrap();
    let name = &user[0];

    // Challenged by the S-CSCF, which then goes away before the answer.
    let challenge = exchange(&ue, &register_text(ue_addr, name, "gone1", 1, ""));
    assert_eq!(challenge.status(), Some(401));
    let www = challenge
        .headers
        .get_str(&HeaderName::WwwAuthenticate)
        .unwrap()
        .to_string();
    nodes.kill_node("scscf");
    let (uars, fallbacks) = (
        icscf_events("icscf_uar_sent"),
        icscf_events("icscf_scscf_fallback"),
    );
    let auth = digest_answer(name, "secret", &www);
    let failed = exchange(&ue, &register_text(ue_addr, name, "gone1", 2, &auth));
    assert_ne!(failed.status(), Some(200));
    // The silent S-CSCF was given up on, and the failure went to the UE. No other
    // S-CSCF is configured, so the HSS was not asked again: a UAR could only name the
    // S-CSCF that failed.
    assert_eq!(icscf_events("icscf_scscf_fallback") - fallbacks, 1);
    assert_eq!(icscf_events("icscf_uar_sent") - uars, 0);

    // Back again: the UE registers in the same call, through a fresh UAR (a few tries
    // while the restarted S-CSCF's Cx link opens).
    nodes.start_node("scscf");
    let mut cseq = 3;
    let registered = wait_for(Duration::from_secs(30), || {
        let challenge = exchange(&ue, &register_text(ue_addr, name, "gone1", cseq, ""));
        cseq += 1;
        let www = challenge
            .headers
            .get_str(&HeaderName::WwwAuthenticate)?
            .to_string();
        let auth = digest_answer(name, "secret", &www);
        let ok = exchange(&ue, &register_text(ue_addr, name, "gone1", cseq, &auth));
        cseq += 1;
        if ok.status() != Some(200) {
            std::thread::sleep(Duration::from_millis(500));
        }
        (ok.status() == Some(200)).then_some(())
    });
    assert!(
        registered.is_some(),
        "no registration after the S-CSCF came back"
    );
    assert_registered(&data, &user);
}
