//! iFC evaluation (TS 29.228 Annex C): a 10-iFC profile (`tests/data/ifc_profile_10.xml`:
//! methods, session cases, header presence and regex, SDP lines, Request-URI regex,
//! ProfilePartIndicator, CNF and DNF, one iFC without TriggerPoint) against an
//! originating INVITE with SDP; four iFCs match. Also the profile read itself and the
//! walk of the chain with `IfcCursor` (encode/decode at every hop, as the odi does).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use ims_sip::SipMessage;
use scscf::ifc::{matching, IfcCursor, RegistrationState, SessionCase};
use scscf::profile::UserProfile;

const PROFILE: &[u8] = include_bytes!("../tests/data/ifc_profile_10.xml");

const INVITE: &[u8] = b"INVITE sip:bob@ims.example.net SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKnashds8;rport\r\n\
Max-Forwards: 69\r\n\
To: <sip:bob@ims.example.net>\r\n\
From: <sip:alice@ims.example.net>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.4:5060>\r\n\
P-Asserted-Identity: <sip:alice@ims.example.net>, <tel:+15551230001>\r\n\
Accept-Contact: *;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\"\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 115\r\n\r\n\
v=0\r\no=- 0 0 IN IP4 192.0.2.4\r\ns=-\r\nc=IN IP4 192.0.2.4\r\nt=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 97\r\na=rtpmap:97 AMR/8000\r\n";

fn bench(c: &mut Criterion) {
    let profile = UserProfile::parse(Bytes::from_static(PROFILE)).unwrap();
    let ifcs = profile.ifcs("sip:alice@ims.example.net");
    assert_eq!(ifcs.len(), 10);
    let invite = SipMessage::parse(Bytes::from_static(INVITE)).unwrap();
    let (case, state) = (SessionCase::Originating, RegistrationState::Registered);
    assert_eq!(matching(ifcs, &invite, case, state).len(), 4);

    c.bench_function("ifc/evaluate_10_ifcs_invite", |b| {
        b.iter(|| matching(black_box(ifcs), black_box(&invite), case, state))
    });
    c.bench_function("ifc/cursor_walk_with_odi_round_trips", |b| {
        b.iter(|| {
            let mut cursor = IfcCursor::start(case, state);
            let mut hops = 0;
            while let Some((next, _)) = cursor.next(black_box(ifcs), black_box(&invite)) {
                cursor = IfcCursor::decode(&next.encode()).unwrap();
                hops += 1;
            }
            hops
        })
    });
    let text = std::str::from_utf8(PROFILE).unwrap();
    c.bench_function("ifc/xml_tree_only", |b| {
        b.iter(|| scscf::ifc::xml::parse(black_box(text)).unwrap())
    });
    c.bench_function("ifc/parse_profile_10_ifcs", |b| {
        b.iter(|| UserProfile::parse(Bytes::from_static(black_box(PROFILE))).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
