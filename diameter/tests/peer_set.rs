//! Several HSS peers behind one [`PeerSet`], over loopback TCP against real in-process
//! Diameter servers: priority order, realm routing, failover on connection loss (T
//! flag, same End-to-End Identifier) and on DIAMETER_TOO_BUSY / UNABLE_TO_DELIVER, the
//! watchdog taking a silent peer out, and a lost peer coming back. Every wait is
//! bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/samples.rs"]
#[allow(dead_code)]
mod samples;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ims_diameter::codec::{DiameterCodec, Frame};
use ims_diameter::dict::{command, result};
use ims_diameter::message::FLAG_RETRANSMIT;
use ims_diameter::peer::{
    cea, Acceptor, BoxFuture, CloseReason, Connector, DiameterMetrics, Handler, Peer, PeerBinding,
    PeerConfig, PeerError, PeerSet, PeerState, RoutedPeer, Server,
};
use ims_diameter::Message;
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

const BOUND: Duration = Duration::from_secs(10);
const REALM: &str = "ims.example";
const CSCF: &str = "icscf.ims.example";

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    bounded(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// What a test HSS does with a request.
#[derive(Clone, Copy)]
enum Behaviour {
    /// DIAMETER_SUCCESS.
    Answer,
    /// An error answer with this Result-Code.
    Refuse(u32),
    /// Never answers.
    Hang,
}

/// A test HSS's handler: records the flags and End-to-End Identifier of each request.
struct Hss {
    host: &'static str,
    behaviour: Behaviour,
    seen: Mutex<Vec<(u8, u32)>>,
}

impl Hss {
    fn new(host: &'static str, behaviour: Behaviour) -> Arc<Hss> {
        Arc::new(Hss {
            host,
            behaviour,
            seen: Mutex::new(Vec::new()),
        })
    }

    fn seen(&self) -> Vec<(u8, u32)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Handler for Hss {
    fn handle(&self, req: Message) -> BoxFuture<'_, Message> {
        self.seen.lock().unwrap().push((req.flags, req.end_to_end));
        Box::pin(async move {
            match self.behaviour {
                Behaviour::Answer => {
                    let mut a = Message::answer_to(&req, self.host, REALM);
                    a.avps.push(ims_diameter::avp::Avp::u32(
                        &ims_diameter::dict::base::RESULT_CODE,
                        result::DIAMETER_SUCCESS,
                    ));
                    a
                }
                Behaviour::Refuse(code) => {
                    Message::error_answer(&req, self.host, REALM, code, None)
                }
                Behaviour::Hang => std::future::pending().await,
            }
        })
    }
}

fn timers(c: &mut PeerConfig) {
    c.watchdog_interval = Duration::from_millis(200);
    c.watchdog_jitter = Duration::from_millis(20);
    c.reconnect_min = Duration::from_millis(50);
    c.reconnect_max = Duration::from_millis(200);
    c.exchange_timeout = Duration::from_secs(2);
    c.request_timeout = Duration::from_secs(5);
}

async fn hss_at(addr: SocketAddr, handler: Arc<Hss>) -> Server {
    let mut c = PeerConfig::cx(handler.host, REALM);
    c.bindings = vec![PeerBinding::new(
        CSCF,
        vec!["127.0.0.1/32".parse().unwrap()],
    )];
    timers(&mut c);
    Server::bind(c, addr, Acceptor::Tcp, handler).await.unwrap()
}

async fn hss(handler: Arc<Hss>) -> Server {
    hss_at("127.0.0.1:0".parse().unwrap(), handler).await
}

/// The CSCF's peer toward `host` at `addr`, in `realm` with `priority`.
fn routed(host: &str, realm: &str, priority: u32, addr: SocketAddr) -> RoutedPeer {
    routed_with(host, realm, priority, addr, DiameterMetrics::default())
}

/// [`routed`] counting in `metrics` (a node's peers share theirs).
fn routed_with(
    host: &str,
    realm: &str,
    priority: u32,
    addr: SocketAddr,
    metrics: DiameterMetrics,
) -> RoutedPeer {
    let mut c = PeerConfig::cx(CSCF, REALM);
    c.metrics = metrics;
    c.allowed_peers = vec![host.into()];
    timers(&mut c);
    let refuse = Arc::new(Hss {
        host: CSCF,
        behaviour: Behaviour::Refuse(result::DIAMETER_COMMAND_UNSUPPORTED),
        seen: Mutex::new(Vec::new()),
    });
    RoutedPeer {
        host: host.into(),
        realm: realm.into(),
        priority,
        peer: Peer::connect(c, addr, Connector::Tcp, refuse),
    }
}

async fn all_open(set: &PeerSet) {
    for p in set.peers() {
        bounded("peer open", p.peer.wait_for(PeerState::Open)).await;
    }
}

/// Two test HSSs behind one set, both open.
struct Two {
    first: Arc<Hss>,
    second: Arc<Hss>,
    servers: (Server, Server),
    set: PeerSet,
}

/// A test HSS per `(host, realm, priority, behaviour)`, in a set in that order.
async fn two(
    first: (&'static str, &str, u32, Behaviour),
    second: (&'static str, &str, u32, Behaviour),
) -> Two {
    let (h1, h2) = (Hss::new(first.0, first.3), Hss::new(second.0, second.3));
    let (s1, s2) = (hss(h1.clone()).await, hss(h2.clone()).await);
    let set = PeerSet::new([
        routed(first.0, first.1, first.2, s1.local_addr()),
        routed(second.0, second.1, second.2, s2.local_addr()),
    ]);
    all_open(&set).await;
    Two {
        first: h1,
        second: h2,
        servers: (s1, s2),
        set,
    }
}

fn uar() -> Message {
    samples::uar().to_message()
}

fn origin(answer: &Message) -> &str {
    answer.origin_host().unwrap()
}

#[tokio::test]
async fn requests_go_to_the_open_peer_with_the_lowest_priority_value() {
    // Listed first but less preferred.
    let t = two(
        ("hss-a", REALM, 2, Behaviour::Answer),
        ("hss-b", REALM, 1, Behaviour::Answer),
    )
    .await;
    for _ in 0..3 {
        let ans = bounded("answer", t.set.request(uar())).await.unwrap();
        assert_eq!(origin(&ans), "hss-b");
    }
    assert!(t.first.seen().is_empty());
    assert_eq!(t.second.seen().len(), 3);
    // Fresh End-to-End Identifiers, no T flag on first sends.
    let e2e: Vec<u32> = t.second.seen().iter().map(|s| s.1).collect();
    assert!(e2e[0] != e2e[1] && e2e[1] != e2e[2], "{e2e:?}");
    assert!(t.second.seen().iter().all(|s| s.0 & FLAG_RETRANSMIT == 0));
}

#[tokio::test]
async fn a_lost_connection_resends_to_the_next_peer_with_the_t_flag_and_same_end_to_end() {
    let t = two(
        ("hss-1", REALM, 1, Behaviour::Hang),
        ("hss-2", REALM, 2, Behaviour::Answer),
    )
    .await;
    let pending = tokio::spawn({
        let set = t.set.clone();
        async move { set.request(uar()).await }
    });
    wait_until("request at hss-1", || t.first.seen().len() == 1).await;
    t.servers.0.abort(); // as a crash: every connection dropped, no DPR
    let ans = bounded("failover", pending).await.unwrap().unwrap();
    assert_eq!(origin(&ans), "hss-2");
    let (flags1, e2e1) = t.first.seen()[0];
    let (flags2, e2e2) = t.second.seen()[0];
    assert_eq!(flags1 & FLAG_RETRANSMIT, 0, "first send without T");
    assert_ne!(
        flags2 & FLAG_RETRANSMIT,
        0,
        "resent with T (RFC 6733 §5.5.4)"
    );
    assert_eq!(e2e1, e2e2, "same End-to-End Identifier");
    let metrics = &t.set.peers()[0].peer.metrics();
    assert_eq!(metrics.failovers("hss-1", "disconnected"), 1);
    // The lost peer is out; the next requests go to the other at once.
    wait_until("hss-1 down", || {
        t.set.peers()[0].peer.state() != PeerState::Open
    })
    .await;
    let ans = bounded("answer", t.set.request(uar())).await.unwrap();
    assert_eq!(origin(&ans), "hss-2");
}

async fn refused_by_the_first(code: u32, label: &'static str) {
    let t = two(
        ("hss-1", REALM, 1, Behaviour::Refuse(code)),
        ("hss-2", REALM, 2, Behaviour::Answer),
    )
    .await;
    let ans = bounded("answer", t.set.request(uar())).await.unwrap();
    assert_eq!(origin(&ans), "hss-2", "{label}");
    assert_eq!(ans.result_code(), Some(result::DIAMETER_SUCCESS));
    let (_, e2e1) = t.first.seen()[0];
    let (flags2, e2e2) = t.second.seen()[0];
    assert_eq!(e2e1, e2e2, "same End-to-End Identifier");
    assert_eq!(
        flags2 & FLAG_RETRANSMIT,
        0,
        "an answered request is no possible duplicate: no T (RFC 6733 §3)"
    );
    assert_eq!(t.set.peers()[0].peer.metrics().failovers("hss-1", label), 1);
    // The refusing peer stays open: it is asked again next time.
    assert_eq!(t.set.peers()[0].peer.state(), PeerState::Open);
}

#[tokio::test]
async fn too_busy_goes_to_the_next_peer() {
    refused_by_the_first(result::DIAMETER_TOO_BUSY, "too_busy").await;
}

#[tokio::test]
async fn unable_to_deliver_goes_to_the_next_peer() {
    refused_by_the_first(result::DIAMETER_UNABLE_TO_DELIVER, "unable_to_deliver").await;
}

#[tokio::test]
async fn other_errors_are_answers_not_failovers() {
    let refuse = Behaviour::Refuse(result::DIAMETER_UNABLE_TO_COMPLY);
    let t = two(
        ("hss-1", REALM, 1, refuse),
        ("hss-2", REALM, 2, Behaviour::Answer),
    )
    .await;
    let ans = bounded("answer", t.set.request(uar())).await.unwrap();
    assert_eq!(ans.result_code(), Some(result::DIAMETER_UNABLE_TO_COMPLY));
    assert!(t.second.seen().is_empty());
}

#[tokio::test]
async fn when_every_peer_is_busy_the_last_answer_is_returned() {
    let busy = result::DIAMETER_TOO_BUSY;
    let t = two(
        ("hss-1", REALM, 1, Behaviour::Refuse(busy)),
        ("hss-2", REALM, 2, Behaviour::Refuse(busy)),
    )
    .await;
    let ans = bounded("answer", t.set.request(uar())).await.unwrap();
    assert_eq!((origin(&ans), ans.result_code()), ("hss-2", Some(busy)));
    assert_eq!((t.first.seen().len(), t.second.seen().len()), (1, 1));
}

#[tokio::test]
async fn the_destination_realm_picks_the_peers_and_an_unknown_realm_has_no_route() {
    let t = two(
        ("hss-a", "other.example", 1, Behaviour::Answer),
        ("hss-b", REALM, 2, Behaviour::Answer),
    )
    .await;
    let ans = bounded("answer", t.set.request(uar())).await.unwrap();
    assert_eq!(origin(&ans), "hss-b", "hss-a serves another realm");
    let mut elsewhere = samples::uar();
    elsewhere.header.destination_realm = "nowhere.example".into();
    let err = t.set.request(elsewhere.to_message()).await.unwrap_err();
    assert_eq!(err, PeerError::NoRoute("nowhere.example".into()));
    assert!(err.to_string().contains("nowhere.example"), "{err}");
    assert!(t.first.seen().is_empty());
}

#[tokio::test]
async fn a_destination_host_naming_a_peer_goes_to_that_peer() {
    let t = two(
        ("hss-a", REALM, 1, Behaviour::Answer),
        ("hss-b", REALM, 2, Behaviour::Answer),
    )
    .await;
    let mut to_b = samples::uar();
    to_b.header.destination_host = Some("hss-b".into());
    let ans = bounded("answer", t.set.request(to_b.to_message()))
        .await
        .unwrap();
    assert_eq!(origin(&ans), "hss-b");
    assert!(t.first.seen().is_empty());
}

/// Answers the CER, then reads and never answers anything: a peer that went silent.
async fn silent_peer() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut framed = Framed::new(tcp, DiameterCodec::default());
        let mut cfg = PeerConfig::cx("hss-silent", REALM);
        cfg.bindings = Vec::new();
        while let Some(Ok(Frame::Message(m))) = framed.next().await {
            if m.command_code == command::CAPABILITIES_EXCHANGE {
                framed
                    .send(&cea(&cfg, &m, result::DIAMETER_SUCCESS))
                    .await
                    .unwrap();
            }
        }
    });
    addr
}

