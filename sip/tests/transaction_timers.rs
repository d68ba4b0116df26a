//! Transaction timer schedules (RFC 3261 §17, Table 4; RFC 6026 Timers L and M) on
//! tokio's paused clock. Each test counts what a fake transport was handed and when.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ims_sip::message::build::new_branch;
use ims_sip::message::key::TransactionKey;
use ims_sip::transaction::{LayerLimits, Timer, TimerConfig, TransactionLayer, TuEvent};
use ims_sip::{HeaderName, Method, SipMessage};
use tokio::time::{advance, Instant};

type Sent = Arc<Mutex<Vec<(Instant, SipMessage)>>>;

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5060))
}

fn request(method: &str, branch: &str) -> SipMessage {
    SipMessage::parse(
        format!(
            "{method} sip:bob@ims.example.net SIP/2.0\r\n\
Via: SIP/2.0/UDP scscf.ims.example.net:5060;branch={branch}\r\n\
Route: <sip:pcscf.example.net;lr>\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@ims.example.net>;tag=a1\r\n\
To: <sip:bob@ims.example.net>\r\n\
Call-ID: call-1@ims.example.net\r\n\
CSeq: 1 {method}\r\n\
Content-Length: 0\r\n\r\n"
        )
        .into_bytes(),
    )
    .unwrap()
}

fn response(code: u16, method: &str, branch: &str) -> SipMessage {
    SipMessage::parse(
        format!(
            "SIP/2.0 {code} Reason\r\n\
Via: SIP/2.0/UDP scscf.ims.example.net:5060;branch={branch}\r\n\
From: <sip:alice@ims.example.net>;tag=a1\r\n\
To: <sip:bob@ims.example.net>;tag=b7\r\n\
Call-ID: call-1@ims.example.net\r\n\
CSeq: 1 {method}\r\n\
Content-Length: 0\r\n\r\n"
        )
        .into_bytes(),
    )
    .unwrap()
}

/// A layer over a recording transport, driven the way the driver drives it: timers
/// fire exactly at their deadlines on the paused clock.
struct Harness {
    layer: TransactionLayer<SocketAddr>,
    sent: Sent,
    start: Instant,
    events: Vec<(u128, TuEvent<SocketAddr>)>,
}

impl Harness {
    fn new() -> Harness {
        let sent: Sent = Arc::default();
        let sink = sent.clone();
        let layer = TransactionLayer::new(
            TimerConfig::default(),
            LayerLimits::default(),
            move |bytes: &Bytes, _: &SocketAddr| {
                let sent = SipMessage::parse(bytes.clone()).unwrap();
                sink.lock().unwrap().push((Instant::now(), sent));
                Ok(())
            },
        );
        Harness {
            layer,
            sent,
            start: Instant::now(),
            events: Vec::new(),
        }
    }

    fn ms(&self) -> u128 {
        (Instant::now() - self.start).as_millis()
    }

    fn drain(&mut self) {
        while let Some(e) = self.layer.poll_event() {
            let at = self.ms();
            self.events.push((at, e));
        }
    }

    /// Advances the paused clock to `at_ms` after the start, firing timers on the way.
    async fn run_until(&mut self, at_ms: u64) {
        let end = self.start + Duration::from_millis(at_ms);
        while let Some(deadline) = self.layer.next_deadline().filter(|d| *d <= end) {
            let now = Instant::now();
            if deadline > now {
                advance(deadline - now).await;
            }
            self.layer.handle_timeouts(Instant::now());
            self.drain();
        }
        let now = Instant::now();
        if end > now {
            advance(end - now).await;
        }
    }

    fn receive(&mut self, msg: SipMessage, reliable: bool) {
        self.layer.receive(msg, peer(), reliable);
        self.drain();
    }

