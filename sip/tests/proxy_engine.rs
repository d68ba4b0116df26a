//! The proxy engine in process, over loopback UDP: a policy's own answer, forking with
//! best-response selection (RFC 3261 §16.7), stateless ACK forwarding with a stable
//! branch (§16.11), a CANCEL matching nothing (481), the counters, serial forking
//! (`Forward::on_failure`, `Forward::no_response_timeout`), and next hops named by host
//! name (RFC 3263 §4.2 A/AAAA through the system resolver).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ims_sip::message::build::response;
use ims_sip::proxy::engine::{Decision, EngineConfig, Forward, Policy, ProxyEngine, METHODS};
use ims_sip::transport::{Source, TransportConfig};
use ims_sip::{HeaderName, Method, SipMessage};
use tokio::net::UdpSocket;
use tokio::time::timeout;

mod engine_support;
use engine_support::{recv_udp as recv, AnswerFrom};

/// Answers REGISTER itself (as a registrar would); forks everything else to `targets`,
/// each branch with its own pre-loaded Route (`target_routes`).
struct TestPolicy {
    targets: Vec<String>,
    target_routes: Vec<Vec<String>>,
}

impl Policy for TestPolicy {
    async fn decide(&self, request: &SipMessage, _source: &Source) -> Decision {
        if request.method() == Some(&Method::Register) {
            return Decision::Respond(response(request, 200));
        }
        Decision::Forward(Forward {
            targets: self.targets.clone(),
            record_route: true,
            target_routes: self.target_routes.clone(),
            ..Forward::default()
        })
    }
}

async fn start(targets: Vec<String>) -> (ProxyEngine, SocketAddr) {
    let mut config = EngineConfig::default();
    config.timers.t1 = Duration::from_millis(20);
    config.timers.t4 = Duration::from_millis(100);
    start_with(targets, config).await
}

async fn start_with(targets: Vec<String>, config: EngineConfig) -> (ProxyEngine, SocketAddr) {
    start_policy(
        TestPolicy {
            targets,
            target_routes: Vec::new(),
        },
        config,
    )
    .await
}

async fn start_policy(policy: TestPolicy, config: EngineConfig) -> (ProxyEngine, SocketAddr) {
    engine_support::start_on_udp(policy, config).await
}

fn request(method: &str, from: SocketAddr, ruri: &str, branch: &str) -> String {
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch={branch};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: {branch}@x\r\n\
CSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Sends a request from a new client socket, which is returned for the answers.
async fn send(proxy: SocketAddr, method: &str, ruri: &str, branch: &str) -> UdpSocket {
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let from = client.local_addr().unwrap();
    let req = request(method, from, ruri, branch);
    client.send_to(req.as_bytes(), proxy).await.unwrap();
    client
}

/// A UAS answering every request with `code` from the port the request reached.
async fn uas(code: u16) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    engine_support::uas(code, AnswerFrom::ItsPort).await
}

#[tokio::test]
async fn policy_answer_is_sent_and_counted() {
    let (engine, proxy) = start(Vec::new()).await;
    let client = send(proxy, "REGISTER", "sip:y", "z9hG4bKreg1").await;
    let resp = recv(&client).await;
    assert_eq!(resp.status(), Some(200));
    let stats = engine.stats();
    assert_eq!(stats.requests_in_total(), 1);
    assert_eq!(stats.responses_out[1].load(Ordering::Relaxed), 1);
    assert_eq!(stats.responses_out[3].load(Ordering::Relaxed), 0);
    // Labelled by method and by code; the hop's latency observed once for REGISTER.
    let register = METHODS.iter().position(|m| *m == "REGISTER").unwrap();
    assert_eq!(stats.requests_in[register].load(Ordering::Relaxed), 1);
    assert_eq!(stats.responses_out_by_code.get(200), 1);
    let observed: u64 = stats.latency[register]
        .buckets
        .iter()
        .map(|b| b.load(Ordering::Relaxed))
        .sum();
    assert_eq!(observed, 1);
}

