//! The LIR the I-CSCF sends for an initial request other than REGISTER (TS 24.229
//! §5.3.2.1, TS 29.228 §6.1.4, TS 29.229 §6.1.5), Public-Identity always an
//! address-of-record (`sip:user@host` or `tel:number`, without port or parameters,
//! RFC 3261 §10.3 step 5), the form the HSS stores public identities in; no
//! User-Authorization-Type (the I-CSCF wants the serving S-CSCF, not only
//! capabilities):
//!
//! * terminating ([`lir_for`]): the Request-URI, no Originating-Request (a public GRUU
//!   `sip:bob@host;gr=urn:...` is asked for as its address-of-record, the `gr`
//!   parameter dropped with the others; TS 24.229 §5.3.2.1, RFC 5627 §5.4);
//! * originating ([`lir_originating`], an AS originating on behalf of a user sent the
//!   request to the I-CSCF with `orig` in its Route): the served user from
//!   P-Served-User, else P-Asserted-Identity, with Originating-Request, so that the HSS
//!   also names an S-CSCF for a user with only unregistered services.

use ims_diameter::cx::{Lir, RequestHeader};
use ims_sip::message::identity::{header_identity, request_uri_identity};
use ims_sip::{HeaderName, SipMessage};

/// Why a request cannot be turned into a LIR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LirError {
    /// The Request-URI does not parse, or is not a SIP, SIPS or tel URI.
    #[error("Request-URI is not a SIP, SIPS or tel URI")]
    BadRequestUri,
    /// An originating request without a P-Served-User or P-Asserted-Identity naming a
    /// public identity.
    #[error("originating request without a served user")]
    NoServedUser,
}

/// The public identity a Request-URI addresses.
pub fn public_identity(request: &SipMessage) -> Result<String, LirError> {
    request_uri_identity(request).ok_or(LirError::BadRequestUri)
}

/// The LIR for `request` on the terminating side, with `header` (session, origin,
/// destination).
pub fn lir_for(request: &SipMessage, header: RequestHeader) -> Result<Lir, LirError> {
    Ok(Lir {
        header,
        originating_request: false,
        supported_features: Vec::new(),
        public_identity: public_identity(request)?,
        user_authorization_type: None,
    })
}

/// The LIR for an originating `request` (its served user), with `header`.
pub fn lir_originating(request: &SipMessage, header: RequestHeader) -> Result<Lir, LirError> {
    let served_user = header_identity(request, &HeaderName::PServedUser)
        .or_else(|| header_identity(request, &HeaderName::PAssertedIdentity))
        .ok_or(LirError::NoServedUser)?;
    Ok(Lir {
        header,
        originating_request: true,
        supported_features: Vec::new(),
        public_identity: served_user,
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
        // A public GRUU (RFC 5627 §3.1): the LIR is on its address-of-record (TS 24.229
        // §5.3.2.1); the S-CSCF picks the instance's contacts from the `gr` parameter.
        let gruu = lir_for(
            &invite("sip:bob@ims.example.net;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
            RequestHeader::default(),
        )
        .unwrap();
        assert_eq!(gruu.public_identity, "sip:bob@ims.example.net");
    }

    #[test]
    fn an_originating_lir_asks_for_the_served_user() {
        let mut req = invite("sip:bob@ims.example.net");
        assert_eq!(
            lir_originating(&req, RequestHeader::default()).unwrap_err(),
            LirError::NoServedUser
        );
        req.headers
            .push(HeaderName::PAssertedIdentity, "<sip:as@ims.example.net>");
        let lir = lir_originating(&req, RequestHeader::default()).unwrap();
        assert_eq!(lir.public_identity, "sip:as@ims.example.net");
        assert!(lir.originating_request);
        req.headers.push(
            HeaderName::PServedUser,
            "<sip:Dave@IMS.example.net>;sescase=orig;regstate=unreg",
        );
        let lir = lir_originating(&req, RequestHeader::default()).unwrap();
        assert_eq!(lir.public_identity, "sip:Dave@ims.example.net");
    }

    #[test]
    fn other_schemes_are_refused() {
        assert_eq!(
            public_identity(&invite("mailto:bob@ims.example.net")),
            Err(LirError::BadRequestUri)
        );
    }
}
