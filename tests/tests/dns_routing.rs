#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Next hops by DNS (RFC 3263) against a real DNS server: dnsmasq serving a test zone
//! with NAPTR, SRV and A records on a loopback port, and the `ims-sip` proxy engine in
//! process over loopback UDP. NAPTR chooses the transport and the SRV name, SRV the
//! servers (priority first, weight shares the load), A their addresses; a URI with a
//! port or a transport skips what RFC 3263 §4 says it skips; a silent server, a closed
//! TCP port, a 503 and Timer F fail over to the next server (§4.3); static routes (IP
//! addresses, the host map, `/etc/hosts` names) send no DNS query at all.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ims_e2e::dnsmasq::{self, Dnsmasq, Record};
use ims_e2e::scratch_dir;
use ims_sip::message::build::response;
use ims_sip::message::uri::Uri;
use ims_sip::proxy::engine::{
    Decision, EngineConfig, Forward, Hop, HostCache, Policy, ProxyEngine,
};
use ims_sip::proxy::routing::NextHop;
use ims_sip::transport::{Source, TransportConfig, TransportKind};
use ims_sip::{HeaderName, Method, SipMessage};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn a(name: &str, ip: Ipv4Addr) -> Record {
    Record::A {
        name: name.into(),
        ip,
    }
}

fn srv(name: &str, target: &str, port: u16, priority: u16, weight: u16) -> Record {
    Record::Srv {
        name: name.into(),
        target: target.into(),
        port,
        priority,
        weight,
    }
}

fn naptr(name: &str, order: u16, services: &str, replacement: &str) -> Record {
    Record::Naptr {
        name: name.into(),
        order,
        preference: 10,
        services: services.into(),
        replacement: replacement.into(),
    }
}

fn dns(test: &str, records: &[Record]) -> Dnsmasq {
    assert!(
        dnsmasq::available(),
        "dnsmasq is not installed: run ./scripts/test"
    );
    dnsmasq::start(&scratch_dir(test), records).expect("dnsmasq starts")
}

fn hop(uri: &str) -> NextHop {
    NextHop::of_uri(&Uri::parse(uri).unwrap()).unwrap()
}

fn udp(ip: Ipv4Addr, port: u16) -> Hop {
    Hop {
        kind: TransportKind::Udp,
        addr: SocketAddr::from((ip, port)),
    }
}

/// What `uri` resolves to through `dns` for a proxy with `supported` transports.
async fn resolve(dns: &Dnsmasq, uri: &str, supported: &[TransportKind]) -> Vec<Hop> {
    let cache = HostCache::new(&[dns.addr], 64);
    let hop = hop(uri);
    cache.prepare([&hop], supported).await;
    cache.targets(&hop, &mut rand::thread_rng()).to_vec()
}

#[tokio::test]
async fn naptr_then_srv_then_a_choose_transport_servers_and_addresses() {
    let tcp_ip = Ipv4Addr::new(127, 0, 0, 11);
    let udp_ip = Ipv4Addr::new(127, 0, 0, 12);
    let own_ip = Ipv4Addr::new(127, 0, 0, 13);
    let dns = dns(
        "dns-naptr",
        &[
            // NAPTR prefers UDP; without NAPTR this proxy would try TCP's SRV first.
            naptr("naptr.test", 10, "SIP+D2U", "_sip._udp.naptr.test"),
            naptr("naptr.test", 20, "SIP+D2T", "_sip._tcp.naptr.test"),
            srv("_sip._tcp.naptr.test", "tcp.naptr.test", 7001, 10, 1),
            srv("_sip._udp.naptr.test", "udp.naptr.test", 7002, 10, 1),
            a("tcp.naptr.test", tcp_ip),
            a("udp.naptr.test", udp_ip),
            a("naptr.test", own_ip),
            a("plain.test", own_ip),
        ],
    );
    let both = [TransportKind::Udp, TransportKind::Tcp];
    // NAPTR order 10 (UDP) first, its SRV, its target's A record.
    assert_eq!(
        resolve(&dns, "sip:naptr.test", &both).await,
        [udp(udp_ip, 7002)]
    );
    // A proxy without UDP listeners takes the TCP record.
    let tcp = Hop {
        kind: TransportKind::Tcp,
        addr: SocketAddr::from((tcp_ip, 7001)),
    };
    assert_eq!(
        resolve(&dns, "sip:naptr.test", &[TransportKind::Tcp]).await,
        [tcp]
    );
    // A transport parameter skips NAPTR: that transport's SRV (§4.1, §4.2).
    assert_eq!(
        resolve(&dns, "sip:naptr.test;transport=tcp", &both).await,
        [tcp]
    );
    // A port skips NAPTR and SRV: the host's own address (§4.2).
    assert_eq!(
        resolve(&dns, "sip:naptr.test:7777", &both).await,
        [udp(own_ip, 7777)]
    );
    // No NAPTR, no SRV: A on the default port.
    assert_eq!(
        resolve(&dns, "sip:plain.test", &both).await,
        [udp(own_ip, 5060)]
    );
    // Nothing at all: no server.
    assert_eq!(resolve(&dns, "sip:missing.test", &both).await, []);
}

