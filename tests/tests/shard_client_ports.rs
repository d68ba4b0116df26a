#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Per-shard client ports (`sip/README.md`, "Shards") through the real `pcscf` binary,
//! with `[sip] workers = 2` and `shard_ports`, raw UDP sockets playing the UEs and the
//! I-CSCF (`sip/tests/proxy_shard_ports.rs` checks the same on the engine alone):
//! * registrations are relayed, each REGISTER leaving from one of the two configured
//!   shard ports, which its top Via names (the I-CSCF answers there and the UE gets
//!   its 200);
//! * a request sent straight to a shard port is dropped unanswered, never relayed,
//!   and counted in `/metrics` (`sip_shard_client_port_dropped`), while the listener
//!   goes on serving.

use std::net::UdpSocket;
use std::time::Duration;

use ims_e2e::chain::addr;
use ims_e2e::lone_pcscf::{self, recv, relay_register, socket, PcscfConfig};
use ims_e2e::metrics;
use ims_e2e::{free_port, free_udp_ports, health, http_get, scratch_dir, wait_for};
use ims_sip::message::via::Via;
use ims_sip::HeaderName;

/// The counter of requests dropped on a shard's client port, as `/metrics` exposes it.
const DROPPED: &str = "sip_shard_client_port_dropped_total";

/// An OPTIONS from `from` to the P-CSCF's domain, branch `z9hG4bK<id>`.
fn options(from: &UdpSocket, id: &str) -> String {
    let me = from.local_addr().unwrap();
    format!(
        "OPTIONS sip:ims.example.net SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{id};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:stranger@ims.example.net>;tag=s\r\n\
         To: <sip:ims.example.net>\r\nCall-ID: {id}\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

#[test]
fn shard_ports_carry_forwarded_requests_and_drop_requests_sent_to_them() {
    let dir = scratch_dir("shard-client-ports");
    let icscf = socket();
    let (p_sip, p_http) = (free_port(), free_port());
    let base = free_udp_ports(2);
    let shard_ports = [base, base + 1];
    let _pcscf = lone_pcscf::start(
        &dir,
        &PcscfConfig {
            sip: p_sip,
            http: p_http,
            home: &icscf.local_addr().unwrap().to_string(),
            pcscf_extra: "",
            sip_extra: &format!("workers = 2\nshard_ports = {base}"),
        },
    );
    let log = || std::fs::read_to_string(dir.join("pcscf.log")).unwrap_or_default();
    wait_for(Duration::from_secs(15), || health(addr(p_http)))
        .unwrap_or_else(|| panic!("pcscf /health: {}", log()));
    let dropped = || {
        http_get(addr(p_http), "/metrics")
            .and_then(|text| metrics::value(&text, DROPPED))
            .unwrap_or_else(|| panic!("{DROPPED} in /metrics"))
    };
    assert_eq!(dropped(), 0.0);

    // Registrations from several UEs (so both shards may take some): each REGISTER
    // leaves from a shard port, its top Via names that port, and the 200 sent back
    // there reaches the UE.
    for n in 0..4 {
        let user = format!("ue{n}");
        let relayed = relay_register(p_sip, &icscf, &user, ";expires=600", None)
            .unwrap_or_else(|| panic!("{user}'s REGISTER reaches the I-CSCF: {}", log()));
        assert!(
            shard_ports.contains(&relayed.from.port()),
            "{user}'s REGISTER leaves from a shard port {shard_ports:?}, not {}",
            relayed.from
        );
        let top = relayed
            .request
            .headers
            .first_value(&HeaderName::Via)
            .unwrap();
        let via = Via::parse(std::str::from_utf8(&top).unwrap()).unwrap();
        assert_eq!(
            (via.transport, via.host, via.port),
            ("UDP", "127.0.0.1", Some(relayed.from.port())),
            "the top Via names the shard port the REGISTER left from"
        );
        assert!(relayed.answered, "{user} gets the 200: {}", log());
    }

    // A request to each shard port: no answer, nothing relayed, each counted.
    let stranger = socket();
    stranger
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    for (i, port) in shard_ports.iter().enumerate() {
        stranger
            .send_to(
                options(&stranger, &format!("shard{i}")).as_bytes(),
                addr(*port),
            )
            .unwrap();
    }
    if let Some((answer, from)) = recv(&stranger) {
        panic!("a request to a shard port was answered from {from}: {answer:?}");
    }
    icscf
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(
        recv(&icscf).is_none(),
        "nothing sent to a shard port is relayed"
    );
    icscf
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let counted = wait_for(Duration::from_secs(5), || (dropped() == 2.0).then_some(()));
    assert!(
        counted.is_some(),
        "both requests counted in {DROPPED}: {}",
        dropped()
    );

    // The listener still serves: the same request sent there is answered (whatever the
    // P-CSCF makes of an unregistered UE's OPTIONS) from the listener, and a
    // registration afterwards works.
    stranger
        .send_to(options(&stranger, "listener").as_bytes(), addr(p_sip))
        .unwrap();
    let (answer, from) = recv(&stranger)
        .unwrap_or_else(|| panic!("the OPTIONS to the listener is answered: {}", log()));
    assert!(answer.status().is_some(), "a response: {answer:?}");
    assert_eq!(from, addr(p_sip), "answered from the listener");
    let relayed = relay_register(p_sip, &icscf, "after", ";expires=600", None)
        .unwrap_or_else(|| panic!("a later REGISTER reaches the I-CSCF: {}", log()));
    assert!(relayed.answered, "a later registration works: {}", log());
    assert_eq!(dropped(), 2.0, "nothing else dropped");
}