    /// Times (ms since start) at which messages were handed to the transport.
    fn send_times(&self) -> Vec<u128> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|(t, _)| (*t - self.start).as_millis())
            .collect()
    }

    fn sent_methods_or_codes(&self) -> Vec<String> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|(_, m)| match m.method() {
                Some(method) => method.to_string(),
                None => m.status().unwrap().to_string(),
            })
            .collect()
    }

    fn timeouts(&self) -> Vec<(u128, Timer)> {
        self.events
            .iter()
            .filter_map(|(at, e)| match e {
                TuEvent::Timeout { timer, .. } => Some((*at, *timer)),
                _ => None,
            })
            .collect()
    }

    fn terminated_at(&self) -> Vec<u128> {
        self.events
            .iter()
            .filter_map(|(at, e)| matches!(e, TuEvent::Terminated { .. }).then_some(*at))
            .collect()
    }

    fn responses(&self) -> Vec<(u128, u16)> {
        self.events
            .iter()
            .filter_map(|(at, e)| match e {
                TuEvent::Response { response, .. } => Some((*at, response.status().unwrap())),
                _ => None,
            })
            .collect()
    }

    /// The key of the only server transaction the TU was told about.
    fn server_key(&self) -> TransactionKey {
        let keys: Vec<_> = self
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                TuEvent::Request { key, .. } => Some(key.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(keys.len(), 1, "expected exactly one new server transaction");
        keys[0].clone()
    }
}

#[tokio::test(start_paused = true)]
async fn invite_client_over_udp_retransmits_on_timer_a_and_times_out_on_b() {
    let mut h = Harness::new();
    h.layer
        .send_request(request("INVITE", &new_branch()), peer(), false)
        .unwrap();
    h.run_until(40_000).await;
    assert_eq!(
        h.send_times(),
        [0, 500, 1_500, 3_500, 7_500, 15_500, 31_500]
    );
    assert_eq!(h.timeouts(), [(32_000, Timer::B)]);
    assert_eq!(h.terminated_at(), [32_000]);
    assert!(h.layer.is_empty());
}

