//! TCP transport over loopback: framing of split and coalesced writes, answers over
//! the peer's connection, connection reuse, keep-alives, limits and hostile input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod transport_support;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use ims_sip::transport::{Destination, SendError, Target, TransportEvent, TransportKind};
use ims_sip::ParseError;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use transport_support::*;

async fn tcp_layer(
    limits: impl FnOnce(&mut ims_sip::transport::TransportLimits),
) -> (
    ims_sip::transport::TransportLayer,
    tokio::sync::mpsc::Receiver<TransportEvent>,
    SocketAddr,
) {
    let mut cfg = config(&[], &[any_v4()]);
    limits(&mut cfg.limits);
    let (layer, rx) = start(cfg).await;
    let addr = layer.local_addr(TransportKind::Tcp).unwrap();
    (layer, rx, addr)
}

#[tokio::test]
async fn coalesced_and_split_writes_are_framed() {
    let (_layer, mut rx, addr) = tcp_layer(|_| {}).await;
    let mut client = TcpStream::connect(addr).await.unwrap();

    let mut two = request("TCP", "c1", "first");
    two.extend_from_slice(&request("TCP", "c2", "second"));
    client.write_all(&two).await.unwrap();
    assert_eq!(next_message(&mut rx).await.message.body(), "first");
    assert_eq!(next_message(&mut rx).await.message.body(), "second");

    let third = request("TCP", "c3", "third");
    for part in [
        &third[..10],
        &third[10..third.len() - 3],
        &third[third.len() - 3..],
    ] {
        client.write_all(part).await.unwrap();
        client.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    let incoming = next_message(&mut rx).await;
    assert_eq!(incoming.message.body(), "third");
    assert_eq!(incoming.source.remote, client.local_addr().unwrap());
}

#[tokio::test]
async fn answers_go_back_over_the_peers_connection() {
    let (layer, mut rx, addr) = tcp_layer(|_| {}).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(&request("TCP", "r1", "")).await.unwrap();
    let incoming = next_message(&mut rx).await;
    let flow = incoming.source.flow;
    assert_eq!(flow.kind(), TransportKind::Tcp);

    layer
        .send(&Target::Flow(flow), Bytes::from(response("TCP", "r1")))
        .await
        .unwrap();
    expect_bytes(&mut client, &response("TCP", "r1")).await;

    // A request to the UE's address reuses the connection it opened.
    let dest = Target::Destination(Destination {
        kind: TransportKind::Tcp,
        addr: client.local_addr().unwrap(),
        server_name: None,
    });
    let used = layer
        .send(&dest, Bytes::from(request("TCP", "r2", "to-ue")))
        .await
        .unwrap();
    assert_eq!(used, flow);
    expect_bytes(&mut client, &request("TCP", "r2", "to-ue")).await;
    assert_eq!(layer.stats().connections_open.load(Ordering::Relaxed), 1);

    // Once the client is gone, the flow is closed.
    drop(client);
    let deadline = Instant::now() + WAIT;
    loop {
        match layer
            .send(&Target::Flow(flow), Bytes::from_static(b"x"))
            .await
        {
            Err(SendError::FlowClosed(f)) => {
                assert_eq!(f, flow);
                break;
            }
            other => assert!(Instant::now() < deadline, "flow still open: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn outgoing_connection_is_opened_then_reused() {
    let (a, mut rx_a, _) = tcp_layer(|_| {}).await;
    let (_b, mut rx_b, b_addr) = tcp_layer(|_| {}).await;
    let dest = Target::Destination(Destination {
        kind: TransportKind::Tcp,
        addr: b_addr,
        server_name: None,
    });
    let flow1 = a
        .send(&dest, Bytes::from(request("TCP", "o1", "")))
        .await
        .unwrap();
    let at_b = next_message(&mut rx_b).await;
    let flow2 = a
        .send(&dest, Bytes::from(request("TCP", "o2", "")))
        .await
        .unwrap();
    assert_eq!(flow1, flow2, "second send must reuse the connection");
    assert_eq!(next_message(&mut rx_b).await.source.flow, at_b.source.flow);

    // B answers over the flow; A receives it on the connection it opened.
    _b.send(
        &Target::Flow(at_b.source.flow),
        Bytes::from(response("TCP", "o1")),
    )
    .await
    .unwrap();
    let answer = next_message(&mut rx_a).await;
    assert_eq!(answer.source.flow, flow1);
    assert_eq!(answer.message.status(), Some(200));
}

#[tokio::test]
async fn double_crlf_ping_gets_a_pong() {
    let (_layer, mut rx, addr) = tcp_layer(|_| {}).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(b"\r\n\r\n").await.unwrap();
    expect_bytes(&mut client, b"\r\n").await;
    // The connection still carries messages.
    client.write_all(&request("TCP", "p1", "")).await.unwrap();
    assert_eq!(
        next_message(&mut rx)
            .await
            .message
            .method()
            .unwrap()
            .as_str(),
        "MESSAGE"
    );
}

#[tokio::test]
async fn connections_per_peer_are_limited() {
    let (layer, mut rx, addr) = tcp_layer(|l| l.max_connections_per_peer = 2).await;
    let mut open = Vec::new();
    for i in 0..2 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(&request("TCP", &format!("l{i}"), ""))
            .await
            .unwrap();
        next_message(&mut rx).await;
        open.push(c);
    }
    let mut third = TcpStream::connect(addr).await.unwrap();
    expect_closed(&mut third).await;
    assert_eq!(layer.stats().connections_refused.load(Ordering::Relaxed), 1);

    // The first two still work, and closing one makes room again.
    open[1].write_all(&request("TCP", "l1b", "")).await.unwrap();
    next_message(&mut rx).await;
    drop(open.remove(0));
    let deadline = Instant::now() + WAIT;
    while layer.stats().connections_open.load(Ordering::Relaxed) != 1 {
        assert!(Instant::now() < deadline, "closed connection not released");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut again = TcpStream::connect(addr).await.unwrap();
    again.write_all(&request("TCP", "l3", "")).await.unwrap();
    next_message(&mut rx).await;
}

#[tokio::test(start_paused = true)]
async fn idle_connection_is_closed_after_the_timeout() {
    let idle = Duration::from_secs(30);
    let (layer, mut rx, addr) = tcp_layer(|l| l.idle_timeout = idle).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(&request("TCP", "i1", "")).await.unwrap();
    next_message(&mut rx).await;

    // Traffic before the timeout keeps the connection open.
    tokio::time::sleep(idle - Duration::from_secs(5)).await;
    client.write_all(&request("TCP", "i2", "")).await.unwrap();
    next_message(&mut rx).await;
    let last_traffic = Instant::now();

    expect_closed_within(&mut client, idle + WAIT).await;
    assert!(
        last_traffic.elapsed() >= idle,
        "closed after {:?}, before the idle timeout",
        last_traffic.elapsed()
    );
    assert_eq!(layer.stats().connections_open.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn oversize_message_closes_the_connection_and_the_listener_goes_on() {
    let (layer, mut rx, addr) = tcp_layer(|l| l.max_message_size = 1024).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    let mut big = b"MESSAGE sip:a@b SIP/2.0\r\n".to_vec();
    while big.len() < 3000 {
        big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    // Headers without end: the layer must give up at the limit, not wait for more.
    let _ = client.write_all(&big).await;
    expect_closed(&mut client).await;
    assert_eq!(layer.stats().framing_errors.load(Ordering::Relaxed), 1);

    // A Content-Length beyond the limit is refused before the body is sent.
    let mut client = TcpStream::connect(addr).await.unwrap();
    let _ = client
        .write_all(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 100000\r\n\r\n")
        .await;
    expect_closed(&mut client).await;

    let mut fresh = TcpStream::connect(addr).await.unwrap();
    fresh
        .write_all(&request("TCP", "big-after", ""))
        .await
        .unwrap();
    next_message(&mut rx).await;
}

#[tokio::test]
async fn header_bomb_is_reported_and_closes_the_connection() {
    let (_layer, mut rx, addr) = tcp_layer(|l| l.max_headers = 16).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    let mut bomb = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
    for i in 0..100 {
        bomb.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    bomb.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    client.write_all(&bomb).await.unwrap();
    match next_event(&mut rx).await {
        TransportEvent::Malformed(m) => {
            assert_eq!(m.error, ParseError::TooManyHeaders { limit: 16 })
        }
        other => panic!("expected malformed, got {other:?}"),
    }
    expect_closed(&mut client).await;
}

#[tokio::test]
async fn garbage_does_not_kill_the_listener() {
    let (layer, mut rx, addr) = tcp_layer(|l| l.max_message_size = 4096).await;

    // Framed but unparsable: reported, and the connection keeps serving.
    let mut client = TcpStream::connect(addr).await.unwrap();
    let garbage = b"\x00\xffGARBAGE\x80\r\nContent-Length: 3\r\n\r\n\x01\x02\x03";
    client.write_all(garbage).await.unwrap();
    match next_event(&mut rx).await {
        TransportEvent::Malformed(m) => assert_eq!(&m.raw[..], &garbage[..]),
        other => panic!("expected malformed, got {other:?}"),
    }
    client.write_all(&request("TCP", "g1", "")).await.unwrap();
    next_message(&mut rx).await;

    // Unframeable (no Content-Length) and endless binary: the connection is closed.
    let mut client = TcpStream::connect(addr).await.unwrap();
    let _ = client.write_all(b"\x16\x03\x01 not sip\r\n\r\n").await;
    expect_closed(&mut client).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    let _ = client.write_all(&[0xa5; 8192]).await;
    expect_closed(&mut client).await;
    assert_eq!(layer.stats().framing_errors.load(Ordering::Relaxed), 2);

    let mut fresh = TcpStream::connect(addr).await.unwrap();
    fresh.write_all(&request("TCP", "g2", "")).await.unwrap();
    next_message(&mut rx).await;
}

#[tokio::test]
async fn tcp_over_ipv6_loopback() {
    let v6: SocketAddr = "[::1]:0".parse().unwrap();
    if let Err(e) = std::net::TcpListener::bind(v6) {
        println!("skipping tcp_over_ipv6_loopback: no IPv6 loopback on this host ({e})");
        return;
    }
    let (layer, mut rx) = start(config(&[], &[v6])).await;
    let addr = layer.local_addr(TransportKind::Tcp).unwrap();
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(&request("TCP", "v6", "")).await.unwrap();
    let incoming = next_message(&mut rx).await;
    assert!(incoming.source.remote.is_ipv6());
    layer
        .send(
            &Target::Flow(incoming.source.flow),
            Bytes::from(response("TCP", "v6")),
        )
        .await
        .unwrap();
    expect_bytes(&mut client, &response("TCP", "v6")).await;
}

#[tokio::test]
async fn dropping_the_event_receiver_stops_listeners_and_connections() {
    let (layer, mut rx, addr) = tcp_layer(|_| {}).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(&request("TCP", "s1", "")).await.unwrap();
    next_message(&mut rx).await;

    drop(rx);
    expect_closed(&mut client).await;
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "listener still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(layer.stats().connections_open.load(Ordering::Relaxed), 0);
}
