#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The `sip-proxy` binary (the ims-sip proxy engine with default routing) between real
//! SIPp peers: calls and non-INVITE requests over UDP, TCP and TLS, CANCEL, timeouts,
//! refused connections and hostile input. Loopback only; every run is bounded in calls
//! and time, and child processes are killed on failure.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ims_e2e::sipp::{self, SippResult, SippTransport};
use ims_e2e::stunnel::{self, Kill};
use ims_e2e::{free_port, scratch_dir, wait_exit, wait_for, GroupGuard};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A running `sip-proxy`, its log file, and its listening port (UDP and TCP share it).
struct Proxy {
    _guard: GroupGuard,
    log: PathBuf,
    port: u16,
}

impl Proxy {
    fn start(dir: &Path, extra: &[String]) -> Proxy {
        let port = free_port();
        let log = dir.join(format!("proxy-{port}.log"));
        let mut c = Command::new(env!("CARGO_BIN_EXE_sip-proxy"));
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        c.arg("--udp")
            .arg(addr(port).to_string())
            .arg("--tcp")
            .arg(addr(port).to_string())
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let guard = GroupGuard(c.spawn().expect("sip-proxy starts"));
        let proxy = Proxy {
            _guard: guard,
            log,
            port,
        };
        let up = wait_for(Duration::from_secs(10), || {
            std::fs::read_to_string(&proxy.log)
                .ok()
                .filter(|l| l.matches("listening on").count() >= listeners(extra))
        });
        assert!(up.is_some(), "proxy did not start: {}", proxy.log_text());
        proxy
    }

