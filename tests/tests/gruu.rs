//! GRUUs (RFC 5627, TS 24.229 §5.4.7A) through the real binaries: two devices of alice
//! register through the P-CSCF, I-CSCF and S-CSCF with different `+sip.instance` and
//! `Supported: gruu`; each 200 OK gives every device's contact a `pub-gruu` and a
//! `temp-gruu`. Bob's MESSAGEs to device 1's public GRUU (through the I-CSCF, whose
//! LIR is on alice's AOR) and to its temporary GRUU (sent by the S-CSCF to itself, the
//! host of the GRUU) reach device 1 only, never device 2; a GRUU of an instance that is
//! not registered gets 480, a temporary GRUU the S-CSCF did not issue 404; the
//! temporary GRUU reveals neither alice nor the instance. Alice's reg event NOTIFY
//! carries `<gr:pub-gruu>` and `<gr:temp-gruu>` (RFC 5628), valid against the schema
//! with `xmllint`. After an S-CSCF restart the temporary GRUU still reaches device 1
//! (the key file and the bindings survive it).
//!
//! Uses the dev ports: run it alone (`cargo nextest run -p ims-e2e --test gruu`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ims_e2e::chain::{
    addr, assert_all_passed, impu, provision_digest, sipp_csv, workdir, Ue, DOMAIN, PCSCF,
};
use ims_e2e::free_port;
use ims_e2e::nodes::Nodes;
use ims_e2e::reginfo::{notifies, validate};
use ims_e2e::sipp::{self, Background, SippResult};

/// The GRUUs a 200 OK gave the contact of `instance`: (pub-gruu, temp-gruu).
fn gruus_in(messages: &str, instance: &str) -> (String, String) {
    let ok = messages
        .split("\n----------")
        .filter(|m| m.contains("message received") && m.contains("SIP/2.0 200 OK"))
        .filter(|m| m.contains("CSeq: 2 REGISTER"))
        .last()
        .unwrap_or_else(|| panic!("no 200 to the REGISTER in\n{messages}"));
    let contact = ok
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("contact:"))
        .find(|l| l.contains(instance))
        .unwrap_or_else(|| panic!("no Contact of {instance} in\n{ok}"));
    let param = |name: &str| {
        let at = contact
            .find(&format!("{name}=\""))
            .unwrap_or_else(|| panic!("no {name} in {contact}"));
        let rest = &contact[at + name.len() + 2..];
        rest[..rest.find('"').unwrap()].to_string()
    };
    (param("pub-gruu"), param("temp-gruu"))
}

/// A UE of `user` that registers (traced) with `Supported: gruu` from a free port;
/// returns it with its instance id and the messages of its registration.
fn register(dir: &Path, user: &str) -> (Ue, String, String) {
    let local = addr(free_port());
    let file = format!("ue-{user}-{}.csv", local.port());
    let csv = sipp_csv(dir, &file, &[user.to_string()], "secret", Some("alice;600"));
    let ue = Ue {
        user: user.to_string(),
        local,
        csv,
        entry: addr(PCSCF),
    };
    let r = ue.run_traced(dir, "gruu/register.xml");
    assert_all_passed(&r, 1);
    let instance = format!("urn:gsma:imei:{user}-{}", local.port());
    (ue, instance, r.messages)
}

/// `sipp-scenarios/gruu/message.xml` toward `target`, expecting `status`.
fn message_scenario(dir: &Path, target: &str, status: u16) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let text = std::fs::read_to_string(sipp::scenario("gruu/message.xml"))
        .unwrap()
        .replace("TARGET_URI", target)
        .replace("EXPECTED_STATUS", &status.to_string());
    let file = dir.join(format!("gruu-message-{n}.xml"));
    std::fs::write(&file, text).unwrap();
    file
}

/// Bob sends a MESSAGE to `target` and gets `status`.
fn send(dir: &Path, bob: &Ue, target: &str, status: u16) {
    let r = sipp::run_uac_traced(
        &message_scenario(dir, target, status),
        bob.entry,
        &bob.csv,
        bob.local,
        1,
        30,
        &workdir(dir),
    )
    .expect("sipp runs");
    assert_all_passed(&r, 1);
}

/// Bob sends a MESSAGE to each of `gruus` while `device` waits for them and `other`
/// (another device of the same user) waits for one it must not get: `device` gets
/// every one of them, `other` none.
fn reach_only(dir: &Path, bob: &Ue, gruus: &[&str], device: &Ue, other: &Ue) {
    let scenario = sipp::scenario("gruu/uas_message.xml");
    let calls = u32::try_from(gruus.len()).unwrap();
    let wanted = Background::uas(&scenario, device.local, calls, 20, &workdir(dir), true)
        .expect("the device waits");
    // The other device gives up after a few seconds: it should get nothing.
    let unwanted = Background::uas(&scenario, other.local, 1, 8, &workdir(dir), true)
        .expect("the other device waits");
    for gruu in gruus {
        send(dir, bob, gruu, 200);
    }
    let (wanted, unwanted) = (wanted.finish(), unwanted.finish());
    assert_all_passed(&wanted, gruus.len());
    assert_eq!(received(&wanted), gruus, "{}", wanted.messages);
    let stray = received(&unwanted);
    assert!(stray.is_empty(), "the other device got {stray:?}");
}

