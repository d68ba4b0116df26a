//! Basic parsing of a realistic IMS REGISTER: the gaps measured in rsip/rsipstack.

use ims_sip::message::auth_params::AuthParams;
use ims_sip::message::via::Via;
use ims_sip::{HeaderName, Method, SipMessage};

const REGISTER: &[u8] = include_bytes!("data/register_aka.sip");

#[test]
fn register_round_trips_byte_exact() {
    let msg = SipMessage::parse(REGISTER).expect("parses");
    assert_eq!(&msg.to_bytes()[..], REGISTER);
    assert_eq!(msg.method(), Some(&Method::Register));
}

#[test]
fn comma_joined_vias_are_all_seen_with_ipv6_received() {
    let msg = SipMessage::parse(REGISTER).expect("parses");
    let vias: Vec<_> = msg.headers.values(&HeaderName::Via).collect();
    assert_eq!(vias.len(), 2);
    let first = std::str::from_utf8(&vias[0]).expect("utf8");
    let via = Via::parse(first).expect("via");
    assert_eq!(via.host, "[2001:db8::1]");
    assert_eq!(via.port, Some(5060));
    assert_eq!(via.received(), Some("2001:db8::9"));
    assert_eq!(via.branch(), Some("z9hG4bKnashds7"));
    assert_eq!(via.rport(), Some(Some(5060)));
    let second = Via::parse(std::str::from_utf8(&vias[1]).expect("utf8")).expect("via");
    assert_eq!(second.transport, "TCP");
    assert_eq!(second.branch(), Some("z9hG4bK2"));
}

#[test]
fn aka_authorization_with_hex_nc() {
    let msg = SipMessage::parse(REGISTER).expect("parses");
    let auth = msg
        .headers
        .get_str(&HeaderName::Authorization)
        .expect("auth");
    let p = AuthParams::parse(auth).expect("auth params");
    assert_eq!(p.scheme, "Digest");
    assert_eq!(p.get("algorithm").as_deref(), Some("AKAv1-MD5"));
    assert_eq!(p.nonce_count(), Some(10));
    assert_eq!(p.qop_list(), vec!["auth".to_string()]);
}

#[test]
fn popping_the_top_via_rewrites_only_that_line() {
    let mut msg = SipMessage::parse(REGISTER).expect("parses");
    let top = msg.headers.pop_first_value(&HeaderName::Via).expect("via");
    assert!(top.starts_with(b"SIP/2.0/UDP [2001:db8::1]"));
    let rest: Vec<_> = msg.headers.values(&HeaderName::Via).collect();
    assert_eq!(rest.len(), 1);
    let out = msg.to_bytes();
    let text = std::str::from_utf8(&out).expect("utf8");
    assert!(text.contains("\r\nVia: SIP/2.0/TCP p.ims.example.net;branch=z9hG4bK2\r\n"));
    assert!(
        text.contains("\r\nl: 0\r\n"),
        "untouched compact header kept as written"
    );
}
