//! UDP transport over loopback: round trips on IPv4 and IPv6, answers from the
//! listening port, hostile datagrams.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod transport_support;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use ims_sip::transport::{Destination, Target, TransportEvent, TransportKind};
use tokio::net::UdpSocket;
use transport_support::*;

async fn recv_datagram(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 65_536];
    let (n, from) = tokio::time::timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .expect("no datagram in time")
        .unwrap();
    buf.truncate(n);
    (buf, from)
}

async fn round_trip(bind: SocketAddr) {
    let (layer, mut rx) = start(config(&[bind], &[])).await;
    let server = layer.local_addr(TransportKind::Udp).unwrap();
    let client = UdpSocket::bind(SocketAddr::new(bind.ip(), 0))
        .await
        .unwrap();
    let client_addr = client.local_addr().unwrap();

    client
        .send_to(&request("UDP", "udp-1", "hello"), server)
        .await
        .unwrap();
    let incoming = next_message(&mut rx).await;
    assert_eq!(incoming.message.body(), &Bytes::from_static(b"hello"));
    assert_eq!(incoming.source.remote, client_addr);
    assert_eq!(incoming.source.local, server);
    assert_eq!(incoming.source.flow.kind(), TransportKind::Udp);

    let sent = layer
        .send(
            &Target::Flow(incoming.source.flow),
            Bytes::from(response("UDP", "udp-1")),
        )
        .await
        .unwrap();
    assert_eq!(sent, incoming.source.flow);
    let (reply, from) = recv_datagram(&client).await;
    assert_eq!(reply, response("UDP", "udp-1"));
    assert_eq!(
        from, server,
        "the answer must leave from the listening port"
    );
    assert_eq!(layer.stats().messages_in.load(Ordering::Relaxed), 1);
    assert_eq!(layer.stats().messages_out.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn udp_round_trip_ipv4() {
    round_trip(any_v4()).await;
}

#[tokio::test]
async fn udp_round_trip_ipv6() {
    let v6: SocketAddr = "[::1]:0".parse().unwrap();
    if let Err(e) = std::net::UdpSocket::bind(v6) {
        println!("skipping udp_round_trip_ipv6: no IPv6 loopback on this host ({e})");
        return;
    }
    round_trip(v6).await;
}

#[tokio::test]
async fn udp_destination_sends_from_the_listening_port() {
    let (a, _rx_a) = start(config(&[any_v4()], &[])).await;
    let (b, mut rx_b) = start(config(&[any_v4()], &[])).await;
    let b_addr = b.local_addr(TransportKind::Udp).unwrap();
    let dest = Target::Destination(Destination {
        kind: TransportKind::Udp,
        addr: b_addr,
        server_name: None,
    });
    a.send(&dest, Bytes::from(request("UDP", "udp-2", "")))
        .await
        .unwrap();
    let incoming = next_message(&mut rx_b).await;
    assert_eq!(
        incoming.source.remote,
        a.local_addr(TransportKind::Udp).unwrap(),
        "rport must see the sender's listening port"
    );
}

#[tokio::test]
async fn udp_without_a_listener_of_the_family_is_an_error() {
    let (a, _rx) = start(config(&[any_v4()], &[])).await;
    let dest = Target::Destination(Destination {
        kind: TransportKind::Udp,
        addr: "[::1]:5060".parse().unwrap(),
        server_name: None,
    });
    let err = a.send(&dest, Bytes::from_static(b"x")).await.unwrap_err();
    assert!(
        matches!(err, ims_sip::transport::SendError::NoListener { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn hostile_datagrams_are_reported_or_dropped_and_serving_goes_on() {
    let mut cfg = config(&[any_v4()], &[]);
    cfg.limits.max_message_size = 1024;
    cfg.limits.max_headers = 8;
    let (layer, mut rx) = start(cfg).await;
    let server = layer.local_addr(TransportKind::Udp).unwrap();
    let client = UdpSocket::bind(any_v4()).await.unwrap();

    // Binary garbage: reported as malformed with its bytes.
    let garbage = [0u8, 0xff, 0x13, 0x37, b'\n', 0x80];
    client.send_to(&garbage, server).await.unwrap();
    match next_event(&mut rx).await {
        TransportEvent::Malformed(m) => assert_eq!(&m.raw[..], &garbage[..]),
        other => panic!("expected malformed, got {other:?}"),
    }
    // Truncated: body shorter than Content-Length.
    let full = request("UDP", "udp-3", "0123456789");
    client
        .send_to(&full[..full.len() - 4], server)
        .await
        .unwrap();
    match next_event(&mut rx).await {
        TransportEvent::Malformed(m) => assert!(
            matches!(m.error, ims_sip::ParseError::BodyTooShort { .. }),
            "{}",
            m.error
        ),
        other => panic!("expected malformed, got {other:?}"),
    }
    // Header bomb within the size limit.
    let mut bomb = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
    for i in 0..20 {
        bomb.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    bomb.extend_from_slice(b"\r\n");
    client.send_to(&bomb, server).await.unwrap();
    match next_event(&mut rx).await {
        TransportEvent::Malformed(m) => assert!(
            matches!(m.error, ims_sip::ParseError::TooManyHeaders { limit: 8 }),
            "{}",
            m.error
        ),
        other => panic!("expected malformed, got {other:?}"),
    }
    // Oversize: dropped without an event; a keep-alive: ignored.
    client.send_to(&[b'A'; 2000], server).await.unwrap();
    client.send_to(b"\r\n\r\n", server).await.unwrap();
    // Still serving: the next event is this valid message.
    client
        .send_to(&request("UDP", "udp-4", "ok"), server)
        .await
        .unwrap();
    let incoming = next_message(&mut rx).await;
    assert_eq!(incoming.message.body(), &Bytes::from_static(b"ok"));
    assert_eq!(layer.stats().parse_errors.load(Ordering::Relaxed), 4);
}