#[tokio::test(start_paused = true)]
async fn non_invite_client_timer_e_doubles_up_to_t2_and_f_times_out() {
    let mut h = Harness::new();
    h.layer
        .send_request(request("OPTIONS", &new_branch()), peer(), false)
        .unwrap();
    h.run_until(40_000).await;
    assert_eq!(
        h.send_times(),
        [0, 500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
    );
    assert_eq!(h.timeouts(), [(32_000, Timer::F)]);
    assert_eq!(h.terminated_at(), [32_000]);
    assert!(h.layer.is_empty());
}

#[tokio::test(start_paused = true)]
async fn non_invite_client_after_provisional_retransmits_every_t2_then_k() {
    let mut h = Harness::new();
    let branch = new_branch();
    h.layer
        .send_request(request("REGISTER", &branch), peer(), false)
        .unwrap();
    h.run_until(700).await;
    h.receive(response(100, "REGISTER", &branch), false);
    h.run_until(10_000).await;
    // E armed at 0.5 s for 1 s fires at 1.5 s, then every T2 = 4 s.
    assert_eq!(h.send_times(), [0, 500, 1_500, 5_500, 9_500]);
    h.receive(response(200, "REGISTER", &branch), false);
    h.receive(response(200, "REGISTER", &branch), false);
    h.run_until(20_000).await;
    assert_eq!(h.send_times().len(), 5, "no retransmission after the final");
    assert_eq!(h.responses(), [(700, 100), (10_000, 200)]);
    assert_eq!(h.terminated_at(), [15_000], "Timer K = T4");
}

#[tokio::test(start_paused = true)]
async fn non_invite_server_absorbs_retransmissions_and_resends_last_response() {
    let mut h = Harness::new();
    let req = request("MESSAGE", "z9hG4bKsrv1");
    h.receive(req.clone(), false);
    let key = h.server_key();
    h.run_until(100).await;
    h.receive(req.clone(), false);
    assert!(h.send_times().is_empty(), "Trying discards retransmissions");
    h.layer
        .respond(&key, response(100, "MESSAGE", "z9hG4bKsrv1"))
        .unwrap();
    h.run_until(600).await;
    h.receive(req.clone(), false);
    h.run_until(1_000).await;
    h.layer
        .respond(&key, response(202, "MESSAGE", "z9hG4bKsrv1"))
        .unwrap();
    h.run_until(2_000).await;
    h.receive(req.clone(), false);
    assert_eq!(h.send_times(), [100, 600, 1_000, 2_000]);
    assert_eq!(h.sent_methods_or_codes(), ["100", "100", "202", "202"]);
    assert_eq!(
        h.server_key(),
        key,
        "retransmissions make no new transaction"
    );
    h.run_until(32_999).await;
    assert!(h.terminated_at().is_empty());
    h.run_until(33_000).await;
    assert_eq!(
        h.terminated_at(),
        [33_000],
        "Timer J = 64*T1 after the final"
    );
    assert!(h.layer.is_empty());
}

#[tokio::test(start_paused = true)]
async fn invite_server_retransmits_non_2xx_on_timer_g_until_ack_then_timer_i() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKinv1");
    h.receive(invite.clone(), false);
    let key = h.server_key();
    h.layer
        .respond(&key, response(486, "INVITE", "z9hG4bKinv1"))
        .unwrap();
    h.run_until(8_000).await;
    h.receive(invite.clone(), false);
    h.run_until(9_000).await;
    let ack = request("ACK", "z9hG4bKinv1");
    h.receive(ack.clone(), false);
    h.run_until(10_000).await;
    h.receive(ack, false);
    h.run_until(20_000).await;
    // 100 Trying at once; G: 0.5, 1, 2, 4 (capped at T2); the INVITE retransmission
    // at 8 s is answered.
    assert_eq!(h.send_times(), [0, 0, 500, 1_500, 3_500, 7_500, 8_000]);
    assert_eq!(
        h.sent_methods_or_codes(),
        ["100", "486", "486", "486", "486", "486", "486"]
    );
    assert!(
        !h.events
            .iter()
            .any(|(_, e)| matches!(e, TuEvent::Ack { .. })),
        "ACK for a non-2xx is absorbed"
    );
    assert!(h.timeouts().is_empty());
    assert_eq!(h.terminated_at(), [14_000], "Timer I = T4 after the ACK");
}

#[tokio::test(start_paused = true)]
async fn invite_server_without_ack_times_out_on_timer_h() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKinv2");
    h.receive(invite.clone(), false);
    h.receive(invite, false);
    assert_eq!(
        h.sent_methods_or_codes(),
        ["100", "100"],
        "retransmission gets the 100"
    );
    let key = h.server_key();
    h.layer
        .respond(&key, response(500, "INVITE", "z9hG4bKinv2"))
        .unwrap();
    h.run_until(40_000).await;
    assert_eq!(
        h.send_times(),
        [0, 0, 0, 500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
    );
    assert_eq!(h.timeouts(), [(32_000, Timer::H)]);
    assert_eq!(h.terminated_at(), [32_000]);
}

#[tokio::test(start_paused = true)]
async fn invite_server_2xx_moves_to_accepted_until_timer_l() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKinv3");
    h.receive(invite.clone(), false);
    let key = h.server_key();
    let ok = response(200, "INVITE", "z9hG4bKinv3");
    h.layer.respond(&key, ok.clone()).unwrap();
    h.run_until(1_000).await;
    h.receive(invite, false);
    h.run_until(2_000).await;
    h.layer.respond(&key, ok.clone()).unwrap();
    h.run_until(3_000).await;
    // An ACK matching the transaction in Accepted goes to the TU, and so does the
    // usual 2xx ACK with its own branch.
    h.receive(request("ACK", "z9hG4bKinv3"), false);
    h.receive(request("ACK", "z9hG4bKack3"), false);
    assert!(h
        .layer
        .respond(&key, response(503, "INVITE", "z9hG4bKinv3"))
        .is_err());
    h.run_until(40_000).await;
    assert_eq!(
        h.send_times(),
        [0, 0, 2_000],
        "100 Trying, 200; no Timer G; INVITE retransmission absorbed; TU's 2xx passes"
    );
    let acks: Vec<_> = h
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            TuEvent::Ack { key, .. } => Some(key.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(acks, [Some(key), None]);
    assert_eq!(h.terminated_at(), [32_000], "Timer L = 64*T1");
}

