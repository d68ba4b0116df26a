#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Sessions through the whole chain (TS 24.229 §5.2.6, §5.3.2, §5.4.3; TS 29.228 §6.1.4
//! LIR): the real `policyd`, `hss`, `scscf`, `icscf` and `pcscf` binaries started by
//! `imsctl up` with the dev configs, subscribers provisioned with the real `imsctl
//! subscriber`, and SIPp UEs running `sipp-scenarios/session/`. Each UE registers over
//! UDP from its own port, then runs its call scenario from that port (the callee as a
//! SIPp server there: the P-CSCF sends to the registered flow). A SIPp scenario passes
//! only if every message it expects arrives with the headers it checks, so the tests
//! assert both ends finished all their calls.
//!
//! The path of an initial request: UE A -> P-CSCF -> S-CSCF (originating, `orig`
//! Service-Route) -> I-CSCF (LIR) -> S-CSCF (terminating) -> P-CSCF (flow token in
//! Path) -> UE B; requests in the dialog follow the Record-Route set P-CSCF, S-CSCF,
//! S-CSCF, P-CSCF.
//!
//! The nodes listen on the fixed dev ports: these tests run one at a time (nextest test
//! group `e2e`).

use std::path::Path;

use ims_e2e::chain::{
    addr, assert_all_passed, assert_contacts, decode, decode_cleanly, plain_cx_configs,
    provision_digest, sipp_csv, start_core, stop_core, tls_ue_answering, Capture, Ue, PCSCF_TLS,
};
use ims_e2e::{free_port, http_get, stunnel};

/// The P-CSCF's `/health` and `/metrics` port.
const PCSCF_HTTP: u16 = 9101;

/// Provisions `names` with password `secret`.
fn provision(data: &Path, dir: &Path, names: &[&str]) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    provision_digest(data, dir, &names, "secret", None);
}

/// Alice and Bob provisioned and registered (Bob first, so he can be called); Alice
/// calls Bob.
fn alice_and_bob(dir: &Path, data: &Path) -> (Ue, Ue) {
    provision(data, dir, &["alice", "bob"]);
    let bob = Ue::register(dir, "bob", "alice");
    let alice = Ue::register(dir, "alice", "bob");
    assert_contacts(2);
    (alice, bob)
}

#[test]
fn a_call_completes_and_tears_down() {
    let (dir, data, core) = start_core("session-call", None);
    let (alice, bob) = alice_and_bob(&dir, &data);
    // INVITE, 100, 180, 200 with at least four Record-Route values, ACK, BYE, 200; Bob
    // checks the INVITE carries P-Asserted-Identity and P-Called-Party-ID.
    let callee = bob.serve(&dir, "session/uas_answer.xml", 1);
    let r = alice.run(&dir, "session/uac_call.xml");
    assert_all_passed(&r, 1);
    assert_all_passed(&callee.finish(), 1);
    stop_core(core);
}

#[test]
fn requests_in_the_dialog_follow_the_record_route_set_both_ways() {
    let (dir, data, core) = start_core("session-in-dialog", None);
    let (alice, bob) = alice_and_bob(&dir, &data);
    // re-INVITE/200/ACK and UPDATE/200 from Alice, then BYE/200 from Bob: each along
    // the route set its side learned from the Record-Route of the INVITE or the 200.
    let callee = bob.serve(&dir, "session/uas_answer_hangup.xml", 1);
    let r = alice.run(&dir, "session/uac_call_in_dialog.xml");
    assert_all_passed(&r, 1);
    assert_all_passed(&callee.finish(), 1);
    stop_core(core);
}

#[test]
fn a_call_with_a_reliable_183_and_prack_completes() {
    let (dir, data, core) = start_core("session-prack", None);
    let (alice, bob) = alice_and_bob(&dir, &data);
    // RFC 3262: Alice requires 100rel; Bob answers 183 with Require: 100rel and RSeq 1,
    // which establishes the early dialog (To tag, Contact, the Record-Route set). Alice's
    // PRACK follows that route set through P-CSCF, S-CSCF, S-CSCF, P-CSCF to Bob, who
    // checks its RAck (1 1 INVITE) and answers 200, then 200 to the INVITE; ACK, BYE.
    let callee = bob.serve(&dir, "session/uas_prack.xml", 1);
    let r = alice.run(&dir, "session/uac_prack.xml");
    assert_all_passed(&r, 1);
    assert_all_passed(&callee.finish(), 1);
    stop_core(core);
}