#[tokio::test]
async fn forked_request_forwards_the_2xx_over_a_4xx() {
    let (busy, t1) = uas(486).await;
    let (ok, t2) = uas(200).await;
    let targets = vec![format!("sip:b@{busy}"), format!("sip:b@{ok}")];
    let (engine, proxy) = start(targets).await;
    let client = send(proxy, "OPTIONS", "sip:b@y", "z9hG4bKfork1").await;
    let resp = recv(&client).await;
    assert_eq!(resp.status(), Some(200));
    // Our Via was removed: the client sees only its own.
    assert_eq!(resp.headers.values(&HeaderName::Via).count(), 1);
    assert_eq!(engine.stats().responses_out[1].load(Ordering::Relaxed), 1);
    // The answer counted by code as it came in.
    assert_eq!(engine.stats().responses_in_by_code.get(200), 1);
    t1.abort();
    t2.abort();
}

#[tokio::test]
async fn ack_is_forwarded_statelessly_with_a_stable_branch() {
    let (engine, proxy) = start(Vec::new()).await;
    let next = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let next_addr = next.local_addr().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let from = client.local_addr().unwrap();
    let ack = request("ACK", from, &format!("sip:b@{next_addr}"), "z9hG4bKack1");
    let mut branches = Vec::new();
    for _ in 0..2 {
        client.send_to(ack.as_bytes(), proxy).await.unwrap();
        let fwd = recv(&next).await;
        assert_eq!(fwd.method(), Some(&Method::Ack));
        assert!(fwd.headers.get(&HeaderName::RecordRoute).is_none());
        let top = fwd.headers.get_str(&HeaderName::Via).unwrap().to_string();
        branches.push(top);
    }
    assert_eq!(
        branches[0], branches[1],
        "a retransmitted ACK keeps our branch"
    );
    assert!(!branches[0].contains("z9hG4bKack1"));
    // The ACK was never answered.
    let mut buf = [0u8; 1024];
    assert!(timeout(Duration::from_millis(200), client.recv(&mut buf))
        .await
        .is_err());
    assert_eq!(engine.stats().requests_in_total(), 2);
}

#[tokio::test]
async fn next_hops_named_by_host_name_are_resolved() {
    // `localhost` is in every /etc/hosts; the engine has no static entry for it.
    let (ok, task) = uas(200).await;
    let (engine, proxy) = start(vec![format!("sip:b@localhost:{}", ok.port())]).await;
    let client = send(proxy, "OPTIONS", "sip:b@y", "z9hG4bKname1").await;
    assert_eq!(recv(&client).await.status(), Some(200));
    // An ACK (stateless, no policy) to a name: looked up aside, then sent.
    let next = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = next.local_addr().unwrap().port();
    let from = client.local_addr().unwrap();
    let ack = request(
        "ACK",
        from,
        &format!("sip:b@LocalHost:{port}"),
        "z9hG4bKname2",
    );
    client.send_to(ack.as_bytes(), proxy).await.unwrap();
    assert_eq!(recv(&next).await.method(), Some(&Method::Ack));
    // A name that never resolves (RFC 6761 §6.4): the caller gets an error answer.
    let (_e2, proxy2) = start(vec!["sip:b@no-such-host.invalid:5060".into()]).await;
    let client = send(proxy2, "OPTIONS", "sip:b@y", "z9hG4bKname3").await;
    let answer = recv(&client).await.status().unwrap();
    assert!(answer >= 400, "{answer}");
    drop(engine);
    task.abort();
}

#[tokio::test]
async fn cancel_matching_no_transaction_gets_481() {
    let (_engine, proxy) = start(Vec::new()).await;
    let client = send(proxy, "CANCEL", "sip:b@y", "z9hG4bKnone").await;
    assert_eq!(recv(&client).await.status(), Some(481));
}

