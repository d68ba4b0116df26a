//! A request through the whole proxy core as a glue layer would drive it (RFC 3261
//! §16.3-§16.7, RFC 3581): received → validated → route-preprocessed → forwarded
//! with Record-Route and a pre-loaded Route → (looped or spiralled back) → response
//! routed back to the sender.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use ims_sip::message::build::response;
use ims_sip::proxy::record_route::{RecordRoute, RouteUri};
use ims_sip::proxy::response_context::ResponseContext;
use ims_sip::proxy::routing::{forward, preprocess_route, ForwardSpec, NextHop};
use ims_sip::proxy::validate::{validate, Rejection, Validated};
use ims_sip::proxy::via::{add_via, response_destination, stamp_received, LocalVia};
use ims_sip::proxy::{LocalAddr, ProxyConfig, TransportKind};
use ims_sip::{HeaderName, SipMessage};

/// A P-CSCF with a TLS side toward UEs and a UDP side toward the core.
fn pcscf() -> ProxyConfig {
    ProxyConfig {
        local: vec![
            LocalAddr::new("pcscf.example.com", Some(5061)),
            LocalAddr::new("10.0.0.1", Some(5060)),
        ],
        supported: vec!["sec-agree".into()],
    }
}

fn ue_invite() -> SipMessage {
    SipMessage::parse(Bytes::from_static(
        b"INVITE tel:+15551234 SIP/2.0\r\n\
Via: SIP/2.0/TLS [2001:db8::7]:5061;rport;branch=z9hG4bKue1\r\n\
Route: <sip:pcscf.example.com:5061;transport=tls;lr>\r\n\
Max-Forwards: 70\r\n\
Proxy-Require: sec-agree\r\n\
From: <sip:alice@example.com>;tag=ua\r\nTo: <tel:+15551234>\r\n\
Call-ID: flow-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    ))
    .unwrap()
}

/// Steps 1-5 of the glue sequence; returns the forwarded request, hop and context.
fn proxy(
    mut req: SipMessage,
    source: &str,
    config: &ProxyConfig,
) -> Result<(SipMessage, NextHop, ResponseContext), Rejection> {
    stamp_received(&mut req, source.parse().unwrap()).unwrap();
    let Validated { loop_hash } = validate(&req, config)?;
    let mut ctx = ResponseContext::new(req.clone());
    preprocess_route(&mut req, config).unwrap();
    let rr = RecordRoute::Double {
        inbound: RouteUri {
            transport: Some(TransportKind::Tls),
            user: Some("flow42".into()),
            ..RouteUri::new("pcscf.example.com", Some(5061))
        },
        outbound: RouteUri::new("10.0.0.1", Some(5060)),
    };
    let service_route = ["<sip:orig@10.0.0.3:5060;lr>".to_string()];
    let mut f = forward(
        &req,
        &ForwardSpec {
            target: None,
            record_route: Some(&rr),
            preload_routes: &service_route,
        },
    )
    .unwrap();
    add_via(
        &mut f.request,
        &LocalVia {
            transport: f.next_hop.transport,
            host: "10.0.0.1".into(),
            port: Some(5060),
            rport: true,
        },
        &loop_hash.branch(),
    );
    ctx.add_branch(&f.request).unwrap();
    Ok((f.request, f.next_hop, ctx))
}

#[test]
fn request_is_forwarded_with_record_route_preloaded_route_and_our_via() {
    let (out, hop, _) = proxy(ue_invite(), "[2001:db8::7]:40123", &pcscf()).unwrap();
    let text = String::from_utf8(out.to_bytes().to_vec()).unwrap();
    assert!(text.starts_with("INVITE tel:+15551234 SIP/2.0\r\n"));
    let routes: Vec<_> = out.headers.values(&HeaderName::Route).collect();
    assert_eq!(routes, vec!["<sip:orig@10.0.0.3:5060;lr>"], "ours popped");
    let rr: Vec<_> = out.headers.values(&HeaderName::RecordRoute).collect();
    assert_eq!(
        rr,
        vec![
            "<sip:10.0.0.1:5060;lr>",
            "<sip:flow42@pcscf.example.com:5061;transport=tls;lr>"
        ]
    );
    let vias: Vec<_> = out.headers.values(&HeaderName::Via).collect();
    assert_eq!(vias.len(), 2);
    assert!(vias[0].starts_with(b"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK"));
    assert_eq!(
        vias[1],
        "SIP/2.0/TLS [2001:db8::7]:5061;rport=40123;branch=z9hG4bKue1;received=2001:db8::7"
    );
    assert_eq!(out.headers.get_str(&HeaderName::MaxForwards), Some("69"));
    assert_eq!(
        hop,
        NextHop {
            transport: TransportKind::Udp,
            host: "10.0.0.3".into(),
            port: 5060,
            explicit_port: true,
            explicit_transport: false,
        }
    );
    // And it is still a valid message on the wire.
    SipMessage::parse(out.to_bytes()).unwrap();
}

#[test]
fn looped_request_is_rejected_482_and_spiral_passes() {
    let config = pcscf();
    // The next hop (which pops its own Route entry) misroutes the request straight
    // back to us, every time.
    let next_hop_returns = |mut out: SipMessage| {
        out.headers.pop_first_value(&HeaderName::Route);
        out
    };
    let (out, _, _) = proxy(ue_invite(), "[2001:db8::7]:40123", &config).unwrap();
    // First return: the Route set differs from what we first received (our own entry
    // is gone), so it is a spiral (§16.3 step 4)...
    let (again, _, _) = proxy(next_hop_returns(out.clone()), "10.0.0.3:5060", &config).unwrap();
    // ...but the same request coming around once more, unchanged, is a loop.
    let looped = next_hop_returns(again);
    let e = proxy(looped.clone(), "10.0.0.3:5060", &config).unwrap_err();
    assert_eq!(e, Rejection::LoopDetected);
    assert_eq!(e.response(&looped).unwrap().status(), Some(482));

    // A spiral through an application server that retargets: new Request-URI.
    let mut retargeted = next_hop_returns(out);
    retargeted.set_request_uri("sip:+15559999@example.com;user=phone");
    let (retargeted_out, _, _) = proxy(retargeted, "10.0.0.3:5060", &config).unwrap();
    let mut twice = next_hop_returns(retargeted_out);
    twice.set_request_uri("sip:+15550000@example.com;user=phone");
    assert!(proxy(twice, "10.0.0.3:5060", &config).is_ok());
}

#[test]
fn max_forwards_one_is_forwarded_as_zero_then_rejected() {
    let mut req = ue_invite();
    req.headers.set(HeaderName::MaxForwards, "1");
    let (out, _, _) = proxy(req, "[2001:db8::7]:40123", &pcscf()).unwrap();
    assert_eq!(out.headers.get_str(&HeaderName::MaxForwards), Some("0"));
    let mut back = out;
    back.headers.pop_first_value(&HeaderName::Route);
    let e = proxy(back, "10.0.0.3:5060", &pcscf()).unwrap_err();
    assert_eq!(e, Rejection::TooManyHops);
}

#[test]
fn response_goes_back_over_the_ue_flow() {
    let (out, _, mut ctx) = proxy(ue_invite(), "[2001:db8::7]:40123", &pcscf()).unwrap();
    let branch = ctx.branch_by_param(&{
        let v = out.headers.get_str(&HeaderName::Via).unwrap();
        let via = ims_sip::message::via::Via::parse(v).unwrap();
        via.branch().unwrap().to_string()
    });
    let ringing = SipMessage::parse(response(&out, 180).to_bytes()).unwrap();
    let fwd = ctx
        .on_response(branch.unwrap(), ringing)
        .unwrap()
        .forward
        .unwrap();
    let dest = response_destination(&fwd).unwrap().unwrap();
    assert!(dest.prefer_incoming_flow);
    assert_eq!(
        dest.hop,
        NextHop {
            transport: TransportKind::Tls,
            host: "[2001:db8::7]".into(),
            port: 40123,
            explicit_port: true,
            explicit_transport: true,
        }
    );
}
