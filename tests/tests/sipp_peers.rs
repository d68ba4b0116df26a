#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The SIPp scenarios used against our proxies work between SIPp peers alone, over UDP
//! and TCP, so a failure through a proxy is the proxy's.

use std::net::SocketAddr;
use std::time::Duration;

use ims_e2e::sipp::{self, SippTransport};
use ims_e2e::{free_port, scratch_dir, wait_exit};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn direct(uas_file: &str, uac_file: &str, transport: SippTransport) {
    assert!(
        sipp::available(),
        "sipp is not installed: run ./scripts/test"
    );
    let dir = scratch_dir(&format!("sipp-{uac_file}-{transport:?}"));
    let uas_addr = addr(free_port());
    let mut uas = sipp::start_uas(&sipp::scenario(uas_file), uas_addr, transport, 10, 20, &dir)
        .expect("uas starts");
    std::thread::sleep(Duration::from_millis(300));
    let r = sipp::run_uac(
        &sipp::scenario(uac_file),
        uas_addr,
        None,
        addr(free_port()),
        transport,
        10,
        20,
        20,
        &dir,
    )
    .expect("uac runs");
    let _ = wait_exit(&mut uas, Duration::from_secs(10));
    assert_eq!((r.successful, r.failed), (10, 0), "{r:?}");
    assert_eq!(r.exit_code, Some(0), "{r:?}");
}

#[test]
fn invite_scenarios_pass_peer_to_peer_over_udp() {
    direct(
        "proxy/uas_invite.xml",
        "proxy/uac_invite.xml",
        SippTransport::Udp,
    );
}

#[test]
fn invite_scenarios_pass_peer_to_peer_over_tcp() {
    direct(
        "proxy/uas_invite.xml",
        "proxy/uac_invite.xml",
        SippTransport::Tcp,
    );
}

#[test]
fn register_options_scenarios_pass_peer_to_peer_over_udp() {
    direct(
        "proxy/uas_register_options.xml",
        "proxy/uac_register_options.xml",
        SippTransport::Udp,
    );
}
