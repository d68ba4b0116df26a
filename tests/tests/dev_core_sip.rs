#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The dev core that `imsctl up` starts serves UEs over UDP and over TLS (stunnel in
//! front of SIPp, verified against the generated dev CA): a UE that has not registered
//! is refused by the P-CSCF with 403 (TS 24.229 §5.2.6.3), and nothing it sends goes
//! further into the core; every node counts the traffic on /metrics. Registration
//! across the whole chain needs the S-CSCF registrar and the HSS's Cx: its test comes
//! with them.

use std::net::SocketAddr;

use ims_e2e::sipp::{self, SippTransport};
use ims_e2e::stunnel;
use ims_e2e::{free_port, http_get, scratch_dir, DevCore};

const CALLS: u32 = 20;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `sip_requests_in_total` (every method) from a node's /metrics.
fn requests_in(http: &str) -> u64 {
    let text = http_get(http.parse().unwrap(), "/metrics").expect("metrics answer");
    assert!(
        text.contains("sip_requests_in_total{"),
        "no sip_requests_in_total in:\n{text}"
    );
    ims_e2e::metrics::sum(&text, "sip_requests_in_total") as u64
}

fn unregistered_messages_refused(
    dir: &std::path::Path,
    entry: SocketAddr,
    transport: SippTransport,
) {
    let r = sipp::run_uac(
        &sipp::scenario("pcscf/uac_unregistered_message.xml"),
        entry,
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
fn unregistered_ues_are_refused_over_udp_and_tls() {
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
    unregistered_messages_refused(&dir, addr(5060), SippTransport::Udp);

    // TLS into the P-CSCF's UE listener, verified against the generated dev CA.
    let tls_entry = addr(free_port());
    let _stunnel = stunnel::start(&dir, tls_entry, addr(5061), &data.join("tls/ca.crt")).unwrap();
    unregistered_messages_refused(&dir, tls_entry, SippTransport::Tcp);

    // The P-CSCF answered every MESSAGE itself: nothing reached the I-CSCF or S-CSCF.
    let seen: Vec<u64> = ["127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103"]
        .iter()
        .enumerate()
        .map(|(i, h)| requests_in(h) - before[i])
        .collect();
    assert!(seen[0] >= u64::from(2 * CALLS), "P-CSCF saw {seen:?}");
    assert_eq!(
        &seen[1..],
        &[0, 0],
        "requests went past the P-CSCF: {seen:?}"
    );

    let exit = core.stop();
    assert!(
        exit.is_some_and(|s| s.success()),
        "imsctl up exits cleanly: {exit:?}"
    );
}
