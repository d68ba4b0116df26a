//! The decoders never panic on arbitrary bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::{Bytes, BytesMut};
use ims_diameter::codec::DiameterCodec;
use ims_diameter::cx::CxRequest;
use ims_diameter::dict::check_request_avps;
use ims_diameter::{Avp, Message};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

fn exercise(bytes: &[u8]) {
    if let Ok(m) = Message::decode(Bytes::copy_from_slice(bytes)) {
        let _ = check_request_avps(&m.avps);
        let _ = CxRequest::from_message(&m);
        for a in &m.avps {
            let _ = (
                a.as_u32(),
                a.as_utf8(),
                a.as_address(),
                a.as_time(),
                a.grouped_avps(),
            );
        }
    }
    let mut codec = DiameterCodec::new(4096);
    let mut buf = BytesMut::from(bytes);
    while let Ok(Some(_)) = codec.decode(&mut buf) {}
    let _ = Avp::decode_all(&Bytes::copy_from_slice(bytes));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
    }

    /// Valid headers with arbitrary AVP bytes reach the AVP decoder.
    #[test]
    fn valid_header_arbitrary_avps(body in proptest::collection::vec(any::<u8>(), 0..64), flags in any::<u8>()) {
        let mut body = body;
        body.truncate(body.len() / 4 * 4);
        let len = 20 + body.len();
        let mut v = vec![1, 0, (len >> 8) as u8, len as u8, flags, 0, 1, 44, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2];
        v.extend_from_slice(&body);
        exercise(&v);
    }

    /// Single-byte corruptions of a real Cx message.
    #[test]
    fn corrupted_cx_message(pos in 0usize..400, val in any::<u8>()) {
        let mut m = Message::request(303, 16_777_216);
        m.avps.push(Avp::grouped(&ims_diameter::dict::cx::SIP_AUTH_DATA_ITEM, &[
            Avp::utf8(&ims_diameter::dict::cx::SIP_AUTHENTICATION_SCHEME, "Digest-AKAv1-MD5"),
        ]));
        m.avps.push(Avp::utf8(&ims_diameter::dict::base::SESSION_ID, "x;1"));
        let mut v = m.to_bytes().to_vec();
        let p = pos % v.len();
        v[p] = val;
        exercise(&v);
    }
}