    fn addr(&self) -> SocketAddr {
        addr(self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// How many listeners the proxy binds: UDP and TCP, plus each `--tls`.
fn listeners(extra: &[String]) -> usize {
    2 + extra.iter().filter(|a| *a == "--tls").count()
}

fn require_sipp() {
    assert!(
        sipp::available(),
        "sipp is not installed: run ./scripts/test"
    );
}

/// Runs `calls` calls of `uac_file` against a `uas_file` SIPp through `proxy`.
#[allow(clippy::too_many_arguments)]
fn through_proxy(
    dir: &Path,
    proxy_send_to: SocketAddr,
    uas_file: &str,
    uac_file: &str,
    uas_transport: SippTransport,
    uac_transport: SippTransport,
    uas_port: u16,
    calls: u32,
    rate: u32,
) -> SippResult {
    let uas_addr = addr(uas_port);
    let mut uas = Kill(
        sipp::start_uas(
            &sipp::scenario(uas_file),
            uas_addr,
            uas_transport,
            calls,
            40,
            dir,
        )
        .expect("uas starts"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let r = sipp::run_uac(
        &sipp::scenario(uac_file),
        uas_addr,
        Some(proxy_send_to),
        addr(free_port()),
        uac_transport,
        calls,
        rate,
        40,
        dir,
    )
    .expect("uac runs");
    let _ = wait_exit(&mut uas.0, Duration::from_secs(10));
    r
}

fn assert_all_ok(r: &SippResult, calls: u64, proxy: &Proxy) {
    assert_eq!(
        (r.successful, r.failed),
        (calls, 0),
        "{r:?}\nproxy log:\n{}",
        proxy.log_text()
    );
    assert_eq!(r.exit_code, Some(0), "{r:?}");
}

/// The UAS only speaks TCP: the Request-URI has no transport parameter, so the proxy
/// is told to reach it over TCP with a pre-loaded outbound Route.
fn tcp_outbound(uas_port: u16) -> Vec<String> {
    vec![
        "--outbound".into(),
        format!("<sip:127.0.0.1:{uas_port};transport=tcp;lr>"),
    ]
}

/// `calls` calls at `rate` per second of a UAC/UAS scenario pair through a fresh proxy,
/// both SIPp peers on `transport`; asserts every call succeeded.
fn sipp_case(name: &str, uas: &str, uac: &str, transport: SippTransport, calls: u32, rate: u32) {
    require_sipp();
    let dir = scratch_dir(name);
    let uas_port = free_port();
    let extra = match transport {
        SippTransport::Tcp => tcp_outbound(uas_port),
        SippTransport::Udp => Vec::new(),
    };
    let proxy = Proxy::start(&dir, &extra);
    let r = through_proxy(
        &dir,
        proxy.addr(),
        uas,
        uac,
        transport,
        transport,
        uas_port,
        calls,
        rate,
    );
    assert_all_ok(&r, u64::from(calls), &proxy);
}

const UAS_INVITE: &str = "proxy/uas_invite.xml";
const UAC_INVITE: &str = "proxy/uac_invite.xml";
const UAS_REGISTER: &str = "proxy/uas_register_options.xml";
const UAC_REGISTER: &str = "proxy/uac_register_options.xml";
const UAS_RING: &str = "proxy/uas_ring_no_answer.xml";
const UAC_CANCEL: &str = "proxy/uac_cancel.xml";

#[test]
fn invite_bye_over_udp_50_calls_at_50_cps() {
    sipp_case(
        "proxy-invite-udp",
        UAS_INVITE,
        UAC_INVITE,
        SippTransport::Udp,
        50,
        50,
    );
}

/// SIPp's `-t t1` UAC opens one connection and reads responses only from it, so
/// success proves responses return over the UAC's own connection.
#[test]
fn invite_bye_over_tcp_reuses_connections_50_calls_at_50_cps() {
    sipp_case(
        "proxy-invite-tcp",
        UAS_INVITE,
        UAC_INVITE,
        SippTransport::Tcp,
        50,
        50,
    );
}

#[test]
fn register_options_over_udp() {
    sipp_case(
        "proxy-register-udp",
        UAS_REGISTER,
        UAC_REGISTER,
        SippTransport::Udp,
        50,
        50,
    );
}

#[test]
fn register_options_over_tcp() {
    sipp_case(
        "proxy-register-tcp",
        UAS_REGISTER,
        UAC_REGISTER,
        SippTransport::Tcp,
        50,
        50,
    );
}

#[test]
fn cancel_while_ringing_gets_200_and_487_over_udp() {
    sipp_case(
        "proxy-cancel-udp",
        UAS_RING,
        UAC_CANCEL,
        SippTransport::Udp,
        20,
        20,
    );
}

#[test]
fn cancel_while_ringing_gets_200_and_487_over_tcp() {
    sipp_case(
        "proxy-cancel-tcp",
        UAS_RING,
        UAC_CANCEL,
        SippTransport::Tcp,
        20,
        20,
    );
}

/// A request from a raw client at `from` toward `target` (the Request-URI host:port).
fn raw_request(
    method: &str,
    from: SocketAddr,
    transport: &str,
    target: SocketAddr,
    n: u32,
) -> String {
    format!(
        "{method} sip:bob@{target} SIP/2.0\r\n\
Via: SIP/2.0/{transport} {from};branch=z9hG4bKraw{n}x{port};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@{from}>;tag=raw{n}\r\n\
To: <sip:bob@{target}>\r\n\
Call-ID: raw-{n}-{port}@test\r\n\
CSeq: 1 {method}\r\n\
Content-Length: 0\r\n\r\n",
        port = from.port()
    )
}

/// The status code of a response, if `bytes` is one.
fn status_of(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes).ok()?;
    let rest = text.strip_prefix("SIP/2.0 ")?;
    rest.get(..3)?.parse().ok()
}

/// Reads datagrams until a final response (or `limit` runs out); returns every status.
fn udp_statuses(socket: &UdpSocket, limit: Duration) -> Vec<u16> {
    let deadline = std::time::Instant::now() + limit;
    let mut codes = Vec::new();
    let mut buf = vec![0u8; 65_535];
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let Ok(n) = socket.recv(&mut buf) else { break };
        if let Some(code) = status_of(&buf[..n]) {
            codes.push(code);
            if code >= 200 {
                break;
            }
        }
    }
    codes
}

/// A minimal UDP UAS on a thread: answers every request but ACK with 200, copying the
/// §8.2.6.2 headers. Stops after `limit`.
fn udp_responder(limit: Duration) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + limit;
        let mut buf = vec![0u8; 65_535];
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            socket.set_read_timeout(Some(left)).unwrap();
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                break;
            };
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if text.starts_with("ACK ") || text.starts_with("SIP/") {
                continue;
            }
            let mut resp = String::from("SIP/2.0 200 OK\r\n");
            for line in text.lines() {
                let copied = ["Via:", "From:", "To:", "Call-ID:", "CSeq:"]
                    .iter()
                    .any(|h| line.starts_with(h));
                if copied {
                    resp.push_str(line);
                    resp.push_str("\r\n");
                }
            }
            resp.push_str("Content-Length: 0\r\n\r\n");
            let _ = socket.send_to(resp.as_bytes(), from);
        }
    });
    local
}

