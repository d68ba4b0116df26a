#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Application servers in the path of a call (TS 24.229 §5.4.3.2-3 steps 3-4, TS 29.228
//! Annex C/F): the real binaries started by `imsctl up` (the dev configs with
//! `[session] as_timeout_ms = 1000`), subscribers provisioned with `imsctl subscriber`
//! and their iFCs set through the HSS provisioning API (`ims_e2e::hss_api`),
//! SIPp UEs and SIPp playing the application server (`sipp-scenarios/session/as_*.xml`).
//!
//! An AS scenario passes only if the INVITE reaches it with the Route it checks (its
//! own value, then the S-CSCF's `<sip:127.0.0.1:5080;lr[;orig];odi=...>`), so a passed
//! AS plus a passed call show the request went to the AS and came back to the right
//! place in the chain.
//!
//! The nodes listen on the fixed dev ports: these tests run one at a time (nextest test
//! group `e2e`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ims_e2e::chain::{
    addr, assert_all_passed, assert_contacts, hss_state, provision_digest, run, sipp_csv,
    start_core, stop_core, workdir, Ue, SERVER_NAME,
};
use ims_e2e::hss_api::{ifc, set_ifcs};
use ims_e2e::sipp::SippTransport;
use ims_e2e::sipp::{scenario, Background};
use ims_e2e::{free_port, repo_root, scratch_dir};
use serde_json::{json, Value};

/// The I-CSCF's SIP port in the dev configs.
const ICSCF_SIP: u16 = 5070;
/// The S-CSCF's SIP port in the dev configs.
const SCSCF_SIP: u16 = 5080;
/// `[session] as_timeout_ms` of the S-CSCF in these tests.
const AS_TIMEOUT_MS: u64 = 1000;
/// Timer B of the S-CSCF's INVITE client transactions (64 * T1 = 64 * 500 ms): without
/// the AS timeout, a silent AS would be given up only then.
const TIMER_B: Duration = Duration::from_secs(32);

/// The dev configs with the S-CSCF's AS timeout set to [`AS_TIMEOUT_MS`].
fn configs(name: &str) -> PathBuf {
    let out = scratch_dir(&format!("{name}-cfg")).join("config");
    std::fs::create_dir_all(&out).unwrap();
    for node in ["hss", "icscf", "pcscf", "scscf", "policyd"] {
        let mut text =
            std::fs::read_to_string(repo_root().join(format!("config/dev/{node}.toml"))).unwrap();
        if node == "scscf" {
            assert!(text.contains("as_timeout_ms = 2000"), "scscf.toml sets it");
            text = text.replace(
                "as_timeout_ms = 2000",
                &format!("as_timeout_ms = {AS_TIMEOUT_MS}"),
            );
        }
        std::fs::write(out.join(format!("{node}.toml")), text).unwrap();
    }
    out
}

/// Alice and Bob provisioned (password `secret`), Alice with `alice_ifcs`.
fn provision(dir: &Path, data: &Path, alice_ifcs: Value) {
    let names = vec!["alice".to_string(), "bob".to_string()];
    provision_digest(data, dir, &names, "secret", None);
    set_ifcs(data, "sip:alice@ims.example.net", alice_ifcs);
}

/// A SIPp application server on `local` for one call.
fn application_server(dir: &Path, scenario_file: &str, local: SocketAddr) -> Background {
    Background::uas(&scenario(scenario_file), local, 1, 60, &workdir(dir), false)
        .expect("SIPp AS starts")
}

#[test]
fn the_application_server_gets_the_invite_with_its_route_and_odi_and_sends_it_back() {
    let name = "as-forward";
    let (dir, data, core) = start_core(name, Some(&configs(name)));
    let as_port = free_port();
    // SESSION_TERMINATED: the call completes only through the AS.
    provision(
        &dir,
        &data,
        json!([ifc(10, "ORIGINATING", as_port, "SESSION_TERMINATED")]),
    );
    let bob = Ue::register(&dir, "bob", "alice");
    let alice = Ue::register(&dir, "alice", "bob");
    assert_contacts(2);
    // The AS checks its Route (its own value, then `<sip:127.0.0.1:5080;lr;orig;odi=..>`),
    // sends the INVITE back with the S-CSCF's value alone and relays 180 and 200.
    let server = application_server(&dir, "session/as_forward.xml", addr(as_port));
    let callee = bob.serve(&dir, "session/uas_answer.xml", 1);
    let r = alice.run(&dir, "session/uac_call.xml");
    assert_all_passed(&r, 1);
    assert_all_passed(&server.finish(), 1);
    assert_all_passed(&callee.finish(), 1);
    stop_core(core);
}