#[tokio::test]
async fn transactions_active_returns_to_zero() {
    let (ok, t) = uas(200).await;
    let (engine, proxy) = start(vec![format!("sip:b@{ok}")]).await;
    let client = send(proxy, "OPTIONS", "sip:b@y", "z9hG4bKact1").await;
    assert_eq!(recv(&client).await.status(), Some(200));
    let stats = Arc::clone(engine.stats());
    // Timers J (64*T1 = 1.28 s over UDP) and K (T4) end both transactions.
    let drained = timeout(Duration::from_secs(10), async {
        while stats.transactions_active.load(Ordering::Relaxed) != 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(drained.is_ok());
    t.abort();
}

#[tokio::test]
async fn udp_response_without_rport_and_its_retransmission_go_to_the_via_sent_by_port() {
    let (engine, proxy) = start(Vec::new()).await;
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let listener = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sent_by = listener.local_addr().unwrap();
    // Sent from one port, Via names another and asks no rport (RFC 3261 §18.2.2).
    let reg = request("REGISTER", sent_by, "sip:y", "z9hG4bKvia1").replace(";rport", "");
    sender.send_to(reg.as_bytes(), proxy).await.unwrap();
    let first = recv(&listener).await;
    assert_eq!(first.status(), Some(200));
    // Within Timer J the server transaction answers a retransmission from what it
    // sent (§17.2.2), to the same place; the policy is not asked again.
    sender.send_to(reg.as_bytes(), proxy).await.unwrap();
    let again = recv(&listener).await;
    assert_eq!(again.to_bytes(), first.to_bytes());
    let stats = engine.stats();
    assert_eq!(stats.requests_in_total(), 1);
    assert_eq!(stats.responses_out[1].load(Ordering::Relaxed), 1);
    // Counted as a retransmission received, and its answer as one sent.
    assert_eq!(stats.retransmissions_received.load(Ordering::Relaxed), 1);
    assert_eq!(stats.retransmissions_sent.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn timer_c_cancels_a_ringing_branch_and_the_caller_gets_487() {
    // A UAS that rings, then answers CANCEL with 200 and the INVITE with 487.
    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uas_addr = uas.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        let mut invite = None;
        while let Ok((n, from)) = uas.recv_from(&mut buf).await {
            let req = SipMessage::parse(buf[..n].to_vec()).unwrap();
            let answers = match req.method() {
                Some(Method::Invite) => {
                    invite = Some(req.clone());
                    vec![response(&req, 180)]
                }
                Some(Method::Cancel) => {
                    let inv = invite.as_ref().unwrap();
                    vec![response(&req, 200), response(inv, 487)]
                }
                _ => Vec::new(),
            };
            for a in answers {
                uas.send_to(&a.to_bytes(), from).await.unwrap();
            }
        }
    });
    // Default T1 (Timer B 32 s), Timer C 300 ms.
    let mut config = EngineConfig::default();
    config.timers.timer_c = Some(Duration::from_millis(300));
    let (_engine, proxy) = start_with(vec![format!("sip:b@{uas_addr}")], config).await;
    let client = send(proxy, "INVITE", "sip:b@y", "z9hG4bKtimerc").await;
    let mut codes = Vec::new();
    while codes.last().is_none_or(|c| *c < 200) {
        codes.push(recv(&client).await.status().unwrap());
    }
    assert_eq!(codes.last(), Some(&487), "{codes:?}");
    assert!(codes.contains(&180), "{codes:?}");
    task.abort();
}

/// What one forked UAS saw: the INVITE it got, and whether a CANCEL reached it.
#[derive(Debug, Default)]
struct UasLog {
    invite: Option<SipMessage>,
    cancelled: bool,
}

/// A UAS that rings at once and, when `answer` is set, answers 200 after `delay`; a
/// CANCEL gets 200 and the INVITE 487 (RFC 3261 §9.2).
fn ringing_uas(
    socket: UdpSocket,
    answer: bool,
    delay: Duration,
) -> tokio::task::JoinHandle<UasLog> {
    tokio::spawn(async move {
        let mut log = UasLog::default();
        let mut buf = vec![0u8; 65_535];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while let Ok(Ok((n, from))) =
            tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await
        {
            let req = SipMessage::parse(buf[..n].to_vec()).unwrap();
            let answers = match req.method() {
                Some(Method::Invite) if log.invite.is_none() => {
                    log.invite = Some(req.clone());
                    vec![response(&req, 180)]
                }
                Some(Method::Cancel) => {
                    log.cancelled = true;
                    let inv = log.invite.as_ref().unwrap();
                    vec![response(&req, 200), response(inv, 487)]
                }
                _ => Vec::new(),
            };
            for a in answers {
                socket.send_to(&a.to_bytes(), from).await.unwrap();
            }
            if log.cancelled {
                return log;
            }
            if let Some(invite) = log.invite.as_ref().filter(|_| answer) {
                tokio::time::sleep(delay).await;
                let ok = response(invite, 200);
                socket.send_to(&ok.to_bytes(), from).await.unwrap();
                return log;
            }
        }
        log
    })
}

#[tokio::test]
async fn parallel_fork_with_per_branch_routes_first_2xx_wins_and_cancels_the_other() {
    // Two contacts of one user, each reached through its own Path (RFC 3327): the
    // Route pre-loaded on each branch names the UAS itself, with a per-branch user part.
    let answering = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ringing = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (a, r) = (
        answering.local_addr().unwrap(),
        ringing.local_addr().unwrap(),
    );
    let policy = TestPolicy {
        targets: vec![format!("sip:bob@{a}"), format!("sip:bob@{r}")],
        target_routes: vec![
            vec![format!("<sip:flowA@{a};lr>")],
            vec![format!("<sip:flowR@{r};lr>")],
        ],
    };
    let answered = ringing_uas(answering, true, Duration::from_millis(100));
    let cancelled = ringing_uas(ringing, false, Duration::ZERO);
    let mut config = EngineConfig::default();
    config.timers.t1 = Duration::from_millis(50);
    let (_engine, proxy) = start_policy(policy, config).await;
    let client = send(proxy, "INVITE", "sip:bob@y", "z9hG4bKfork2").await;
    let mut codes = Vec::new();
    while codes.last().is_none_or(|c| *c < 200) {
        codes.push(recv(&client).await.status().unwrap());
    }
    assert_eq!(codes.last(), Some(&200), "{codes:?}");
    assert!(codes.contains(&180), "{codes:?}");

    let answered = answered.await.unwrap();
    let cancelled = cancelled.await.unwrap();
    let route = |log: &UasLog| {
        let inv = log.invite.as_ref().expect("the branch got the INVITE");
        let ruri = String::from_utf8(inv.request().unwrap().uri.to_vec()).unwrap();
        let routes: Vec<_> = inv.headers.values(&HeaderName::Route).collect();
        let rr = inv.headers.values(&HeaderName::RecordRoute).count();
        (ruri, routes, rr)
    };
    assert_eq!(
        route(&answered),
        (
            format!("sip:bob@{a}"),
            vec![Bytes::from(format!("<sip:flowA@{a};lr>"))],
            1
        )
    );
    assert_eq!(
        route(&cancelled),
        (
            format!("sip:bob@{r}"),
            vec![Bytes::from(format!("<sip:flowR@{r};lr>"))],
            1
        )
    );
    assert!(!answered.cancelled, "the answering branch is not cancelled");
    assert!(cancelled.cancelled, "the other branch gets a CANCEL");
}

/// Serial forking: round `i` goes to `rounds[i]` (target, no-response timeout); when it
/// fails, `on_failure` (tag = the next round's index) sends the request to the next
/// round while the response is a 408 or 5xx, and lets anything else go upstream.
struct SerialPolicy {
    rounds: Vec<(String, Option<Duration>)>,
    /// The responses `on_failure` saw.
    failures: Arc<std::sync::Mutex<Vec<u16>>>,
}

impl SerialPolicy {
    fn round(&self, i: usize) -> Decision {
        let (target, limit) = self.rounds[i].clone();
        Decision::Forward(Forward {
            targets: vec![target],
            record_route: true,
            no_response_timeout: limit,
            on_failure: (i + 1 < self.rounds.len()).then(|| (i + 1).to_string()),
            ..Forward::default()
        })
    }
}

impl Policy for SerialPolicy {
    async fn decide(&self, _request: &SipMessage, _source: &Source) -> Decision {
        self.round(0)
    }

    async fn on_failure(
        &self,
        _request: &SipMessage,
        _source: &Source,
        tag: &str,
        response: &SipMessage,
    ) -> Option<Decision> {
        let code = response.status()?;
        self.failures.lock().unwrap().push(code);
        let next: usize = tag.parse().ok()?;
        (code == 408 || code >= 500).then(|| self.round(next))
    }
}

/// A socket that takes a request and never answers; true once it got one (within 5 s).
fn silent_peer(socket: UdpSocket) -> tokio::task::JoinHandle<bool> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        matches!(
            timeout(Duration::from_secs(5), socket.recv_from(&mut buf)).await,
            Ok(Ok(_))
        )
    })
}

