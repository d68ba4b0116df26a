//! The third-party REGISTER itself (TS 24.229 §5.4.1.7): Request-URI the AS, From the
//! S-CSCF, To the registered public identity, Contact the S-CSCF, Expires the
//! registration's (0 for a de-registration), the charging headers of the UE's REGISTER,
//! and the body the iFC asks for ([`super::body`]).

use bytes::Bytes;
use ims_sip::message::build::{new_branch, new_tag};
use ims_sip::message::{Headers, Request, StartLine};
use ims_sip::{HeaderName, Method, SipMessage};

use super::body::Body;

/// What a third-party REGISTER carries.
#[derive(Debug, Clone)]
pub struct ThirdPartyRegister<'a> {
    /// The AS's SIP URI (`ServerName`).
    pub server: &'a str,
    /// The S-CSCF's SIP URI (From and Contact).
    pub own_uri: &'a str,
    /// The registered public identity (To).
    pub impu: &'a str,
    /// Seconds the registration lasts; 0 for a de-registration.
    pub expires: u64,
    /// The UE's REGISTER, whose charging headers are passed on; `None` for a change
    /// the network made.
    pub register: Option<&'a SipMessage>,
    /// The body.
    pub body: Option<Body>,
}

impl ThirdPartyRegister<'_> {
    /// The request, complete but for our Via.
    pub fn build(&self) -> SipMessage {
        let mut headers = Headers::new();
        let own = |s: String| Bytes::from(s);
        headers.push(HeaderName::MaxForwards, "70");
        headers.push(
            HeaderName::From,
            own(format!("<{}>;tag={}", self.own_uri, new_tag())),
        );
        headers.push(HeaderName::To, own(format!("<{}>", self.impu)));
        // A fresh Call-ID per request: each stands alone (TS 24.229 §5.4.1.7).
        headers.push(HeaderName::CallId, own(format!("3pty-{}", new_branch())));
        headers.push(HeaderName::CSeq, "1 REGISTER");
        headers.push(HeaderName::Contact, own(format!("<{}>", self.own_uri)));
        headers.push(HeaderName::Expires, self.expires.to_string());
        if let Some(reg) = self.register {
            // TS 24.229 §5.4.1.7 g), h): the icid of the REGISTER and the charging
            // function addresses received with it.
            if let Some(icid) = reg
                .headers
                .get_str(&HeaderName::PChargingVector)
                .and_then(icid_value)
            {
                headers.push(
                    HeaderName::PChargingVector,
                    own(format!("icid-value={icid}")),
                );
            }
            for h in reg.headers.get_all(&HeaderName::PChargingFunctionAddresses) {
                headers.push(HeaderName::PChargingFunctionAddresses, h.value().clone());
            }
        }
        let body = match &self.body {
            Some(b) => {
                headers.push(HeaderName::ContentType, b.content_type.clone());
                b.bytes.clone()
            }
            None => Bytes::new(),
        };
        headers.push(HeaderName::ContentLength, body.len().to_string());
        let start = StartLine::Request(Request::new(Method::Register, self.server.to_string()));
        SipMessage::new(start, headers, body)
    }
}

/// The `icid-value` parameter of a P-Charging-Vector value (RFC 7315 §4.6).
fn icid_value(pcv: &str) -> Option<&str> {
    pcv.split(';').find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("icid-value")
            .then(|| value.trim().trim_matches('"'))
            .filter(|v| !v.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ue_register() -> SipMessage {
        let raw = "REGISTER sip:ims.example.net SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                   To: <sip:alice@ims.example.net>\r\nFrom: <sip:alice@ims.example.net>;tag=1\r\n\
                   Call-ID: c\r\nCSeq: 2 REGISTER\r\n\
                   P-Charging-Vector: icid-value=\"AyretyU0dm+6O2IrT5tAFrbHLso=\";orig-ioi=visited\r\n\
                   P-Charging-Function-Addresses: ccf=192.1.1.1\r\nContent-Length: 0\r\n\r\n";
        SipMessage::parse(Bytes::from(raw)).unwrap()
    }

    #[test]
    fn headers_follow_ts_24_229_5_4_1_7() {
        let reg = ue_register();
        let body = Body {
            content_type: "application/3gpp-ims+xml".into(),
            bytes: Bytes::from_static(b"<x/>"),
        };
        let m = ThirdPartyRegister {
            server: "sip:as.example.net:5090",
            own_uri: "sip:scscf.ims.example.net:5080",
            impu: "sip:alice@ims.example.net",
            expires: 600,
            register: Some(&reg),
            body: Some(body),
        }
        .build();
        let text = String::from_utf8(m.to_bytes().to_vec()).unwrap();
        assert!(
            text.starts_with("REGISTER sip:as.example.net:5090 SIP/2.0\r\n"),
            "{text}"
        );
        let h = |n: HeaderName| m.headers.get_str(&n).unwrap().to_string();
        assert!(h(HeaderName::From).starts_with("<sip:scscf.ims.example.net:5080>;tag="));
        assert_eq!(h(HeaderName::To), "<sip:alice@ims.example.net>");
        assert_eq!(h(HeaderName::Contact), "<sip:scscf.ims.example.net:5080>");
        assert_eq!(h(HeaderName::Expires), "600");
        assert_eq!(h(HeaderName::CSeq), "1 REGISTER");
        assert_eq!(
            h(HeaderName::PChargingVector),
            "icid-value=AyretyU0dm+6O2IrT5tAFrbHLso="
        );
        assert_eq!(h(HeaderName::PChargingFunctionAddresses), "ccf=192.1.1.1");
        assert_eq!(h(HeaderName::ContentType), "application/3gpp-ims+xml");
        assert_eq!(h(HeaderName::ContentLength), "4");
        assert_eq!(&m.body()[..], b"<x/>");
    }

    #[test]
    fn a_network_deregistration_carries_expires_zero_and_no_charging() {
        let m = ThirdPartyRegister {
            server: "sip:as@x",
            own_uri: "sip:s",
            impu: "sip:a@x",
            expires: 0,
            register: None,
            body: None,
        }
        .build();
        assert_eq!(m.headers.get_str(&HeaderName::Expires), Some("0"));
        assert!(m.headers.get_str(&HeaderName::PChargingVector).is_none());
        assert!(m.headers.get_str(&HeaderName::ContentType).is_none());
        assert_eq!(m.headers.get_str(&HeaderName::ContentLength), Some("0"));
    }
}