#[test]
fn cancel_before_answer_gives_487_and_cancels_the_callee() {
    let (dir, data, core) = start_core("session-cancel", None);
    let (alice, bob) = alice_and_bob(&dir, &data);
    // Alice: INVITE, 180, CANCEL, 200, 487, ACK. Bob: INVITE, 180, CANCEL, 200, 487,
    // ACK: the CANCEL went hop by hop to his branch and his 487 came back.
    let callee = bob.serve(&dir, "session/uas_cancelled.xml", 1);
    let r = alice.run(&dir, "session/uac_cancel.xml");
    assert_all_passed(&r, 1);
    assert_all_passed(&callee.finish(), 1);
    stop_core(core);
}

#[test]
fn message_and_options_outside_a_dialog_are_delivered() {
    let (dir, data, core) = start_core("session-message", None);
    let (alice, bob) = alice_and_bob(&dir, &data);
    // Bob checks the MESSAGE's text and P-Asserted-Identity; Alice checks the OPTIONS
    // 200 is Bob's (his Allow header).
    let callee = bob.serve(&dir, "session/uas_message.xml", 1);
    let r = alice.run(&dir, "session/uac_message.xml");
    assert_all_passed(&r, 1);
    assert_all_passed(&callee.finish(), 1);
    stop_core(core);
}

#[test]
fn a_call_to_an_unregistered_user_gets_480() {
    let (dir, data, core) = start_core("session-480", None);
    provision(&data, &dir, &["alice", "bob"]);
    let alice = Ue::register(&dir, "alice", "bob");
    assert_contacts(1);
    // The HSS knows Bob but he is not registered and has no unregistered services:
    // LIA DIAMETER_ERROR_IDENTITY_NOT_REGISTERED, 480 from the I-CSCF.
    let r = alice.run(&dir, "session/uac_call_unavailable.xml");
    assert_all_passed(&r, 1);
    stop_core(core);
}

#[test]
fn forking_to_two_contacts_first_answer_wins_and_the_other_is_cancelled() {
    let (dir, data, core) = start_core("session-fork", None);
    let (alice, bob) = alice_and_bob(&dir, &data);
    // A second contact of Bob's (another port, another +sip.instance).
    let bob2 = Ue::register(&dir, "bob", "alice");
    assert_contacts(3);
    // Both ring; the first answers after 200 ms, the second never does and must get
    // the CANCEL the S-CSCF sends when the 200 arrives.
    let answers = bob.serve(&dir, "session/uas_answer.xml", 1);
    let cancelled = bob2.serve(&dir, "session/uas_cancelled.xml", 1);
    let r = alice.run(&dir, "session/uac_call.xml");
    assert_all_passed(&r, 1);
    assert_all_passed(&answers.finish(), 1);
    assert_all_passed(&cancelled.finish(), 1);
    stop_core(core);
}