/// A proxy with a [`SerialPolicy`] over `rounds`, and the failures it will see.
async fn serial(
    rounds: Vec<(String, Option<Duration>)>,
) -> (ProxyEngine, SocketAddr, SerialPolicyLog) {
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let policy = SerialPolicy {
        rounds,
        failures: failures.clone(),
    };
    let transport = TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        ..TransportConfig::default()
    };
    // Default T1: Timer B (32 s) is far beyond the no-response timeouts used here.
    let engine = ProxyEngine::start(transport, EngineConfig::default(), policy)
        .await
        .unwrap();
    let addr = engine.transport().local_addrs()[0].1;
    (engine, addr, failures)
}

/// The failures a [`SerialPolicy`] saw.
type SerialPolicyLog = Arc<std::sync::Mutex<Vec<u16>>>;

/// The status codes the client gets until a final one.
async fn codes_until_final(client: &UdpSocket) -> Vec<u16> {
    let mut codes = Vec::new();
    while codes.last().is_none_or(|c| *c < 200) {
        codes.push(recv(client).await.status().unwrap());
    }
    codes
}

#[tokio::test]
async fn a_silent_branch_is_given_up_after_its_timeout_and_the_policy_goes_on() {
    let dead = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    let dead = silent_peer(dead);
    let (ok, ok_task) = uas(200).await;
    let (_engine, proxy, failures) = serial(vec![
        (
            format!("sip:as@{dead_addr}"),
            Some(Duration::from_millis(300)),
        ),
        (format!("sip:b@{ok}"), None),
    ])
    .await;
    let client = send(proxy, "INVITE", "sip:b@y", "z9hG4bKserial1").await;
    // recv() allows 5 s per message, far below Timer B (32 s): the 408 that moved on
    // came from the no-response timeout.
    assert_eq!(codes_until_final(&client).await.last(), Some(&200));
    assert_eq!(*failures.lock().unwrap(), [408]);
    assert!(dead.await.unwrap(), "the silent peer got the INVITE");
    ok_task.abort();
}