#[tokio::test(start_paused = true)]
async fn invite_client_2xx_moves_to_accepted_and_passes_further_2xx_until_timer_m() {
    let mut h = Harness::new();
    let branch = new_branch();
    h.layer
        .send_request(request("INVITE", &branch), peer(), false)
        .unwrap();
    h.run_until(1_000).await;
    h.receive(response(200, "INVITE", &branch), false);
    h.run_until(2_000).await;
    h.receive(response(200, "INVITE", &branch), false);
    h.receive(response(180, "INVITE", &branch), false);
    h.run_until(40_000).await;
    assert_eq!(
        h.send_times(),
        [0, 500],
        "Timer A stops; the transaction does not ACK a 2xx"
    );
    assert_eq!(h.responses(), [(1_000, 200), (2_000, 200)]);
    assert!(h.timeouts().is_empty());
    assert_eq!(h.terminated_at(), [33_000], "Timer M = 64*T1 after the 2xx");
}

#[tokio::test(start_paused = true)]
async fn invite_client_acks_non_2xx_and_absorbs_its_retransmissions_until_timer_d() {
    let mut h = Harness::new();
    let branch = new_branch();
    h.layer
        .send_request(request("INVITE", &branch), peer(), false)
        .unwrap();
    h.run_until(1_000).await;
    h.receive(response(404, "INVITE", &branch), false);
    h.run_until(2_000).await;
    h.receive(response(404, "INVITE", &branch), false);
    h.run_until(40_000).await;
    assert_eq!(
        h.sent_methods_or_codes(),
        ["INVITE", "INVITE", "ACK", "ACK"]
    );
    assert_eq!(h.send_times(), [0, 500, 1_000, 2_000]);
    let sent = h.sent.lock().unwrap();
    let ack = &sent[2].1;
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(
        ack.headers.get_str(&HeaderName::To),
        Some("<sip:bob@ims.example.net>;tag=b7")
    );
    assert_eq!(ack.headers.get_str(&HeaderName::CSeq), Some("1 ACK"));
    drop(sent);
    assert_eq!(
        h.responses(),
        [(1_000, 404)],
        "retransmission not passed up"
    );
    assert_eq!(h.terminated_at(), [33_000], "Timer D = 32 s");
}

#[tokio::test(start_paused = true)]
async fn reliable_transport_sends_once_and_zeroes_d_i_j_k() {
    let mut h = Harness::new();
    let (b1, b2) = (new_branch(), new_branch());
    h.layer
        .send_request(request("INVITE", &b1), peer(), true)
        .unwrap();
    h.layer
        .send_request(request("OPTIONS", &b2), peer(), true)
        .unwrap();
    h.run_until(40_000).await;
    assert_eq!(h.send_times(), [0, 0], "no Timer A or E");
    assert_eq!(h.timeouts(), [(32_000, Timer::B), (32_000, Timer::F)]);

    let mut h = Harness::new();
    let (b1, b2) = (new_branch(), new_branch());
    h.layer
        .send_request(request("INVITE", &b1), peer(), true)
        .unwrap();
    h.layer
        .send_request(request("OPTIONS", &b2), peer(), true)
        .unwrap();
    h.run_until(1_000).await;
    h.receive(response(486, "INVITE", &b1), true);
    h.receive(response(200, "OPTIONS", &b2), true);
    assert_eq!(h.terminated_at(), [1_000, 1_000], "Timers D and K are zero");

    let mut h = Harness::new();
    h.receive(request("INVITE", "z9hG4bKrel1"), true);
    let key = h.server_key();
    h.layer
        .respond(&key, response(486, "INVITE", "z9hG4bKrel1"))
        .unwrap();
    h.run_until(5_000).await;
    assert_eq!(h.sent_methods_or_codes(), ["100", "486"], "no Timer G");
    h.receive(request("ACK", "z9hG4bKrel1"), true);
    assert_eq!(h.terminated_at(), [5_000], "Timer I is zero");

    let mut h = Harness::new();
    h.receive(request("BYE", "z9hG4bKrel2"), true);
    let key = h.server_key();
    h.layer
        .respond(&key, response(200, "BYE", "z9hG4bKrel2"))
        .unwrap();
    h.drain();
    assert_eq!(h.terminated_at(), [0], "Timer J is zero");
    assert!(h.layer.is_empty());
}

