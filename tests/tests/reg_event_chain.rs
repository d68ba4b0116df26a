//! The reg event package (RFC 3680, TS 24.229 §5.4.2.1) through the real binaries
//! (issue #16, items 1 and 4): SIPp UEs register through the P-CSCF, I-CSCF and S-CSCF
//! with the HSS, subscribe to the reg event and receive the S-CSCF's NOTIFYs, the full
//! state first and then one for each change: re-registration, an S-CSCF restart in
//! between, the HSS's RTR (`imsctl deregister`), de-registration of a contact, expiry,
//! unsubscription, an S-CSCF taken out of service; `imsctl registrations` lists the contacts and subscriptions. Every NOTIFY body is checked against RFC 3680's schema with
//! `xmllint`; another user's UE, a core node asserting a host that is not on the
//! user's Path and a sender outside the core are refused; tshark decodes the exchange
//! without a malformed packet.
//!
//! Uses the dev ports: run it alone (`cargo nextest run -p ims-e2e --test
//! reg_event_chain`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ims_e2e::chain::{
    addr, assert_all_passed, decode_cleanly, edited_dev_configs, impu, imsctl, provision_digest,
    workdir, Capture, Ue, DOMAIN,
};
use ims_e2e::free_port;
use ims_e2e::nodes::Nodes;
use ims_e2e::reginfo::{notifies, validate, Notify};
use ims_e2e::sipp::{self, Background, SippResult};

/// The S-CSCF's SIP port (dev config).
const SCSCF: u16 = 5080;

/// The NOTIFYs `r` received, each body valid against the reginfo schema.
fn checked(r: &SippResult) -> Vec<Notify> {
    let all = notifies(&r.messages);
    for n in &all {
        validate(&n.body).unwrap_or_else(|e| panic!("NOTIFY body not valid: {e}\n{}", n.text));
    }
    all
}

/// The one NOTIFY `r` received (valid).
fn one(r: &SippResult, what: &str) -> Notify {
    let all = checked(r);
    assert_eq!(
        all.len(),
        1,
        "{what}: {} NOTIFYs in\n{}",
        all.len(),
        r.messages
    );
    all.into_iter().next().unwrap()
}

/// Asserts `n` is in dialog `call_id` with `version`, and its body holds each of
/// `needles`.
fn assert_notify(n: &Notify, call_id: &str, version: u64, needles: &[&str]) {
    assert_eq!(n.header("Call-ID").as_deref(), Some(call_id), "{}", n.text);
    assert_eq!(n.version(), Some(version), "{}", n.text);
    for needle in needles {
        assert!(n.text.contains(needle), "{needle:?} not in\n{}", n.text);
    }
}

/// A CSV for `regevent/core_subscribe*.xml`: alice's registration, asserted `host`.
fn core_csv(dir: &Path, host: &str) -> PathBuf {
    let file = dir.join(format!("core-{host}.csv"));
    std::fs::write(&file, format!("SEQUENTIAL\nalice;{DOMAIN};{host}\n")).unwrap();
    file
}

/// Runs `scenario` once from `local` straight to the S-CSCF.
fn to_scscf(dir: &Path, scenario: &str, csv: &Path, local: SocketAddr) -> SippResult {
    sipp::run_uac_traced(
        &sipp::scenario(scenario),
        addr(SCSCF),
        csv,
        local,
        1,
        60,
        &workdir(dir),
    )
    .expect("sipp runs")
}

/// Waits on the UE's port for `calls` NOTIFYs (traced) while `trigger` runs.
fn notified_while(dir: &Path, ue: &Ue, calls: u32, trigger: impl FnOnce()) -> SippResult {
    let waiting = Background::uas(
        &sipp::scenario("regevent/notify.xml"),
        ue.local,
        calls,
        30,
        &workdir(dir),
        true,
    )
    .expect("SIPp subscriber waits");
    trigger();
    waiting.finish()
}

