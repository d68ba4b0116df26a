//! Session routing of the S-CSCF (TS 24.229 §5.4.3): what happens to an initial
//! request other than REGISTER once the proxy engine has validated it and removed our
//! Route value (RFC 3261 §16.3, §16.4).
//!
//! | module | what | standard |
//! |---|---|---|
//! | [`case`] | originating or terminating, and the served user | TS 24.229 §5.4.3.1, TS 29.228 Annex F |
//! | [`originating`] | record-route, then toward the callee's home network (I-CSCF) or by Request-URI; unregistered or barred caller: 403 | TS 24.229 §5.4.3.2 |
//! | [`terminating`] | record-route, retarget to every registered contact of the callee along its Path (parallel fork); not registered: 480; barred or not ours: 404 | TS 24.229 §5.4.3.3, RFC 3327 §5.3 |
//!
//! Requests inside a dialog never get here: they follow their Route set
//! ([`crate::policy`]). Application servers (iFC) slot into one marked place in each
//! of [`originating::route`] and [`terminating::route`].

pub mod case;
pub mod originating;
pub mod terminating;

use bytes::Bytes;
use ims_sip::message::build::response_with;
use ims_sip::message::uri::Uri;
use ims_sip::proxy::engine::Decision;
use ims_sip::SipMessage;

use crate::location::Registration;
use case::{recognise, CaseError, SessionCase};

/// What session routing is configured with (`[session]`).
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Route value of the home network's I-CSCF, e.g. `<sip:127.0.0.1:5070;lr>`.
    pub icscf_route: String,
    /// Domains of the home network, lower case.
    pub home_domains: Vec<String>,
}

impl SessionSettings {
    /// Settings from `[session]`; `node_domain` when no home domain is listed.
    pub fn new(icscf: &str, home_domains: &[String], node_domain: &str) -> SessionSettings {
        let icscf_route = if icscf.to_ascii_lowercase().contains(";lr") {
            format!("<{icscf}>")
        } else {
            format!("<{icscf};lr>")
        };
        let domains = if home_domains.is_empty() {
            vec![node_domain.to_string()]
        } else {
            home_domains.to_vec()
        };
        SessionSettings {
            icscf_route,
            home_domains: domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
        }
    }

    /// True when the Request-URI is a tel URI or a SIP(S) URI of a home domain: the
    /// callee's home network is ours, reached through our I-CSCF (no ENUM here, so a
    /// tel URI is looked up in our HSS too).
    pub fn is_home(&self, request: &SipMessage) -> bool {
        let Some(uri) = request
            .request()
            .and_then(|r| std::str::from_utf8(&r.uri).ok())
            .and_then(|t| Uri::parse(t).ok())
        else {
            return false;
        };
        uri.scheme.eq_ignore_ascii_case("tel")
            || self
                .home_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(uri.host))
    }
}

/// An answer built from the request.
pub(crate) fn answer(request: &SipMessage, code: u16, reason: &str) -> Decision {
    Decision::Respond(response_with(request, code, reason, None, &[]))
}

