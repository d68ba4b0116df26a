//! `Policy::hold_response`: a final response the policy holds goes upstream only once
//! the policy's future completes (a P-CSCF's store write), while the engine goes on
//! with other transactions; a future that panics lets the response go.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use ims_sip::message::build::response;
use ims_sip::proxy::engine::{Decision, EngineConfig, Forward, Policy, ProxyEngine};
use ims_sip::transport::{Source, TransportConfig};
use ims_sip::SipMessage;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::time::timeout;

mod engine_support;
use engine_support::recv_udp_from;

/// Forwards everything to `target`; holds the final response of a request whose
/// Call-ID starts with `hold` until `release` fires, and panics holding one whose
/// Call-ID starts with `panic`.
struct HoldingPolicy {
    target: String,
    release: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Policy for HoldingPolicy {
    async fn decide(&self, _request: &SipMessage, _source: &Source) -> Decision {
        Decision::Forward(Forward {
            targets: vec![self.target.clone()],
            ..Forward::default()
        })
    }

    fn hold_response(
        &self,
        request: &SipMessage,
        _source: &Source,
        _response: &SipMessage,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let call = request.headers.get_str(&ims_sip::HeaderName::CallId)?;
        let (hold, panics) = (call.starts_with("hold"), call.starts_with("panic"));
        if !hold && !panics {
            return None;
        }
        let release = self.release.lock().unwrap().take();
        Some(async move {
            if panics {
                panic!("a policy bug while holding");
            }
            if let Some(release) = release {
                let _ = release.await;
            }
        })
    }
}

fn options(me: SocketAddr, call: &str) -> String {
    format!(
        "OPTIONS sip:b@y SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: {call}\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Sends an OPTIONS with Call-ID `call` through the proxy; the server answers 200.
async fn through(client: &UdpSocket, server: &UdpSocket, proxy: SocketAddr, call: &str) {
    let me = client.local_addr().unwrap();
    client
        .send_to(options(me, call).as_bytes(), proxy)
        .await
        .unwrap();
    let (forwarded, from) = recv_udp_from(server).await;
    server
        .send_to(&response(&forwarded, 200).to_bytes(), from)
        .await
        .unwrap();
}

async fn answer(client: &UdpSocket, within: Duration) -> Option<SipMessage> {
    let mut buf = vec![0u8; 65_535];
    let (n, _) = timeout(within, client.recv_from(&mut buf))
        .await
        .ok()?
        .unwrap();
    Some(SipMessage::parse(buf[..n].to_vec()).unwrap())
}

#[tokio::test]
async fn a_held_response_waits_for_the_policy_and_others_go_on() {
    let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (release, held) = oneshot::channel();
    let policy = HoldingPolicy {
        target: format!("sip:{}", server.local_addr().unwrap()),
        release: Mutex::new(Some(held)),
    };
    let transport = TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        ..TransportConfig::default()
    };
    let engine = ProxyEngine::start(transport, EngineConfig::default(), policy)
        .await
        .unwrap();
    let proxy = engine.transport().local_addrs()[0].1;
    let held_ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let other_ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();

    through(&held_ue, &server, proxy, "hold-1").await;
    assert!(
        answer(&held_ue, Duration::from_millis(500)).await.is_none(),
        "held while the policy's future runs"
    );
    // Meanwhile the engine serves other transactions.
    through(&other_ue, &server, proxy, "free-1").await;
    let other = answer(&other_ue, Duration::from_secs(5)).await;
    assert_eq!(other.and_then(|m| m.status()), Some(200));

    release.send(()).unwrap();
    let held = answer(&held_ue, Duration::from_secs(5)).await;
    assert_eq!(held.and_then(|m| m.status()), Some(200));

    // A future that panics lets its response go; the engine lives on.
    through(&other_ue, &server, proxy, "panic-1").await;
    let relayed = answer(&other_ue, Duration::from_secs(5)).await;
    assert_eq!(relayed.and_then(|m| m.status()), Some(200));
    through(&other_ue, &server, proxy, "free-2").await;
    let after = answer(&other_ue, Duration::from_secs(5)).await;
    assert_eq!(after.and_then(|m| m.status()), Some(200));
}
