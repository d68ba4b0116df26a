#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The P-CSCF's reg event subscriptions survive its restart (issue #16): the dialog of
//! each confirmed subscription is kept with the registration in `[pcscf] store`
//! (`pcscf/src/store.rs`, `pcscf/src/regsub.rs`). The dev core's real binaries started
//! one by one ([`ims_e2e::nodes::Nodes`]), the S-CSCF granting reg event subscriptions
//! 9 seconds (so they are refreshed every 6), SIPp UEs alice and bob registered over
//! UDP; once both subscription dialogs are in the P-CSCF's SQLite store, the P-CSCF is
//! killed (SIGKILL) and started again on the same data directory:
//!
//! * it restores both registrations and both dialogs (`/health`);
//! * it keeps refreshing the restored dialogs: the S-CSCF answers its SUBSCRIBEs 2xx
//!   (the CSeq stored grows past the restored one; a refused refresh would end it);
//! * the administrator de-registers alice (`imsctl deregister`, the HSS's RTR): the
//!   S-CSCF's NOTIFY in the old dialog is accepted (200, never 481, tshark) and the
//!   restarted P-CSCF drops her registration: her MESSAGE gets the 403 of an
//!   unregistered UE, bob stays registered.
//!
//! Without the stored dialogs the NOTIFY gets 481 and alice stays registered at the
//! P-CSCF until she registers again. The nodes listen on the fixed dev ports: this
//! test runs alone (nextest test group `e2e`).

use std::path::Path;
use std::time::Duration;

use ims_e2e::chain::{
    assert_all_passed, assert_pcscf, edited_dev_configs, impu, imsctl, notify_answers,
    pcscf_health, provision_digest, Capture, Ue,
};
use ims_e2e::nodes::Nodes;
use ims_e2e::{block_on, wait_for};
use sqlx::{Connection, Row};

/// The confirmed subscription dialogs in the P-CSCF's SQLite store: (resource,
/// Call-ID, CSeq), by resource.
fn stored_dialogs(data: &Path) -> Vec<(String, String, i64)> {
    let url = format!(
        "sqlite://{}?mode=ro",
        data.join("pcscf/registrations.db").display()
    );
    block_on(async move {
        let Ok(mut db) = sqlx::SqliteConnection::connect(&url).await else {
            return Vec::new();
        };
        let rows = sqlx::query(
            "SELECT resource, call_id, cseq FROM pcscf_reg_subscription \
             WHERE remote_tag <> '' ORDER BY resource",
        )
        .fetch_all(&mut db)
        .await
        .unwrap_or_default();
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    })
    .unwrap_or_default()
}

#[test]
fn a_restarted_pcscf_still_learns_of_network_deregistrations() {
    let configs = edited_dev_configs("pcscf-regsub-restart", |node, text| match node {
        "scscf" => {
            format!("{text}\n[regevent]\nmin_expires = 1\nmax_expires = 9\ndefault_expires = 9\n")
        }
        _ => text,
    });
    let (dir, mut nodes) = Nodes::start_with("pcscf-regsub-restart", Some(configs));
    let data = nodes.data.clone();
    let names: Vec<String> = ["alice", "bob"].map(String::from).to_vec();
    provision_digest(&data, &dir, &names, "secret", None);
    let capture = Capture::start(&dir.join("pcscf-regsub-restart.pcap"));

    let alice = Ue::register(&dir, "alice", "bob");
    let _bob = Ue::register(&dir, "bob", "alice");
    assert_pcscf(&data, "reg_event_subscriptions", 2);
    // Both dialogs confirmed and written: what the crash must not lose.
    let before = wait_for(Duration::from_secs(10), || {
        Some(stored_dialogs(&data)).filter(|d| d.len() == 2)
    })
    .unwrap_or_else(|| panic!("two stored dialogs: {:?}", stored_dialogs(&data)));
    assert_eq!(before[0].0, impu("alice"));

    nodes.kill_node("pcscf");
    nodes.start_node("pcscf");
    assert_eq!(pcscf_health(&data, "restored_registrations"), Some(2));
    assert_eq!(
        pcscf_health(&data, "restored_reg_event_subscriptions"),
        Some(2)
    );
    assert_pcscf(&data, "reg_event_subscriptions", 2);

    // The restarted P-CSCF refreshes the restored dialogs (granted 9 s, refreshed after
    // 6): the S-CSCF accepts them, and the stored CSeq goes past the restored one
    // (which the first refresh after the restart skips by one).
    let refreshed = wait_for(Duration::from_secs(20), || {
        let now = stored_dialogs(&data);
        let grown = now.len() == 2
            && now
                .iter()
                .zip(&before)
                .all(|(n, b)| n.1 == b.1 && n.2 >= b.2 + 2);
        grown.then_some(now)
    });
    assert!(
        refreshed.is_some(),
        "restored dialogs refreshed: before {before:?}, now {:?}",
        stored_dialogs(&data)
    );
    assert_pcscf(&data, "reg_event_subscriptions", 2);

    // The administrator de-registers alice: the S-CSCF's NOTIFY in the dialog made
    // before the restart reaches the restarted P-CSCF, which drops her registration.
    let out = imsctl(&data, &["deregister", &impu("alice")]);
    assert!(out.status.success(), "imsctl deregister: {out:?}");
    assert_pcscf(&data, "registered_contacts", 1);
    assert_pcscf(&data, "reg_event_subscriptions", 1);
    assert_all_passed(&alice.run(&dir, "pcscf/uac_unregistered_message.xml"), 1);

    // On the wire: the P-CSCF answered the S-CSCF's NOTIFYs in alice's old dialog with
    // 200, never 481.
    let pcap = capture.stop();
    let codes = notify_answers(&pcap, &format!("sip.Call-ID == \"{}\"", before[0].1));
    assert!(
        !codes.is_empty() && codes.iter().all(|c| c == "200"),
        "answers to the NOTIFYs in alice's dialog: {codes:?}"
    );
}
