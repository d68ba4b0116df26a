//! Requests the node originates through the engine ([`Originator`]): sent with our Via
//! toward the top Route (RFC 3261 §8.1.2) with the node's own Max-Forwards, the final
//! response handed back (provisional ones absorbed), a silent peer ends in a timeout
//! (Timer F), and an unbound originator or an unroutable request is told so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use ims_sip::message::build::response;
use ims_sip::message::{Headers, Request, StartLine};
use ims_sip::proxy::engine::{
    DefaultRouting, EngineConfig, OriginateError, Originator, ProxyEngine,
};
use ims_sip::transport::TransportConfig;
use ims_sip::{HeaderName, Method, SipMessage};
use tokio::net::UdpSocket;

async fn engine() -> ProxyEngine {
    let mut config = EngineConfig::default();
    config.timers.t1 = Duration::from_millis(20);
    config.timers.t4 = Duration::from_millis(100);
    let transport = TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        ..TransportConfig::default()
    };
    ProxyEngine::start(transport, config, DefaultRouting::default())
        .await
        .unwrap()
}

/// A NOTIFY toward `target` through the Route `route` (none when `None`), without Via.
fn notify(target: &str, route: Option<SocketAddr>) -> SipMessage {
    let mut h = Headers::new();
    if let Some(r) = route {
        h.push(HeaderName::Route, Bytes::from(format!("<sip:{r};lr>")));
    }
    h.push(HeaderName::MaxForwards, "70");
    h.push(HeaderName::From, "<sip:alice@x>;tag=n1");
    h.push(HeaderName::To, "<sip:alice@x>;tag=s1");
    h.push(HeaderName::CallId, "orig-1");
    h.push(HeaderName::CSeq, "4 NOTIFY");
    h.push(HeaderName::Event, "reg");
    h.push(HeaderName::ContentLength, "0");
    let start = StartLine::Request(Request::new(Method::Notify, target.to_string()));
    SipMessage::new(start, h, Bytes::new())
}

/// A peer answering the first request it receives with 100 then `code`; returns what
/// it received.
async fn peer(code: u16) -> (SocketAddr, tokio::task::JoinHandle<SipMessage>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        let (n, from) = socket.recv_from(&mut buf).await.unwrap();
        let req = SipMessage::parse(buf[..n].to_vec()).unwrap();
        for c in [100, code] {
            socket
                .send_to(&response(&req, c).to_bytes(), from)
                .await
                .unwrap();
        }
        req
    });
    (addr, task)
}

#[tokio::test]
async fn the_final_response_comes_back_and_the_request_follows_its_route() {
    let engine = engine().await;
    let originator = Originator::default();
    assert!(engine.bind_originator(&originator));
    assert!(!engine.bind_originator(&originator), "bound once");
    let (proxy, seen) = peer(481).await;
    // The Request-URI names a host that does not exist: the Route decides.
    let answer = originator
        .send(notify("sip:ue@192.0.2.1:5999", Some(proxy)))
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        Some(481),
        "the final response, not the 100"
    );
    let sent = seen.await.unwrap();
    let via = sent.headers.get_str(&HeaderName::Via).unwrap().to_string();
    let ours = engine.transport().local_addrs()[0].1;
    assert!(
        via.starts_with(&format!("SIP/2.0/UDP {ours};branch=z9hG4bK")),
        "{via}"
    );
    assert_eq!(sent.headers.get_str(&HeaderName::MaxForwards), Some("70"));
    assert_eq!(sent.headers.get_str(&HeaderName::CSeq), Some("4 NOTIFY"));
}

#[tokio::test]
async fn a_silent_peer_times_out() {
    let engine = engine().await;
    let originator = Originator::default();
    engine.bind_originator(&originator);
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = format!("sip:ue@{}", silent.local_addr().unwrap());
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        originator.send(notify(&target, None)),
    )
    .await
    .expect("Timer F (64 T1 = 1.28 s here) ends it");
    assert_eq!(outcome, Err(OriginateError::Timeout));
}

#[tokio::test]
async fn unbound_or_unroutable() {
    let originator = Originator::default();
    assert_eq!(
        originator.send(notify("sip:ue@127.0.0.1:9", None)).await,
        Err(OriginateError::NotRunning)
    );
    let engine = engine().await;
    engine.bind_originator(&originator);
    // No TCP listener for a transport=tcp next hop.
    let outcome = originator
        .send(notify("sip:ue@127.0.0.1:9;transport=tcp", None))
        .await;
    assert!(
        matches!(outcome, Err(OriginateError::Unroutable(_))),
        "{outcome:?}"
    );
}