#[test]
fn session_continued_skips_a_dead_application_server_within_its_timeout() {
    let name = "as-dead-continued";
    let (dir, data, core) = start_core(name, Some(&configs(name)));
    // Nothing listens on the first AS's port; the second forwards the call.
    let (dead, live) = (free_port(), free_port());
    provision(
        &dir,
        &data,
        json!([
            ifc(10, "ORIGINATING", dead, "SESSION_CONTINUED"),
            ifc(20, "ORIGINATING", live, "SESSION_TERMINATED")
        ]),
    );
    let bob = Ue::register(&dir, "bob", "alice");
    let alice = Ue::register(&dir, "alice", "bob");
    assert_contacts(2);
    let server = application_server(&dir, "session/as_forward.xml", addr(live));
    let callee = bob.serve(&dir, "session/uas_answer.xml", 1);
    let started = Instant::now();
    let r = alice.run(&dir, "session/uac_call.xml");
    let took = started.elapsed();
    assert_all_passed(&r, 1);
    assert_all_passed(&server.finish(), 1);
    assert_all_passed(&callee.finish(), 1);
    // The dead AS was given up after as_timeout_ms (1 s), not when its INVITE
    // transaction timed out (Timer B, 32 s): the whole call took less than that.
    assert!(took < TIMER_B, "the call took {took:?}");
    stop_core(core);
}

#[test]
fn session_terminated_fails_the_call_when_its_application_server_is_dead() {
    let name = "as-dead-terminated";
    let (dir, data, core) = start_core(name, Some(&configs(name)));
    let dead = free_port();
    provision(
        &dir,
        &data,
        json!([ifc(10, "ORIGINATING", dead, "SESSION_TERMINATED")]),
    );
    let alice = Ue::register(&dir, "alice", "bob");
    assert_contacts(1);
    // INVITE, (100), 408 from the S-CSCF, ACK.
    let started = Instant::now();
    let r = alice.run(&dir, "session/uac_call_as_failed.xml");
    assert_all_passed(&r, 1);
    assert!(started.elapsed() < TIMER_B, "{:?}", started.elapsed());
    stop_core(core);
}

#[test]
fn a_terminating_unregistered_ifc_reaches_its_application_server() {
    let name = "as-term-unreg";
    let (dir, data, core) = start_core(name, Some(&configs(name)));
    let voicemail = free_port();
    provision(&dir, &data, json!([]));
    let mut unregistered = ifc(
        5,
        "TERMINATING_UNREGISTERED",
        voicemail,
        "SESSION_CONTINUED",
    );
    unregistered["profile_part_indicator"] = json!("UNREGISTERED");
    set_ifcs(&data, "sip:bob@ims.example.net", json!([unregistered]));
    let alice = Ue::register(&dir, "alice", "bob");
    assert_contacts(1);
    // Bob is not registered: LIA UNREGISTERED_SERVICE, the I-CSCF picks the S-CSCF,
    // which fetches Bob's profile (SAR UNREGISTERED_USER) and sends the INVITE to his
    // voicemail, which answers; ACK and BYE reach it along the Record-Route set.
    let server = application_server(&dir, "session/as_answer.xml", addr(voicemail));
    let r = alice.run(&dir, "session/uac_call_voicemail.xml");
    assert_all_passed(&r, 1);
    assert_all_passed(&server.finish(), 1);
    assert_eq!(
        hss_state(&data, "sip:bob@ims.example.net"),
        ("UNREGISTERED".to_string(), Some(SERVER_NAME.to_string())),
        "the S-CSCF holds Bob's profile in the unregistered state"
    );
    stop_core(core);
}

#[test]
fn a_diverting_application_server_sends_the_call_on_through_the_originating_cdiv_chain() {
    let name = "as-cdiv";
    let (dir, data, core) = start_core(name, Some(&configs(name)));
    let (divert, later, cdiv) = (free_port(), free_port(), free_port());
    let names: Vec<String> = ["alice", "bob", "carol"].map(String::from).to_vec();
    provision_digest(&data, &dir, &names, "secret", None);
    // Bob forwards his calls (the AS diverts to Carol). Nothing listens on `later`: had
    // the S-CSCF gone on with Bob's terminating iFCs after the diversion, the call would
    // fail there (SESSION_TERMINATED). His ORIGINATING_CDIV iFC must be run.
    // The diverting AS is named by host name (RFC 3263: the S-CSCF's engine looks it up
    // with the system resolver; `localhost` is in every /etc/hosts).
    let mut diverting_ifc = ifc(10, "TERMINATING_REGISTERED", divert, "SESSION_TERMINATED");
    diverting_ifc["application_server"]["server_name"] = json!(format!("sip:localhost:{divert}"));
    set_ifcs(
        &data,
        "sip:bob@ims.example.net",
        json!([
            diverting_ifc,
            ifc(20, "TERMINATING_REGISTERED", later, "SESSION_TERMINATED"),
            ifc(30, "ORIGINATING_CDIV", cdiv, "SESSION_TERMINATED")
        ]),
    );
    let _bob = Ue::register(&dir, "bob", "alice");
    let carol = Ue::register(&dir, "carol", "alice");
    let alice = Ue::register(&dir, "alice", "bob");
    assert_contacts(3);
    // The diverting AS checks P-Served-User (Bob, term, reg) and the terminating odi
    // Route; the CDIV AS checks the `orig` odi Route; Carol answers.
    let diverting = application_server(&dir, "session/as_divert.xml", addr(divert));
    let forwarding = application_server(&dir, "session/as_forward.xml", addr(cdiv));
    let callee = carol.serve(&dir, "session/uas_answer.xml", 1);
    let r = alice.run(&dir, "session/uac_call.xml");
    assert_all_passed(&r, 1);
    assert_all_passed(&diverting.finish(), 1);
    assert_all_passed(&forwarding.finish(), 1);
    assert_all_passed(&callee.finish(), 1);
    stop_core(core);
}