#[test]
fn unanswered_invite_gets_408_after_timer_b() {
    let dir = scratch_dir("proxy-408");
    // T1 = 10 ms: Timer B (64*T1) fires after 640 ms.
    let proxy = Proxy::start(&dir, &["--t1-ms".into(), "10".into()]);
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let req = raw_request(
        "INVITE",
        client.local_addr().unwrap(),
        "UDP",
        silent.local_addr().unwrap(),
        1,
    );
    client.send_to(req.as_bytes(), proxy.addr()).unwrap();
    let codes = udp_statuses(&client, Duration::from_secs(10));
    assert_eq!(codes.last(), Some(&408), "{codes:?}\n{}", proxy.log_text());
    // The INVITE did reach the next hop (and was retransmitted there over UDP).
    silent
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = silent.recv(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"INVITE sip:bob@"));
}

#[test]
fn refused_tcp_next_hop_gets_503() {
    let dir = scratch_dir("proxy-503");
    let closed = free_port();
    let proxy = Proxy::start(
        &dir,
        &[
            "--outbound".into(),
            format!("<sip:127.0.0.1:{closed};transport=tcp;lr>"),
        ],
    );
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let req = raw_request(
        "OPTIONS",
        client.local_addr().unwrap(),
        "UDP",
        addr(closed),
        2,
    );
    client.send_to(req.as_bytes(), proxy.addr()).unwrap();
    let codes = udp_statuses(&client, Duration::from_secs(10));
    assert_eq!(codes, vec![503], "{}", proxy.log_text());
}

/// Hostile payloads, each as sent over UDP or written on a fresh TCP connection.
fn hostile_inputs(
    from: SocketAddr,
    transport: &str,
    target: SocketAddr,
) -> Vec<(&'static str, Vec<u8>)> {
    let full = raw_request("INVITE", from, transport, target, 9);
    // Over UDP: a datagram shorter than its Content-Length (RFC 3261 §18.3). Over TCP
    // that would only wait for more bytes, so there the header section is cut short.
    let truncated = if transport == "UDP" {
        full.replace(
            "Content-Length: 0\r\n\r\n",
            "Content-Length: 200\r\n\r\nv=0\r\n",
        )
        .into_bytes()
    } else {
        let cut = full.find("Call-ID").unwrap();
        format!("{}\r\n", &full[..cut]).into_bytes()
    };
    let mut bomb = raw_request("OPTIONS", from, transport, target, 10)
        .replace("Content-Length: 0\r\n\r\n", "");
    for i in 0..2000 {
        bomb.push_str(&format!("X-Bomb-{i}: {}\r\n", "a".repeat(10)));
    }
    bomb.push_str("Content-Length: 0\r\n\r\n");
    // A deterministic byte soup (xorshift), no CRLF CRLF in practice.
    let mut x: u32 = 0x9e37_79b9;
    let garbage: Vec<u8> = (0..60_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x & 0xff) as u8
        })
        .collect();
    let mut cases = vec![
        ("truncated", truncated),
        ("header bomb", bomb.into_bytes()),
        ("binary garbage", garbage),
    ];
    if transport == "TCP" {
        let mut oversized = raw_request("OPTIONS", from, transport, target, 11)
            .replace("Content-Length: 0", "Content-Length: 1000000")
            .into_bytes();
        oversized.extend(std::iter::repeat_n(b'x', 100_000));
        cases.push(("oversized", oversized));
    }
    cases
}

/// What a hostile payload got back.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Response(u16),
    Closed,
    Nothing,
}

fn acceptable(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Response(400 | 513) | Outcome::Closed | Outcome::Nothing
    )
}

