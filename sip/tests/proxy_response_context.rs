//! Response context behaviour (RFC 3261 §16.7-§16.10), driven the way the glue layer
//! will drive it: forward a received request to targets, feed back downstream
//! responses and transaction events, check what the context asks to send.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use ims_sip::message::build::response_with;
use ims_sip::message::via::Via;
use ims_sip::proxy::loops::LoopHash;
use ims_sip::proxy::response_context::{BranchId, BranchState, ResponseContext, ResponseError};
use ims_sip::proxy::routing::{forward, ForwardSpec};
use ims_sip::proxy::via::{add_via, response_destination, stamp_received, LocalVia};
use ims_sip::proxy::{cancel::handle_cancel, TransportKind};
use ims_sip::{HeaderName, Method, SipMessage};

fn received(method: &str) -> SipMessage {
    let mut req = SipMessage::parse(Bytes::from(format!(
        "{method} sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP ua.example.com:5062;rport;branch=z9hG4bKua1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\n\
         To: <sip:bob@example.com>\r\nCall-ID: call-1\r\nCSeq: 1 {method}\r\n\
         Content-Length: 0\r\n\r\n"
    )))
    .unwrap();
    stamp_received(&mut req, "192.0.2.10:40000".parse().unwrap()).unwrap();
    req
}

/// The request a proxy sends toward `target` for `req`: §16.6 with our Via on top.
fn branch_request(req: &SipMessage, target: &str) -> SipMessage {
    let mut f = forward(
        req,
        &ForwardSpec {
            target: Some(target),
            ..Default::default()
        },
    )
    .unwrap();
    add_via(
        &mut f.request,
        &LocalVia {
            transport: f.next_hop.transport,
            host: "10.0.0.1".into(),
            port: Some(5060),
            rport: false,
        },
        &LoopHash::of(req).branch(),
    );
    f.request
}

/// A context for `method` forked to `n` targets; returns it with the branch requests.
fn forked(method: &str, n: usize) -> (ResponseContext, Vec<(BranchId, SipMessage)>) {
    let req = received(method);
    let mut ctx = ResponseContext::new(req.clone());
    let mut branches = Vec::new();
    for i in 0..n {
        let request = branch_request(&req, &format!("sip:bob@192.0.2.{}", 20 + i));
        branches.push((ctx.add_branch(&request).unwrap(), request));
    }
    (ctx, branches)
}

/// A downstream response to a branch request, optionally with extra headers.
fn reply(branch_req: &SipMessage, code: u16, extra: &[(HeaderName, &str)]) -> SipMessage {
    let r = response_with(branch_req, code, "X", None, extra);
    // Round-trip through the wire format, as a real response would arrive.
    SipMessage::parse(r.to_bytes()).unwrap()
}

fn top_via(msg: &SipMessage) -> Bytes {
    msg.headers.first_value(&HeaderName::Via).unwrap()
}

#[test]
fn trying_is_absorbed_and_other_provisionals_forwarded_without_our_via() {
    let (mut ctx, b) = forked("INVITE", 1);
    let (id, req) = &b[0];
    let a = ctx.on_response(*id, reply(req, 100, &[])).unwrap();
    assert!(a.forward.is_none() && a.cancel.is_empty());
    assert_eq!(ctx.branch_state(*id), Some(BranchState::Proceeding));

    let a = ctx.on_response(*id, reply(req, 180, &[])).unwrap();
    let fwd = a.forward.unwrap();
    assert_eq!(fwd.status(), Some(180));
    let vias: Vec<_> = fwd.headers.values(&HeaderName::Via).collect();
    assert_eq!(vias.len(), 1, "our Via is removed");
    // It goes back where the request came from: received + rport (RFC 3581 §4).
    let dest = response_destination(&fwd).unwrap().unwrap();
    assert_eq!(dest.hop.host, "192.0.2.10");
    assert_eq!(dest.hop.port, 40000);
    assert_eq!(dest.hop.transport, TransportKind::Udp);
    assert!(!dest.prefer_incoming_flow);
}