/// The GRUUs the MESSAGEs `r` received were sent to: their P-Called-Party-ID (the
/// Request-URI as the terminating S-CSCF got it, RFC 3455 §4.2; the Request-URI that
/// reaches the device is its contact).
fn received(r: &SippResult) -> Vec<String> {
    r.messages
        .split("\n----------")
        .filter(|m| m.contains("message received") && m.contains("\nMESSAGE "))
        .filter_map(|m| {
            let line = m
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("p-called-party-id:"))?;
            let value = line.split_once(':')?.1.trim();
            Some(
                value
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn gruus_reach_one_device_and_are_reported() {
    let (dir, mut nodes) = Nodes::start("gruu");
    let data = nodes.data.clone();
    let names: Vec<String> = ["alice", "bob"].map(String::from).to_vec();
    provision_digest(&data, &dir, &names, "secret", None);

    // Two devices of alice, each with its instance; both get GRUUs in the 200 OK (the
    // second's 200 lists both contacts, each with its own).
    let (device1, instance1, _) = register(&dir, "alice");
    let (device2, instance2, messages) = register(&dir, "alice");
    let (pub1, temp1) = gruus_in(&messages, &instance1);
    let (pub2, temp2) = gruus_in(&messages, &instance2);
    assert_eq!(pub1, format!("{};gr={instance1}", impu("alice")));
    assert_eq!(pub2, format!("{};gr={instance2}", impu("alice")));
    for temp in [&temp1, &temp2] {
        assert!(
            temp.starts_with("sip:tgruu.") && temp.ends_with(";gr"),
            "{temp}"
        );
        // RFC 5627 §3.2: nothing of the user or the device shows.
        for secret in ["alice", DOMAIN, "imei", &device1.local.port().to_string()] {
            assert!(!temp.contains(secret), "{temp} shows {secret}");
        }
    }
    assert_ne!(temp1, temp2);

    let bob = Ue::register(&dir, "bob", "alice");

    // To device 1's public GRUU, then its temporary GRUU: device 1 gets both, device 2
    // neither (without GRUUs both would be forked to).
    reach_only(&dir, &bob, &[&pub1, &temp1], &device1, &device2);

    // To device 2's temporary GRUU: device 2 only.
    reach_only(&dir, &bob, &[&temp2], &device2, &device1);

    // RFC 5627 §5.4: a public GRUU of an instance alice has not registered: 480; a
    // temporary GRUU the S-CSCF did not issue (or a forged one): 404.
    send(
        &dir,
        &bob,
        &format!(
            "{};gr=urn:uuid:00000000-0000-0000-0000-000000000000",
            impu("alice")
        ),
        480,
    );
    let token = temp1
        .trim_start_matches("sip:tgruu.")
        .split('@')
        .next()
        .unwrap();
    let mut forged = token.as_bytes().to_vec();
    forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
    let forged = temp1.replace(token, std::str::from_utf8(&forged).unwrap());
    send(&dir, &bob, &forged, 404);

    // Alice's reg event: each contact with its GRUUs (RFC 5628), valid against the
    // schema (which imports gruuinfo.xsd: the elements are checked, not skipped).
    let r = device1.run_traced(&dir, "regevent/subscribe.xml");
    assert_all_passed(&r, 1);
    let all = notifies(&r.messages);
    assert_eq!(all.len(), 1, "{}", r.messages);
    let body = &all[0].body;
    validate(body).unwrap_or_else(|e| panic!("NOTIFY body not valid: {e}\n{body}"));
    assert!(
        body.contains("xmlns:gr=\"urn:ietf:params:xml:ns:gruuinfo\""),
        "{body}"
    );
    for needle in [
        format!("<gr:pub-gruu uri=\"{pub1}\"/>"),
        format!("<gr:pub-gruu uri=\"{pub2}\"/>"),
        format!("<gr:temp-gruu uri=\"{temp1}\" first-cseq=\"2\"/>"),
    ] {
        assert!(body.contains(&needle), "{needle} not in\n{body}");
    }

    // The S-CSCF restarts: the bindings (store) and the GRUU key (file) survive it, so
    // device 1's temporary GRUU still reaches it.
    nodes.kill_node("scscf");
    nodes.start_node("scscf");
    reach_only(&dir, &bob, &[&temp1], &device1, &device2);
}
