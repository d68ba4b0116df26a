//! Per-shard client ports (`sip/README.md`, "Shards"): with several shards each one
//! sends its UDP client transactions from a socket of its own and writes that port in
//! our Via, so that a next hop answering to the Via's sent-by reaches the shard that
//! sent the request, with no handover. Only responses are taken on those ports; the
//! ports are ours in loop detection and for a stray 2xx. With one shard nothing of it
//! exists: requests leave from the listener with its port in Via.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ims_sip::message::build::response;
use ims_sip::proxy::engine::{Decision, EngineConfig, Forward, Policy, ProxyEngine};
use ims_sip::transport::Source;
use ims_sip::{HeaderName, SipMessage};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::timeout;

mod engine_support;
use engine_support::{recv_udp as recv, start_on_udp, uas_to, udp_clients, udp_request, AnswerTo};

/// Forwards everything to the target once set, else answers 200 itself; counts what
/// it decides.
#[derive(Clone, Default)]
struct ToTarget {
    target: Arc<OnceLock<String>>,
    decided: Arc<AtomicU64>,
}

impl Policy for ToTarget {
    async fn decide(&self, request: &SipMessage, _source: &Source) -> Decision {
        self.decided.fetch_add(1, Ordering::Relaxed);
        match self.target.get() {
            Some(target) => Decision::Forward(Forward {
                targets: vec![target.clone()],
                ..Forward::default()
            }),
            None => Decision::Respond(response(request, 200)),
        }
    }
}

/// An engine of `shards` over one UDP listener, T1 20 ms, deciding with `policy`; its
/// listener's address.
async fn start(shards: usize, policy: ToTarget) -> (ProxyEngine, SocketAddr) {
    let mut config = EngineConfig::default();
    config.timers.t1 = Duration::from_millis(20);
    config.timers.t4 = Duration::from_millis(100);
    config.shards = shards;
    start_on_udp(policy, config).await
}

/// The sent-by of each request a [`uas_to`] got.
type Seen = Arc<std::sync::Mutex<Vec<SocketAddr>>>;

/// An engine of `shards` forwarding everything to a UAS that answers to the Via's
/// sent-by ([`AnswerTo::ViaSentBy`]): the engine, its listener, the UAS's task and the
/// sent-by of each request it got.
async fn start_to_uas(shards: usize) -> (ProxyEngine, SocketAddr, JoinHandle<()>, Seen) {
    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let policy = ToTarget::default();
    policy
        .target
        .set(format!("sip:b@{}", uas.local_addr().unwrap()))
        .unwrap();
    let (engine, proxy) = start(shards, policy).await;
    let (task, seen) = uas_to(uas, 200, AnswerTo::ViaSentBy);
    (engine, proxy, task, seen)
}

/// A UAS that answers to the Via's sent-by, each answer from a new port (which the
/// kernel's hash would give to either listener socket): every response comes back on
/// the client socket of the shard that sent the request, none is handed over, and
/// every call and OPTIONS completes. The sent-by ports are the two shards' client
/// ports, never the listener's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_to_the_via_port_reach_the_owning_shard_without_handover() {
    let (engine, proxy, task, seen) = start_to_uas(2).await;
    let mut codes = udp_clients(proxy, "INVITE", 32, "call").await;
    codes.extend(udp_clients(proxy, "OPTIONS", 32, "opt").await);
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");

    let stats = engine.stats();
    let per_shard = [0, 1].map(|i| stats.shard_messages[i].load(Ordering::Relaxed));
    assert!(
        per_shard.iter().all(|n| *n > 0),
        "both shards read: {per_shard:?}"
    );
    assert_eq!(stats.response_handovers.load(Ordering::Relaxed), 0);
    assert_eq!(stats.handovers.load(Ordering::Relaxed), 0);

    let client_ports: BTreeSet<u16> = engine
        .transport()
        .client_addrs()
        .map(|(addr, _)| addr.port())
        .collect();
    assert_eq!(client_ports.len(), 2, "one client socket per shard");
    assert!(!client_ports.contains(&proxy.port()));
    let via_ports: BTreeSet<u16> = seen.lock().unwrap().iter().map(|a| a.port()).collect();
    assert_eq!(
        via_ports, client_ports,
        "our Via names the shards' client ports"
    );
    task.abort();
}

