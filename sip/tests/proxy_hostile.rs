//! Hostile input through the proxy core: whatever a peer puts in the Request-URI,
//! Via, Route, Max-Forwards or Proxy-Require, every step returns a value or a typed
//! error and never panics; and what it forwards still parses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use ims_sip::message::build::{bad_request_from_raw, cancel, response};
use ims_sip::proxy::loops::LoopHash;
use ims_sip::proxy::response_context::ResponseContext;
use ims_sip::proxy::routing::{forward, preprocess_route, ForwardSpec};
use ims_sip::proxy::validate::validate;
use ims_sip::proxy::via::{add_via, response_destination, stamp_received, LocalVia};
use ims_sip::proxy::{LocalAddr, ProxyConfig, TransportKind};
use ims_sip::{HeaderName, SipMessage};
use proptest::prelude::*;

fn config() -> ProxyConfig {
    ProxyConfig {
        local: vec![LocalAddr::new("proxy.example.com", None)],
        supported: vec!["sec-agree".into()],
    }
}

/// Header-value-ish text: printable ASCII with the characters SIP parsers trip on.
fn value() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r#"[a-zA-Z0-9:;=<>@\[\]\.,"/ \-_+]{0,40}"#).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_step_survives_hostile_fields(
        ruri in prop_oneof![
            1 => Just("sip:b@example.com".to_string()),
            1 => Just("sip:proxy.example.com;lr".to_string()),
            4 => "sips?:[a-z]{1,5}@[a-z0-9.]{1,12}(:[0-9]{1,5})?(;[a-z]{1,5}(=[a-z0-9]{0,4})?){0,3}",
            1 => value(),
        ],
        via in prop_oneof![
            4 => "SIP/2.0/(UDP|TCP|TLS|XYZ) [a-z0-9.]{1,12}(:[0-9]{1,6})?;branch=z9hG4bK[a-z0-9.]{0,20}(;rport(=[0-9]{0,6})?)?(;received=[0-9a-f:.]{0,20})?",
            1 => value(),
        ],
        route in prop_oneof![
            4 => "<sips?:([a-z]{1,5}@)?(proxy.example.com|[a-z0-9.]{1,12})(:[1-9][0-9]{0,3})?(;lr)?(;transport=(udp|tcp|tls|sctp|ws|x))?(;maddr=[a-z0-9.]{1,8})?>",
            1 => value(),
        ],
        mf in prop_oneof![4 => "[1-9][0-9]?", 1 => "[0-9]{1,3}"],
        preq in prop_oneof![4 => Just("sec-agree".to_string()), 1 => value()],
    ) {
        let raw = format!(
            "INVITE {ruri} SIP/2.0\r\nVia: {via}\r\nRoute: {route}\r\nMax-Forwards: {mf}\r\n\
             Proxy-Require: {preq}\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\n\
             Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        let _ = bad_request_from_raw(raw.as_bytes(), "x");
        let Ok(mut req) = SipMessage::parse(Bytes::from(raw)) else {
            return Ok(());
        };
        let _ = stamp_received(&mut req, "192.0.2.1:5060".parse().unwrap());
        let _ = LoopHash::of(&req);
        if let Err(rejection) = validate(&req, &config()) {
            if let Some(resp) = rejection.response(&req) {
                prop_assert!(SipMessage::parse(resp.to_bytes()).is_ok());
            }
            return Ok(());
        }
        let mut ctx = ResponseContext::new(req.clone());
        if preprocess_route(&mut req, &config()).is_err() {
            return Ok(());
        }
        let Ok(mut f) = forward(&req, &ForwardSpec::default()) else {
            return Ok(());
        };
        add_via(&mut f.request, &LocalVia {
            transport: TransportKind::Udp,
            host: "proxy.example.com".into(),
            port: None,
            rport: false,
        }, "z9hG4bKtest");
        let sent = SipMessage::parse(f.request.to_bytes());
        prop_assert!(sent.is_ok(), "forwarded request does not parse: {}", f.request);
        let _ = cancel(&f.request);
        if let Ok(id) = ctx.add_branch(&f.request) {
            let resp = SipMessage::parse(response(&f.request, 486).to_bytes()).unwrap();
            if let Ok(actions) = ctx.on_response(id, resp) {
                if let Some(up) = actions.forward {
                    let _ = response_destination(&up);
                }
            }
        }
    }

    #[test]
    fn bad_request_builder_survives_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Some(resp) = bad_request_from_raw(&bytes, "bad") {
            prop_assert_eq!(resp.status(), Some(400));
            prop_assert!(resp.headers.get(&HeaderName::Via).is_some());
        }
    }
}

/// Found by `every_step_survives_hostile_fields`: a strict-router Route whose URI holds a
/// raw `<` must not become a Request-URI the next hop cannot parse.
#[test]
fn strict_route_with_angle_bracket_in_uri_is_refused() {
    let wire =
        "INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP ua.example.com;branch=z9hG4bKua\r\n\
        Route: <sip:proxy?example<com>\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\n\
        To: <sip:b@y>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let mut req = SipMessage::parse(wire).unwrap();
    assert!(ims_sip::message::uri::Uri::parse("sip:proxy?example<com").is_err());
    assert!(ims_sip::proxy::routing::strict_route_postprocess(&mut req).is_err());
}