#[tokio::test]
async fn a_5xx_moves_on_and_the_last_round_answers() {
    let (broken, t1) = uas(503).await;
    let (busy, t2) = uas(486).await;
    let (_engine, proxy, failures) = serial(vec![
        (format!("sip:as@{broken}"), Some(Duration::from_secs(5))),
        (format!("sip:b@{busy}"), None),
    ])
    .await;
    let client = send(proxy, "INVITE", "sip:b@y", "z9hG4bKserial2").await;
    // The second round's 486 goes upstream alone: the first round's 500 is forgotten.
    assert_eq!(codes_until_final(&client).await.last(), Some(&486));
    assert_eq!(*failures.lock().unwrap(), [500]);
    t1.abort();
    t2.abort();
}

#[tokio::test]
async fn a_failure_the_policy_lets_go_goes_upstream() {
    let (busy, t1) = uas(486).await;
    let (never, t2) = uas(200).await;
    let (_engine, proxy, failures) = serial(vec![
        (format!("sip:as@{busy}"), Some(Duration::from_secs(5))),
        (format!("sip:b@{never}"), None),
    ])
    .await;
    let client = send(proxy, "OPTIONS", "sip:b@y", "z9hG4bKserial3").await;
    assert_eq!(codes_until_final(&client).await.last(), Some(&486));
    assert_eq!(*failures.lock().unwrap(), [486]);
    t1.abort();
    t2.abort();
}