#[test]
fn every_2xx_to_invite_is_forwarded_and_pending_branches_cancelled() {
    let (mut ctx, b) = forked("INVITE", 3);
    ctx.on_response(b[1].0, reply(&b[1].1, 180, &[])).unwrap();
    let a = ctx.on_response(b[0].0, reply(&b[0].1, 200, &[])).unwrap();
    assert_eq!(a.forward.unwrap().status(), Some(200));
    assert!(ctx.final_sent());
    // Branch 1 has seen a provisional: cancelled now, with its own top Via (§9.1).
    assert_eq!(a.cancel.len(), 1);
    let (cid, cancel) = &a.cancel[0];
    assert_eq!(*cid, b[1].0);
    assert_eq!(cancel.method(), Some(&Method::Cancel));
    assert_eq!(top_via(cancel), top_via(&b[1].1));
    assert_eq!(cancel.headers.values(&HeaderName::Via).count(), 1);
    // Branch 2 had no response yet: its CANCEL waits for a provisional (§9.1).
    let a = ctx.on_response(b[2].0, reply(&b[2].1, 183, &[])).unwrap();
    assert!(a.forward.is_none(), "no provisional after a final");
    assert_eq!(a.cancel.len(), 1);
    assert_eq!(top_via(&a.cancel[0].1), top_via(&b[2].1));
    // A 2xx from the cancelled branch 1 (the race with CANCEL) is still forwarded.
    let a = ctx.on_response(b[1].0, reply(&b[1].1, 200, &[])).unwrap();
    assert_eq!(a.forward.unwrap().status(), Some(200));
    assert!(a.cancel.is_empty(), "no CANCEL is sent twice");
}

#[test]
fn only_one_2xx_to_non_invite_is_forwarded_and_nothing_cancelled() {
    let (mut ctx, b) = forked("MESSAGE", 2);
    let a = ctx.on_response(b[0].0, reply(&b[0].1, 200, &[])).unwrap();
    assert_eq!(a.forward.unwrap().status(), Some(200));
    assert!(a.cancel.is_empty());
    let a = ctx.on_response(b[1].0, reply(&b[1].1, 202, &[])).unwrap();
    assert!(a.forward.is_none());
}

#[test]
fn six_xx_cancels_others_and_wins() {
    let (mut ctx, b) = forked("INVITE", 3);
    ctx.on_response(b[1].0, reply(&b[1].1, 180, &[])).unwrap();
    let a = ctx.on_response(b[0].0, reply(&b[0].1, 603, &[])).unwrap();
    assert!(a.forward.is_none(), "6xx waits for the other branches");
    assert_eq!(a.cancel.len(), 1);
    assert_eq!(a.cancel[0].0, b[1].0);
    // The cancelled branches answer; a lower-class 4xx does not beat the 6xx.
    ctx.on_response(b[1].0, reply(&b[1].1, 487, &[])).unwrap();
    let a = ctx.on_response(b[2].0, reply(&b[2].1, 404, &[])).unwrap();
    assert_eq!(a.forward.unwrap().status(), Some(603));
}

/// Runs a fork whose branches end with `codes` (in arrival order; 0 = timeout,
/// 1 = transport error) and returns the final status sent upstream.
fn best_of(codes: &[u16]) -> u16 {
    let (mut ctx, b) = forked("INVITE", codes.len());
    let mut out = None;
    for ((id, req), code) in b.iter().zip(codes) {
        let a = match code {
            0 => ctx.on_timeout(*id).unwrap(),
            1 => ctx.on_transport_error(*id).unwrap(),
            c => ctx.on_response(*id, reply(req, *c, &[])).unwrap(),
        };
        assert!(out.is_none(), "final sent before every branch completed");
        out = a.forward;
    }
    out.expect("no final after every branch completed")
        .status()
        .unwrap()
}

