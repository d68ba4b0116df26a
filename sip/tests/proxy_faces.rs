//! A proxy with two faces (a P-CSCF behind a floating IP: one address for UEs, another
//! for its core): requests to destinations leave from the core listener with the core's
//! advertised host in Via and Record-Route; requests over a UE's flow leave from the
//! listener facing UEs with that face's advertised host; double Record-Route names
//! each side by its own address (RFC 5658).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use ims_sip::message::build::response;
use ims_sip::proxy::engine::{Decision, EngineConfig, Forward, Policy, ProxyEngine};
use ims_sip::transport::{CoreListeners, Face, Flow, Source, TransportConfig};
use ims_sip::{HeaderName, Method, SipMessage};
use tokio::net::UdpSocket;

mod engine_support;
use engine_support::recv_udp_from as recv_from;

const EDGE: &str = "edge.example.net";
const CORE: &str = "core.example.net";

/// Forwards what comes from a UE to the core peer, remembering the UE's flow; sends a
/// request for `sip:ue@...` over that flow.
struct TwoFaced {
    core_peer: String,
    ue_flow: Arc<Mutex<Option<Flow>>>,
}

impl Policy for TwoFaced {
    async fn decide(&self, request: &SipMessage, source: &Source) -> Decision {
        let to_ue = request
            .request()
            .is_some_and(|r| r.uri.starts_with(b"sip:ue@"));
        let forward = Forward {
            record_route: true,
            ..Forward::default()
        };
        if to_ue {
            let flow = *self.ue_flow.lock().unwrap();
            return Decision::ForwardWith {
                request: request.clone(),
                flow,
                forward,
            };
        }
        *self.ue_flow.lock().unwrap() = Some(source.flow);
        Decision::Forward(Forward {
            targets: vec![self.core_peer.clone()],
            ..forward
        })
    }
}

struct Proxy {
    _engine: ProxyEngine,
    edge: SocketAddr,
    core: SocketAddr,
}

async fn start(core_peer: SocketAddr, with_core_face: bool) -> Proxy {
    let mut transport = TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        ..TransportConfig::default()
    };
    if with_core_face {
        transport.core = CoreListeners {
            udp: vec!["127.0.0.1:0".parse().unwrap()],
            ..CoreListeners::default()
        };
    }
    let config = EngineConfig {
        advertise: Some(EDGE.into()),
        advertise_core: Some(CORE.into()),
        ..EngineConfig::default()
    };
    let policy = TwoFaced {
        core_peer: format!("sip:peer@{core_peer}"),
        ue_flow: Arc::default(),
    };
    let engine = ProxyEngine::start(transport, config, policy).await.unwrap();
    let on = |face| {
        engine
            .transport()
            .listeners()
            .find(|&(_, _, f)| f == face)
            .map(|(_, a, _)| a)
    };
    let edge = on(Face::Main).unwrap();
    let core = on(Face::Core).unwrap_or(edge);
    Proxy {
        _engine: engine,
        edge,
        core,
    }
}

fn message(from: SocketAddr, ruri: &str, branch: &str) -> String {
    format!(
        "MESSAGE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch={branch};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: {branch}@x\r\n\
CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
    )
}

fn values(m: &SipMessage, name: &HeaderName) -> Vec<String> {
    m.headers
        .values(name)
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .collect()
}

/// A UE's request reaches the core from the core listener, named by the core's host;
/// the core's request for the UE reaches it from the UE-facing listener, named by the
/// public host.
#[tokio::test]
async fn each_face_sends_from_its_own_listener_with_its_own_advertised_host() {
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let proxy = start(peer.local_addr().unwrap(), true).await;
    assert_ne!(proxy.edge, proxy.core);

    // UE -> edge -> core peer.
    let up = message(ue.local_addr().unwrap(), "sip:peer@y", "z9hG4bKup1");
    ue.send_to(up.as_bytes(), proxy.edge).await.unwrap();
    let (req, from) = recv_from(&peer).await;
    assert_eq!(from, proxy.core, "sent from the core listener");
    let via = values(&req, &HeaderName::Via);
    assert!(
        via[0].starts_with(&format!("SIP/2.0/UDP {CORE}:{};", proxy.core.port())),
        "{via:?}"
    );
    let rr = values(&req, &HeaderName::RecordRoute);
    assert_eq!(rr.len(), 2, "double Record-Route: {rr:?}");
    assert!(
        rr[0].contains(&format!("{CORE}:{}", proxy.core.port())),
        "{rr:?}"
    );
    assert!(
        rr[1].contains(&format!("{EDGE}:{}", proxy.edge.port())),
        "{rr:?}"
    );
    peer.send_to(&response(&req, 200).to_bytes(), from)
        .await
        .unwrap();
    let (ok, from) = recv_from(&ue).await;
    assert_eq!(ok.status(), Some(200));
    assert_eq!(from, proxy.edge, "the answer comes from where the UE sent");

    // Core peer -> core listener -> the UE over its flow.
    let down = message(peer.local_addr().unwrap(), "sip:ue@x", "z9hG4bKdown1");
    peer.send_to(down.as_bytes(), proxy.core).await.unwrap();
    let (req, from) = recv_from(&ue).await;
    assert_eq!(req.method(), Some(&Method::Message));
    assert_eq!(from, proxy.edge, "sent over the UE's flow");
    let via = values(&req, &HeaderName::Via);
    assert!(
        via[0].starts_with(&format!("SIP/2.0/UDP {EDGE}:{};", proxy.edge.port())),
        "{via:?}"
    );
    let rr = values(&req, &HeaderName::RecordRoute);
    assert_eq!(rr.len(), 2, "{rr:?}");
    assert!(
        rr[0].contains(&format!("{EDGE}:{}", proxy.edge.port())),
        "{rr:?}"
    );
    assert!(
        rr[1].contains(&format!("{CORE}:{}", proxy.core.port())),
        "{rr:?}"
    );
}

/// Without a core face, everything leaves from the one listener, named once.
#[tokio::test]
async fn one_face_sends_everything_from_its_listener() {
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let proxy = start(peer.local_addr().unwrap(), false).await;
    let up = message(ue.local_addr().unwrap(), "sip:peer@y", "z9hG4bKone1");
    ue.send_to(up.as_bytes(), proxy.edge).await.unwrap();
    let (req, from) = recv_from(&peer).await;
    assert_eq!(from, proxy.edge);
    let rr = values(&req, &HeaderName::RecordRoute);
    assert_eq!(rr.len(), 1, "{rr:?}");
    assert!(
        rr[0].contains(&format!("{EDGE}:{}", proxy.edge.port())),
        "{rr:?}"
    );
}
