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