/// The P-CSCF's open TCP and TLS connections, from `/metrics`.
fn pcscf_connections() -> Option<u64> {
    let text = http_get(addr(PCSCF_HTTP), "/metrics")?;
    text.lines()
        .find_map(|l| l.strip_prefix("sip_connections_open "))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn a_callee_over_tls_is_reached_over_its_own_connection() {
    let (dir, data, core) = start_core("session-tls", None);
    provision(&data, &dir, &["alice", "bob"]);
    // Bob's SIPp speaks TCP to stunnel, which speaks TLS to the P-CSCF. He registers,
    // then answers the call over that connection (`-oocsf`).
    let entry = addr(free_port());
    let _tunnel = stunnel::start(&dir, entry, addr(PCSCF_TLS), &data.join("tls/ca.crt")).unwrap();
    let csv = sipp_csv(
        &dir,
        "bob-tls.csv",
        &["bob".into()],
        "secret",
        Some("alice"),
    );
    let _bob = tls_ue_answering(&dir, entry, &csv, 60_000);
    assert_contacts(1);
    assert_eq!(pcscf_connections(), Some(1), "Bob's TLS connection");
    // Alice (UDP) calls; ACK, re-INVITE, ACK and UPDATE go to Bob along the Record-Route
    // (the P-CSCF value carries his flow token), his BYE comes back up.
    let alice = Ue::register(&dir, "alice", "bob");
    let r = alice.run(&dir, "session/uac_call_in_dialog.xml");
    assert_all_passed(&r, 1);
    // Everything reached Bob over his own connection: the P-CSCF opened none to the
    // Contact he registered (where his SIPp also listens).
    assert_eq!(
        pcscf_connections(),
        Some(1),
        "no connection to Bob's Contact"
    );
    stop_core(core);
}

#[test]
fn calls_at_a_steady_rate_all_complete() {
    const CALLS: u32 = 40;
    let (dir, data, core) = start_core("session-rate", None);
    let (alice, bob) = alice_and_bob(&dir, &data);
    let callee = bob.serve(&dir, "session/uas_answer.xml", CALLS);
    let r = alice.run_calls(&dir, "session/uac_call.xml", CALLS);
    assert_all_passed(&r, CALLS as usize);
    assert_all_passed(&callee.finish(), CALLS as usize);
    stop_core(core);
}

#[test]
fn a_captured_call_shows_the_record_route_set_and_lir_in_tshark() {
    // Cx in plaintext (bound by address) so tshark decodes the LIR; the dev core runs it
    // over mutual TLS.
    let (dir, data, core) = start_core("session-tshark", Some(&plain_cx_configs("session-tshark")));
    let (alice, bob) = alice_and_bob(&dir, &data);
    let callee = bob.serve(&dir, "session/uas_answer.xml", 1);
    let capture = Capture::start(&dir.join("call.pcapng"));
    let r = alice.run(&dir, "session/uac_call.xml");
    assert_all_passed(&r, 1);
    assert_all_passed(&callee.finish(), 1);
    let pcap = capture.stop();
    stop_core(core);

    let text = decode_cleanly(&pcap);
    for needle in [
        "Command Code: Location-Info (302)",
        "P-Asserted-Identity: <sip:alice@ims.example.net>",
        "P-Called-Party-ID: <sip:bob@ims.example.net>",
    ] {
        assert!(
            text.contains(needle),
            "no {needle:?} in the decode of {}",
            pcap.display()
        );
    }
    // One LIR and its LIA (request and answer flags).
    let lir = decode(
        &pcap,
        &[
            "-Y",
            "diameter.cmd.code == 302",
            "-T",
            "fields",
            "-e",
            "diameter.flags.request",
        ],
    );
    let mut flags: Vec<&str> = lir.lines().collect();
    flags.sort_unstable();
    assert_eq!(flags, ["0", "1"], "LIR and LIA in {}", pcap.display());
    // The INVITE that reaches Bob, and the 200 Alice gets, carry the whole set: P-CSCF
    // (Bob's side, on top, with the flow token of Bob's UE), S-CSCF, S-CSCF, P-CSCF
    // (Alice's side, with hers).
    for filter in [
        "sip.Method == \"INVITE\" && udp.srcport == 5060 && udp.dstport == ".to_string()
            + &bob.local.port().to_string(),
        "sip.Status-Code == 200 && sip.CSeq.method == \"INVITE\" && udp.dstport == ".to_string()
            + &alice.local.port().to_string(),
    ] {
        let rr = decode(
            &pcap,
            &["-Y", &filter, "-T", "fields", "-e", "sip.Record-Route"],
        );
        let seen: Vec<&str> = rr.lines().filter(|l| !l.is_empty()).collect();
        assert!(!seen.is_empty(), "no packet matches {filter}");
        for line in seen {
            // Bob's SIPp writes the values it copies as one comma-separated header.
            let line = line.replace(' ', "");
            let set: Vec<&str> = line.split(',').collect();
            let pcscf_token = |v: &str| {
                v.strip_prefix("<sip:")
                    .and_then(|v| v.strip_suffix("@127.0.0.1:5060;lr>"))
                    .filter(|t| t.len() > 20)
                    .map(str::to_string)
            };
            let (Some(b), Some(a)) = (
                set.first().and_then(|v| pcscf_token(v)),
                set.last().and_then(|v| pcscf_token(v)),
            ) else {
                panic!("P-CSCF values with flow tokens around {line} ({filter})");
            };
            assert_ne!(a, b, "each UE's own flow token");
            assert_eq!(
                set.get(1..3),
                Some(&["<sip:127.0.0.1:5080;lr>", "<sip:127.0.0.1:5080;lr>"][..]),
                "Record-Route of {filter}"
            );
            assert_eq!(set.len(), 4, "{line}");
        }
    }
}
