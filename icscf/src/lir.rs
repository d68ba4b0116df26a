//! The LIR the I-CSCF sends for an initial request other than REGISTER (TS 24.229
//! §5.3.2.1, TS 29.228 §6.1.4, TS 29.229 §6.1.5): Public-Identity is the Request-URI as
//! an address-of-record (`sip:user@host` or `tel:number`, without port or parameters,
//! RFC 3261 §10.3 step 5), the form the HSS stores public identities in. No
//! Originating-Request (this is the terminating side) and no User-Authorization-Type
//! (the I-CSCF wants the serving S-CSCF, not only capabilities).

use ims_diameter::cx::{Lir, RequestHeader};
use ims_sip::message::uri::Uri;
use ims_sip::SipMessage;

/// Why a request cannot be turned into a LIR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LirError {
    /// The Request-URI does not parse, or is not a SIP, SIPS or tel URI.
    #[error("Request-URI is not a SIP, SIPS or tel URI")]
    BadRequestUri,
}

/// The public identity a Request-URI addresses.
pub fn public_identity(request: &SipMessage) -> Result<String, LirError> {
    let uri = request
        .request()
        .ok_or(LirError::BadRequestUri)?
        .uri
        .clone();
    let text = std::str::from_utf8(&uri).map_err(|_| LirError::BadRequestUri)?;
    let uri = Uri::parse(text).map_err(|_| LirError::BadRequestUri)?;
    let scheme = uri.scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "sip" | "sips" | "tel") {
        return Err(LirError::BadRequestUri);
    }
    Ok(uri.address_of_record())
}

/// The LIR for `request`, with `header` (session, origin, destination).
pub fn lir_for(request: &SipMessage, header: RequestHeader) -> Result<Lir, LirError> {
    Ok(Lir {
        header,
        originating_request: false,
        supported_features: Vec::new(),
        public_identity: public_identity(request)?,
        user_authorization_type: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(ruri: &str) -> SipMessage {
        SipMessage::parse(format!(
            "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP s;branch=z9hG4bK1\r\n\
             From: <sip:alice@ims.example.net>;tag=1\r\nTo: <{ruri}>\r\n\
             Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        ))
        .unwrap()
    }

    #[test]
    fn public_identity_is_the_request_uri_without_port_or_parameters() {
        let lir = lir_for(
            &invite("sip:bob@IMS.example.net:5060;transport=udp"),
            RequestHeader::default(),
        )
        .unwrap();
        assert_eq!(lir.public_identity, "sip:bob@ims.example.net");
        assert!(!lir.originating_request);
        assert_eq!(lir.user_authorization_type, None);
        let tel = lir_for(&invite("tel:+15551230002"), RequestHeader::default()).unwrap();
        assert_eq!(tel.public_identity, "tel:+15551230002");
    }

    #[test]
    fn other_schemes_are_refused() {
        assert_eq!(
            public_identity(&invite("mailto:bob@ims.example.net")),
            Err(LirError::BadRequestUri)
        );
    }
}
