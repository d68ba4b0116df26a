#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A P-CSCF restart does not make its UEs register again (issue 15, RFC 5626 §5.3):
//! the dev core's real binaries started one by one ([`ims_e2e::nodes::Nodes`]), SIPp UEs
//! registered through the P-CSCF over TLS (carol, SIPp behind stunnel) and over UDP
//! (alice, dave for 3 seconds, bob); then the P-CSCF is killed (SIGKILL, as soon as bob's
//! SIPp has its 200) and started again with the same data directory:
//!
//! * it restores the UDP registrations from its store (`restored_registrations` on
//!   `/health`), not dave's, which lapsed while it was down, nor carol's (her TLS
//!   connection ended with the process);
//! * alice, without registering again, calls bob, who has not registered again either:
//!   her request is accepted as a registered UE's, and his INVITE reaches him over his
//!   UDP flow (the flow token names his address, and its key survived);
//! * alice's call to carol gets 430 Flow Failed (her only binding names a flow that is
//!   gone); carol registers again over a new connection and the next call reaches her;
//! * after a graceful restart (SIGTERM) the same: bob is called without registering.
//!
//! The nodes listen on the fixed dev ports: this test runs alone (nextest test group
//! `e2e`).

use std::path::Path;
use std::time::Duration;

use ims_e2e::chain::{
    addr, assert_all_passed, assert_contacts, edited_dev_configs, node_health, provision_digest,
    sipp_csv, tls_ue_answering, Ue, PCSCF_TLS,
};
use ims_e2e::nodes::Nodes;
use ims_e2e::sipp::Background;
use ims_e2e::{free_port, stunnel, wait_for};

/// A field of the P-CSCF's `/health`, as a number.
fn pcscf_health(data: &Path, field: &str) -> Option<u64> {
    node_health(data, "pcscf")?[field].as_u64()
}

/// Waits (at most 10 s) until the P-CSCF counts `n` registrations; asserts it does.
fn assert_pcscf_registrations(data: &Path, n: u64) {
    let seen = wait_for(Duration::from_secs(10), || {
        pcscf_health(data, "registered_contacts").filter(|c| *c == n)
    });
    assert_eq!(
        seen,
        Some(n),
        "P-CSCF registered_contacts: {:?}",
        pcscf_health(data, "registered_contacts")
    );
}

/// Carol's SIPp UE over TLS (TCP to stunnel at `entry`): registers, stays two minutes
/// and answers a call over her connection.
fn carol_over_tls(dir: &Path, entry: std::net::SocketAddr) -> Background {
    let csv = sipp_csv(
        dir,
        "carol-tls.csv",
        &["carol".into()],
        "secret",
        Some("alice"),
    );
    tls_ue_answering(dir, entry, &csv, 120_000)
}

#[test]
fn registrations_survive_pcscf_restarts() {
    // The registrar grants 3 s to dave's brief registration.
    let configs = edited_dev_configs("pcscf-restart", |node, text| match node {
        "scscf" => text.replace("min_expires = 60", "min_expires = 1"),
        _ => text,
    });
    let (dir, mut nodes) = Nodes::start_with("pcscf-restart", Some(configs));
    let data = nodes.data.clone();
    let names: Vec<String> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|n| n.to_string())
        .collect();
    provision_digest(&data, &dir, &names, "secret", None);

    let entry = addr(free_port());
    let _tunnel = stunnel::start(&dir, entry, addr(PCSCF_TLS), &data.join("tls/ca.crt")).unwrap();
    let carol = carol_over_tls(&dir, entry);
    assert_contacts(1);
    let alice = Ue::register(&dir, "alice", "bob");
    Ue::register_with(&dir, "dave", "alice", "session/register_brief.xml");
    let bob = Ue::register(&dir, "bob", "alice");

    // Killed as soon as bob's SIPp has his 200; dave's registration lapses meanwhile.
    nodes.kill_node("pcscf");
    std::thread::sleep(Duration::from_secs(4));
    nodes.start_node("pcscf");
    assert_eq!(
        pcscf_health(&data, "restored_registrations"),
        Some(2),
        "alice's and bob's (UDP); not carol's (TLS) nor dave's (lapsed)"
    );

    // Neither alice nor bob registers again.
    let callee = bob.serve(&dir, "session/uas_answer.xml", 1);
    assert_all_passed(&alice.run(&dir, "session/uac_call.xml"), 1);
    assert_all_passed(&callee.finish(), 1);

    // Carol's flow is gone: 430 at alice's side.
    let alice_to_carol = Ue {
        csv: sipp_csv(
            &dir,
            "alice-carol.csv",
            &["alice".into()],
            "secret",
            Some("carol"),
        ),
        ..alice.clone()
    };
    assert_all_passed(
        &alice_to_carol.run(&dir, "session/uac_call_flow_failed.xml"),
        1,
    );
    drop(carol);
    // She registers again over a new connection and is reached over it.
    let _carol = carol_over_tls(&dir, entry);
    assert_pcscf_registrations(&data, 3);
    assert_all_passed(
        &alice_to_carol.run(&dir, "session/uac_call_in_dialog.xml"),
        1,
    );

    // A graceful restart keeps them too.
    nodes.stop_node("pcscf");
    nodes.start_node("pcscf");
    assert_eq!(pcscf_health(&data, "restored_registrations"), Some(2));
    let callee = bob.serve(&dir, "session/uas_answer.xml", 1);
    assert_all_passed(&alice.run(&dir, "session/uac_call.xml"), 1);
    assert_all_passed(&callee.finish(), 1);
}
