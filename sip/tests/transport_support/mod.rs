//! Helpers shared by the transport integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use ims_sip::transport::{Incoming, TransportConfig, TransportEvent, TransportLayer};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc::Receiver;

/// Bound on every wait in the tests.
pub const WAIT: Duration = Duration::from_secs(5);

/// A request with a body and a matching Content-Length.
pub fn request(transport: &str, call_id: &str, body: &str) -> Vec<u8> {
    format!(
        "MESSAGE sip:ue@example.com SIP/2.0\r\n\
         Via: SIP/2.0/{transport} client.example.com;branch=z9hG4bK-{call_id}\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:ue@example.com>\r\n\
         From: <sip:peer@example.com>;tag=t1\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A 200 response to [`request`].
pub fn response(transport: &str, call_id: &str) -> Vec<u8> {
    format!(
        "SIP/2.0 200 OK\r\n\
         Via: SIP/2.0/{transport} client.example.com;branch=z9hG4bK-{call_id}\r\n\
         To: <sip:ue@example.com>;tag=t2\r\n\
         From: <sip:peer@example.com>;tag=t1\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// A config with one listener per given address.
pub fn config(udp: &[SocketAddr], tcp: &[SocketAddr]) -> TransportConfig {
    TransportConfig {
        udp: udp.to_vec(),
        tcp: tcp.to_vec(),
        ..TransportConfig::default()
    }
}

/// 127.0.0.1 with a port chosen by the OS.
pub fn any_v4() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// The next event, failing the test after [`WAIT`].
pub async fn next_event(rx: &mut Receiver<TransportEvent>) -> TransportEvent {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("no transport event in time")
        .expect("transport event channel closed")
}

/// The next event, which must be a parsed message.
pub async fn next_message(rx: &mut Receiver<TransportEvent>) -> Incoming {
    match next_event(rx).await {
        TransportEvent::Message(m) => m,
        TransportEvent::Malformed(m) => panic!("expected a message, got malformed: {}", m.error),
    }
}

/// Reads until the peer closes (EOF or reset); fails the test if it stays open.
pub async fn expect_closed<S: AsyncRead + Unpin>(stream: &mut S) {
    expect_closed_within(stream, WAIT).await;
}

/// Reads until the peer closes; fails the test if it stays open for `bound`.
pub async fn expect_closed_within<S: AsyncRead + Unpin>(stream: &mut S, bound: Duration) {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(bound, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("connection was not closed");
}

/// Reads exactly `expected.len()` bytes and compares them.
pub async fn expect_bytes<S: AsyncRead + Unpin>(stream: &mut S, expected: &[u8]) {
    let mut buf = vec![0u8; expected.len()];
    tokio::time::timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .expect("no reply in time")
        .expect("read failed");
    assert_eq!(
        String::from_utf8_lossy(&buf),
        String::from_utf8_lossy(expected)
    );
}

/// Starts a layer, failing the test on error.
pub async fn start(config: TransportConfig) -> (TransportLayer, Receiver<TransportEvent>) {
    TransportLayer::bind(config).await.expect("bind")
}
