//! Round trips of every Cx command (TS 29.229 §6.1) through the wire format, with
//! field checks on the decoded bytes and the mandatory-AVP validation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/samples.rs"]
mod samples;

use ims_diameter::cx::*;
use ims_diameter::dict::{base, command, cx, result, CX_APPLICATION_ID};
use ims_diameter::{Avp, Message};

/// Encodes, checks the header of the bytes, decodes again.
fn wire(m: &Message, code: u32, request: bool) -> Message {
    let bytes = m.to_bytes();
    assert_eq!(bytes[0], 1, "version");
    assert_eq!(bytes.len() % 4, 0);
    assert_eq!(
        u32::from_be_bytes([0, bytes[1], bytes[2], bytes[3]]) as usize,
        bytes.len()
    );
    assert_eq!(u32::from_be_bytes([0, bytes[5], bytes[6], bytes[7]]), code);
    assert_eq!(bytes[4] & 0x80 != 0, request, "R bit");
    assert_eq!(bytes[4] & 0x40, 0x40, "P bit");
    assert_eq!(
        u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
        CX_APPLICATION_ID
    );
    let back = Message::decode(bytes).unwrap();
    assert_eq!(&back, m);
    // Every Cx message carries Vendor-Specific-Application-Id {10415, 16777216}.
    let vsai = back
        .find(&base::VENDOR_SPECIFIC_APPLICATION_ID)
        .unwrap()
        .grouped_avps()
        .unwrap();
    assert_eq!(vsai[0].as_u32().unwrap(), 10415);
    assert_eq!(vsai[1].as_u32().unwrap(), CX_APPLICATION_ID);
    assert_eq!(back.avps[0].code, 263, "Session-Id first");
    back
}

#[test]
fn uar_uaa_round_trip() {
    let m = wire(
        &samples::uar().to_message(),
        command::USER_AUTHORIZATION,
        true,
    );
    assert_eq!(
        m.find(&cx::PUBLIC_IDENTITY).unwrap().as_utf8().unwrap(),
        "sip:alice@ims.example"
    );
    assert_eq!(Uar::from_message(&m).unwrap(), samples::uar());
    let m = wire(
        &samples::uaa().to_message(),
        command::USER_AUTHORIZATION,
        false,
    );
    let er = m
        .find(&base::EXPERIMENTAL_RESULT)
        .unwrap()
        .grouped_avps()
        .unwrap();
    assert_eq!(er[1].as_u32().unwrap(), 2001);
    assert_eq!(Uaa::from_message(&m).unwrap(), samples::uaa());
}

#[test]
fn sar_saa_round_trip() {
    let m = wire(
        &samples::sar().to_message(),
        command::SERVER_ASSIGNMENT,
        true,
    );
    assert_eq!(
        m.find(&cx::SERVER_ASSIGNMENT_TYPE)
            .unwrap()
            .as_i32()
            .unwrap(),
        1
    );
    assert_eq!(m.find_all(&cx::PUBLIC_IDENTITY).count(), 2);
    assert_eq!(Sar::from_message(&m).unwrap(), samples::sar());
    let m = wire(
        &samples::saa().to_message(),
        command::SERVER_ASSIGNMENT,
        false,
    );
    assert_eq!(m.find(&cx::USER_DATA).unwrap().data, samples::user_data());
    assert_eq!(Saa::from_message(&m).unwrap(), samples::saa());
}

#[test]
fn lir_lia_round_trip() {
    let m = wire(&samples::lir().to_message(), command::LOCATION_INFO, true);
    assert_eq!(
        m.find(&cx::ORIGINATING_REQUEST).unwrap().as_i32().unwrap(),
        0
    );
    assert_eq!(Lir::from_message(&m).unwrap(), samples::lir());
    let m = wire(&samples::lia().to_message(), command::LOCATION_INFO, false);
    assert_eq!(Lia::from_message(&m).unwrap(), samples::lia());
}

#[test]
fn mar_maa_round_trip() {
    let m = wire(&samples::mar().to_message(), command::MULTIMEDIA_AUTH, true);
    assert_eq!(
        m.find(&cx::SIP_NUMBER_AUTH_ITEMS)
            .unwrap()
            .as_u32()
            .unwrap(),
        1
    );
    assert_eq!(Mar::from_message(&m).unwrap(), samples::mar());
    let m = wire(
        &samples::maa().to_message(),
        command::MULTIMEDIA_AUTH,
        false,
    );
    let items: Vec<_> = m.find_all(&cx::SIP_AUTH_DATA_ITEM).collect();
    assert_eq!(items.len(), 2);
    let digest = items[1].grouped_avps().unwrap();
    let sda = digest
        .iter()
        .find(|a| a.is(&cx::SIP_DIGEST_AUTHENTICATE))
        .unwrap();
    let inner = sda.grouped_avps().unwrap();
    assert!(inner.iter().any(|a| a.is(&base::DIGEST_HA1)));
    assert_eq!(Maa::from_message(&m).unwrap(), samples::maa());
}

#[test]
fn rtr_rta_round_trip() {
    let m = wire(
        &samples::rtr().to_message(),
        command::REGISTRATION_TERMINATION,
        true,
    );
    assert_eq!(Rtr::from_message(&m).unwrap(), samples::rtr());
    let m = wire(
        &samples::rta().to_message(),
        command::REGISTRATION_TERMINATION,
        false,
    );
    assert_eq!(Rta::from_message(&m).unwrap(), samples::rta());
}