#[tokio::test]
async fn srv_priority_orders_the_servers() {
    let first = Ipv4Addr::new(127, 0, 0, 21);
    let second = Ipv4Addr::new(127, 0, 0, 22);
    // The same two records in both orders on two names: whatever order the server
    // answers in, one of the names has the lower priority last in its answer.
    let dns = dns(
        "dns-priority",
        &[
            srv("_sip._udp.prio1.test", "b.prio.test", 7102, 20, 100),
            srv("_sip._udp.prio1.test", "a.prio.test", 7101, 10, 1),
            srv("_sip._udp.prio2.test", "a.prio.test", 7101, 10, 1),
            srv("_sip._udp.prio2.test", "b.prio.test", 7102, 20, 100),
            a("a.prio.test", first),
            a("b.prio.test", second),
        ],
    );
    let cache = HostCache::new(&[dns.addr], 64);
    let mut rng = rand::thread_rng();
    for name in ["sip:prio1.test", "sip:prio2.test"] {
        let next = hop(name);
        cache.prepare([&next], &[TransportKind::Udp]).await;
        for _ in 0..50 {
            assert_eq!(
                cache.targets(&next, &mut rng).as_slice(),
                [udp(first, 7101), udp(second, 7102)],
                "{name}"
            );
        }
    }
}

/// Forwards every request to `target` (a new Request-URI).
struct ToTarget(String);

impl Policy for ToTarget {
    async fn decide(&self, _request: &SipMessage, _source: &Source) -> Decision {
        Decision::Forward(Forward {
            targets: vec![self.0.clone()],
            ..Forward::default()
        })
    }
}

async fn proxy(dns: &Dnsmasq, target: &str, config: EngineConfig) -> (ProxyEngine, SocketAddr) {
    let config = EngineConfig {
        names: Arc::new(HostCache::new(&[dns.addr], 64)),
        ..config
    };
    let transport = TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        tcp: vec!["127.0.0.1:0".parse().unwrap()],
        ..TransportConfig::default()
    };
    let engine = ProxyEngine::start(transport, config, ToTarget(target.into()))
        .await
        .unwrap();
    let addr = engine
        .transport()
        .local_addrs()
        .iter()
        .find(|(kind, _)| *kind == TransportKind::Udp)
        .unwrap()
        .1;
    (engine, addr)
}

/// A TCP UAS answering every request with 200 on its connection, counting them.
async fn tcp_uas() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Requests without a body: each ends at its blank line.
                while let Ok(n) = stream.read(&mut chunk).await {
                    if n == 0 || buf.len() > 65_536 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let message: Vec<u8> = buf.drain(..end + 4).collect();
                        let Ok(req) = SipMessage::parse(message) else {
                            continue;
                        };
                        if req.is_request() && req.method() != Some(&Method::Ack) {
                            count.fetch_add(1, Ordering::Relaxed);
                            let answer = response(&req, 200).to_bytes();
                            let _ = stream.write_all(&answer).await;
                        }
                    }
                }
            });
        }
    });
    (port, seen)
}

/// A UDP UAS answering every request with `code` (none for 0), counting the requests
/// it saw (by Call-ID: retransmissions are not counted again).
async fn uas(code: u16) -> (u16, Arc<AtomicUsize>) {
    let socket = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        let mut calls = std::collections::HashSet::new();
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(req) = SipMessage::parse(buf[..n].to_vec()) else {
                continue;
            };
            if req.is_request() && req.method() != Some(&Method::Ack) {
                let call_id = req.headers.get_str(&HeaderName::CallId).unwrap_or("");
                if calls.insert(call_id.to_string()) {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                if code > 0 {
                    let _ = socket.send_to(&response(&req, code).to_bytes(), from).await;
                }
            }
        }
    });
    (port, seen)
}

