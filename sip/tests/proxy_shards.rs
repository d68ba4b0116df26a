//! The proxy engine in two shards (`EngineConfig::shards`) over loopback UDP: each shard
//! has its own socket on the listener's address (`SO_REUSEPORT`), and the kernel picks
//! the socket by the datagram's addresses and ports. Many clients from many ports reach
//! both shards and all complete; a response that reaches the shard not owning its
//! transaction is handed to the owner (our Via's branch names it); a CANCEL and an ACK
//! sent from another port than their INVITE reach its owner through the shared map of
//! INVITE server transactions; Timer F answers 408 on each shard.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ims_sip::message::build::response;
use ims_sip::proxy::engine::{Decision, EngineConfig, EngineStats, Forward, Policy, ProxyEngine};
use ims_sip::transport::{Source, TransportConfig};
use ims_sip::{Method, SipMessage};
use tokio::net::UdpSocket;
use tokio::time::timeout;

mod engine_support;
use engine_support::{recv_udp as recv, uas_to, udp_clients, udp_request, AnswerTo};

/// Forwards everything to `target`, or answers 200 itself without one.
struct ToTarget {
    target: Option<String>,
}

impl Policy for ToTarget {
    async fn decide(&self, request: &SipMessage, _source: &Source) -> Decision {
        match &self.target {
            Some(target) => Decision::Forward(Forward {
                targets: vec![target.clone()],
                ..Forward::default()
            }),
            None => Decision::Respond(response(request, 200)),
        }
    }
}

/// A two-shard engine forwarding to `target`, T1 20 ms (Timer F 1.28 s).
async fn start(target: SocketAddr) -> (ProxyEngine, SocketAddr) {
    let policy = ToTarget {
        target: Some(format!("sip:b@{target}")),
    };
    let engine = start_with(policy).await;
    let addr = engine.transport().local_addrs()[0].1;
    (engine, addr)
}

/// A two-shard engine with UDP and TCP listeners deciding with `policy`.
async fn start_with(policy: ToTarget) -> ProxyEngine {
    let mut config = EngineConfig::default();
    config.timers.t1 = Duration::from_millis(20);
    config.timers.t4 = Duration::from_millis(100);
    config.shards = 2;
    let transport = TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        tcp: vec!["127.0.0.1:0".parse().unwrap()],
        ..TransportConfig::default()
    };
    ProxyEngine::start(transport, config, policy).await.unwrap()
}

fn per_shard(stats: &EngineStats) -> [u64; 2] {
    [0, 1].map(|i| stats.shard_messages[i].load(Ordering::Relaxed))
}

/// Many transactions from many ports reach both shards' sockets and all complete; the
/// responses, sent from ports of their own to the listener (a next hop that ignores
/// the shard's client port in our Via), reach either shard and those that reach the
/// other one are handed to the shard whose branch they carry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_reaching_the_other_shard_are_handed_over_and_all_complete() {
    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (engine, proxy) = start(uas.local_addr().unwrap()).await;
    // The UAS answers each request from a new socket (another source port, so the
    // kernel may give the response to either shard's socket).
    let (task, _) = uas_to(uas, 200, AnswerTo::Fixed(proxy));
    let codes = udp_clients(proxy, "OPTIONS", 64, "opt").await;
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");
    let stats = engine.stats();
    let [first, second] = per_shard(stats);
    assert!(
        first > 0 && second > 0,
        "both shards read: {first} and {second}"
    );
    // 64 requests and 64 responses, and the answers to any retransmission (T1 20 ms).
    assert!(first + second >= 128, "{first} + {second}");
    assert!(stats.handovers.load(Ordering::Relaxed) > 0);
    assert!(stats.response_handovers.load(Ordering::Relaxed) > 0);
    assert_eq!(stats.handovers_dropped.load(Ordering::Relaxed), 0);
    task.abort();
}

/// A UAS that rings for an INVITE and, on its CANCEL, answers 200 and the INVITE 487
/// (RFC 3261 §9.2); it counts the requests that reach it.
fn ringing_uas(socket: UdpSocket) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        let mut invites = std::collections::HashMap::new();
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let req = SipMessage::parse(buf[..n].to_vec()).unwrap();
            let call = req
                .headers
                .get_str(&ims_sip::HeaderName::CallId)
                .unwrap()
                .to_string();
            let answers = match req.method() {
                Some(Method::Invite) => {
                    invites.insert(call, req.clone());
                    vec![response(&req, 180)]
                }
                Some(Method::Cancel) => {
                    let invite = invites.get(&call).unwrap();
                    vec![response(&req, 200), response(invite, 487)]
                }
                _ => Vec::new(),
            };
            for answer in answers {
                socket.send_to(&answer.to_bytes(), from).await.unwrap();
            }
        }
    })
}