#[test]
fn best_response_table() {
    // (branch results in arrival order, expected final) per §16.7 step 6.
    let table: &[(&[u16], u16)] = &[
        (&[486], 486),
        (&[486, 404], 486), // same class, no preference: first arrival
        (&[404, 486], 404),
        (&[486, 484], 484), // 484 gives resubmission information
        (&[500, 415], 415),
        (&[404, 420], 420),
        (&[480, 407], 407),
        (&[302, 404], 302), // lowest class
        (&[404, 302, 500], 302),
        (&[500, 404], 404),
        (&[503], 500), // a downstream 503 is not forwarded
        (&[503, 502], 502),
        (&[486, 603], 603), // 6xx beats every class
        (&[0], 408),        // no response at all
        (&[0, 0], 408),
        (&[1], 503),      // transport failure to the only branch
        (&[0, 486], 486), // a downstream answer beats a synthesized timeout
        (&[1, 500], 500),
    ];
    for (codes, expected) in table {
        assert_eq!(best_of(codes), *expected, "branches {codes:?}");
    }
}

#[test]
fn challenges_from_all_401_407_are_aggregated() {
    let (mut ctx, b) = forked("INVITE", 3);
    ctx.on_response(
        b[0].0,
        reply(
            &b[0].1,
            401,
            &[(
                HeaderName::WwwAuthenticate,
                "Digest realm=\"a\", nonce=\"1\"",
            )],
        ),
    )
    .unwrap();
    ctx.on_response(b[1].0, reply(&b[1].1, 404, &[])).unwrap();
    let a = ctx
        .on_response(
            b[2].0,
            reply(
                &b[2].1,
                407,
                &[
                    (
                        HeaderName::ProxyAuthenticate,
                        "Digest realm=\"b\", nonce=\"2\"",
                    ),
                    (
                        HeaderName::WwwAuthenticate,
                        "Digest realm=\"c\", nonce=\"3\"",
                    ),
                ],
            ),
        )
        .unwrap();
    let fwd = a.forward.unwrap();
    assert_eq!(fwd.status(), Some(401));
    let www: Vec<_> = fwd
        .headers
        .get_all(&HeaderName::WwwAuthenticate)
        .map(|h| h.value().clone())
        .collect();
    assert_eq!(
        www,
        vec![
            "Digest realm=\"a\", nonce=\"1\"",
            "Digest realm=\"c\", nonce=\"3\""
        ]
    );
    let proxy: Vec<_> = fwd
        .headers
        .get_all(&HeaderName::ProxyAuthenticate)
        .map(|h| h.value().clone())
        .collect();
    assert_eq!(proxy, vec!["Digest realm=\"b\", nonce=\"2\""]);
}

#[test]
fn locally_generated_finals_carry_the_original_vias_and_context_tag() {
    let (mut ctx, b) = forked("INVITE", 1);
    let fwd = ctx.on_timeout(b[0].0).unwrap().forward.unwrap();
    assert_eq!(fwd.status(), Some(408));
    assert_eq!(fwd.headers.values(&HeaderName::Via).count(), 1);
    let via = fwd.headers.get_str(&HeaderName::Via).unwrap();
    assert_eq!(Via::parse(via).unwrap().branch(), Some("z9hG4bKua1"));
    let to = fwd.headers.get_str(&HeaderName::To).unwrap();
    assert!(to.ends_with(&format!(";tag={}", ctx.local_tag())));
}

