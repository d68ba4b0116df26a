//! Throws hostile header combinations at the ingress filter (`ims-node`): the first
//! byte picks the request kind, the rest is either a whole message or header lines put
//! into a request (so the fuzzer reaches the filter without first having to write a
//! valid start line). Whatever arrives, the filter must not panic, and nothing it
//! admits from the access zone may keep an identity or charging header, in the parsed
//! message or on the wire.

#![no_main]

use bytes::Bytes;
use ims_config::ZonesSection;
use ims_node::ingress::IDENTITY_HEADERS;
use ims_node::{Ingress, RequestKind, Role, Zone};
use ims_sip::SipMessage;
use libfuzzer_sys::fuzz_target;

const KINDS: [RequestKind; 7] = [
    RequestKind::Register,
    RequestKind::Originating,
    RequestKind::Terminating,
    RequestKind::InDialog,
    RequestKind::FromApplicationServer,
    RequestKind::TowardUe,
    RequestKind::NotOurRoute,
];

fn message(data: &[u8]) -> Option<SipMessage> {
    if let Ok(m) = SipMessage::parse(Bytes::copy_from_slice(data)) {
        return Some(m);
    }
    let mut text = b"INVITE sip:bob@ims.example.net SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.9;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n\
        To: <sip:bob@ims.example.net>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        .to_vec();
    text.extend_from_slice(data);
    text.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
    SipMessage::parse(Bytes::from(text)).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Some(parsed) = message(rest) else {
        return;
    };
    let kind = KINDS[usize::from(pick) % KINDS.len()];
    let remote = "127.0.0.9:5060".parse().expect("address");
    for role in [Role::Pcscf, Role::Icscf, Role::Scscf] {
        let filter = Ingress::new(role, &ZonesSection::default());
        for zone in [Zone::Access, Zone::Interconnect, Zone::Unclassified] {
            let mut request = parsed.clone();
            if filter.admit(&mut request, remote, zone, kind).is_err() {
                continue;
            }
            for h in &IDENTITY_HEADERS {
                assert!(request.headers.get(h).is_none(), "{} kept", h.as_str());
            }
            // The serialization carries none either.
            let again = SipMessage::parse(request.to_bytes()).expect("serialization parses");
            for h in &IDENTITY_HEADERS {
                assert!(again.headers.get(h).is_none(), "{} on the wire", h.as_str());
            }
        }
    }
});
