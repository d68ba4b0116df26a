//! State-machine tests over in-memory streams with tokio's paused clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::DuplexStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::codec::Framed;

use super::*;
use crate::avp::{Avp, FLAG_MANDATORY};
use crate::codec::{DiameterCodec, Frame};
use crate::dict::{base, command, result, CX_APPLICATION_ID};
use crate::message::{Message, FLAG_ERROR, FLAG_REQUEST};

struct Counting(AtomicUsize);

impl Handler for Counting {
    fn handle(&self, request: Message) -> BoxFuture<'_, Message> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let mut a = Message::answer_to(&request, "hss.example", "example");
            a.avps
                .push(Avp::u32(&base::RESULT_CODE, result::DIAMETER_SUCCESS));
            a
        })
    }
}

type Client = Framed<DuplexStream, DiameterCodec>;

/// The in-memory client as the responder sees it: plain TCP from 127.0.0.1.
fn loopback() -> Remote {
    Remote {
        addr: std::net::IpAddr::from([127, 0, 0, 1]),
        transport: RemoteTransport::Tcp,
    }
}

/// Accepts `io` as a connection from `remote` and runs it with `h` until it closes.
async fn serve(
    shared: Arc<Shared>,
    io: DuplexStream,
    remote: Remote,
    h: Arc<dyn Handler>,
) -> Closed {
    let refusals = Refusals::default();
    match Closed::new(shared)
        .accept(Box::new(io))
        .receive_cer(&remote, &refusals)
        .await
    {
        Ok(open) => open.run(h).await,
        Err(c) => c,
    }
}

fn server_cfg() -> PeerConfig {
    let mut c = PeerConfig::cx("hss.example", "example");
    c.bindings = vec![PeerBinding::new(
        "cscf.example",
        vec!["127.0.0.1/32".parse().unwrap()],
    )];
    c.watchdog_jitter = Duration::ZERO;
    c
}

fn client_cfg() -> PeerConfig {
    let mut c = PeerConfig::cx("cscf.example", "example");
    c.allowed_peers = vec!["hss.example".into()];
    c
}

/// Starts a responder on an in-memory stream; returns the client end and the task
/// that yields the final Closed state.
fn responder(cfg: PeerConfig, h: Arc<Counting>) -> (Client, Arc<Shared>, JoinHandle<Closed>) {
    let (a, b) = tokio::io::duplex(1 << 16);
    let shared = Shared::new(Arc::new(cfg), Arc::new(IdGenerator::new()));
    let task = tokio::spawn(serve(shared.clone(), b, loopback(), h));
    (Framed::new(a, DiameterCodec::default()), shared, task)
}

async fn recv(c: &mut Client) -> Option<Message> {
    match c.next().await {
        Some(Ok(Frame::Message(m))) => Some(m),
        Some(other) => panic!("unexpected {other:?}"),
        None => None,
    }
}

async fn open(cfg: PeerConfig) -> (Client, Arc<Shared>, JoinHandle<Closed>, Arc<Counting>) {
    let h = Arc::new(Counting(AtomicUsize::new(0)));
    let (mut c, shared, task) = responder(cfg, h.clone());
    c.send(&cer(&client_cfg())).await.unwrap();
    let cea = recv(&mut c).await.unwrap();
    assert_eq!(cea.result_code(), Some(result::DIAMETER_SUCCESS));
    assert_eq!(advertised_applications(&cea), vec![CX_APPLICATION_ID]);
    (c, shared, task, h)
}

fn cx_request(e2e: u32) -> Message {
    let mut m = Message::request(command::USER_AUTHORIZATION, CX_APPLICATION_ID);
    m.hop_by_hop = e2e + 100;
    m.end_to_end = e2e;
    m.avps.push(Avp::utf8(&base::SESSION_ID, "cscf.example;1"));
    m.avps.push(Avp::utf8(&base::ORIGIN_HOST, "cscf.example"));
    m
}