#[test]
fn cancel_answers_200_cancels_pending_and_ends_in_487() {
    let (mut ctx, b) = forked("INVITE", 3);
    ctx.on_response(b[0].0, reply(&b[0].1, 180, &[])).unwrap();
    ctx.on_response(b[1].0, reply(&b[1].1, 486, &[])).unwrap();
    // Branch 2 has no response yet.
    let cancel_in = ims_sip::message::build::cancel(&received("INVITE")).unwrap();
    let out = handle_cancel(&mut ctx, &cancel_in);
    assert_eq!(out.ok.status(), Some(200));
    assert_eq!(out.ok.headers.get_str(&HeaderName::CSeq), Some("1 CANCEL"));
    assert!(out.actions.forward.is_none());
    // Only the proceeding branch is cancelled now; the completed one never.
    let ids: Vec<_> = out.actions.cancel.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![b[0].0]);
    // Branch 2 never answers: its transaction times out, and after a CANCEL the
    // synthesized timeout counts as 487.
    assert!(ctx.on_timeout(b[2].0).unwrap().forward.is_none());
    let a = ctx.on_response(b[0].0, reply(&b[0].1, 487, &[])).unwrap();
    // 486 arrived before the CANCEL and is as good as 487 (same class, first wins).
    assert_eq!(a.forward.unwrap().status(), Some(486));
}

#[test]
fn cancel_with_nothing_better_gives_487() {
    let (mut ctx, b) = forked("INVITE", 1);
    let a = ctx.cancel();
    assert!(a.cancel.is_empty(), "no CANCEL before a provisional");
    let a = ctx.on_response(b[0].0, reply(&b[0].1, 100, &[])).unwrap();
    assert_eq!(
        a.cancel.len(),
        1,
        "CANCEL sent once the provisional arrived"
    );
    let a = ctx.on_timeout(b[0].0).unwrap();
    assert_eq!(a.forward.unwrap().status(), Some(487));
}

#[test]
fn cancel_without_branches_answers_487_at_once_and_is_noop_for_non_invite() {
    let mut ctx = ResponseContext::new(received("INVITE"));
    let a = ctx.cancel();
    assert_eq!(a.forward.unwrap().status(), Some(487));
    assert!(ctx.final_sent());
    assert_eq!(ctx.cancel(), Default::default());

    let (mut ctx, b) = forked("OPTIONS", 1);
    ctx.on_response(b[0].0, reply(&b[0].1, 100, &[])).unwrap();
    assert_eq!(ctx.cancel(), Default::default());
}

#[test]
fn timer_c_cancels_proceeding_and_times_out_calling() {
    let (mut ctx, b) = forked("INVITE", 2);
    ctx.on_response(b[0].0, reply(&b[0].1, 180, &[])).unwrap();
    let a = ctx.on_timer_c(b[0].0).unwrap();
    assert_eq!(a.cancel.len(), 1);
    assert_eq!(top_via(&a.cancel[0].1), top_via(&b[0].1));
    let a = ctx.on_timer_c(b[1].0).unwrap();
    assert!(a.cancel.is_empty());
    assert_eq!(ctx.branch_state(b[1].0), Some(BranchState::Completed(408)));
    assert!(a.forward.is_none());
    let a = ctx.on_response(b[0].0, reply(&b[0].1, 487, &[])).unwrap();
    // 408 (synthesized) and 487 (downstream) share the class: downstream wins.
    assert_eq!(a.forward.unwrap().status(), Some(487));
}

#[test]
fn responses_that_do_not_fit_are_errors() {
    let (mut ctx, b) = forked("INVITE", 2);
    // Branch 1's response offered as branch 0's.
    assert_eq!(
        ctx.on_response(b[0].0, reply(&b[1].1, 180, &[])),
        Err(ResponseError::BranchMismatch)
    );
    // Our Via alone: nothing to forward to.
    let mut lone = reply(&b[0].1, 180, &[]);
    let ours = top_via(&lone);
    lone.headers.remove_all(&HeaderName::Via);
    lone.headers.push(HeaderName::Via, ours);
    assert_eq!(
        ctx.on_response(b[0].0, lone),
        Err(ResponseError::NoUpstreamVia)
    );
    // Requests are not responses.
    assert_eq!(
        ctx.on_response(b[0].0, b[0].1.clone()),
        Err(ResponseError::NotAResponse)
    );
    // Branch lookup by Via branch parameter.
    let branch = Via::parse(std::str::from_utf8(&top_via(&b[1].1)).unwrap())
        .unwrap()
        .branch()
        .unwrap()
        .to_string();
    assert_eq!(ctx.branch_by_param(&branch), Some(b[1].0));
    assert_eq!(ctx.branch_by_param("z9hG4bKnone"), None);
    // A retransmitted final is ignored.
    ctx.on_response(b[0].0, reply(&b[0].1, 486, &[])).unwrap();
    let a = ctx.on_response(b[0].0, reply(&b[0].1, 486, &[])).unwrap();
    assert_eq!(a, Default::default());
}