#[test]
fn ppr_ppa_round_trip() {
    let m = wire(&samples::ppr().to_message(), command::PUSH_PROFILE, true);
    assert_eq!(Ppr::from_message(&m).unwrap(), samples::ppr());
    let m = wire(&samples::ppa().to_message(), command::PUSH_PROFILE, false);
    assert_eq!(Ppa::from_message(&m).unwrap(), samples::ppa());
}

#[test]
fn cx_request_dispatches_by_command() {
    assert!(matches!(
        CxRequest::from_message(&samples::mar().to_message()),
        Ok(CxRequest::Mar(_))
    ));
    assert!(matches!(
        CxRequest::from_message(&samples::ppr().to_message()),
        Ok(CxRequest::Ppr(_))
    ));
    let mut m = samples::mar().to_message();
    m.command_code = 399;
    let e = CxRequest::from_message(&m).unwrap_err();
    assert_eq!(e.result_code(), result::DIAMETER_COMMAND_UNSUPPORTED);
    // An answer is not a request.
    assert!(Uar::from_message(&samples::uaa().to_message()).is_err());
}

#[test]
fn missing_mandatory_avp_gives_missing_avp_answer() {
    let mut req = samples::uar().to_message();
    req.hop_by_hop = 11;
    req.end_to_end = 12;
    req.avps.retain(|a| !a.is(&cx::PUBLIC_IDENTITY));
    let err = Uar::from_message(&req).unwrap_err();
    assert_eq!(err, CxError::MissingAvp(&cx::PUBLIC_IDENTITY));
    let ans = err.answer(&req, "hss.ims.example", "ims.example");
    assert_eq!(ans.result_code(), Some(result::DIAMETER_MISSING_AVP));
    assert!(!ans.is_request());
    assert_eq!((ans.hop_by_hop, ans.end_to_end), (11, 12));
    let failed = ans.find(&base::FAILED_AVP).unwrap().grouped_avps().unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].is(&cx::PUBLIC_IDENTITY));
    assert_eq!(failed[0].vendor_id, Some(10415));

    // Missing Server-Assignment-Type: the example has 4 zero octets.
    let mut req = samples::sar().to_message();
    req.avps.retain(|a| !a.is(&cx::SERVER_ASSIGNMENT_TYPE));
    let err = Sar::from_message(&req).unwrap_err();
    assert_eq!(err.failed_avp().unwrap().data.as_ref(), &[0, 0, 0, 0]);

    // RTR without Destination-Host, missing Session-Id, missing Vendor-Specific-Application-Id.
    let mut req = samples::rtr().to_message();
    req.avps.retain(|a| !a.is(&base::DESTINATION_HOST));
    assert_eq!(
        Rtr::from_message(&req).unwrap_err(),
        CxError::MissingAvp(&base::DESTINATION_HOST)
    );
    let mut req = samples::lir().to_message();
    req.avps.retain(|a| !a.is(&base::SESSION_ID));
    assert_eq!(
        Lir::from_message(&req).unwrap_err(),
        CxError::MissingAvp(&base::SESSION_ID)
    );
    let mut req = samples::lir().to_message();
    req.avps
        .retain(|a| !a.is(&base::VENDOR_SPECIFIC_APPLICATION_ID));
    assert_eq!(
        Lir::from_message(&req).unwrap_err(),
        CxError::MissingAvp(&base::VENDOR_SPECIFIC_APPLICATION_ID)
    );
}

#[test]
fn invalid_values_give_invalid_avp_value() {
    let mut req = samples::sar().to_message();
    for a in &mut req.avps {
        if a.is(&cx::SERVER_ASSIGNMENT_TYPE) {
            *a = Avp::i32(&cx::SERVER_ASSIGNMENT_TYPE, 99);
        }
    }
    let err = Sar::from_message(&req).unwrap_err();
    assert_eq!(err.result_code(), result::DIAMETER_INVALID_AVP_VALUE);
    assert_eq!(err.failed_avp().unwrap().as_i32().unwrap(), 99);
    let mut req = samples::uar().to_message();
    for a in &mut req.avps {
        if a.is(&cx::PUBLIC_IDENTITY) {
            a.data = bytes::Bytes::from_static(&[0xff, 0xfe]);
        }
    }
    assert_eq!(
        Uar::from_message(&req).unwrap_err().result_code(),
        result::DIAMETER_INVALID_AVP_VALUE
    );
}

#[test]
fn answers_built_from_requests_copy_identifiers() {
    let mut req = samples::mar().to_message();
    req.hop_by_hop = 0x1234;
    req.end_to_end = 0x5678;
    let ans = samples::maa().to_answer(&req);
    assert!(!ans.is_request());
    assert_eq!((ans.hop_by_hop, ans.end_to_end), (0x1234, 0x5678));
    assert_eq!(ans.session_id(), req.session_id());
}

#[test]
fn unknown_non_mandatory_avps_are_kept_verbatim() {
    let mut m = samples::lia().to_message();
    let odd = Avp {
        code: 7777,
        flags: 0x80,
        vendor_id: Some(5535),
        data: bytes::Bytes::from_static(b"abcde"),
    };
    m.avps.push(odd.clone());
    let back = Message::decode(m.to_bytes()).unwrap();
    assert_eq!(back.avps.last(), Some(&odd));
    assert_eq!(back.to_bytes(), m.to_bytes());
    assert!(Lia::from_message(&back).is_ok());
}