#[tokio::test(start_paused = true)]
async fn watchdog_sends_dwr_after_tw_and_fails_over_without_dwa() {
    let (mut c, shared, task, _) = open(server_cfg()).await;
    let t0 = Instant::now();
    let dwr = recv(&mut c).await.unwrap();
    assert_eq!(dwr.command_code, command::DEVICE_WATCHDOG);
    assert!(dwr.is_request());
    assert_eq!(t0.elapsed(), Duration::from_secs(30));
    // No DWA: after another Tw the connection is closed.
    assert!(recv(&mut c).await.is_none());
    assert_eq!(t0.elapsed(), Duration::from_secs(60));
    let closed = task.await.unwrap();
    assert_eq!(closed.reason, Some(CloseReason::WatchdogExpired));
    assert_eq!(shared.stats().dwr_sent, 1);
    assert_eq!(*shared.state.borrow(), PeerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn answered_watchdog_keeps_the_link_and_dwr_is_answered() {
    let (mut c, shared, task, _) = open(server_cfg()).await;
    for _ in 0..3 {
        let dwr = recv(&mut c).await.unwrap();
        let mut dwa = Message::answer_to(&dwr, "cscf.example", "example");
        dwa.avps.push(Avp::u32(&base::RESULT_CODE, 2001));
        c.send(&dwa).await.unwrap();
    }
    // Our own DWR is answered with DWA 2001.
    let mut dwr = Message::request(command::DEVICE_WATCHDOG, 0);
    dwr.hop_by_hop = 9;
    dwr.avps.push(Avp::utf8(&base::ORIGIN_HOST, "cscf.example"));
    c.send(&dwr).await.unwrap();
    let dwa = recv(&mut c).await.unwrap();
    assert_eq!(
        (dwa.command_code, dwa.hop_by_hop),
        (command::DEVICE_WATCHDOG, 9)
    );
    assert_eq!(dwa.result_code(), Some(2001));
    // Messages are handled in order, so the three DWAs were counted by now.
    assert_eq!(shared.stats().dwa_received, 3);
    assert_eq!(shared.stats().dwr_received, 1);
    assert_eq!(*shared.state.borrow(), PeerState::Open);
    drop(c);
    assert_eq!(
        task.await.unwrap().reason,
        Some(CloseReason::ConnectionLost)
    );
}

#[tokio::test(start_paused = true)]
async fn unknown_peer_and_no_common_application_are_refused() {
    let h = Arc::new(Counting(AtomicUsize::new(0)));
    let (mut c, _, task) = responder(server_cfg(), h.clone());
    c.send(&cer(&PeerConfig::cx("intruder.example", "example")))
        .await
        .unwrap();
    let cea = recv(&mut c).await.unwrap();
    assert_eq!(cea.result_code(), Some(result::DIAMETER_UNKNOWN_PEER));
    assert!(cea.is_error());
    assert!(recv(&mut c).await.is_none(), "connection closed");
    assert_eq!(
        task.await.unwrap().reason,
        Some(CloseReason::CapabilitiesRejected(3010))
    );

    let (mut c, _, task) = responder(server_cfg(), h);
    let mut other = client_cfg();
    other.applications = vec![16_777_217];
    c.send(&cer(&other)).await.unwrap();
    let cea = recv(&mut c).await.unwrap();
    assert_eq!(
        cea.result_code(),
        Some(result::DIAMETER_NO_COMMON_APPLICATION)
    );
    assert!(recv(&mut c).await.is_none());
    assert_eq!(
        task.await.unwrap().reason,
        Some(CloseReason::CapabilitiesRejected(5010))
    );
}

#[tokio::test(start_paused = true)]
async fn requests_are_checked_before_the_handler() {
    let cfg = server_cfg();
    let metrics = cfg.metrics.clone();
    let (mut c, _, _task, h) = open(cfg).await;
    // Unknown application -> 3007 with the E bit.
    let mut m = cx_request(1);
    m.application_id = 4;
    c.send(&m).await.unwrap();
    let a = recv(&mut c).await.unwrap();
    assert_eq!(
        a.result_code(),
        Some(result::DIAMETER_APPLICATION_UNSUPPORTED)
    );
    assert!(a.is_error());
    assert_eq!(a.hop_by_hop, m.hop_by_hop);
    // Unknown command of the base application -> 3001.
    let mut m = cx_request(2);
    m.application_id = 0;
    m.command_code = 999;
    c.send(&m).await.unwrap();
    let a = recv(&mut c).await.unwrap();
    assert_eq!(a.result_code(), Some(result::DIAMETER_COMMAND_UNSUPPORTED));
    // Unknown AVP with the M bit -> 5001 with it in Failed-AVP.
    let mut m = cx_request(3);
    let unknown = Avp {
        code: 4242,
        flags: FLAG_MANDATORY,
        vendor_id: None,
        data: Bytes::from_static(b"zz"),
    };
    m.avps.push(unknown.clone());
    c.send(&m).await.unwrap();
    let a = recv(&mut c).await.unwrap();
    assert_eq!(a.result_code(), Some(result::DIAMETER_AVP_UNSUPPORTED));
    let failed = a.find(&base::FAILED_AVP).unwrap().grouped_avps().unwrap();
    assert_eq!(failed, vec![unknown]);
    // E bit on a request -> 3008, and the stream stays usable.
    let mut m = cx_request(4);
    m.flags |= FLAG_ERROR;
    c.send(&m).await.unwrap();
    let a = recv(&mut c).await.unwrap();
    assert_eq!(a.result_code(), Some(result::DIAMETER_INVALID_HDR_BITS));
    assert_eq!(a.end_to_end, 4);
    // An unknown AVP without the M bit is accepted.
    let mut m = cx_request(5);
    m.avps.push(Avp {
        code: 4243,
        flags: 0,
        vendor_id: Some(99),
        data: Bytes::from_static(b"kept"),
    });
    c.send(&m).await.unwrap();
    let a = recv(&mut c).await.unwrap();
    assert_eq!(a.result_code(), Some(2001));
    assert_eq!(
        h.0.load(Ordering::SeqCst),
        1,
        "only the valid request reached the handler"
    );
    // Each answer counted by command and result code, refusals included.
    assert_eq!(metrics.answers_sent("UAR", 3007), 1);
    assert_eq!(metrics.answers_sent("other", 3001), 1);
    assert_eq!(metrics.answers_sent("UAR", 5001), 1);
    assert_eq!(metrics.answers_sent("UAR", 3008), 1);
    assert_eq!(metrics.answers_sent("UAR", 2001), 1);
}

#[tokio::test(start_paused = true)]
async fn duplicates_get_the_same_answer_without_reprocessing() {
    let (mut c, _, _task, h) = open(server_cfg()).await;
    let m = cx_request(77);
    c.send(&m).await.unwrap();
    let first = recv(&mut c).await.unwrap();
    let mut again = m.clone();
    again.flags |= crate::message::FLAG_RETRANSMIT;
    again.hop_by_hop = 555;
    c.send(&again).await.unwrap();
    let second = recv(&mut c).await.unwrap();
    assert_eq!(second.hop_by_hop, 555);
    assert_eq!(second.avps, first.avps);
    assert_eq!(h.0.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn dpr_is_answered_and_closes() {
    let (mut c, _, task, _) = open(server_cfg()).await;
    let mut dpr = Message::request(command::DISCONNECT_PEER, 0);
    dpr.flags = FLAG_REQUEST;
    dpr.hop_by_hop = 3;
    dpr.avps.push(Avp::utf8(&base::ORIGIN_HOST, "cscf.example"));
    dpr.avps.push(Avp::i32(&base::DISCONNECT_CAUSE, 2));
    c.send(&dpr).await.unwrap();
    let dpa = recv(&mut c).await.unwrap();
    assert_eq!((dpa.command_code, dpa.result_code()), (282, Some(2001)));
    assert!(recv(&mut c).await.is_none());
    assert_eq!(
        task.await.unwrap().reason,
        Some(CloseReason::PeerDisconnected(2))
    );
}

#[tokio::test(start_paused = true)]
async fn server_side_requests_time_out_and_fail_on_close() {
    let mut cfg = server_cfg();
    cfg.request_timeout = Duration::from_secs(5);
    let (mut c, shared, task, _) = open(cfg).await;
    let peer = Peer::from_shared(shared);
    // The client never answers: the request times out.
    let t0 = Instant::now();
    let r = peer.request(cx_request(1)).await;
    assert_eq!(r, Err(PeerError::Timeout(Duration::from_secs(5))));
    assert_eq!(t0.elapsed(), Duration::from_secs(5));
    let sent = recv(&mut c).await.unwrap();
    assert!(sent.is_request());
    // An answer to it now is dropped; a new request answered in time completes.
    let p2 = peer.clone();
    let pending = tokio::spawn(async move { p2.request(cx_request(2)).await });
    let req = recv(&mut c).await.unwrap();
    let mut ans = Message::answer_to(&req, "cscf.example", "example");
    ans.avps.push(Avp::u32(&base::RESULT_CODE, 2001));
    c.send(&ans).await.unwrap();
    assert_eq!(pending.await.unwrap().unwrap().result_code(), Some(2001));
    // A request pending when the connection drops fails with Disconnected.
    let p3 = peer.clone();
    let pending = tokio::spawn(async move { p3.request(cx_request(3)).await });
    let _ = recv(&mut c).await.unwrap();
    drop(c);
    assert_eq!(pending.await.unwrap(), Err(PeerError::Disconnected));
    task.await.unwrap();
    assert_eq!(peer.request(cx_request(4)).await, Err(PeerError::NotOpen));
}

/// Never answers: keeps requests in flight.
struct Stuck;

impl Handler for Stuck {
    fn handle(&self, _request: Message) -> BoxFuture<'_, Message> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn requests_beyond_the_inflight_limit_get_too_busy() {
    let mut cfg = server_cfg();
    cfg.max_inflight_requests = 2;
    let (a, b) = tokio::io::duplex(1 << 16);
    let shared = Shared::new(Arc::new(cfg), Arc::new(IdGenerator::new()));
    let _task = tokio::spawn(serve(shared, b, loopback(), Arc::new(Stuck)));
    let mut c: Client = Framed::new(a, DiameterCodec::default());
    c.send(&cer(&client_cfg())).await.unwrap();
    assert_eq!(recv(&mut c).await.unwrap().result_code(), Some(2001));
    for e2e in 1..=3 {
        c.send(&cx_request(e2e)).await.unwrap();
    }
    let busy = recv(&mut c).await.unwrap();
    assert_eq!(busy.end_to_end, 3);
    assert_eq!(busy.result_code(), Some(result::DIAMETER_TOO_BUSY));
    assert!(busy.is_error());
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_reading_is_dropped_after_the_exchange_timeout() {
    let (a, b) = tokio::io::duplex(512);
    let mut cfg = server_cfg();
    cfg.request_timeout = Duration::from_secs(60);
    let shared = Shared::new(Arc::new(cfg), Arc::new(IdGenerator::new()));
    let h = Arc::new(Counting(AtomicUsize::new(0)));
    let task = tokio::spawn(serve(shared.clone(), b, loopback(), h));
    let mut c: Client = Framed::new(a, DiameterCodec::default());
    c.send(&cer(&client_cfg())).await.unwrap();
    assert_eq!(recv(&mut c).await.unwrap().result_code(), Some(2001));
    // The client stops reading; a 4 kB request cannot be written into 512 octets.
    let mut big = cx_request(1);
    big.avps.push(Avp::new(
        &crate::dict::cx::USER_DATA,
        Bytes::from(vec![b'x'; 4096]),
    ));
    let t0 = Instant::now();
    let r = Peer::from_shared(shared).request(big).await;
    assert_eq!(r, Err(PeerError::Disconnected));
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(10),
        "the exchange timeout, before Tw"
    );
    assert_eq!(
        task.await.unwrap().reason,
        Some(CloseReason::ConnectionLost)
    );
    drop(c);
}

#[tokio::test(start_paused = true)]
async fn a_known_origin_host_from_another_address_is_refused() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let shared = Shared::new(Arc::new(server_cfg()), Arc::new(IdGenerator::new()));
    let h = Arc::new(Counting(AtomicUsize::new(0)));
    let intruder = Remote {
        addr: std::net::IpAddr::from([127, 0, 0, 9]),
        transport: RemoteTransport::Tcp,
    };
    let task = tokio::spawn(serve(shared, b, intruder, h.clone()));
    let mut c: Client = Framed::new(a, DiameterCodec::default());
    c.send(&cer(&client_cfg())).await.unwrap();
    let cea = recv(&mut c).await.unwrap();
    assert_eq!(cea.result_code(), Some(result::DIAMETER_UNKNOWN_PEER));
    // Whatever follows is not read: the connection is closed.
    let _ = c.send(&cx_request(1)).await;
    assert!(recv(&mut c).await.is_none(), "connection closed");
    assert_eq!(
        task.await.unwrap().reason,
        Some(CloseReason::CapabilitiesRejected(3010))
    );
    assert_eq!(h.0.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn an_open_peer_cannot_rename_itself_with_a_second_cer() {
    let (mut c, _, _task, _) = open(server_cfg()).await;
    let mut other = PeerConfig::cx("other.example", "example");
    other.allowed_peers = vec!["hss.example".into()];
    c.send(&cer(&other)).await.unwrap();
    let cea = recv(&mut c).await.unwrap();
    assert_eq!(cea.result_code(), Some(result::DIAMETER_UNKNOWN_PEER));
    c.send(&cer(&client_cfg())).await.unwrap();
    let cea = recv(&mut c).await.unwrap();
    assert_eq!(cea.result_code(), Some(result::DIAMETER_SUCCESS));
}

/// Answers even End-to-End ids at once, odd ones after a second (as a store read).
struct HalfSlow;

impl Handler for HalfSlow {
    fn handle(&self, request: Message) -> BoxFuture<'_, Message> {
        Box::pin(async move {
            if request.end_to_end % 2 == 1 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let mut a = Message::answer_to(&request, "hss.example", "example");
            a.avps
                .push(Avp::u32(&base::RESULT_CODE, result::DIAMETER_SUCCESS));
            a
        })
    }
}

#[tokio::test(start_paused = true)]
async fn ready_answers_go_at_once_and_waiting_ones_on_their_own_task() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let shared = Shared::new(Arc::new(server_cfg()), Arc::new(IdGenerator::new()));
    let _task = tokio::spawn(serve(shared.clone(), b, loopback(), Arc::new(HalfSlow)));
    let mut c: Client = Framed::new(a, DiameterCodec::default());
    c.send(&cer(&client_cfg())).await.unwrap();
    assert_eq!(recv(&mut c).await.unwrap().result_code(), Some(2001));
    for e2e in 1..=4 {
        c.send(&cx_request(e2e)).await.unwrap();
    }
    let mut order = Vec::new();
    for _ in 1..=4 {
        let ans = recv(&mut c).await.unwrap();
        assert_eq!(ans.hop_by_hop, ans.end_to_end + 100);
        assert!(!ans.is_request());
        order.push(ans.end_to_end);
    }
    assert_eq!(&order[..2], &[2, 4], "{order:?}");
    order[2..].sort_unstable();
    assert_eq!(&order[2..], &[1, 3]);
    let stats = shared.stats();
    assert_eq!((stats.answered_inline, stats.answered_on_task), (2, 2));
}

#[tokio::test(start_paused = true)]
async fn requests_are_pipelined_and_answers_matched_by_hop_by_hop() {
    let (mut c, shared, _task, _) = open(server_cfg()).await;
    let peer = Peer::from_shared(shared);
    let pending: Vec<_> = (1..=3u32)
        .map(|n| {
            let p = peer.clone();
            tokio::spawn(async move {
                let mut m = cx_request(n);
                m.avps.push(Avp::u32(&base::ORIGIN_STATE_ID, n));
                p.request(m).await
            })
        })
        .collect();
    // All three are on the wire before any answer.
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.push(recv(&mut c).await.unwrap());
    }
    // Answered in reverse order, each carrying the number its request carried.
    for req in sent.iter().rev() {
        let n = req.find(&base::ORIGIN_STATE_ID).unwrap().as_u32().unwrap();
        let mut ans = Message::answer_to(req, "cscf.example", "example");
        ans.avps.push(Avp::u32(&base::RESULT_CODE, 2001));
        ans.avps.push(Avp::u32(&base::ORIGIN_STATE_ID, n));
        c.send(&ans).await.unwrap();
    }
    for (n, p) in (1..=3u32).zip(pending) {
        let ans = p.await.unwrap().unwrap();
        let got = ans.find(&base::ORIGIN_STATE_ID).unwrap().as_u32().unwrap();
        assert_eq!(got, n);
    }
}