/// One more branch of an INVITE context toward `target`.
fn add_branch(ctx: &mut ResponseContext, target: &str) -> (BranchId, SipMessage) {
    let request = branch_request(&received("INVITE"), target);
    (ctx.add_branch(&request).unwrap(), request)
}

#[test]
fn a_held_round_hands_out_its_best_response_and_a_retry_forgets_it() {
    let (mut ctx, b) = forked("INVITE", 1);
    ctx.hold_final();
    let (id, req) = &b[0];
    let a = ctx.on_response(*id, reply(req, 503, &[])).unwrap();
    // A downstream 503 becomes 500 (§16.7 step 6); held, not sent.
    assert!(a.forward.is_none());
    assert_eq!(a.held.as_ref().and_then(SipMessage::status), Some(500));
    assert!(ctx.is_held() && !ctx.final_sent());

    // Serial forking: a second round decides alone (its 486 beats nothing older).
    assert!(ctx.retry());
    assert!(!ctx.is_held());
    let (id2, req2) = add_branch(&mut ctx, "sip:bob@192.0.2.40");
    let a = ctx.on_response(id2, reply(&req2, 486, &[])).unwrap();
    assert_eq!(a.forward.as_ref().and_then(SipMessage::status), Some(486));
    assert!(a.held.is_none() && ctx.final_sent());
    assert!(!ctx.retry() && !ctx.release(), "nothing is held any more");
}

#[test]
fn a_held_response_released_counts_as_sent() {
    let (mut ctx, b) = forked("INVITE", 1);
    ctx.hold_final();
    let a = ctx.on_timeout(b[0].0).unwrap();
    assert_eq!(a.held.as_ref().and_then(SipMessage::status), Some(408));
    assert!(ctx.release());
    assert!(ctx.final_sent() && !ctx.is_held());
}

#[test]
fn a_cancel_while_held_answers_487_at_once() {
    let (mut ctx, b) = forked("INVITE", 1);
    ctx.hold_final();
    assert!(ctx.on_transport_error(b[0].0).unwrap().held.is_some());
    let a = ctx.cancel();
    assert_eq!(a.forward.as_ref().and_then(SipMessage::status), Some(487));
    assert!(ctx.final_sent());
    assert!(!ctx.retry(), "a cancelled request is not retried");
}

#[test]
fn a_cancelled_round_is_not_held() {
    let (mut ctx, b) = forked("INVITE", 1);
    ctx.hold_final();
    let (id, req) = &b[0];
    ctx.on_response(*id, reply(req, 180, &[])).unwrap();
    let a = ctx.cancel();
    assert_eq!(a.cancel.len(), 1);
    let a = ctx.on_response(*id, reply(req, 487, &[])).unwrap();
    assert_eq!(a.forward.as_ref().and_then(SipMessage::status), Some(487));
    assert!(a.held.is_none());
}

#[test]
fn no_response_in_time_is_408_only_for_a_silent_branch() {
    let (mut ctx, b) = forked("INVITE", 2);
    let (silent, _) = &b[0];
    let (trying, req) = &b[1];
    ctx.on_response(*trying, reply(req, 100, &[])).unwrap();
    assert!(ctx.on_no_response(*trying).unwrap().forward.is_none());
    assert_eq!(ctx.branch_state(*trying), Some(BranchState::Proceeding));
    ctx.on_no_response(*silent).unwrap();
    assert_eq!(ctx.branch_state(*silent), Some(BranchState::Completed(408)));
}
