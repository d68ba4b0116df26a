//! The P-CSCF's reg event subscriptions (TS 24.229 §5.2.3, issue #16 item 2) through
//! the dev core's real binaries and SIPp UEs: after a UE's first registration the
//! P-CSCF subscribes to its reg event along the Service-Route and the S-CSCF
//! authorizes it as the P-CSCF on the user's Path; an administrative de-registration
//! (`imsctl deregister`, the HSS's RTR) makes the S-CSCF NOTIFY, and the P-CSCF drops
//! the UE's registration (`/health` counts it, and the UE's MESSAGE gets the 403 of an
//! unregistered UE); at a UE's own de-registration the subscription ends (the S-CSCF's
//! `terminated` NOTIFY, or the P-CSCF's `Expires: 0` when the 200 came first: tshark
//! sees one of them); a NOTIFY from a UE's flow is refused (403), one
//! from the core outside our dialogs gets 481.
//!
//! Uses the dev ports: run it alone (`cargo nextest run -p ims-e2e --test
//! pcscf_reg_event`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use ims_e2e::chain::{
    addr, assert_all_passed, assert_pcscf, assert_pcscf_subscribed, decode, impu, imsctl,
    provision_digest, Capture, Ue, PCSCF,
};
use ims_e2e::nodes::Nodes;

/// Sends a reg event NOTIFY to the P-CSCF's subscription Contact from `from`, in a
/// dialog the P-CSCF never made; returns the status line of the answer.
fn forged_notify(from: SocketAddr) -> String {
    let socket = UdpSocket::bind(from).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let body = format!(
        "<?xml version=\"1.0\"?>\n<reginfo xmlns=\"urn:ietf:params:xml:ns:reginfo\" \
         version=\"1\" state=\"partial\"><registration aor=\"{}\" id=\"a\" \
         state=\"terminated\"/></reginfo>",
        impu("bob")
    );
    let notify = format!(
        "NOTIFY sip:reg-event@127.0.0.1:{PCSCF} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bKforged{}\r\n\
         From: <{}>;tag=forger\r\nTo: <sip:127.0.0.1>;tag=guess\r\n\
         Call-ID: forged-{}\r\nCSeq: 1 NOTIFY\r\nMax-Forwards: 70\r\n\
         Event: reg\r\nSubscription-State: active;expires=600\r\n\
         Content-Type: application/reginfo+xml\r\nContent-Length: {}\r\n\r\n{body}",
        from.port(),
        impu("bob"),
        from.port(),
        body.len()
    );
    socket.send_to(notify.as_bytes(), addr(PCSCF)).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = socket.recv_from(&mut buf).expect("an answer to the NOTIFY");
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.lines().next().unwrap_or_default().to_string()
}

#[test]
fn pcscf_subscribes_and_drops_what_the_core_ended() {
    let (dir, nodes) = Nodes::start("pcscf-regevent");
    let data = nodes.data.clone();
    let names: Vec<String> = ["alice", "bob"].map(String::from).to_vec();
    provision_digest(&data, &dir, &names, "secret", None);
    let capture = Capture::start(&dir.join("pcscf-regevent.pcap"));

    // Each registration is subscribed to, and the S-CSCF took the P-CSCF's SUBSCRIBE.
    let alice = Ue::register(&dir, "alice", "bob");
    let bob = Ue::register_with(&dir, "bob", "alice;600", "regevent/register.xml");
    assert_pcscf(&data, "reg_event_subscriptions", 2);
    assert_pcscf_subscribed(&data, "alice");

    // A NOTIFY from a UE's registered flow is refused; from the core, outside the
    // P-CSCF's dialogs, it names no subscription. Bob stays registered.
    assert!(forged_notify(bob.local).contains(" 403 "));
    assert!(forged_notify(addr(ims_e2e::free_port())).contains(" 481 "));
    assert_pcscf(&data, "registered_contacts", 2);

    // The administrator de-registers alice (RTR): the S-CSCF's NOTIFY makes the P-CSCF
    // drop her registration; her MESSAGE is that of an unregistered UE.
    let out = imsctl(&data, &["deregister", &impu("alice")]);
    assert!(out.status.success(), "imsctl deregister: {out:?}");
    assert_pcscf(&data, "registered_contacts", 1);
    assert_pcscf(&data, "reg_event_subscriptions", 1);
    assert_all_passed(&alice.run(&dir, "pcscf/uac_unregistered_message.xml"), 1);

    // Bob de-registers: his subscription ends (the S-CSCF's NOTIFY `terminated`
    // usually comes first; else the P-CSCF unsubscribes with `Expires: 0`).
    assert_all_passed(&bob.run(&dir, "regevent/deregister.xml"), 1);
    assert_pcscf(&data, "reg_event_subscriptions", 0);
    assert_pcscf(&data, "registered_contacts", 0);
    let pcap = capture.stop();
    let subscribes = decode(
        &pcap,
        &[
            "-Y",
            "sip.Method == \"SUBSCRIBE\" && udp.srcport == 5060",
            "-T",
            "fields",
            "-e",
            "sip.Expires",
        ],
    );
    let expires: Vec<&str> = subscribes.lines().map(str::trim).collect();
    // Alice's and bob's SUBSCRIBE, and bob's unsubscription when his 200 came first.
    assert_eq!(
        expires.iter().filter(|e| **e == "600000").count(),
        2,
        "{subscribes}"
    );
    assert!(
        expires.iter().all(|e| ["600000", "0"].contains(e)),
        "{subscribes}"
    );
    let states = decode(
        &pcap,
        &[
            "-Y",
            "sip.Method == \"NOTIFY\" && udp.dstport == 5060 && udp.srcport == 5080",
            "-T",
            "fields",
            "-e",
            "sip.Subscription-State",
        ],
    );
    let ended = states
        .lines()
        .filter(|l| l.starts_with("terminated"))
        .count();
    assert!(
        ended + expires.iter().filter(|e| **e == "0").count() >= 2,
        "alice's and bob's subscriptions ended: {states}"
    );
}