/// With one shard (the default) there is no client socket: requests leave from the
/// listener with its port in our Via.
#[tokio::test]
async fn one_shard_sends_from_the_listener_with_its_port_in_via() {
    let (engine, proxy, task, seen) = start_to_uas(1).await;
    let codes = udp_clients(proxy, "OPTIONS", 4, "one").await;
    assert_eq!(codes, [200; 4]);
    assert_eq!(engine.transport().client_addrs().count(), 0);
    assert!(seen.lock().unwrap().iter().all(|a| *a == proxy));
    task.abort();
}

/// A request (or garbage) sent to a shard's client port is dropped unanswered and
/// never reaches the policy, counted; the same request to the listener is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_a_client_port_is_dropped_unanswered() {
    let policy = ToTarget::default();
    let decided = policy.decided.clone();
    let (engine, proxy) = start(2, policy).await;
    let ports: Vec<SocketAddr> = engine
        .transport()
        .client_addrs()
        .map(|(addr, _)| addr)
        .collect();
    assert_eq!(ports.len(), 2);
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let via = client.local_addr().unwrap();
    for (i, port) in ports.iter().enumerate() {
        let req = udp_request("OPTIONS", via, &format!("z9hG4bKclient{i}"));
        client.send_to(req.as_bytes(), port).await.unwrap();
        client
            .send_to(b"OPTIONS garbage\r\n\r\n", port)
            .await
            .unwrap();
    }
    let mut buf = vec![0u8; 65_535];
    let answer = timeout(Duration::from_millis(300), client.recv(&mut buf)).await;
    assert!(answer.is_err(), "answered on a client port");
    let stats = engine.stats();
    assert_eq!(stats.client_port_dropped.load(Ordering::Relaxed), 4);
    assert_eq!(stats.requests_in_total(), 0);
    assert_eq!(decided.load(Ordering::Relaxed), 0);

    let req = udp_request("OPTIONS", via, "z9hG4bKlistener");
    client.send_to(req.as_bytes(), proxy).await.unwrap();
    assert_eq!(recv(&client).await.status(), Some(200));
    assert_eq!(decided.load(Ordering::Relaxed), 1);
}

/// A request the policy forwards to our own listener comes back with our Via on a
/// client port: the second pass spirals (its Request-URI changed), the third one is
/// the second again and is refused 482 (RFC 3261 §16.3 step 4), which goes back to
/// the client instead of looping until Max-Forwards runs out (483).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_through_the_client_ports_is_detected() {
    let policy = ToTarget::default();
    let target = policy.target.clone();
    let (engine, proxy) = start(2, policy).await;
    target.set(format!("sip:b@{proxy}")).unwrap();
    let codes = udp_clients(proxy, "OPTIONS", 4, "loop").await;
    assert_eq!(codes, [482; 4]);
    assert!(engine.stats().responses_out_by_code.get(482) >= 4);
}

/// A 2xx to INVITE that no client transaction has, whose top Via is ours with a
/// shard's client port, is forwarded per the next Via (RFC 3261 §16.7, §18.2.2), our
/// Via removed; it is taken on the client port it arrives at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stray_2xx_with_our_client_port_in_via_is_forwarded() {
    let (engine, _proxy) = start(2, ToTarget::default()).await;
    let port = engine.transport().client_addrs().next().unwrap().0;
    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let caller_addr = caller.local_addr().unwrap();
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {port};branch=z9hG4bKS00stray\r\n\
Via: SIP/2.0/UDP {caller_addr};branch=z9hG4bKcaller\r\nFrom: <sip:a@x>;tag=1\r\n\
To: <sip:b@y>;tag=2\r\nCall-ID: stray@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    uas.send_to(ok.as_bytes(), port).await.unwrap();
    let forwarded = recv(&caller).await;
    assert_eq!(forwarded.status(), Some(200));
    let vias: Vec<_> = forwarded.headers.values(&HeaderName::Via).collect();
    assert_eq!(vias.len(), 1, "our Via removed");
    assert!(std::str::from_utf8(&vias[0])
        .unwrap()
        .contains("z9hG4bKcaller"));
}
