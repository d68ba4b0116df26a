//! SIP capture export (HEP v3, `ims_sip::transport::hep`): a proxy engine copying to a
//! test collector; the collector's datagrams decode to the SIP messages that went
//! through the proxy, in both directions, with their addresses and ports. A TCP client
//! is copied too (as TLS would be: the clear text).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ims_sip::message::build::response;
use ims_sip::proxy::engine::{DefaultRouting, EngineConfig, ProxyEngine};
use ims_sip::transport::TransportConfig;
use ims_sip::SipMessage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

/// What a HEP v3 packet carries: IP protocol, source, destination, agent, payload.
#[derive(Debug)]
struct Hep {
    protocol: u8,
    from: SocketAddr,
    to: SocketAddr,
    agent: u32,
    payload: Vec<u8>,
}

/// Decodes a HEP v3 packet with IPv4 addresses (what a collector does).
fn decode(packet: &[u8]) -> Hep {
    assert_eq!(&packet[..4], b"HEP3");
    let total = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
    assert_eq!(total, packet.len());
    let (mut protocol, mut agent) = (0, 0);
    let (mut src, mut dst) = ([0u8; 4], [0u8; 4]);
    let (mut sport, mut dport) = (0, 0);
    let mut payload = Vec::new();
    let mut at = 6;
    while at < total {
        let kind = u16::from_be_bytes([packet[at + 2], packet[at + 3]]);
        let len = usize::from(u16::from_be_bytes([packet[at + 4], packet[at + 5]]));
        let data = &packet[at + 6..at + len];
        match kind {
            2 => protocol = data[0],
            3 => src.copy_from_slice(data),
            4 => dst.copy_from_slice(data),
            7 => sport = u16::from_be_bytes([data[0], data[1]]),
            8 => dport = u16::from_be_bytes([data[0], data[1]]),
            11 => assert_eq!(data, [1], "protocol type SIP"),
            12 => agent = u32::from_be_bytes(data.try_into().unwrap()),
            15 => payload = data.to_vec(),
            _ => {}
        }
        at += len;
    }
    Hep {
        protocol,
        from: SocketAddr::new(IpAddr::from(src), sport),
        to: SocketAddr::new(IpAddr::from(dst), dport),
        agent,
        payload,
    }
}

async fn next(collector: &UdpSocket) -> Hep {
    let mut buf = vec![0u8; 65_535];
    let n = timeout(Duration::from_secs(5), collector.recv(&mut buf))
        .await
        .expect("a HEP packet")
        .unwrap();
    decode(&buf[..n])
}

fn options(via: &str, me: SocketAddr, target: SocketAddr, branch: &str) -> String {
    format!(
        "OPTIONS sip:b@{target} SIP/2.0\r\nVia: SIP/2.0/{via} {me};branch={branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: {branch}@x\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

#[tokio::test]
async fn every_message_through_the_proxy_reaches_the_collector() {
    let collector = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uas_addr = uas.local_addr().unwrap();
    let transport = TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        tcp: vec!["127.0.0.1:0".parse().unwrap()],
        ..TransportConfig::default()
    };
    let engine = ProxyEngine::start(
        transport,
        EngineConfig::default(),
        DefaultRouting::default(),
    )
    .await
    .unwrap();
    let set = engine
        .transport()
        .capture_to(collector.local_addr().unwrap(), 42)
        .unwrap();
    assert!(set);
    let addrs = engine.transport().local_addrs().to_vec();
    let proxy = addrs[0].1;

    // UDP client -> proxy -> UAS, and the 200 back.
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = client.local_addr().unwrap();
    let request = options("UDP", me, uas_addr, "z9hG4bKhep1");
    client.send_to(request.as_bytes(), proxy).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    let (n, from) = uas.recv_from(&mut buf).await.unwrap();
    let forwarded = buf[..n].to_vec();
    let ok = response(&SipMessage::parse(forwarded.clone()).unwrap(), 200).to_bytes();
    uas.send_to(&ok, from).await.unwrap();
    let (n, _) = client.recv_from(&mut buf).await.unwrap();
    let answered = buf[..n].to_vec();

    let first = next(&collector).await;
    assert_eq!((first.protocol, first.agent), (17, 42));
    assert_eq!((first.from, first.to), (me, proxy));
    assert_eq!(first.payload, request.as_bytes());
    let second = next(&collector).await;
    assert_eq!((second.from, second.to), (proxy, uas_addr));
    assert_eq!(second.payload, forwarded);
    let third = next(&collector).await;
    assert_eq!((third.from, third.to), (uas_addr, proxy));
    assert_eq!(third.payload, ok.to_vec());
    let fourth = next(&collector).await;
    assert_eq!((fourth.from, fourth.to), (proxy, me));
    assert_eq!(fourth.payload, answered);

    // Over TCP: the request as the proxy read it from the connection, and the 200 it
    // wrote back on it.
    let tcp_proxy = addrs[1].1;
    let mut stream = TcpStream::connect(tcp_proxy).await.unwrap();
    let me = stream.local_addr().unwrap();
    let request = options("TCP", me, uas_addr, "z9hG4bKhep2");
    stream.write_all(request.as_bytes()).await.unwrap();
    let (n, from) = uas.recv_from(&mut buf).await.unwrap();
    let ok = response(&SipMessage::parse(buf[..n].to_vec()).unwrap(), 200).to_bytes();
    uas.send_to(&ok, from).await.unwrap();
    let n = timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"SIP/2.0 200"));
    let copies: Vec<Hep> = [
        next(&collector).await,
        next(&collector).await,
        next(&collector).await,
        next(&collector).await,
    ]
    .into();
    let received = copies
        .iter()
        .find(|h| h.from == me)
        .expect("the TCP request");
    assert_eq!((received.protocol, received.to), (6, tcp_proxy));
    assert_eq!(received.payload, request.as_bytes());
    let sent = copies
        .iter()
        .find(|h| h.to == me)
        .expect("the 200 over TCP");
    assert_eq!(sent.protocol, 6);
    assert_eq!(sent.payload, buf[..n].to_vec());
}