#[test]
fn reg_event_notifies_every_registration_change() {
    // Registrations as short as 5 s, for the expiry.
    let configs = edited_dev_configs("regevent", |node, text| match node {
        "scscf" => text.replace("min_expires = 60", "min_expires = 5"),
        _ => text,
    });
    let scscf_toml = configs.join("scscf.toml");
    let (dir, mut nodes) = Nodes::start_with("regevent", Some(configs));
    let data = nodes.data.clone();
    let names: Vec<String> = ["alice", "bob", "carol"].map(String::from).to_vec();
    provision_digest(&data, &dir, &names, "secret", None);
    let capture = Capture::start(&dir.join("regevent.pcap"));

    // Alice's UE subscribes to her registration: 200, then the full state (version 0).
    let alice = Ue::register_with(&dir, "alice", "alice;600", "regevent/register.xml");
    let r = alice.run_traced(&dir, "regevent/subscribe.xml");
    assert_all_passed(&r, 1);
    let full = one(&r, "the first NOTIFY");
    let dialog = full.header("Call-ID").unwrap();
    let aor = format!("aor=\"{}\"", impu("alice"));
    assert_notify(
        &full,
        &dialog,
        0,
        &[
            "Subscription-State: active;expires=",
            "Content-Type: application/reginfo+xml",
            "state=\"full\"",
            &aor,
            "state=\"active\" event=\"registered\"",
            "<unknown-param name=\"+sip.instance\">&lt;urn:gsma:imei:alice-",
        ],
    );

    // `imsctl registrations` shows the contact (expiry, Path) and the subscription,
    // from the S-CSCF's API with the admin token; a wrong token is refused.
    let out = imsctl(&data, &["registrations", &impu("alice")]);
    assert!(out.status.success(), "imsctl registrations: {out:?}");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let contact = &shown["registration"]["contacts"][0];
    assert!(
        contact["contact"]
            .as_str()
            .unwrap()
            .contains("urn:gsma:imei:alice-"),
        "{shown}"
    );
    assert!(contact["expires_in"].as_u64().unwrap() > 500, "{shown}");
    assert!(
        contact["path"][0]
            .as_str()
            .unwrap()
            .contains("@127.0.0.1:5060;lr"),
        "{shown}"
    );
    // The UE's own subscription (the P-CSCF's is there too, `pcscf_reg_event.rs`).
    let sub = shown["subscriptions"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["kind"] == "user"))
        .unwrap_or_else(|| panic!("no subscription of the user in {shown}"));
    assert_eq!(sub["subscriber"], impu("alice"), "{shown}");
    assert_eq!(sub["kind"], "user", "{shown}");
    let out = imsctl(
        &data,
        &["registrations", &impu("alice"), "--token", "wrong-token"],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("HTTP 401"),
        "{out:?}"
    );

    // A re-registration: the partial state, the contact refreshed (version 1).
    let r = alice.run_answering(&dir, "regevent/register.xml", "regevent/notify.xml", 2000);
    assert_all_passed(&r, 1);
    let n = one(&r, "the NOTIFY of the re-registration");
    assert_notify(
        &n,
        &dialog,
        1,
        &["state=\"partial\"", "event=\"refreshed\""],
    );

    // Another user's UE may not subscribe to alice's registration.
    let bob = Ue::register_with(&dir, "bob", "alice;600", "regevent/register.xml");
    assert_all_passed(&bob.run(&dir, "regevent/subscribe_refused.xml"), 1);

    // Her P-CSCF may (a core node asserting the host of her Path, 127.0.0.1: a fetch,
    // one NOTIFY); a core node asserting any other host may not, nor may a sender
    // outside the core asserting the P-CSCF's host.
    let r = to_scscf(
        &dir,
        "regevent/core_subscribe.xml",
        &core_csv(&dir, "127.0.0.1"),
        addr(free_port()),
    );
    assert_all_passed(&r, 1);
    assert!(one(&r, "the P-CSCF's fetch").body.contains(&aor));
    for (host, from) in [
        ("127.0.0.2", addr(free_port())),
        // A substring of the Path's host (Kamailio's ims_registrar_scscf takes it).
        ("127.0.0", addr(free_port())),
        ("pcscf.evil.example.net", addr(free_port())),
        ("127.0.0.1", SocketAddr::from(([127, 0, 0, 9], free_port()))),
    ] {
        let r = to_scscf(
            &dir,
            "regevent/core_subscribe_refused.xml",
            &core_csv(&dir, host),
            from,
        );
        assert_all_passed(&r, 1);
    }

    // The subscription survives an S-CSCF restart: the next NOTIFY reaches alice in the
    // same dialog. The re-registration's NOTIFY (version 1) was not written: a
    // restarted S-CSCF goes on NOTIFY_WRITE_LAG above the written version (1, the next
    // one after the SUBSCRIBE's) with the full state.
    nodes.kill_node("scscf");
    nodes.start_node("scscf");
    let r = alice.run_answering(&dir, "regevent/register.xml", "regevent/notify.xml", 2000);
    assert_all_passed(&r, 1);
    let n = one(&r, "the NOTIFY after the restart");
    let restarted = 1 + u64::from(scscf::regevent::NOTIFY_WRITE_LAG);
    assert_notify(
        &n,
        &dialog,
        restarted,
        &["state=\"full\"", "event=\"registered\""],
    );

    // The operator de-registers alice (the HSS's RTR, SERVER_CHANGE): her contacts are
    // deactivated (TS 24.229 §5.4.1.5) and the subscription ends.
    let r = notified_while(&dir, &alice, 1, || {
        let out = imsctl(&data, &["deregister", &impu("alice")]);
        assert!(out.status.success(), "imsctl deregister: {out:?}");
    });
    assert_all_passed(&r, 1);
    let n = one(&r, "the NOTIFY of the RTR");
    assert_notify(
        &n,
        &dialog,
        restarted + 1,
        &[
            "Subscription-State: terminated;reason=deactivated",
            "state=\"terminated\" event=\"deactivated\"",
            &aor,
        ],
    );

    // Alice's phone registers and subscribes again; her tablet registers, then
    // de-registers (REGISTER, Expires: 0): `unregistered` for its contact, told to the
    // phone. (The NOTIFY for a UE that de-registers its last contact does not pass its
    // own P-CSCF, which forgets the flow on the 200 and answers 430.)
    let alice = Ue::register_with(&dir, "alice", "alice;600", "regevent/register.xml");
    let tablet = Ue::register_with(&dir, "alice", "alice;600", "regevent/register.xml");
    let r = alice.run_traced(&dir, "regevent/subscribe.xml");
    assert_all_passed(&r, 1);
    let dialog = one(&r, "the first NOTIFY").header("Call-ID").unwrap();
    let r = notified_while(&dir, &alice, 1, || {
        assert_all_passed(&tablet.run(&dir, "regevent/deregister.xml"), 1);
    });
    assert_all_passed(&r, 1);
    let n = one(&r, "the NOTIFY of the de-registration");
    let gone = format!("urn:gsma:imei:alice-{}", tablet.local.port());
    assert_notify(
        &n,
        &dialog,
        1,
        &[
            "Subscription-State: active",
            "state=\"terminated\" event=\"unregistered\"",
            &gone,
        ],
    );

    // Carol's phone registers for 600 s and subscribes; her second device registers for
    // 5 s and lapses: `expired` for its contact, the registration stays active. (The
    // phone whose own registration lapses cannot be told: its P-CSCF forgets its flow at
    // the same moment, and answers 430.)
    let phone = Ue::register_with(&dir, "carol", "carol;600", "regevent/register.xml");
    let second = Ue::register_with(&dir, "carol", "carol;5", "regevent/register.xml");
    let r = phone.run_traced(&dir, "regevent/subscribe.xml");
    assert_all_passed(&r, 1);
    let full = one(&r, "carol's first NOTIFY");
    assert_eq!(full.body.matches("<contact ").count(), 2, "{}", full.text);
    let dialog = full.header("Call-ID").unwrap();
    let r = notified_while(&dir, &phone, 1, || {});
    assert_all_passed(&r, 1);
    let n = one(&r, "the NOTIFY of the expiry");
    let lapsed = format!("urn:gsma:imei:carol-{}", second.local.port());
    assert_notify(
        &n,
        &dialog,
        1,
        &[
            "Subscription-State: active",
            "state=\"partial\"",
            "<registration aor=\"sip:carol@ims.example.net\"",
            "state=\"active\">",
            "state=\"terminated\" event=\"expired\"",
            &lapsed,
        ],
    );
    assert_eq!(n.body.matches("<contact ").count(), 1, "{}", n.text);

    // Carol's phone unsubscribes (Expires: 0) from a new subscription: a last NOTIFY
    // with the full state ends it.
    let r = phone.run_traced(&dir, "regevent/subscribe_unsubscribe.xml");
    assert_all_passed(&r, 1);
    let all = checked(&r);
    assert_eq!(all.len(), 2, "{}", r.messages);
    assert!(all[1]
        .text
        .contains("Subscription-State: terminated;reason=timeout"));
    assert_eq!(all[1].version(), Some(1));

    // An S-CSCF taken out of service (`terminate_on_shutdown`) ends every subscription
    // when it stops: carol's phone subscribes again, and the S-CSCF's SIGTERM brings the
    // last NOTIFY.
    let text = std::fs::read_to_string(&scscf_toml).unwrap().replace(
        "\n[api]\n",
        "\n[regevent]\nterminate_on_shutdown = true\n\n[api]\n",
    );
    std::fs::write(&scscf_toml, text).unwrap();
    nodes.kill_node("scscf");
    nodes.start_node("scscf");
    let r = phone.run_traced(&dir, "regevent/subscribe.xml");
    assert_all_passed(&r, 1);
    let dialog = one(&r, "the first NOTIFY").header("Call-ID").unwrap();
    // The phone's first subscription (of the expiry, above) is still on: it ends too.
    let r = notified_while(&dir, &phone, 2, || {
        nodes.stop_node("scscf");
    });
    assert_all_passed(&r, 2);
    let all = checked(&r);
    assert_eq!(all.len(), 2, "{}", r.messages);
    assert!(all
        .iter()
        .all(|n| n.text.contains("terminated;reason=deactivated")));
    let n = all
        .iter()
        .find(|n| n.header("Call-ID").as_deref() == Some(dialog.as_str()))
        .unwrap_or_else(|| panic!("no NOTIFY in {dialog}: {}", r.messages));
    assert_notify(n, &dialog, 1, &["state=\"full\""]);

    // tshark decodes the SUBSCRIBE/NOTIFY exchange (and the rest) cleanly.
    let pcap = capture.stop();
    let text = decode_cleanly(&pcap);
    for needle in [
        "Request-Line: SUBSCRIBE sip:alice@",
        "Request-Line: NOTIFY sip:",
    ] {
        assert!(text.contains(needle), "{needle:?} not in the decode");
    }
}