#[tokio::test(start_paused = true)]
async fn cancel_is_its_own_transaction_and_names_the_invite_it_cancels() {
    let mut h = Harness::new();
    h.receive(request("INVITE", "z9hG4bKc1"), false);
    h.receive(request("CANCEL", "z9hG4bKc1"), false);
    h.receive(request("CANCEL", "z9hG4bKother"), false);
    let requests: Vec<_> = h
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            TuEvent::Request {
                key,
                request,
                cancels,
                ..
            } => Some((
                key.clone(),
                request.method().unwrap().clone(),
                cancels.clone(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 3);
    let invite_key = requests[0].0.clone();
    assert_eq!(requests[1].1, Method::Cancel);
    assert_ne!(requests[1].0, invite_key);
    assert_eq!(requests[1].2, Some(invite_key));
    assert_eq!(requests[2].2, None);
    assert_eq!(h.layer.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn stray_responses_and_transport_errors_reach_the_tu() {
    let mut h = Harness::new();
    h.receive(response(200, "INVITE", "z9hG4bKnobody"), false);
    assert!(matches!(
        h.events.as_slice(),
        [(0, TuEvent::StrayResponse { .. })]
    ));

    let mut layer = TransactionLayer::new(
        TimerConfig::default(),
        LayerLimits::default(),
        |_: &Bytes, _: &SocketAddr| Err(std::io::ErrorKind::ConnectionReset.into()),
    );
    let key = layer
        .send_request(request("INVITE", &new_branch()), peer(), true)
        .unwrap();
    assert_eq!(
        layer.poll_event(),
        Some(TuEvent::TransportError { key: key.clone() })
    );
    assert_eq!(layer.poll_event(), Some(TuEvent::Terminated { key }));
    assert!(layer.is_empty());
}

#[tokio::test(start_paused = true)]
async fn full_table_drops_new_requests() {
    let mut layer = TransactionLayer::new(
        TimerConfig::default(),
        LayerLimits {
            max_transactions: 2,
        },
        |_: &Bytes, _: &SocketAddr| Ok(()),
    );
    for branch in ["z9hG4bKf1", "z9hG4bKf2", "z9hG4bKf3"] {
        layer.receive(request("OPTIONS", branch), peer(), false);
    }
    assert_eq!(layer.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn client_cancel_shares_the_invite_branch_but_is_its_own_transaction() {
    let mut h = Harness::new();
    let branch = new_branch();
    let invite = h
        .layer
        .send_request(request("INVITE", &branch), peer(), false)
        .unwrap();
    h.receive(response(180, "INVITE", &branch), false);
    let cancel = h
        .layer
        .send_request(request("CANCEL", &branch), peer(), false)
        .unwrap();
    assert_ne!(invite, cancel);
    h.receive(response(200, "CANCEL", &branch), false);
    h.receive(response(487, "INVITE", &branch), false);
    let keyed: Vec<_> = h
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            TuEvent::Response { key, response } => Some((key.clone(), response.status().unwrap())),
            _ => None,
        })
        .collect();
    assert_eq!(keyed, [(invite.clone(), 180), (cancel, 200), (invite, 487)]);
    assert_eq!(
        h.sent_methods_or_codes(),
        ["INVITE", "CANCEL", "ACK"],
        "the 487 is ACKed by the INVITE transaction"
    );
}