/// CANCELs (and the ACKs of the 487s) sent from another port than their INVITE, so that
/// some reach the shard without the INVITE: each is handed to the INVITE's shard, which
/// cancels the branch (487 upstream) and absorbs the ACK (no 487 retransmission).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_and_ack_from_another_port_reach_the_invites_shard() {
    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uas_addr = uas.local_addr().unwrap();
    let task = ringing_uas(uas);
    let (engine, proxy) = start(uas_addr).await;
    for i in 0..12 {
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let via = caller.local_addr().unwrap();
        let branch = format!("z9hG4bKcall{i}");
        let invite = udp_request("INVITE", via, &branch);
        caller.send_to(invite.as_bytes(), proxy).await.unwrap();
        let mut ringing = false;
        while !ringing {
            ringing = recv(&caller).await.status() == Some(180);
        }
        // The CANCEL and ACK carry the INVITE's Via (same branch and sent-by) but leave
        // from another port: `rport` sends their answers there.
        let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let cancel = udp_request("CANCEL", via, &branch);
        other.send_to(cancel.as_bytes(), proxy).await.unwrap();
        assert_eq!(recv(&other).await.status(), Some(200), "CANCEL {i}");
        let final_response = recv(&caller).await;
        assert_eq!(final_response.status(), Some(487), "INVITE {i}");
        let to = final_response
            .headers
            .get_str(&ims_sip::HeaderName::To)
            .unwrap()
            .to_string();
        let ack = udp_request("ACK", via, &branch).replace("To: <sip:b@y>", &format!("To: {to}"));
        other.send_to(ack.as_bytes(), proxy).await.unwrap();
        // Timer G (T1 = 20 ms) would have sent the 487 again within 200 ms.
        let mut buf = vec![0u8; 65_535];
        let again = timeout(Duration::from_millis(300), caller.recv(&mut buf)).await;
        assert!(
            again.is_err(),
            "487 retransmitted: the ACK {i} was not absorbed"
        );
    }
    let stats = engine.stats();
    assert!(
        stats.handovers.load(Ordering::Relaxed) > 0,
        "some CANCEL or ACK reached the other shard"
    );
    assert_eq!(stats.responses_out_by_code.get(487), 12);
    task.abort();
}

/// A next hop that never answers: Timer F (64*T1) ends each shard's transactions with
/// 408 (RFC 3261 §16.8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timer_f_answers_408_on_both_shards() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (engine, proxy) = start(silent.local_addr().unwrap()).await;
    let codes = udp_clients(proxy, "OPTIONS", 16, "silent").await;
    assert!(codes.iter().all(|c| *c == 408), "{codes:?}");
    let [first, second] = per_shard(engine.stats());
    assert!(
        first > 0 && second > 0,
        "both shards read: {first} and {second}"
    );
    drop(silent);
}

/// TCP connections are shared among the shards by connection id: over 16 connections
/// both shards read, and each connection's two requests are answered on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_are_spread_over_the_shards_and_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let engine = start_with(ToTarget { target: None }).await;
    let tcp = engine
        .transport()
        .local_addr(ims_sip::transport::TransportKind::Tcp)
        .unwrap();
    for i in 0..16 {
        let mut stream = tokio::net::TcpStream::connect(tcp).await.unwrap();
        let from = stream.local_addr().unwrap();
        for j in 0..2 {
            let req = udp_request("OPTIONS", from, &format!("z9hG4bKtcp{i}x{j}"))
                .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
            stream.write_all(req.as_bytes()).await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = timeout(Duration::from_secs(5), stream.read(&mut buf))
                    .await
                    .expect("an answer within 5 s")
                    .unwrap();
                assert!(n > 0, "connection closed");
                got.extend_from_slice(&buf[..n]);
            }
            assert!(
                got.starts_with(b"SIP/2.0 200"),
                "{}",
                String::from_utf8_lossy(&got)
            );
        }
    }
    let [first, second] = per_shard(engine.stats());
    assert!(
        first > 0 && second > 0,
        "both shards read: {first} and {second}"
    );
    assert_eq!(first + second, 32);
}

/// The kernel picks a shard's socket by the datagram's addresses and ports: a request
/// sent again from the same port reaches the shard that has its transaction (absorbed
/// as a retransmission, answered again), never the other one (which would take it for
/// a new request). 32 clients from their own ports, each sending its request twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retransmission_from_the_same_port_reaches_the_same_shard() {
    let engine = start_with(ToTarget { target: None }).await;
    let proxy = engine.transport().local_addrs()[0].1;
    let mut clients = Vec::new();
    for i in 0..32 {
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let via = client.local_addr().unwrap();
        let req = udp_request("OPTIONS", via, &format!("z9hG4bKagain{i}"));
        client.send_to(req.as_bytes(), proxy).await.unwrap();
        assert_eq!(recv(&client).await.status(), Some(200));
        client.send_to(req.as_bytes(), proxy).await.unwrap();
        assert_eq!(recv(&client).await.status(), Some(200), "answered again");
        clients.push(client);
    }
    let stats = engine.stats();
    let [first, second] = per_shard(stats);
    assert!(
        first > 0 && second > 0,
        "both shards read: {first} and {second}"
    );
    assert_eq!(
        stats.requests_in_total(),
        32,
        "no retransmission taken for new"
    );
    assert_eq!(stats.retransmissions_received.load(Ordering::Relaxed), 32);
    assert_eq!(stats.handovers.load(Ordering::Relaxed), 0);
}
