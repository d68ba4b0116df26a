//! Parses arbitrary bytes as a SIP message. When parsing succeeds, the serialization
//! must parse back to the same message and serialize identically, and every typed view
//! must return (an error or a value) without panicking on every header value.

#![no_main]

use bytes::Bytes;
use ims_sip::message::addr::NameAddr;
use ims_sip::message::auth_params::AuthParams;
use ims_sip::message::cseq::CSeq;
use ims_sip::message::key::TransactionKey;
use ims_sip::message::uri::Uri;
use ims_sip::message::via::Via;
use ims_sip::{HeaderName, SipMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = SipMessage::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    let wire = msg.to_bytes();
    let again = SipMessage::parse(wire.clone()).expect("serialization parses");
    assert_eq!(again, msg, "re-parse differs");
    assert_eq!(again.to_bytes(), wire, "re-serialization differs");

    let _ = msg.validate();
    let _ = TransactionKey::of(&msg);
    if let Some(req) = msg.request() {
        if let Ok(uri) = std::str::from_utf8(&req.uri) {
            let _ = Uri::parse(uri);
        }
    }
    for h in msg.headers.iter() {
        let _ = CSeq::parse(h.value());
        if let Some(text) = h.value_str() {
            let _ = AuthParams::parse(text).map(|a| (a.qop_list(), a.nonce_count()));
            if let Ok(a) = NameAddr::parse(text) {
                let _ = Uri::parse(a.uri);
            }
        }
        for v in h.values() {
            if let Ok(text) = std::str::from_utf8(&v) {
                let _ = Via::parse(text).map(|via| (via.branch(), via.rport()));
                if let Ok(a) = NameAddr::parse(text) {
                    let _ = (a.tag(), Uri::parse(a.uri));
                }
                let _ = Uri::parse(text);
            }
        }
    }

    // An edit a proxy makes: pop the top Via and add its own; the result must parse.
    let mut edited = msg.clone();
    edited.headers.pop_first_value(&HeaderName::Via);
    edited
        .headers
        .push_front(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKfuzz");
    let edited_wire = edited.to_bytes();
    let reparsed = SipMessage::parse(edited_wire).expect("edited message parses");
    assert_eq!(
        reparsed.headers.first_value(&HeaderName::Via).as_deref(),
        Some(&b"SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKfuzz"[..])
    );
});