/// Sends one MESSAGE through `proxy` and returns the final response's code.
async fn message(proxy: SocketAddr, n: usize) -> u16 {
    let client = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let from = client.local_addr().unwrap();
    let req = format!(
        "MESSAGE sip:bob@home.test SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKdns{n};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:bob@home.test>\r\nCall-ID: dns{n}@x\r\n\
CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
    );
    client.send_to(req.as_bytes(), proxy).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    loop {
        let got = timeout(Duration::from_secs(10), client.recv(&mut buf)).await;
        let n = got.expect("a response within 10 s").unwrap();
        let code = SipMessage::parse(buf[..n].to_vec())
            .unwrap()
            .status()
            .unwrap();
        if code >= 200 {
            return code;
        }
    }
}

#[tokio::test]
async fn srv_weights_share_the_load() {
    let (heavy, heavy_seen) = uas(200).await;
    let (light, light_seen) = uas(200).await;
    let dns = dns(
        "dns-weight",
        &[
            srv("_sip._udp.share.test", "heavy.share.test", heavy, 10, 3),
            srv("_sip._udp.share.test", "light.share.test", light, 10, 1),
            a("heavy.share.test", LOOPBACK),
            a("light.share.test", LOOPBACK),
        ],
    );
    let (_engine, proxy) = proxy(&dns, "sip:bob@share.test", EngineConfig::default()).await;
    // Weights 3:1: each request goes to the heavy server with probability 3/4. Over
    // 400 requests the count is binomial: mean 300, standard deviation
    // sqrt(400 * 3/4 * 1/4) = 8.66; the bounds below are 6 standard deviations either
    // side (outside with a chance of about 2e-9 per run), and exclude an even split
    // (200) and no split at all (400).
    let n = 400;
    for i in 0..n {
        assert_eq!(message(proxy, i).await, 200);
    }
    let heavy = heavy_seen.load(Ordering::Relaxed);
    let light = light_seen.load(Ordering::Relaxed);
    assert_eq!(heavy + light, n, "every request reached one server once");
    eprintln!("weights 3:1 -> {heavy}:{light} of {n}");
    assert!(
        (248..=352).contains(&heavy),
        "heavy server got {heavy} of {n}"
    );
}

/// A zone whose first server (priority 10) is `first`, the second (priority 20)
/// `second`, both on loopback.
fn two_servers(test: &str, first: u16, second: u16) -> Dnsmasq {
    dns(
        test,
        &[
            srv("_sip._udp.pool.test", "one.pool.test", first, 10, 1),
            srv("_sip._udp.pool.test", "two.pool.test", second, 20, 1),
            a("one.pool.test", LOOPBACK),
            a("two.pool.test", LOOPBACK),
        ],
    )
}

