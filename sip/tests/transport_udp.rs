//! UDP transport over loopback: round trips on IPv4 and IPv6, answers from the
//! listening port, hostile datagrams.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod transport_support;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use ims_sip::transport::{Destination, Target, TransportEvent, TransportKind};
use ims_sip::HeaderName;
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

/// A caller that reads the UDP sockets itself gets what they hold in batches of at most
/// the size asked, in arrival order, keep-alives dropped, across both listeners; the
/// event channel then carries no datagram.
#[tokio::test]
async fn the_owner_of_the_udp_ingress_reads_batches_on_its_own_task() {
    let cfg = config(&[any_v4(), "[::1]:0".parse().unwrap()], &[]);
    let (layer, mut rx, mut ingress) = ims_sip::transport::TransportLayer::bind_reading_udp(cfg)
        .await
        .unwrap();
    let addrs: Vec<SocketAddr> = layer.local_addrs().iter().map(|(_, a)| *a).collect();
    let v4 = UdpSocket::bind(any_v4()).await.unwrap();
    for i in 0..3 {
        v4.send_to(&request("UDP", &format!("batch-{i}"), "x"), addrs[0])
            .await
            .unwrap();
        v4.send_to(b"\r\n\r\n", addrs[0]).await.unwrap();
    }
    let v6 = UdpSocket::bind("[::1]:0").await.unwrap();
    v6.send_to(&request("UDP", "batch-v6", "x"), addrs[1])
        .await
        .unwrap();
    // Let every datagram reach its socket's buffer.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;

    let call_id = |e: &TransportEvent| match e {
        TransportEvent::Message(m) => {
            let id = m.message.headers.first_value(&HeaderName::CallId);
            String::from_utf8(id.unwrap_or_default().to_vec()).unwrap()
        }
        TransportEvent::Malformed(_) => panic!("malformed: {e:?}"),
    };
    let mut got = Vec::new();
    let mut batches = Vec::new();
    while got.len() < 4 {
        let mut out = Vec::new();
        tokio::time::timeout(WAIT, ingress.recv(&mut out, 2))
            .await
            .expect("datagrams in time");
        assert!(!out.is_empty() && out.len() <= 2, "batch of {}", out.len());
        batches.push(out.len());
        got.extend(out.iter().map(call_id));
    }
    assert_eq!(got.len(), 4, "{got:?} in batches {batches:?}");
    assert!(got.contains(&"batch-v6".to_owned()), "{got:?}");
    let v4: Vec<&str> = got
        .iter()
        .map(String::as_str)
        .filter(|c| *c != "batch-v6")
        .collect();
    assert_eq!(v4, ["batch-0", "batch-1", "batch-2"]);
    // Nothing more: the keep-alives were dropped, and the channel saw no datagram.
    let mut out = Vec::new();
    let more = tokio::time::timeout(
        std::time::Duration::from_millis(100),
        ingress.recv(&mut out, 8),
    )
    .await;
    assert!(more.is_err(), "unexpected {out:?}");
    assert!(rx.try_recv().is_err());
}

/// A flood of malformed datagrams is still handed up one by one (each request may be
/// answered 400), but it cannot flood the log: after a burst the lines are counted in
/// `log_lines_suppressed` instead of written.
#[tokio::test]
async fn a_flood_of_malformed_datagrams_costs_a_bounded_number_of_log_lines() {
    let (layer, mut rx) = start(config(&[any_v4()], &[])).await;
    let server = layer.local_addr(TransportKind::Udp).unwrap();
    let client = UdpSocket::bind(any_v4()).await.unwrap();
    let flood = 200u64;
    for i in 0..flood {
        let garbage = format!("\x00\x7f garbage {i}");
        client.send_to(garbage.as_bytes(), server).await.unwrap();
        // Each one reaches the upper layer as malformed (none lost to the kernel buffer).
        assert!(matches!(
            next_event(&mut rx).await,
            TransportEvent::Malformed(_)
        ));
    }
    let stats = layer.stats();
    assert_eq!(stats.parse_errors.load(Ordering::Relaxed), flood);
    let suppressed = stats.log_lines_suppressed.load(Ordering::Relaxed);
    assert!(
        (flood * 3 / 4..flood).contains(&suppressed),
        "{suppressed} of {flood} log lines suppressed"
    );
}