/// Routes an initial request outside a dialog: recognises the session case, looks the
/// served user up with `registration` (the registrar's bindings), and hands over to
/// [`originating::route`] or [`terminating::route`].
pub fn decide(
    settings: &SessionSettings,
    request: &SipMessage,
    popped_route: Option<&Bytes>,
    registration: impl Fn(&str) -> Option<Registration>,
) -> Decision {
    match recognise(request, popped_route) {
        Ok(SessionCase::Originating { served_user }) => {
            let reg = registration(&served_user);
            originating::route(settings, request, &served_user, reg.as_ref())
        }
        Ok(SessionCase::Terminating { served_user }) => {
            let reg = registration(&served_user);
            terminating::route(settings, request, &served_user, reg.as_ref())
        }
        Err(error @ CaseError::NoAssertedIdentity) => {
            tracing::info!(%error, "originating request refused");
            answer(request, 403, "Forbidden")
        }
        Err(error @ CaseError::BadRequestUri) => {
            tracing::info!(%error, "terminating request refused");
            answer(request, 416, "Unsupported URI Scheme")
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::location::Binding;
    use crate::profile::UserProfile;

    pub(crate) fn settings() -> SessionSettings {
        SessionSettings::new("sip:127.0.0.1:5070", &[], "IMS.example.net")
    }

    pub(crate) fn request(method: &str, ruri: &str, extra: &str) -> SipMessage {
        SipMessage::parse(format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             Max-Forwards: 69\r\nFrom: <sip:alice@ims.example.net>;tag=1\r\n\
             To: <sip:bob@ims.example.net>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n{extra}\
             Content-Length: 0\r\n\r\n"
        ))
        .unwrap()
    }

    /// The status of an answer.
    pub(crate) fn code(d: Decision) -> u16 {
        match d {
            Decision::Respond(r) => r.status().unwrap(),
            other => panic!("not answered: {other:?}"),
        }
    }

    /// `impu` registered with one binding per `(contact, path)`; `barred` in its
    /// implicit set, barred.
    pub(crate) fn registration(
        impu: &str,
        barred: &str,
        contacts: &[(&str, &str)],
    ) -> Registration {
        let xml = format!(
            "<IMSSubscription><ServiceProfile>\
             <PublicIdentity><Identity>{impu}</Identity></PublicIdentity>\
             <PublicIdentity><BarringIndication>1</BarringIndication>\
             <Identity>{barred}</Identity></PublicIdentity>\
             </ServiceProfile></IMSSubscription>"
        );
        Registration {
            impu: impu.into(),
            impi: "user@ims.example.net".into(),
            profile: UserProfile::parse(Bytes::from(xml)).unwrap(),
            bindings: contacts
                .iter()
                .enumerate()
                .map(|(i, (contact, path))| Binding {
                    key: format!("uri:{i}"),
                    contact: contact.to_string(),
                    path: vec![path.to_string()],
                    call_id: "reg".into(),
                    cseq: 1,
                    expires_at: u64::MAX,
                })
                .collect(),
        }
    }

    #[test]
    fn settings_default_to_the_node_domain_and_add_lr() {
        let s = settings();
        assert_eq!(s.icscf_route, "<sip:127.0.0.1:5070;lr>");
        assert_eq!(s.home_domains, ["ims.example.net"]);
        let s = SessionSettings::new("sip:i;lr", &["a.net".into()], "b.net");
        assert_eq!(s.icscf_route, "<sip:i;lr>");
        assert_eq!(s.home_domains, ["a.net"]);
        assert!(s.is_home(&request("INVITE", "sip:x@A.net", "")));
        assert!(s.is_home(&request("INVITE", "tel:+1555", "")));
        assert!(!s.is_home(&request("INVITE", "sip:x@b.net", "")));
    }

    #[test]
    fn the_case_decides_which_side_routes() {
        let alice = registration(
            "sip:alice@ims.example.net",
            "sip:alice-barred@ims.example.net",
            &[("<sip:alice@127.0.0.1:7001>", "<sip:A@127.0.0.1:5060;lr>")],
        );
        let bob = registration(
            "sip:bob@ims.example.net",
            "sip:bob-barred@ims.example.net",
            &[("<sip:bob@127.0.0.1:7002>", "<sip:B@127.0.0.1:5060;lr>")],
        );
        let lookup = |u: &str| {
            [&alice, &bob]
                .into_iter()
                .find(|r| r.profile.contains(u))
                .cloned()
        };
        let req = request(
            "INVITE",
            "sip:bob@ims.example.net",
            "P-Asserted-Identity: <sip:alice@ims.example.net>\r\n",
        );
        let orig = Bytes::from_static(b"<sip:orig@127.0.0.1:5080;lr>");
        // Originating: toward our I-CSCF.
        let Decision::Forward(f) = decide(&settings(), &req, Some(&orig), lookup) else {
            panic!("originating is forwarded");
        };
        assert_eq!(f.preload_routes, ["<sip:127.0.0.1:5070;lr>"]);
        // Terminating: to bob's contact.
        let Decision::ForwardWith { forward, .. } = decide(&settings(), &req, None, lookup) else {
            panic!("terminating is forwarded");
        };
        assert_eq!(forward.targets, ["sip:bob@127.0.0.1:7002"]);
        // No asserted identity on the originating side: 403.
        let anon = request("INVITE", "sip:bob@ims.example.net", "");
        assert_eq!(code(decide(&settings(), &anon, Some(&orig), lookup)), 403);
        let odd = request("INVITE", "mailto:bob@ims.example.net", "");
        assert_eq!(code(decide(&settings(), &odd, None, lookup)), 416);
    }
}