#[tokio::test]
async fn a_503_fails_over_to_the_next_server() {
    let (unavailable, unavailable_seen) = uas(503).await;
    let (ok, ok_seen) = uas(200).await;
    let dns = two_servers("dns-503", unavailable, ok);
    let (engine, proxy) = proxy(&dns, "sip:bob@pool.test", EngineConfig::default()).await;
    assert_eq!(message(proxy, 1).await, 200);
    assert_eq!(unavailable_seen.load(Ordering::Relaxed), 1);
    assert_eq!(ok_seen.load(Ordering::Relaxed), 1);
    assert_eq!(engine.stats().failovers.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn every_server_failing_gives_the_best_response() {
    let (one, one_seen) = uas(503).await;
    let (two, two_seen) = uas(503).await;
    let dns = two_servers("dns-all-503", one, two);
    let (_engine, proxy) = proxy(&dns, "sip:bob@pool.test", EngineConfig::default()).await;
    // §16.7 step 6: a 503 from downstream goes upstream as 500.
    assert_eq!(message(proxy, 1).await, 500);
    assert_eq!(one_seen.load(Ordering::Relaxed), 1);
    assert_eq!(two_seen.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_closed_port_fails_over_at_once() {
    // A TCP port nobody listens on: the connection is refused (a transport error).
    let closed = {
        let listener = std::net::TcpListener::bind((LOOPBACK, 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let (ok, ok_seen) = tcp_uas().await;
    let dns = dns(
        "dns-closed",
        &[
            srv("_sip._tcp.tcp.test", "one.tcp.test", closed, 10, 1),
            srv("_sip._tcp.tcp.test", "two.tcp.test", ok, 20, 1),
            a("one.tcp.test", LOOPBACK),
            a("two.tcp.test", LOOPBACK),
        ],
    );
    // Default timers and no failover_after: only the transport error can move on in
    // the 10 s the client waits.
    let target = "sip:bob@tcp.test;transport=tcp";
    let (engine, proxy) = proxy(&dns, target, EngineConfig::default()).await;
    assert_eq!(message(proxy, 1).await, 200);
    assert_eq!(ok_seen.load(Ordering::Relaxed), 1);
    assert_eq!(engine.stats().failovers.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_silent_server_is_given_up_after_failover_after() {
    let (silent, silent_seen) = uas(0).await;
    let (ok, ok_seen) = uas(200).await;
    let dns = two_servers("dns-silent", silent, ok);
    // Default timers (Timer F 32 s): only failover_after makes this answer in time.
    let config = EngineConfig {
        failover_after: Some(Duration::from_millis(300)),
        ..EngineConfig::default()
    };
    let (_engine, proxy) = proxy(&dns, "sip:bob@pool.test", config).await;
    assert_eq!(message(proxy, 1).await, 200);
    assert_eq!(silent_seen.load(Ordering::Relaxed), 1);
    assert_eq!(ok_seen.load(Ordering::Relaxed), 1);
    // The silent server now goes last for a while: the next requests go straight to
    // the other one (without the wait).
    for i in 2..5 {
        assert_eq!(message(proxy, i).await, 200);
    }
    assert_eq!(
        silent_seen.load(Ordering::Relaxed),
        1,
        "tried once, then last"
    );
    assert_eq!(ok_seen.load(Ordering::Relaxed), 4);
}

#[tokio::test]
async fn timer_f_fails_over_without_failover_after() {
    let (silent, _) = uas(0).await;
    let (ok, ok_seen) = uas(200).await;
    let dns = two_servers("dns-timer-f", silent, ok);
    // T1 = 20 ms: Timer F (64*T1) after 1.28 s.
    let mut config = EngineConfig::default();
    config.timers.t1 = Duration::from_millis(20);
    config.timers.t4 = Duration::from_millis(100);
    let (_engine, proxy) = proxy(&dns, "sip:bob@pool.test", config).await;
    assert_eq!(message(proxy, 1).await, 200);
    assert_eq!(ok_seen.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn static_routes_send_no_dns_query() {
    // A "DNS server" that counts queries and never answers: any lookup through it
    // would be seen here (and would wait for its timeout).
    let dead_dns = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let dead_addr = dead_dns.local_addr().unwrap();
    let queries = Arc::new(AtomicUsize::new(0));
    let counted = queries.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while dead_dns.recv_from(&mut buf).await.is_ok() {
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    // A hosts file of the test's own, as /etc/hosts would be.
    let dir = scratch_dir("dns-static");
    let hosts_file = dir.join("hosts");
    std::fs::write(&hosts_file, "127.0.0.1 hosts-file.test\n").unwrap();
    let (ok, ok_seen) = uas(200).await;
    let mut hosts = std::collections::HashMap::new();
    hosts.insert("static.example".to_string(), LOOPBACK.into());
    let targets = [
        format!("sip:bob@127.0.0.1:{ok}"),
        format!("sip:bob@static.example:{ok}"),
        // In the hosts file: by its address (no NAPTR or SRV even without a port).
        format!("sip:bob@hosts-file.test:{ok}"),
    ];
    for (i, target) in targets.iter().enumerate() {
        let config = EngineConfig {
            names: Arc::new(HostCache::with_hosts_file(&[dead_addr], 64, &hosts_file)),
            hosts: hosts.clone(),
            ..EngineConfig::default()
        };
        let transport = TransportConfig {
            udp: vec!["127.0.0.1:0".parse().unwrap()],
            ..TransportConfig::default()
        };
        let engine = ProxyEngine::start(transport, config, ToTarget(target.clone()))
            .await
            .unwrap();
        let proxy = engine.transport().local_addrs()[0].1;
        assert_eq!(message(proxy, i).await, 200, "{target}");
    }
    assert_eq!(ok_seen.load(Ordering::Relaxed), targets.len());
    let cache = HostCache::with_hosts_file(&[dead_addr], 8, &hosts_file);
    let portless = hop("sip:hosts-file.test");
    cache.prepare([&portless], &[TransportKind::Udp]).await;
    assert_eq!(
        cache.targets(&portless, &mut rand::thread_rng()).as_slice(),
        [udp(LOOPBACK, 5060)]
    );
    assert_eq!(
        queries.load(Ordering::Relaxed),
        0,
        "no DNS query for a static route"
    );
}