#[test]
fn an_application_server_originates_for_an_unregistered_user_through_its_unregistered_services() {
    let name = "as-orig-unreg";
    let (dir, data, core) = start_core(name, Some(&configs(name)));
    let service = free_port();
    let names: Vec<String> = ["bob", "dave"].map(String::from).to_vec();
    provision_digest(&data, &dir, &names, "secret", None);
    // Dave is never registered; his ORIGINATING_UNREGISTERED iFC (in the unregistered
    // part of his profile) is SESSION_TERMINATED: the calls complete only through it.
    // An ORIGINATING iFC toward a dead port would fail them if it were run.
    let mut unregistered = ifc(
        10,
        "ORIGINATING_UNREGISTERED",
        service,
        "SESSION_TERMINATED",
    );
    unregistered["profile_part_indicator"] = json!("UNREGISTERED");
    set_ifcs(
        &data,
        "sip:dave@ims.example.net",
        json!([
            ifc(5, "ORIGINATING", free_port(), "SESSION_TERMINATED"),
            unregistered
        ]),
    );
    let bob = Ue::register(&dir, "bob", "dave");
    assert_contacts(1);
    // An AS (SIPp) originates for Dave twice, with P-Served-User and `orig` in its
    // Route: first through the I-CSCF, which knows no S-CSCF for Dave yet and finds
    // one with an originating LIR (the HSS answers with capabilities: unregistered
    // services); then straight to the S-CSCF, which keeps Dave's unregistered profile.
    let server = Background::uas(
        &scenario("session/as_forward.xml"),
        addr(service),
        2,
        60,
        &workdir(&dir),
        false,
    )
    .expect("SIPp AS starts");
    let callee = bob.serve(&dir, "session/uas_answer.xml", 2);
    let csv = sipp_csv(&dir, "dave.csv", &names[1..], "secret", Some("bob"));
    for entry in [ICSCF_SIP, SCSCF_SIP] {
        let r = run(
            &dir,
            "session/as_originate_unregistered.xml",
            &csv,
            SippTransport::Udp,
            1,
            addr(entry),
        );
        assert_all_passed(&r, 1);
    }
    assert_all_passed(&server.finish(), 2);
    assert_all_passed(&callee.finish(), 2);
    assert_eq!(
        hss_state(&data, "sip:dave@ims.example.net"),
        ("UNREGISTERED".to_string(), Some(SERVER_NAME.to_string())),
        "the S-CSCF holds Dave's profile in the unregistered state"
    );
    stop_core(core);
}

#[test]
fn an_untrusted_source_may_not_originate_for_a_user_through_the_icscf() {
    let name = "as-orig-untrusted";
    let config = configs(name);
    // Loopback is a peer network to the I-CSCF: it may register (a visited network's
    // P-CSCF) and call our users, but not send requests on behalf of a user (`orig`).
    let icscf = config.join("icscf.toml");
    let text = std::fs::read_to_string(&icscf).unwrap();
    let core = "core = [\"127.0.0.1/32\", \"::1/128\"]";
    assert!(text.contains(core), "icscf.toml sets it");
    let text = text.replace(core, "core = []").replace(
        "interconnect = []",
        "interconnect = [\"127.0.0.1/32\", \"::1/128\"]",
    );
    std::fs::write(&icscf, text).unwrap();
    let (dir, data, core) = start_core(name, Some(&config));
    let names: Vec<String> = ["bob", "dave"].map(String::from).to_vec();
    provision_digest(&data, &dir, &names, "secret", None);
    let bob = Ue::register(&dir, "bob", "dave");
    assert_contacts(1);
    let phone = std::net::UdpSocket::bind(bob.local).unwrap();
    let csv = sipp_csv(&dir, "dave.csv", &names[1..], "secret", Some("bob"));
    // 403 from the I-CSCF, and Bob's phone never rings.
    let r = run(
        &dir,
        "session/as_originate_refused.xml",
        &csv,
        SippTransport::Udp,
        1,
        addr(ICSCF_SIP),
    );
    assert_all_passed(&r, 1);
    phone
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    assert!(phone.recv(&mut buf).is_err(), "no request reached Bob");
    assert_eq!(
        hss_state(&data, "sip:dave@ims.example.net").1,
        None,
        "no S-CSCF was assigned to Dave"
    );
    stop_core(core);
}
