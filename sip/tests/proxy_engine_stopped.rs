//! A panic inside the engine's core task (here a policy's `on_response` hook, as the
//! P-CSCF's once did on a huge `expires`) ends that task; `ProxyEngine::stopped` reports
//! it so that the node can exit instead of living on without proxying.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use ims_sip::message::build::response;
use ims_sip::proxy::engine::{Decision, EngineConfig, EngineStopped, Forward, Policy, ProxyEngine};
use ims_sip::transport::{Source, TransportConfig};
use ims_sip::SipMessage;
use tokio::net::UdpSocket;
use tokio::time::timeout;

mod engine_support;
use engine_support::{recv_udp, recv_udp_from};

/// Forwards everything to `target`; panics on the response.
struct PanickyPolicy {
    target: String,
}

impl Policy for PanickyPolicy {
    async fn decide(&self, _request: &SipMessage, _source: &Source) -> Decision {
        Decision::Forward(Forward {
            targets: vec![self.target.clone()],
            ..Forward::default()
        })
    }

    fn on_response(&self, _request: &SipMessage, _source: &Source, _response: &mut SipMessage) {
        panic!("a policy bug");
    }
}

#[tokio::test]
async fn a_panic_in_the_core_task_is_reported_by_stopped() {
    let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let transport = TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        ..TransportConfig::default()
    };
    let policy = PanickyPolicy {
        target: format!("sip:{}", server.local_addr().unwrap()),
    };
    let mut engine = ProxyEngine::start(transport, EngineConfig::default(), policy)
        .await
        .unwrap();
    let proxy = engine.transport().local_addrs()[0].1;
    // A working engine is not stopped.
    assert!(timeout(Duration::from_millis(200), engine.stopped())
        .await
        .is_err());

    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = client.local_addr().unwrap();
    let text = format!(
        "OPTIONS sip:b@y SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKstop\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: stop@x\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    client.send_to(text.as_bytes(), proxy).await.unwrap();
    let (forwarded, from) = recv_udp_from(&server).await;
    let ok = response(&forwarded, 200);
    server.send_to(&ok.to_bytes(), from).await.unwrap();

    let stopped = timeout(Duration::from_secs(5), engine.stopped())
        .await
        .expect("the engine reports its dead task");
    assert_eq!(
        stopped,
        EngineStopped {
            task: "core",
            how: "panicked"
        }
    );
    assert_eq!(
        stopped.to_string(),
        "the SIP proxy engine's core task panicked"
    );
}

/// Panics deciding requests to `sip:boom@...`, forwards the others to `target`.
struct PanicsDeciding {
    target: String,
}

impl Policy for PanicsDeciding {
    async fn decide(&self, request: &SipMessage, _source: &Source) -> Decision {
        let uri = request.request().map(|r| r.uri.clone()).unwrap_or_default();
        if uri.starts_with(b"sip:boom@") {
            panic!("a policy bug reached by a peer");
        }
        Decision::Forward(Forward {
            targets: vec![self.target.clone()],
            ..Forward::default()
        })
    }
}

/// The engine decides in its own task: a request that makes the policy panic is answered
/// 500, and the engine goes on proxying (a peer must not be able to stop the node).
#[tokio::test]
async fn a_panic_deciding_a_request_is_answered_500_and_the_engine_goes_on() {
    let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let transport = TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        ..TransportConfig::default()
    };
    let policy = PanicsDeciding {
        target: format!("sip:{}", server.local_addr().unwrap()),
    };
    let mut engine = ProxyEngine::start(transport, EngineConfig::default(), policy)
        .await
        .unwrap();
    let proxy = engine.transport().local_addrs()[0].1;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = client.local_addr().unwrap();
    let options = |user: &str, branch: &str| {
        format!(
            "OPTIONS sip:{user}@y SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: {branch}@x\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
    };
    client
        .send_to(options("boom", "boom1").as_bytes(), proxy)
        .await
        .unwrap();
    let answer = recv_udp(&client).await;
    assert_eq!(answer.status(), Some(500));

    client
        .send_to(options("b", "after1").as_bytes(), proxy)
        .await
        .unwrap();
    let forwarded = recv_udp(&server).await;
    assert_eq!(
        forwarded.headers.get_str(&ims_sip::HeaderName::CallId),
        Some("after1@x")
    );
    assert!(timeout(Duration::from_millis(200), engine.stopped())
        .await
        .is_err());
}