/// A datagram flood must not starve the engine's TCP and TLS peers: the core reads the
/// UDP sockets itself, and after each batch of datagrams it takes what the connections
/// delivered. A thread blasts REGISTERs at the UDP listener (bounded in count and time)
/// while a TCP client registers; its 200 must come while the flood goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_flood_does_not_starve_a_tcp_peer() {
    use std::sync::atomic::AtomicBool;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let transport = TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        tcp: vec!["127.0.0.1:0".parse().unwrap()],
        ..TransportConfig::default()
    };
    let policy = TestPolicy {
        targets: Vec::new(),
        target_routes: Vec::new(),
    };
    let engine = ProxyEngine::start(transport, EngineConfig::default(), policy)
        .await
        .unwrap();
    let addr = |kind| engine.transport().local_addr(kind).unwrap();
    let (udp, tcp) = (
        addr(ims_sip::transport::TransportKind::Udp),
        addr(ims_sip::transport::TransportKind::Tcp),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let blasters: Vec<_> = (0..1)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                let from = socket.local_addr().unwrap();
                let started = std::time::Instant::now();
                let mut sent = 0u64;
                // Bounded by 20 s and 20 M datagrams; a fast host sent the former
                // bound of 1 M in ~5 s, so on a loaded one the flood could end before
                // the TCP answer even though nothing starved it.
                while !stop.load(Ordering::Relaxed)
                    && sent < 20_000_000
                    && started.elapsed() < Duration::from_secs(20)
                {
                    let branch = format!("z9hG4bKflood{}x{sent}", from.port());
                    let _ =
                        socket.send_to(request("REGISTER", from, "sip:y", &branch).as_bytes(), udp);
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    // Let the flood fill the socket first.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut stream = tokio::net::TcpStream::connect(tcp).await.unwrap();
    let from = stream.local_addr().unwrap();
    let register =
        request("REGISTER", from, "sip:y", "z9hG4bKtcpflood").replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    stream.write_all(register.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let answered = timeout(Duration::from_secs(30), async {
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed");
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    // Whether the flood was still going when the answer came.
    let during_flood = blasters.iter().all(|b| !b.is_finished());
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = blasters.into_iter().map(|b| b.join().unwrap()).sum();
    assert!(
        answered.is_ok(),
        "no answer over TCP ({sent} datagrams sent)"
    );
    assert!(
        got.starts_with(b"SIP/2.0 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        during_flood,
        "the TCP answer came only after the flood ({sent} datagrams)"
    );
    assert!(
        engine.stats().requests_in_total() > 100,
        "the flood reached the engine"
    );
}

/// A burst of requests from many clients, forwarded to one UAS and answered: the
/// engine reads them in batches and writes each pass's datagrams together (requests to
/// the UAS, answers to each client); every client gets its own answer.
#[tokio::test]
async fn a_burst_from_many_clients_is_forwarded_and_answered_to_each() {
    let (ok, uas_task) = uas(200).await;
    let (engine, proxy) = start(vec![format!("sip:b@{ok}")]).await;
    let mut clients = Vec::new();
    for i in 0..100 {
        let branch = format!("z9hG4bKburst{i}");
        clients.push((
            branch.clone(),
            send(proxy, "OPTIONS", "sip:b@y", &branch).await,
        ));
    }
    for (branch, client) in &clients {
        let resp = recv(client).await;
        assert_eq!(resp.status(), Some(200));
        let call_id = resp.headers.first_value(&HeaderName::CallId).unwrap();
        assert_eq!(&call_id[..], format!("{branch}@x").as_bytes());
    }
    assert_eq!(engine.stats().requests_in_total(), 100);
    assert_eq!(engine.stats().responses_out_by_code.get(200), 100);
    uas_task.abort();
}

/// A forwarded request that the kernel refuses when the pass's datagrams are written
/// (it arrives just under the largest IPv4 UDP payload, 65 507 bytes, and no longer
/// fits with our Via and Record-Route) is a transport error of its branch: the caller
/// gets 503 (§16.9) at once, not the 408 of Timer F (1.28 s with these timers).
#[tokio::test]
async fn a_forwarded_request_the_kernel_refuses_is_answered_503() {
    let next = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let next_addr = next.local_addr().unwrap();
    let (engine, proxy) = start(vec![format!("sip:b@{next_addr}")]).await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let from = client.local_addr().unwrap();
    let head = |len: usize| {
        format!(
            "MESSAGE sip:b@y SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKhuge1;rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: huge1@x\r\n\
CSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: {len:05}\r\n\r\n"
        )
    };
    let body_len = 65_480 - head(0).len();
    let message = format!("{}{}", head(body_len), "x".repeat(body_len));
    assert_eq!(message.len(), 65_480);
    client.send_to(message.as_bytes(), proxy).await.unwrap();
    let resp = recv(&client).await;
    assert_eq!(resp.status(), Some(503));
    assert_eq!(engine.stats().responses_out_by_code.get(503), 1);
}
