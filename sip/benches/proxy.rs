//! One INVITE and its 200 through the sans-IO proxy steps the engine runs (RFC 3261
//! §16.3-§16.7): stamp `received`, validate, preprocess Route, forward with Record-Route
//! and our Via, open a response context, and pass the 200 back through it.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use ims_sip::message::build::response_with;
use ims_sip::proxy::record_route::{RecordRoute, RouteUri};
use ims_sip::proxy::response_context::ResponseContext;
use ims_sip::proxy::routing::{forward, preprocess_route, ForwardSpec};
use ims_sip::proxy::validate::validate;
use ims_sip::proxy::via::{add_via, stamp_received, LocalVia};
use ims_sip::proxy::{LocalAddr, ProxyConfig, TransportKind};
use ims_sip::SipMessage;

const INVITE: &[u8] = b"INVITE sip:bob@192.0.2.20:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKnashds8;rport\r\n\
Route: <sip:192.0.2.10:5060;lr>\r\n\
Max-Forwards: 70\r\n\
To: <sip:bob@ims.example.com>\r\n\
From: <sip:alice@ims.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.4:5060>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 40\r\n\r\n\
v=0\r\no=- 0 0 IN IP4 192.0.2.4\r\ns=-\r\nt=0 0\r\n";

fn bench(c: &mut Criterion) {
    let config = ProxyConfig {
        local: vec![LocalAddr::new("192.0.2.10", Some(5060))],
        supported: Vec::new(),
    };
    let rr = RecordRoute::Single(RouteUri::new("192.0.2.10", Some(5060)));
    let via = LocalVia {
        transport: TransportKind::Udp,
        host: "192.0.2.10".into(),
        port: Some(5060),
        rport: false,
    };
    let source = "192.0.2.4:5060".parse().unwrap();
    c.bench_function("proxy INVITE + 200 (sans-IO)", |b| {
        b.iter(|| {
            let mut req = SipMessage::parse(INVITE.to_vec()).unwrap();
            stamp_received(&mut req, source).unwrap();
            let validated = validate(&req, &config).unwrap();
            let mut ctx = ResponseContext::new(req.clone());
            preprocess_route(&mut req, &config).unwrap();
            let spec = ForwardSpec {
                target: None,
                record_route: Some(&rr),
                preload_routes: &[],
            };
            let mut out = forward(&req, &spec).unwrap().request;
            add_via(&mut out, &via, &validated.loop_hash.branch());
            let id = ctx.add_branch(&out).unwrap();
            let ok = response_with(&out, 200, "OK", Some("b1"), &[]);
            let ok = SipMessage::parse(ok.to_bytes()).unwrap();
            let actions = ctx.on_response(id, ok).unwrap();
            actions.forward.unwrap().to_bytes()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
