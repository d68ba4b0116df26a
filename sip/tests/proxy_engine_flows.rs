//! The engine hooks an edge proxy needs, in process over loopback: the Route value §16.4
//! removed reaches the policy, a request sent over a UE's flow (RFC 5626 §5.3) and
//! record-routed with the policy's user part (a flow token), an ACK for a 2xx sent over
//! the flow the policy names, 430 when that flow has closed, and the policy seeing (and
//! changing) responses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use ims_sip::message::build::response;
use ims_sip::proxy::engine::{AckRoute, Decision, EngineConfig, Forward, Policy, ProxyEngine};
use ims_sip::proxy::record_route::route_user;
use ims_sip::transport::{Flow, Source, TransportConfig, TransportKind};
use ims_sip::{HeaderName, Method, SipMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

mod engine_support;
use engine_support::recv_udp;

/// Remembers the flow a REGISTER came over; sends requests whose popped Route has the
/// user part `ue` over that flow, record-routed with that user part, and so the ACKs
/// whose popped Route has it; marks every response it forwards.
struct EdgePolicy {
    registrar: SocketAddr,
    flow: Mutex<Option<Flow>>,
}

impl Policy for EdgePolicy {
    async fn decide(&self, _request: &SipMessage, _source: &Source) -> Decision {
        unreachable!("the engine calls decide_routed")
    }

    async fn decide_routed(
        &self,
        request: &SipMessage,
        source: &Source,
        popped: Option<&Bytes>,
    ) -> Decision {
        if request.method() == Some(&Method::Register) {
            *self.flow.lock().unwrap() = Some(source.flow);
            return Decision::Forward(Forward {
                targets: vec![format!("sip:{}", self.registrar)],
                ..Forward::default()
            });
        }
        let user = popped.and_then(|v| route_user(std::str::from_utf8(v).ok()?));
        assert_eq!(
            user.as_deref(),
            Some("ue"),
            "the popped Route reaches the policy"
        );
        let flow = self.flow.lock().unwrap().expect("registered first");
        let mut edited = request.clone();
        edited
            .headers
            .push(HeaderName::Other("X-Edited".into()), "yes");
        Decision::ForwardWith {
            request: edited,
            flow: Some(flow),
            forward: Forward {
                record_route: true,
                record_route_user: Some("ue".into()),
                ..Forward::default()
            },
        }
    }

    fn ack_route(
        &self,
        ack: &mut SipMessage,
        _source: &Source,
        popped: Option<&Bytes>,
    ) -> AckRoute {
        ack.headers.remove_all(&HeaderName::Other("X-Strip".into()));
        let user = popped.and_then(|v| route_user(std::str::from_utf8(v).ok()?));
        match (user.as_deref(), *self.flow.lock().unwrap()) {
            (Some("ue"), Some(flow)) => AckRoute::Over(flow),
            (Some("drop"), _) => AckRoute::Drop,
            _ => AckRoute::NextHop,
        }
    }

    fn on_response(&self, request: &SipMessage, source: &Source, response: &mut SipMessage) {
        let method = request
            .method()
            .map(ToString::to_string)
            .unwrap_or_default();
        let kind = source.flow.kind().via_token().to_string();
        response.headers.push(
            HeaderName::Other("X-Seen".into()),
            format!("{method} {kind}"),
        );
    }
}

/// Reads one message without a body from a stream.
async fn recv_tcp(stream: &mut TcpStream) -> SipMessage {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("a message within 5 s")
            .unwrap();
        assert_eq!(n, 1, "stream closed");
        buf.push(byte[0]);
    }
    SipMessage::parse(buf).unwrap()
}

