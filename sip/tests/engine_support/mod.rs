//! Helpers shared by the proxy engine's integration tests over loopback UDP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use ims_sip::message::build::response;
use ims_sip::{Method, SipMessage};
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// The next SIP message `socket` receives, within 5 s.
pub async fn recv_udp(socket: &UdpSocket) -> SipMessage {
    recv_udp_from(socket).await.0
}

/// The next SIP message `socket` receives, within 5 s, and where it came from.
pub async fn recv_udp_from(socket: &UdpSocket) -> (SipMessage, SocketAddr) {
    let mut buf = vec![0u8; 65_535];
    let (n, from) = timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .expect("a message within 5 s")
        .unwrap();
    (SipMessage::parse(buf[..n].to_vec()).unwrap(), from)
}

/// Where a [`uas`] sends its answers from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerFrom {
    /// The port the request reached.
    ItsPort,
    /// A new socket per answer (another source port each time).
    NewPort,
}

/// A UAS answering every request but ACK with `code` (copying the §8.2.6.2 headers).
pub async fn uas(code: u16, from: AnswerFrom) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
            let Ok(req) = SipMessage::parse(buf[..n].to_vec()) else {
                continue;
            };
            if !req.is_request() || req.method() == Some(&Method::Ack) {
                continue;
            }
            let answer = response(&req, code).to_bytes();
            let _ = match from {
                AnswerFrom::ItsPort => socket.send_to(&answer, peer).await,
                AnswerFrom::NewPort => {
                    let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                    other.send_to(&answer, peer).await
                }
            };
        }
    });
    (addr, task)
}

/// Where a [`uas_to`] sends its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerTo {
    /// The top Via's sent-by (RFC 3261 §18.2.2, the request having no `received`).
    ViaSentBy,
    /// This address, whatever the Via says (a peer that ignores the Via's port).
    Fixed(SocketAddr),
}

/// A UAS on `socket` answering every request but ACK with `code` (an INVITE first
/// with 180), each answer from a new socket (another source port each time, so that
/// the kernel's hash may pick any of the proxy's sockets) to `to`. The returned list
/// gets the top Via's sent-by of each request.
pub fn uas_to(
    socket: UdpSocket,
    code: u16,
    to: AnswerTo,
) -> (
    tokio::task::JoinHandle<()>,
    std::sync::Arc<std::sync::Mutex<Vec<SocketAddr>>>,
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        while let Ok((n, _)) = socket.recv_from(&mut buf).await {
            let Ok(req) = SipMessage::parse(buf[..n].to_vec()) else {
                continue;
            };
            if !req.is_request() || req.method() == Some(&Method::Ack) {
                continue;
            }
            let top = req.headers.first_value(&ims_sip::HeaderName::Via).unwrap();
            let via =
                ims_sip::message::via::Via::parse(std::str::from_utf8(&top).unwrap()).unwrap();
            let sent_by = SocketAddr::new(via.host.parse().unwrap(), via.port.unwrap_or(5060));
            record.lock().unwrap().push(sent_by);
            let dest = match to {
                AnswerTo::ViaSentBy => sent_by,
                AnswerTo::Fixed(addr) => addr,
            };
            let mut answers = Vec::new();
            if req.method() == Some(&Method::Invite) {
                answers.push(response(&req, 180));
            }
            answers.push(response(&req, code));
            let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            for answer in answers {
                let _ = other.send_to(&answer.to_bytes(), dest).await;
            }
        }
    });
    (task, seen)
}

/// A request of `method` from the UDP address `via` (its Via's sent-by, with `rport`)
/// with `branch`, also its Call-ID.
pub fn udp_request(method: &str, via: SocketAddr, branch: &str) -> String {
    format!(
        "{method} sip:b@y SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch={branch};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: {branch}@x\r\n\
CSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The first final response `client` receives.
pub async fn final_code(client: &UdpSocket) -> u16 {
    loop {
        let code = recv_udp(client).await.status().unwrap();
        if code >= 200 {
            return code;
        }
    }
}

/// `n` clients, each from its own port, each sending one `method` to `proxy`: their
/// final codes.
pub async fn udp_clients(proxy: SocketAddr, method: &str, n: usize, tag: &str) -> Vec<u16> {
    let mut sockets = Vec::new();
    for i in 0..n {
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let via = client.local_addr().unwrap();
        let req = udp_request(method, via, &format!("z9hG4bK{tag}{i}"));
        client.send_to(req.as_bytes(), proxy).await.unwrap();
        sockets.push(client);
    }
    let mut codes = Vec::new();
    for client in &sockets {
        codes.push(final_code(client).await);
    }
    codes
}

/// Starts an engine with `policy` and `config` on one UDP listener of 127.0.0.1: the
/// engine and its listener's address.
pub async fn start_on_udp<P: ims_sip::proxy::engine::Policy>(
    policy: P,
    config: ims_sip::proxy::engine::EngineConfig,
) -> (ims_sip::proxy::engine::ProxyEngine, SocketAddr) {
    let transport = ims_sip::transport::TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        ..Default::default()
    };
    let engine = ims_sip::proxy::engine::ProxyEngine::start(transport, config, policy)
        .await
        .unwrap();
    let addr = engine.transport().local_addrs()[0].1;
    (engine, addr)
}
