//! Which session case an initial request is in (TS 24.229 §5.4.3.1, TS 29.228 Annex F)
//! and who the served user is.
//!
//! * **Originating** (§5.4.3.2): the Route value this S-CSCF removed (RFC 3261 §16.4)
//!   is the Service-Route it handed out at registration, `<sip:orig@host;lr>`
//!   ([`ORIG_USER`], RFC 3608), or carries an `orig` parameter (the form TS 24.229
//!   §5.4.1.2.2 step 7 suggests and other S-CSCFs use). The served user is the
//!   P-Served-User an application server originating on a user's behalf set (RFC 5502
//!   §6, TS 24.229 §5.4.3.2 step 1), else the P-Asserted-Identity the P-CSCF set
//!   (RFC 3325: the P-CSCF is in the trust domain and replaced whatever the UE sent;
//!   it removes a P-Served-User from UEs too).
//! * **Terminating** (§5.4.3.3): anything else, i.e. a request that reached us through
//!   the I-CSCF (LIR) or with our plain URI in Route. The served user is the
//!   Request-URI as an address-of-record.
//!
//! Whether the served user is registered (originating or originating-unregistered,
//! terminating-registered or -unregistered) and whether an AS diverted the request
//! (originating-CDIV) is told later, by the caller of [`recognise`].

use bytes::Bytes;
use ims_sip::message::addr::NameAddr;
use ims_sip::message::identity::{header_identity, request_uri_identity};
use ims_sip::message::uri::Uri;
use ims_sip::{HeaderName, SipMessage};

/// User part of the Service-Route URI the registrar returns: a Route with it marks an
/// originating request.
pub const ORIG_USER: &str = "orig";

/// The session case and the served user (an address-of-record: `sip:user@host` or
/// `tel:number`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCase {
    /// Sent by the served user (§5.4.3.2).
    Originating {
        /// From P-Asserted-Identity.
        served_user: String,
    },
    /// Addressed to the served user (§5.4.3.3).
    Terminating {
        /// From the Request-URI.
        served_user: String,
    },
}

impl SessionCase {
    /// The served user, whichever the case.
    pub fn served_user(&self) -> &str {
        match self {
            SessionCase::Originating { served_user } | SessionCase::Terminating { served_user } => {
                served_user
            }
        }
    }
}

/// Why no served user could be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    /// Originating, but no usable P-Asserted-Identity (answered 403: the request did
    /// not come through a P-CSCF of the trust domain).
    #[error("originating request without a P-Asserted-Identity")]
    NoAssertedIdentity,
    /// Terminating, but the Request-URI is not a SIP, SIPS or tel URI (416).
    #[error("Request-URI is not a SIP, SIPS or tel URI")]
    BadRequestUri,
}

/// True when `route` (our Route value as removed, e.g. `<sip:orig@127.0.0.1:5080;lr>`)
/// marks the originating case.
pub fn is_originating(route: &Bytes) -> bool {
    let Ok(text) = std::str::from_utf8(route) else {
        return false;
    };
    let Ok(addr) = NameAddr::parse(text) else {
        return false;
    };
    Uri::parse(addr.uri).is_ok_and(|u| u.user == Some(ORIG_USER) || u.param(ORIG_USER).is_some())
}

/// The first P-Asserted-Identity as an address-of-record (a UE with both a SIP and a
/// tel identity gets two; the P-CSCF sets one).
pub fn asserted_identity(request: &SipMessage) -> Option<String> {
    header_identity(request, &HeaderName::PAssertedIdentity)
}

/// The served user of an originating request: the P-Served-User if there is one, else
/// the P-Asserted-Identity.
pub fn originating_identity(request: &SipMessage) -> Option<String> {
    header_identity(request, &HeaderName::PServedUser).or_else(|| asserted_identity(request))
}

