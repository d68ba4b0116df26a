#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The real `pcscf` binary, with raw UDP sockets playing the UEs, the I-CSCF and the
//! core:
//! * a registrar answering REGISTER with expiries no registrar should grant
//!   (`;expires=18446744073709551615`, `Expires: 99999999999999999999`): these once
//!   overflowed `Instant + Duration` in the engine's core task, which died while the
//!   process and `/health` lived on. Now each 200 is relayed, the registrations kept
//!   (capped at 2^32-1 s) and the next UE's registration served.
//! * the flow-token key file: a token in the core's Path from before a restart is still
//!   authentic after it (430 until the UE registers again, then delivered over its
//!   flow, with the same Path); a key file others may read stops the P-CSCF at start.

use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use ims_e2e::chain::addr;
use ims_e2e::lone_pcscf::{self, recv, register, relay_register, socket, PcscfConfig};
use ims_e2e::{free_port, health, scratch_dir, wait_for, GroupGuard};
use ims_sip::message::build::response_with;
use ims_sip::HeaderName;

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
    relay_register(p_sip, icscf, user, params, extra).is_some_and(|r| r.answered)
}

fn start_pcscf(dir: &Path, p_sip: u16, p_http: u16, i_sip: u16) -> GroupGuard {
    start_pcscf_with(dir, p_sip, p_http, i_sip, "")
}

/// The P-CSCF with `pcscf_extra` lines in its `[pcscf]` section.
fn start_pcscf_with(
    dir: &Path,
    p_sip: u16,
    p_http: u16,
    i_sip: u16,
    pcscf_extra: &str,
) -> GroupGuard {
    lone_pcscf::start(
        dir,
        &PcscfConfig {
            sip: p_sip,
            http: p_http,
            home: &format!("127.0.0.1:{i_sip}"),
            pcscf_extra,
            sip_extra: "",
        },
    )
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

/// Registers `ue` through the P-CSCF (the test's I-CSCF answers 200): the Path value
/// the P-CSCF added.
fn register_over(p_sip: u16, icscf: &UdpSocket, ue: &UdpSocket, call: &str) -> String {
    ue.send_to(register(ue, "bob", call).as_bytes(), addr(p_sip))
        .unwrap();
    let (req, from) = recv(icscf).expect("the REGISTER reaches the I-CSCF");
    let path = req
        .headers
        .get_str(&HeaderName::Path)
        .expect("a Path")
        .to_string();
    let contact = format!("<sip:bob@{}>;expires=600", ue.local_addr().unwrap());
    let ok = response_with(&req, 200, "OK", None, &[(HeaderName::Contact, &contact)]);
    icscf.send_to(&ok.to_bytes(), from).unwrap();
    let (answer, _) = recv(ue).expect("the 200 reaches the UE");
    assert_eq!(answer.status(), Some(200));
    path
}

/// A MESSAGE from the core to bob along `path`: the status the core gets, and whether
/// the UE received it.
fn core_message(p_sip: u16, core: &UdpSocket, ue: &UdpSocket, path: &str, n: u32) -> (u16, bool) {
    let me = core.local_addr().unwrap();
    let text = format!(
        "MESSAGE sip:bob@{} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKcore{n}\r\n\
         Route: {path}\r\nMax-Forwards: 70\r\nFrom: <sip:carol@ims.example.net>;tag=c\r\n\
         To: <sip:bob@ims.example.net>\r\nCall-ID: core{n}\r\nCSeq: 1 MESSAGE\r\n\
         Content-Length: 0\r\n\r\n",
        ue.local_addr().unwrap()
    );
    core.send_to(text.as_bytes(), addr(p_sip)).unwrap();
    ue.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let delivered = match recv(ue) {
        Some((m, from)) => {
            ue.send_to(&response_with(&m, 200, "OK", None, &[]).to_bytes(), from)
                .unwrap();
            true
        }
        None => false,
    };
    ue.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let status = loop {
        let (m, _) = recv(core).expect("an answer to the core");
        match m.status() {
            Some(s) if s >= 200 => break s,
            _ => continue,
        }
    };
    (status, delivered)
}

#[test]
fn flow_tokens_survive_a_restart_with_the_key_file() {
    let dir = scratch_dir("pcscf-flow-key");
    let key_file = dir.join("data/pcscf/flow_token.key");
    // Registrations in memory only, so that the restart forgets the UE and the token
    // alone is what is tested (with the store, the UE is reached at once:
    // tests/tests/pcscf_restart.rs).
    let extra = format!(
        "flow_token_key_file = \"{}\"\nstore = \"memory\"",
        key_file.display()
    );
    let (icscf, ue, core) = (socket(), socket(), socket());
    let i_sip = icscf.local_addr().unwrap().port();
    let (p_sip, p_http) = (free_port(), free_port());
    let up = |dir: &Path| {
        let node = start_pcscf_with(dir, p_sip, p_http, i_sip, &extra);
        wait_for(Duration::from_secs(15), || health(addr(p_http))).expect("pcscf /health");
        node
    };

    let first = up(&dir);
    let path = register_over(p_sip, &icscf, &ue, "flow-1");
    assert_eq!(core_message(p_sip, &core, &ue, &path, 1), (200, true));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the generated key file is private");
    drop(first);

    let _second = up(&dir);
    // The token is still ours: the flow is only not registered yet (430, RFC 5626
    // §5.3), where a new random key would have called it forged (403).
    assert_eq!(core_message(p_sip, &core, &ue, &path, 2), (430, false));
    // The UE registers again over the same flow: the same Path, and the core's request
    // along the old one reaches it.
    assert_eq!(register_over(p_sip, &icscf, &ue, "flow-2"), path);
    assert_eq!(core_message(p_sip, &core, &ue, &path, 3), (200, true));
}

#[test]
fn a_flow_token_key_file_others_can_read_stops_the_pcscf() {
    let dir = scratch_dir("pcscf-flow-key-open");
    let key_file = dir.join("flow_token.key");
    std::fs::write(&key_file, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let extra = format!("flow_token_key_file = \"{}\"", key_file.display());
    let mut node = start_pcscf_with(&dir, free_port(), free_port(), free_port(), &extra);
    let status = ims_e2e::wait_exit(&mut node.0, Duration::from_secs(15)).expect("pcscf exits");
    assert!(!status.success());
    let log = std::fs::read_to_string(dir.join("pcscf.log")).unwrap();
    assert!(
        log.contains("flow_token.key") && log.contains("0644"),
        "the error names the file and its mode: {log}"
    );
}
