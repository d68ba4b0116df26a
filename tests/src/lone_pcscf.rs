//! The real `pcscf` binary alone, with raw UDP sockets of the test playing its UEs and
//! its I-CSCF (`[pcscf.home_networks]` names the test's socket, or a name its DNS
//! resolves). Shared by `tests/tests/pcscf_binary_hardening.rs`,
//! `tests/tests/shard_client_ports.rs` and `tests/tests/dns_edge.rs`.
//!
//! These are test steps: a step that cannot be done fails the test (panics).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use ims_sip::message::build::response_with;
use ims_sip::{HeaderName, SipMessage};

use crate::chain::addr;
use crate::{command, GroupGuard};

/// A UDP socket on 127.0.0.1 (a UE, the I-CSCF, the core) whose reads wait 5 s at most.
pub fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// The next SIP message `socket` reads and where it came from; `None` when its read
/// timeout passes first.
pub fn recv(socket: &UdpSocket) -> Option<(SipMessage, SocketAddr)> {
    let mut buf = vec![0u8; 65_535];
    let (n, from) = socket.recv_from(&mut buf).ok()?;
    Some((SipMessage::parse(buf[..n].to_vec()).unwrap(), from))
}

/// A REGISTER of `user` sent from `ue`, Call-ID `call` (also in the branch).
pub fn register(ue: &UdpSocket, user: &str, call: &str) -> String {
    let me = ue.local_addr().unwrap();
    format!(
        "REGISTER sip:ims.example.net SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@ims.example.net>;tag=ue\r\n\
         To: <sip:{user}@ims.example.net>\r\nCall-ID: {call}\r\nCSeq: 1 REGISTER\r\n\
         Contact: <sip:{user}@{me}>;expires=600000\r\nExpires: 600000\r\nContent-Length: 0\r\n\r\n"
    )
}

/// One registration relayed by the P-CSCF ([`relay_register`]).
pub struct Relayed {
    /// The REGISTER as the I-CSCF got it.
    pub request: SipMessage,
    /// The address it came from.
    pub from: SocketAddr,
    /// Whether the UE got the I-CSCF's 200.
    pub answered: bool,
}

/// One REGISTER of `user` from a new UE through the P-CSCF on `p_sip`, answered 200 by
/// the test's I-CSCF `icscf` (to the address the REGISTER came from) with the UE's
/// contact carrying `params` and the extra header `extra`; `None` if the REGISTER
/// never reached `icscf`.
pub fn relay_register(
    p_sip: u16,
    icscf: &UdpSocket,
    user: &str,
    params: &str,
    extra: Option<(HeaderName, &str)>,
) -> Option<Relayed> {
    let ue = socket();
    let call = format!("{user}-{}", ue.local_addr().unwrap().port());
    ue.send_to(register(&ue, user, &call).as_bytes(), addr(p_sip))
        .unwrap();
    let (request, from) = recv(icscf)?;
    let contact = format!("<sip:{user}@{}>{params}", ue.local_addr().unwrap());
    let mut headers = vec![(HeaderName::Contact, contact.as_str())];
    headers.extend(extra);
    let ok = response_with(&request, 200, "OK", None, &headers);
    icscf.send_to(&ok.to_bytes(), from).unwrap();
    let answered = recv(&ue).is_some_and(|(m, _)| m.status() == Some(200));
    Some(Relayed {
        request,
        from,
        answered,
    })
}

/// Where the P-CSCF listens and what else its config says.
pub struct PcscfConfig<'a> {
    /// Its UDP SIP listener's port (on 127.0.0.1).
    pub sip: u16,
    /// Its `[http]` port (on 127.0.0.1: `/health`, `/metrics`).
    pub http: u16,
    /// The host (`host` or `host:port`) of the home network's entry, the I-CSCF the
    /// P-CSCF sends registrations to (`127.0.0.1:<port>` of the test's socket).
    pub home: &'a str,
    /// More lines of its `[pcscf]` section (a `store =` line replaces the SQLite
    /// store under the test's directory).
    pub pcscf_extra: &'a str,
    /// More lines of its `[sip]` section (and sections after it, `[sip.dns]`).
    pub sip_extra: &'a str,
}

/// Writes `dir/pcscf.toml` from `config` and starts the P-CSCF with it, its output in
/// `dir/pcscf.log`; does not wait for it to be up.
pub fn start(dir: &Path, config: &PcscfConfig) -> GroupGuard {
    let PcscfConfig {
        sip,
        http,
        home,
        pcscf_extra,
        sip_extra,
    } = config;
    let cfg = dir.join("pcscf.toml");
    let store = if pcscf_extra.contains("store =") {
        String::new()
    } else {
        format!(
            "store = \"sqlite://{}/pcscf/registrations.db\"",
            dir.display()
        )
    };
    std::fs::write(
        &cfg,
        format!(
            "[node]\nname = \"pcscf\"\ndomain = \"ims.example.net\"\nlog = \"info\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\n\
             [cloud_auth]\nmode = \"off\"\n\
             [zones]\ncore = [\"127.0.0.1/32\"]\n\
             [pcscf]\n{pcscf_extra}\n{store}\n\
             [pcscf.home_networks]\n\"ims.example.net\" = \"sip:{home};lr\"\n\
             [sip]\nudp = [\"127.0.0.1:{sip}\"]\n{sip_extra}\n"
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