/// The session case of an initial request, given the Route value §16.4 removed.
pub fn recognise(
    request: &SipMessage,
    popped_route: Option<&Bytes>,
) -> Result<SessionCase, CaseError> {
    if popped_route.is_some_and(is_originating) {
        let served_user = originating_identity(request).ok_or(CaseError::NoAssertedIdentity)?;
        return Ok(SessionCase::Originating { served_user });
    }
    let served_user = request_uri_identity(request).ok_or(CaseError::BadRequestUri)?;
    Ok(SessionCase::Terminating { served_user })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(ruri: &str, extra: &str) -> SipMessage {
        SipMessage::parse(format!(
            "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\n\
             From: <sip:alice@ims.example.net>;tag=1\r\nTo: <sip:bob@ims.example.net>\r\n\
             Call-ID: c\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        ))
        .unwrap()
    }

    fn route(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn orig_user_or_parameter_marks_the_originating_case() {
        let req = invite(
            "sip:bob@ims.example.net",
            "P-Asserted-Identity: \"Alice\" <sip:alice@IMS.example.net:5060;user=phone>\r\n\
             P-Asserted-Identity: <tel:+15551230001>\r\n",
        );
        let orig = SessionCase::Originating {
            served_user: "sip:alice@ims.example.net".into(),
        };
        for r in [
            "<sip:orig@127.0.0.1:5080;lr>",
            "<sip:scscf.ims.example.net;lr;orig>",
            "<sip:127.0.0.1:5080;orig;lr>",
        ] {
            assert_eq!(recognise(&req, Some(&route(r))), Ok(orig.clone()), "{r}");
        }
    }

    #[test]
    fn an_application_server_names_the_served_user_in_p_served_user() {
        let req = invite(
            "sip:bob@ims.example.net",
            "P-Asserted-Identity: <sip:as@ims.example.net>\r\n\
             P-Served-User: <sip:Carol@ims.example.net>;sescase=orig;regstate=unreg\r\n",
        );
        let orig = route("<sip:orig@127.0.0.1:5080;lr>");
        assert_eq!(
            recognise(&req, Some(&orig)),
            Ok(SessionCase::Originating {
                served_user: "sip:Carol@ims.example.net".into()
            })
        );
        // On the terminating side the Request-URI names the served user.
        assert_eq!(
            recognise(&req, None),
            Ok(SessionCase::Terminating {
                served_user: "sip:bob@ims.example.net".into()
            })
        );
    }

    #[test]
    fn anything_else_is_terminating_for_the_request_uri() {
        let req = invite(
            "sip:Bob@ims.example.net:5060;transport=udp",
            "P-Asserted-Identity: <sip:alice@ims.example.net>\r\n",
        );
        let term = SessionCase::Terminating {
            served_user: "sip:Bob@ims.example.net".into(),
        };
        assert_eq!(recognise(&req, None), Ok(term.clone()));
        assert_eq!(
            recognise(&req, Some(&route("<sip:127.0.0.1:5080;lr>"))),
            Ok(term)
        );
        // A user part that merely contains "orig" is not the marker.
        let other = route("<sip:origin@127.0.0.1:5080;lr>");
        assert!(matches!(
            recognise(&req, Some(&other)),
            Ok(SessionCase::Terminating { .. })
        ));
        let tel = invite("tel:+15551230002;phone-context=x", "");
        assert_eq!(
            recognise(&tel, None),
            Ok(SessionCase::Terminating {
                served_user: "tel:+15551230002".into()
            })
        );
    }

    #[test]
    fn missing_identity_and_odd_uris_are_errors() {
        let orig = route("<sip:orig@127.0.0.1:5080;lr>");
        assert_eq!(
            recognise(&invite("sip:bob@ims.example.net", ""), Some(&orig)),
            Err(CaseError::NoAssertedIdentity)
        );
        let garbage = invite(
            "sip:bob@ims.example.net",
            "P-Asserted-Identity: not a uri\r\n",
        );
        assert_eq!(
            recognise(&garbage, Some(&orig)),
            Err(CaseError::NoAssertedIdentity)
        );
        assert_eq!(
            recognise(&invite("mailto:bob@ims.example.net", ""), None),
            Err(CaseError::BadRequestUri)
        );
        assert!(!is_originating(&Bytes::from_static(b"\xff\xfe")));
    }
}
