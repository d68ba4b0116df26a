//! IMS public identities in messages: the address-of-record of a SIP, SIPS or tel URI
//! (TS 23.003 §13.4, the form an HSS stores them in), read from the Request-URI or from
//! an identity header (P-Asserted-Identity, P-Served-User, ...).

use super::addr::NameAddr;
use super::uri::Uri;
use crate::{HeaderName, SipMessage};

/// The address-of-record of `uri` when it is a SIP, SIPS or tel URI.
pub fn public_identity(uri: &str) -> Option<String> {
    let uri = Uri::parse(uri).ok()?;
    let scheme = uri.scheme.to_ascii_lowercase();
    matches!(scheme.as_str(), "sip" | "sips" | "tel").then(|| uri.address_of_record())
}

/// The request's Request-URI as a public identity.
pub fn request_uri_identity(request: &SipMessage) -> Option<String> {
    let uri = &request.request()?.uri;
    public_identity(std::str::from_utf8(uri).ok()?)
}

/// The first value of header `name` (a `name-addr` with parameters) that holds a
/// public identity, as one.
pub fn header_identity(message: &SipMessage, name: &HeaderName) -> Option<String> {
    message.headers.values(name).find_map(|v| {
        let text = std::str::from_utf8(&v).ok()?;
        public_identity(NameAddr::parse(text).ok()?.uri)
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn hostile_identities_never_panic(uri in ".{0,200}", header in "[ -~]{0,200}") {
            let _ = public_identity(&uri);
            if let Ok(r) = SipMessage::parse(format!(
                "INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\n\
                 From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
                 P-Served-User: {header}\r\nContent-Length: 0\r\n\r\n"
            )) {
                let _ = header_identity(&r, &HeaderName::PServedUser);
            }
        }
    }

    fn request(ruri: &str, extra: &str) -> SipMessage {
        SipMessage::parse(format!(
            "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\n\
             From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
             {extra}Content-Length: 0\r\n\r\n"
        ))
        .unwrap()
    }

    #[test]
    fn sip_sips_and_tel_uris_are_identities_and_nothing_else() {
        assert_eq!(
            public_identity("sip:Bob@IMS.example.net:5060;user=phone").as_deref(),
            Some("sip:Bob@ims.example.net")
        );
        assert_eq!(
            public_identity("tel:+15551230002;phone-context=x").as_deref(),
            Some("tel:+15551230002")
        );
        assert_eq!(public_identity("mailto:bob@ims.example.net"), None);
        assert_eq!(public_identity("not a uri"), None);
        let r = request("sips:carol@ims.example.net", "");
        assert_eq!(
            request_uri_identity(&r).as_deref(),
            Some("sips:carol@ims.example.net")
        );
    }

    #[test]
    fn the_first_readable_header_value_is_taken() {
        let r = request(
            "sip:b@x",
            "P-Asserted-Identity: garbage\r\n\
             P-Asserted-Identity: \"A\" <tel:+1555>, <sip:a@x>\r\n",
        );
        assert_eq!(
            header_identity(&r, &HeaderName::PAssertedIdentity).as_deref(),
            Some("tel:+1555")
        );
        assert_eq!(header_identity(&r, &HeaderName::PServedUser), None);
    }
}