#[test]
fn hostile_udp_input_is_answered_or_dropped_and_the_proxy_keeps_serving() {
    let dir = scratch_dir("proxy-hostile-udp");
    let proxy = Proxy::start(&dir, &[]);
    let uas = udp_responder(Duration::from_secs(30));
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let from = client.local_addr().unwrap();
    let mut seen = Vec::new();
    for (name, bytes) in hostile_inputs(from, "UDP", uas) {
        client.send_to(&bytes, proxy.addr()).unwrap();
        let codes = udp_statuses(&client, Duration::from_millis(500));
        let outcome = codes
            .last()
            .map_or(Outcome::Nothing, |c| Outcome::Response(*c));
        assert!(acceptable(&outcome), "{name}: {outcome:?}");
        seen.push((name, outcome));
    }
    let outcomes: Vec<&Outcome> = seen.iter().map(|(_, o)| o).collect();
    assert_eq!(
        outcomes,
        [
            &Outcome::Response(400),
            &Outcome::Response(400),
            &Outcome::Nothing
        ],
        "truncated and header bomb are answered 400, garbage is dropped: {seen:?}"
    );
    let ok = raw_request("OPTIONS", from, "UDP", uas, 12);
    client.send_to(ok.as_bytes(), proxy.addr()).unwrap();
    let codes = udp_statuses(&client, Duration::from_secs(5));
    assert_eq!(codes, vec![200], "{seen:?}\n{}", proxy.log_text());
}

/// Writes `bytes` on a new connection and reports what came back within 3 s.
fn tcp_outcome(proxy: SocketAddr, bytes: &[u8]) -> Outcome {
    let mut s = TcpStream::connect_timeout(&proxy, Duration::from_secs(2)).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    if s.write_all(bytes).is_err() {
        return Outcome::Closed;
    }
    let mut buf = vec![0u8; 65_535];
    match s.read(&mut buf) {
        Ok(0) => Outcome::Closed,
        Ok(n) => status_of(&buf[..n]).map_or(Outcome::Nothing, Outcome::Response),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Outcome::Closed,
        Err(_) => Outcome::Nothing,
    }
}

#[test]
fn hostile_tcp_input_is_answered_or_closed_and_the_proxy_keeps_serving() {
    let dir = scratch_dir("proxy-hostile-tcp");
    let proxy = Proxy::start(&dir, &[]);
    let uas = udp_responder(Duration::from_secs(30));
    let from = addr(free_port());
    let mut seen = Vec::new();
    for (name, bytes) in hostile_inputs(from, "TCP", uas) {
        let outcome = tcp_outcome(proxy.addr(), &bytes);
        assert!(acceptable(&outcome), "{name}: {outcome:?}");
        seen.push((name, outcome));
    }
    // A stream that carried an unparsable message or lost its framing is closed.
    assert!(seen.iter().all(|(_, o)| *o == Outcome::Closed), "{seen:?}");
    // A well-formed OPTIONS over a new TCP connection is still proxied (to the UDP UAS).
    let mut s = TcpStream::connect_timeout(&proxy.addr(), Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = s.local_addr().unwrap();
    s.write_all(raw_request("OPTIONS", local, "TCP", uas, 13).as_bytes())
        .unwrap();
    let mut buf = vec![0u8; 65_535];
    let n = s.read(&mut buf).unwrap();
    assert_eq!(
        status_of(&buf[..n]),
        Some(200),
        "{seen:?}\n{}",
        proxy.log_text()
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it, as PEM files in `dir`:
/// (CA, certificate chain, key).
fn make_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct subject names: OpenSSL takes a leaf whose issuer equals its own subject
    // for self-signed.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ims-e2e test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "sip-proxy test server");
    let cert = params.signed_by(&key, &issuer).unwrap();
    let files = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&files.0, ca_cert.pem()).unwrap();
    std::fs::write(&files.1, cert.pem()).unwrap();
    std::fs::write(&files.2, key.serialize_pem()).unwrap();
    files
}

#[test]
fn invite_bye_over_tls_via_stunnel_to_a_udp_uas() {
    require_sipp();
    let dir = scratch_dir("proxy-invite-tls");
    let (ca, cert, key) = make_pki(&dir);
    let tls = addr(free_port());
    let proxy = Proxy::start(
        &dir,
        &[
            "--tls".into(),
            tls.to_string(),
            "--tls-cert".into(),
            cert.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
        ],
    );
    let stunnel_addr = addr(free_port());
    let _stunnel = stunnel::start(&dir, stunnel_addr, tls, &ca).unwrap();
    // UAC (TCP) -> stunnel -> proxy (TLS) -> UAS (UDP); the proxy double record-routes
    // (RFC 5658), so the BYE comes back in over TLS and leaves over UDP.
    let r = through_proxy(
        &dir,
        stunnel_addr,
        UAS_INVITE,
        UAC_INVITE,
        SippTransport::Udp,
        SippTransport::Tcp,
        free_port(),
        20,
        20,
    );
    assert_all_ok(&r, 20, &proxy);
}
