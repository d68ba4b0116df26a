#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The dev core that `imsctl up` starts is a real SIP chain: SIPp calls enter the P-CSCF
//! over UDP and over TLS (stunnel in front of SIPp, verified against the generated dev
//! CA), cross P-CSCF -> I-CSCF -> S-CSCF (each node's static next hop, record-routed) and
//! reach a SIPp UAS; every node counts the traffic on /metrics.

use std::net::SocketAddr;
use std::time::Duration;

use ims_e2e::sipp::{self, SippTransport};
use ims_e2e::stunnel::{self, Kill};
use ims_e2e::{free_port, http_get, scratch_dir, DevCore};

const CALLS: u32 = 20;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `sip_requests_in_total` from a node's /metrics.
fn requests_in(http: &str) -> u64 {
    let text = http_get(http.parse().unwrap(), "/metrics").expect("metrics answer");
    text.lines()
        .find_map(|l| l.strip_prefix("sip_requests_in_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sip_requests_in_total in:\n{text}"))
}

fn calls_through_pcscf(dir: &std::path::Path, entry: SocketAddr, transport: SippTransport) {
    let uas_addr = addr(free_port());
    let _uas = Kill(
        sipp::start_uas(
            &sipp::scenario("proxy/uas_invite.xml"),
            uas_addr,
            SippTransport::Udp,
            CALLS,
            30,
            dir,
        )
        .expect("uas starts"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let r = sipp::run_uac(
        &sipp::scenario("proxy/uac_invite.xml"),
        uas_addr,
        Some(entry),
        addr(free_port()),
        transport,
        CALLS,
        20,
        30,
        dir,
    )
    .expect("uac runs");
    assert_eq!((r.successful, r.failed), (u64::from(CALLS), 0), "{r:?}");
    assert_eq!(r.exit_code, Some(0), "{r:?}");
}

#[test]
fn calls_cross_the_dev_chain_over_udp_and_tls() {
    assert!(
        sipp::available(),
        "sipp is not installed: run ./scripts/test"
    );
    let dir = scratch_dir("dev-core-sip");
    let data = dir.join("data");
    let core = DevCore::start(&data).unwrap_or_else(|e| panic!("{e}"));
    let before: Vec<u64> = ["127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103"]
        .iter()
        .map(|h| requests_in(h))
        .collect();

    // UDP straight into the P-CSCF.
    calls_through_pcscf(&dir, addr(5060), SippTransport::Udp);

    // TLS into the P-CSCF's UE listener, verified against the generated dev CA.
    let tls_entry = addr(free_port());
    let _stunnel = stunnel::start(&dir, tls_entry, addr(5061), &data.join("tls/ca.crt")).unwrap();
    calls_through_pcscf(&dir, tls_entry, SippTransport::Tcp);

    // Each call is INVITE, ACK and BYE at every hop.
    for (i, h) in ["127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103"]
        .iter()
        .enumerate()
    {
        let seen = requests_in(h) - before[i];
        assert!(
            seen >= u64::from(3 * 2 * CALLS),
            "{h} saw {seen} requests, expected at least {}",
            3 * 2 * CALLS
        );
    }

    let exit = core.stop();
    assert!(
        exit.is_some_and(|s| s.success()),
        "imsctl up exits cleanly: {exit:?}"
    );
}
