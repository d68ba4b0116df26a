#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The real `pcscf` binary in front of a registrar that answers REGISTER with expiries
//! no registrar should grant (`;expires=18446744073709551615`, `Expires:
//! 99999999999999999999`): these once overflowed `Instant + Duration` in the engine's
//! core task, which died while the process and `/health` lived on, so nothing was
//! proxied any more. Now the P-CSCF relays each 200, keeps the registrations (capped at
//! 2^32-1 s) and serves the next UE's registration. The test plays the UEs and the
//! I-CSCF with raw UDP sockets.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use ims_e2e::{command, free_port, health, scratch_dir, wait_for, GroupGuard};
use ims_sip::message::build::response_with;
use ims_sip::{HeaderName, SipMessage};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn recv(socket: &UdpSocket) -> Option<(SipMessage, SocketAddr)> {
    let mut buf = vec![0u8; 65_535];
    let (n, from) = socket.recv_from(&mut buf).ok()?;
    Some((SipMessage::parse(buf[..n].to_vec()).unwrap(), from))
}

fn register(ue: &UdpSocket, user: &str, call: &str) -> String {
    let me = ue.local_addr().unwrap();
    format!(
        "REGISTER sip:ims.example.net SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@ims.example.net>;tag=ue\r\n\
         To: <sip:{user}@ims.example.net>\r\nCall-ID: {call}\r\nCSeq: 1 REGISTER\r\n\
         Contact: <sip:{user}@{me}>;expires=600000\r\nExpires: 600000\r\nContent-Length: 0\r\n\r\n"
    )
}

/// One REGISTER from a new UE through the P-CSCF, answered 200 by the test's I-CSCF
/// with the UE's contact carrying `params` and the extra header `extra`: whether the
/// UE got the 200.
fn registers(
    p_sip: u16,
    icscf: &UdpSocket,
    user: &str,
    params: &str,
    extra: Option<(HeaderName, &str)>,
) -> bool {
    let ue = socket();
    let call = format!("{user}-{}", ue.local_addr().unwrap().port());
    ue.send_to(register(&ue, user, &call).as_bytes(), addr(p_sip))
        .unwrap();
    let Some((req, from)) = recv(icscf) else {
        return false;
    };
    let contact = format!("<sip:{user}@{}>{params}", ue.local_addr().unwrap());
    let mut headers = vec![(HeaderName::Contact, contact.as_str())];
    headers.extend(extra);
    let ok = response_with(&req, 200, "OK", None, &headers);
    icscf.send_to(&ok.to_bytes(), from).unwrap();
    recv(&ue).is_some_and(|(m, _)| m.status() == Some(200))
}

fn start_pcscf(dir: &Path, p_sip: u16, p_http: u16, i_sip: u16) -> GroupGuard {
    let cfg = dir.join("pcscf.toml");
    std::fs::write(
        &cfg,
        format!(
            "[node]\nname = \"pcscf\"\ndomain = \"ims.example.net\"\nlog = \"info\"\n\
             [http]\nlisten = \"127.0.0.1:{p_http}\"\n\
             [cloud_auth]\nmode = \"off\"\n\
             [pcscf.home_networks]\n\"ims.example.net\" = \"sip:127.0.0.1:{i_sip};lr\"\n\
             [sip]\nudp = [\"127.0.0.1:{p_sip}\"]\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("pcscf.log")).unwrap();
    let child = command("pcscf")
        .arg("--config")
        .arg(&cfg)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("pcscf starts");
    GroupGuard(child)
}

#[test]
fn huge_expires_from_the_registrar_leaves_the_pcscf_serving() {
    let dir = scratch_dir("pcscf-hostile-registrar");
    let icscf = socket();
    let i_sip = icscf.local_addr().unwrap().port();
    let (p_sip, p_http) = (free_port(), free_port());
    let mut pcscf = start_pcscf(&dir, p_sip, p_http, i_sip);
    wait_for(Duration::from_secs(15), || health(addr(p_http))).expect("pcscf /health");

    let log = || std::fs::read_to_string(dir.join("pcscf.log")).unwrap_or_default();
    assert!(
        registers(
            p_sip,
            &icscf,
            "huge1",
            ";expires=18446744073709551615",
            None
        ),
        "the 200 with a 20-digit expires parameter reaches the UE: {}",
        log()
    );
    assert!(
        registers(
            p_sip,
            &icscf,
            "huge2",
            "",
            Some((HeaderName::Expires, "99999999999999999999"))
        ),
        "the 200 with a 20-digit Expires reaches the UE: {}",
        log()
    );
    // The P-CSCF still proxies: an ordinary registration afterwards.
    assert!(
        registers(p_sip, &icscf, "alice", ";expires=600", None),
        "a later registration works: {}",
        log()
    );
    assert!(pcscf.0.try_wait().unwrap().is_none(), "pcscf still runs");
    let contacts = wait_for(Duration::from_secs(5), || {
        health(addr(p_http))
            .and_then(|h| h["registered_contacts"].as_u64())
            .filter(|n| *n == 3)
    });
    assert_eq!(contacts, Some(3), "three registrations kept: {}", log());
}