#[tokio::test]
async fn the_watchdog_takes_a_silent_peer_out_and_requests_go_to_the_next() {
    let b = Hss::new("hss-b", Behaviour::Answer);
    let sb = hss(b.clone()).await;
    let set = PeerSet::new([
        routed("hss-silent", REALM, 1, silent_peer().await),
        routed("hss-b", REALM, 2, sb.local_addr()),
    ]);
    all_open(&set).await;
    assert!(set.is_open());
    let silent = &set.peers()[0].peer;
    wait_until("the watchdog closes the silent peer", || {
        silent.last_close_reason() == Some(CloseReason::WatchdogExpired)
    })
    .await;
    assert_ne!(silent.state(), PeerState::Open);
    assert!(silent.stats().dwr_sent >= 1);
    let ans = bounded("answer", set.request(uar())).await.unwrap();
    assert_eq!(origin(&ans), "hss-b");
    assert!(set.is_open(), "ready while one peer is open");
}

#[tokio::test]
async fn a_lost_peer_is_retried_while_the_other_serves_and_preferred_again_once_back() {
    let t = two(
        ("hss-a", REALM, 1, Behaviour::Answer),
        ("hss-b", REALM, 2, Behaviour::Answer),
    )
    .await;
    let addr_a = t.servers.0.local_addr();
    t.servers.0.abort();
    let peer_a = t.set.peers()[0].peer.clone();
    wait_until("hss-a down", || peer_a.state() != PeerState::Open).await;
    let ans = bounded("answer", t.set.request(uar())).await.unwrap();
    assert_eq!(origin(&ans), "hss-b");
    assert!(t.set.is_open());
    // hss-a comes back on its address: the peer reconnects by itself.
    let back = Hss::new("hss-a", Behaviour::Answer);
    let _sa = hss_at(addr_a, back.clone()).await;
    bounded("hss-a reopens", peer_a.wait_for(PeerState::Open)).await;
    let ans = bounded("answer", t.set.request(uar())).await.unwrap();
    assert_eq!(origin(&ans), "hss-a");
    assert_eq!(back.seen().len(), 1);
}

#[tokio::test]
async fn no_open_peer_is_not_open_and_readiness_says_so() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let set = PeerSet::new([routed("hss-a", REALM, 1, addr)]);
    let mut registry = prometheus_client::registry::Registry::default();
    let ready = set.register_metrics(&mut registry);
    assert!(!ready());
    let err = set.request(uar()).await.unwrap_err();
    assert_eq!(err, PeerError::NotOpen);
    let b = Hss::new("hss-b", Behaviour::Answer);
    let sb = hss(b.clone()).await;
    let metrics = DiameterMetrics::default();
    let set = PeerSet::new([
        routed_with("hss-a", REALM, 1, addr, metrics.clone()),
        routed_with("hss-b", REALM, 2, sb.local_addr(), metrics),
    ]);
    let mut registry = prometheus_client::registry::Registry::default();
    let ready = set.register_metrics(&mut registry);
    bounded("one open", set.wait_open()).await;
    assert!(ready());
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for series in [
        "diameter_peer_open{peer=\"hss-a\"} 0",
        "diameter_peer_open{peer=\"hss-b\"} 1",
    ] {
        assert!(text.contains(series), "{series} in {text}");
    }
}
