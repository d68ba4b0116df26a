#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The real `pcscf` binary reaching its home network's I-CSCFs by DNS SRV (RFC 3263):
//! `[pcscf.home_networks]` names the domain (`sip:icscf.dns.test;lr`, no port), a real
//! DNS server (dnsmasq, `[sip.dns] servers`) answers `_sip._udp.icscf.dns.test` with two
//! I-CSCFs of equal priority and weight (two SIPp registrars), and a SIPp UE registers
//! through the P-CSCF again and again: the registrations are shared between both; then
//! one I-CSCF is killed and every further registration still succeeds, through the
//! other (the P-CSCF gives a silent I-CSCF up after `failover_after_ms`, RFC 3263 §4.3,
//! and then tries it last for a while).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ims_e2e::dnsmasq::{self, Record};
use ims_e2e::lone_pcscf::{self, PcscfConfig};
use ims_e2e::{free_port, health, scratch_dir, signal, wait_exit, wait_for, GroupGuard};
use ims_e2e::{http_get, metrics, sipp};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// SIPp over UDP on `local` for `sipp-scenarios/pcscf/<scenario>`, `calls` calls one at
/// a time, bounded to 60 s.
fn sipp_cmd(scenario: &str, local: SocketAddr, dir: &Path, calls: usize) -> Command {
    let mut c = Command::new("sipp");
    c.current_dir(dir)
        .arg("-sf")
        .arg(sipp::scenario(&format!("pcscf/{scenario}")))
        .args(["-i", "127.0.0.1", "-p", &local.port().to_string()])
        .args(["-t", "u1", "-m", &calls.to_string(), "-l", "1"])
        .args(["-timeout", "60s", "-timeout_error"])
        .args(["-nd", "-trace_err", "-trace_logs"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn errors(dir: &Path) -> String {
    sipp::read_logs(dir, "_errors.log")
}

/// A SIPp registrar (the I-CSCF of the test) on `port`, for up to 1 000 REGISTERs, in a
/// working directory of its own so its log is its own.
fn registrar(dir: &Path, port: u16) -> GroupGuard {
    let own = dir.join(format!("registrar-{port}"));
    std::fs::create_dir_all(&own).unwrap();
    let mut c = sipp_cmd("scscf_registrar.xml", addr(port), &own, 1000);
    c.args(["-key", "sr_port", "9"]);
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    GroupGuard(c.spawn().unwrap())
}

/// Stops a registrar (SIGINT: SIPp writes its logs out and exits), bounded.
fn stop(mut registrar: GroupGuard) {
    signal(&registrar.0, "INT");
    wait_exit(&mut registrar.0, Duration::from_secs(10));
}

/// REGISTERs the registrar on `port` logged (in its own directory; SIPp writes its log
/// out when it exits).
fn logged(dir: &Path, port: u16) -> usize {
    let own = dir.join(format!("registrar-{port}"));
    sipp::read_logs(&own, "_logs.log").matches("PATH <").count()
}

/// The P-CSCF's count of requests sent on to a next hop's next server.
fn failovers(http: u16) -> f64 {
    let text = http_get(addr(http), "/metrics").expect("/metrics answers");
    metrics::value(&text, "sip_next_hop_failovers_total").unwrap_or(0.0)
}

/// Runs `n` UE registrations through the P-CSCF; true when all succeeded.
fn register(dir: &Path, ue: u16, pcscf: u16, n: usize) -> bool {
    let mut c = sipp_cmd("ue_register.xml", addr(ue), dir, n);
    c.arg(addr(pcscf).to_string());
    let mut child = c.spawn().expect("sipp starts");
    wait_exit(&mut child, Duration::from_secs(90)).is_some_and(|s| s.success())
}

#[test]
fn pcscf_shares_registrations_between_srv_icscfs_and_survives_one_dying() {
    assert!(
        sipp::available(),
        "sipp is not installed: run ./scripts/test"
    );
    assert!(
        dnsmasq::available(),
        "dnsmasq is not installed: run ./scripts/test"
    );
    let dir = scratch_dir("dns-edge");
    let [p_sip, p_http, i1, i2, ue] = [(); 5].map(|()| free_port());
    let icscf = |target: &str, port| Record::Srv {
        name: "_sip._udp.icscf.dns.test".into(),
        target: target.into(),
        port,
        priority: 10,
        weight: 1,
    };
    let loopback = |name: &str| Record::A {
        name: name.into(),
        ip: std::net::Ipv4Addr::LOCALHOST,
    };
    let dns = dnsmasq::start(
        &dir,
        &[
            icscf("i1.dns.test", i1),
            icscf("i2.dns.test", i2),
            loopback("i1.dns.test"),
            loopback("i2.dns.test"),
        ],
    )
    .expect("dnsmasq starts");
    let _pcscf = lone_pcscf::start(
        &dir,
        &PcscfConfig {
            sip: p_sip,
            http: p_http,
            home: "icscf.dns.test",
            pcscf_extra: "visited_network_id = \"visited.example.net\"",
            sip_extra: &format!(
                "[sip.dns]\nservers = [\"{}\"]\nfailover_after_ms = 1000",
                dns.addr
            ),
        },
    );
    wait_for(Duration::from_secs(15), || health(addr(p_http))).expect("the P-CSCF answers /health");
    let first = registrar(&dir, i1);
    let second = registrar(&dir, i2);
    std::thread::sleep(Duration::from_millis(300));

    // Equal weights: each of 20 registrations goes to either I-CSCF with probability
    // 1/2; both see some unless 20 fair coins all fell the same way (2 in 2^20).
    assert!(
        register(&dir, ue, p_sip, 20),
        "registrations: {}",
        errors(&dir)
    );
    assert_eq!(failovers(p_http), 0.0, "both alive: no failover");
    // One I-CSCF dies (its port closes: the P-CSCF's requests to it meet silence).
    stop(first);
    let one = logged(&dir, i1);
    // Registrations go on, one at a time, until one has met the dead I-CSCF (each
    // does with probability 1/2 until then: 40 that all missed it have a chance of
    // 2^-40); every one succeeds, through the other.
    let mut after = 0;
    while failovers(p_http) < 1.0 && after < 40 {
        assert!(
            register(&dir, ue, p_sip, 1),
            "after a failure: {}",
            errors(&dir)
        );
        after += 1;
    }
    assert_eq!(failovers(p_http), 1.0, "the dead I-CSCF was met once");
    // Then it is tried last for a while: ten more go straight to the survivor.
    assert!(
        register(&dir, ue, p_sip, 10),
        "after a failure: {}",
        errors(&dir)
    );
    assert_eq!(failovers(p_http), 1.0, "no more waits for the dead one");
    after += 10;
    stop(second);
    let two = logged(&dir, i2);
    assert_eq!(
        one + two,
        20 + after,
        "each registration reached one I-CSCF"
    );
    let two_before = 20 - one;
    assert!(one > 0 && two_before > 0, "shared: {one} and {two_before}");
}