fn request(method: &str, transport: &str, from: SocketAddr, extra: &str, branch: &str) -> String {
    format!(
        "{method} sip:ue@example.net SIP/2.0\r\nVia: SIP/2.0/{transport} {from};branch={branch}\r\n\
Max-Forwards: 70\r\nFrom: <sip:ue@example.net>;tag=1\r\nTo: <sip:ue@example.net>\r\n\
Call-ID: {branch}@x\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

#[tokio::test]
async fn requests_reach_a_registered_flow_and_fail_with_430_once_it_closes() {
    let registrar = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let policy = EdgePolicy {
        registrar: registrar.local_addr().unwrap(),
        flow: Mutex::new(None),
    };
    let transport = TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        tcp: vec!["127.0.0.1:0".parse().unwrap()],
        ..TransportConfig::default()
    };
    let engine = ProxyEngine::start(transport, EngineConfig::default(), policy)
        .await
        .unwrap();
    let udp = engine.transport().local_addr(TransportKind::Udp).unwrap();
    let tcp = engine.transport().local_addr(TransportKind::Tcp).unwrap();

    // The UE registers over TCP; the registrar's 200 comes back marked by the policy.
    let mut ue = TcpStream::connect(tcp).await.unwrap();
    let ue_addr = ue.local_addr().unwrap();
    let reg = request("REGISTER", "TCP", ue_addr, "", "z9hG4bKreg");
    ue.write_all(reg.as_bytes()).await.unwrap();
    let forwarded = recv_udp(&registrar).await;
    assert_eq!(forwarded.method(), Some(&Method::Register));
    registrar
        .send_to(&response(&forwarded, 200).to_bytes(), udp)
        .await
        .unwrap();
    let ok = recv_tcp(&mut ue).await;
    assert_eq!(ok.status(), Some(200));
    assert_eq!(
        ok.headers.get_str(&HeaderName::Other("X-Seen".into())),
        Some("REGISTER TCP")
    );

    // The core sends toward the flow: it arrives over the UE's connection.
    let core = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let route = format!("Route: <sip:ue@{udp};lr>\r\n");
    let core_addr = core.local_addr().unwrap();
    let opt = request("OPTIONS", "UDP", core_addr, &route, "z9hG4bKopt1");
    core.send_to(opt.as_bytes(), udp).await.unwrap();
    let delivered = recv_tcp(&mut ue).await;
    assert_eq!(delivered.method(), Some(&Method::Options));
    assert!(delivered.headers.get(&HeaderName::Route).is_none());
    assert_eq!(
        delivered
            .headers
            .get_str(&HeaderName::Other("X-Edited".into())),
        Some("yes")
    );
    let top_via = delivered.headers.first_value(&HeaderName::Via).unwrap();
    assert!(top_via.starts_with(b"SIP/2.0/TCP"), "{top_via:?}");
    // Record-Routed with the policy's user part, double: UDP in, TCP out (RFC 5658).
    let rr: Vec<_> = delivered
        .headers
        .values(&HeaderName::RecordRoute)
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
        .collect();
    assert_eq!(
        rr,
        [
            format!("<sip:ue@{tcp};transport=tcp;lr>"),
            format!("<sip:ue@{udp};lr>")
        ]
    );
    ue.write_all(&response(&delivered, 200).to_bytes())
        .await
        .unwrap();
    let answer = recv_udp(&core).await;
    assert_eq!(answer.status(), Some(200));
    assert_eq!(
        answer.headers.get_str(&HeaderName::Other("X-Seen".into())),
        Some("OPTIONS UDP")
    );

    // An ACK for a 2xx (stateless, §16.11) with that Route goes over the flow too,
    // though its Request-URI names no reachable host.
    let ack = request(
        "ACK",
        "UDP",
        core_addr,
        &format!("{route}X-Strip: 1\r\n"),
        "z9hG4bKack1",
    )
    .replace("To: <sip:ue@example.net>", "To: <sip:ue@example.net>;tag=2");
    core.send_to(ack.as_bytes(), udp).await.unwrap();
    let acked = recv_tcp(&mut ue).await;
    assert_eq!(acked.method(), Some(&Method::Ack));
    assert!(acked.headers.get(&HeaderName::Route).is_none());
    // The policy edited the copy it was shown.
    assert!(acked
        .headers
        .get(&HeaderName::Other("X-Strip".into()))
        .is_none());

    // An ACK the policy drops never leaves; the next one, routed normally, reaches its
    // next hop (the Request-URI), so the first would have arrived before it.
    for (user, branch) in [("drop", "z9hG4bKack2"), ("next", "z9hG4bKack3")] {
        let ack = request(
            "ACK",
            "UDP",
            core_addr,
            &format!("Route: <sip:{user}@{udp};lr>\r\n"),
            branch,
        )
        .replace("To: <sip:ue@example.net>", "To: <sip:ue@example.net>;tag=2")
        .replace("ACK sip:ue@example.net", &format!("ACK sip:ue@{core_addr}"));
        core.send_to(ack.as_bytes(), udp).await.unwrap();
    }
    let routed = recv_udp(&core).await;
    assert_eq!(routed.method(), Some(&Method::Ack));
    assert_eq!(
        routed.headers.get_str(&HeaderName::CallId),
        Some("z9hG4bKack3@x")
    );

    // The UE's connection closes: the next request toward its flow gets 430.
    drop(ue);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let opt = request("OPTIONS", "UDP", core_addr, &route, "z9hG4bKopt2");
    core.send_to(opt.as_bytes(), udp).await.unwrap();
    let failed = recv_udp(&core).await;
    assert_eq!(failed.status(), Some(430));
}
