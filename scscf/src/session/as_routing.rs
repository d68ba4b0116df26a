//! Routing an initial request through the served user's application servers (TS 24.229
//! §5.4.3.2 steps 3-4 originating, §5.4.3.3 steps 3-4 terminating; TS 29.228 Annex
//! C/F; TS 23.218 §6.4).
//!
//! The served user's iFCs are evaluated in priority order from where the request
//! stands ([`IfcCursor`]): the first that matches sends the request to its AS with the
//! Route set
//!
//! ```text
//! Route: <AS ServerName;lr>, <sip:S-CSCF host:port;lr[;orig];odi=TOKEN>
//! ```
//!
//! (`orig` on the originating side only, so the returned request is recognised as
//! originating by any S-CSCF, TS 24.229 §5.4.3.2), where TOKEN is the authenticated
//! original dialog identifier ([`super::odi`]), and the P-Served-User header (RFC 5502,
//! with RFC 8498's `orig-cdiv`; TS 24.229 §5.4.3.2 step 4) tells the AS whom it serves
//! and how: `P-Served-User: <served user>;sescase=orig|term|orig-cdiv;regstate=reg|unreg`.
//! When the AS sends the request back with that Route, the S-CSCF resumes after that iFC, evaluating the request as the
//! AS returned it. The forward gives the AS `[session] as_timeout_ms` to answer at all
//! (`Forward::no_response_timeout`) and, for DefaultHandling SESSION_CONTINUED, asks
//! the policy again when it fails (`Forward::on_failure`, carrying that Route value), so
//! that the next iFC is tried; with SESSION_TERMINATED the AS's failure (or 408) goes
//! to the caller.
//!
//! The Bearer token never goes to an application server: it is kept by the S-CSCF
//! ([`super::carried`]) under a key written beside the odi (`;bkey=KEY`) and put back
//! when the request returns.

use cloud_auth::filter::sip::strip_bearer;
use ims_sip::proxy::engine::Forward;
use ims_sip::{HeaderName, SipMessage};

use crate::ifc::{RegistrationState, SessionCase};
use crate::registrar::unix_now;

use super::carried::CARRY_PARAM;
use super::odi::Odi;
use super::{loose_route, SessionSettings};
use crate::ifc::{DefaultHandling, IfcCursor};
use crate::location::Registration;

/// URI parameter of our Route value that carries the odi.
pub const ODI_PARAM: &str = "odi";

/// An initial request's served user and where the request stands in the user's iFC
/// chain.
#[derive(Debug, Clone)]
pub struct Served {
    /// The served user (address-of-record).
    pub served_user: String,
    /// Session case, registration state and last iFC executed.
    pub cursor: IfcCursor,
    /// The served user's profile and bindings (no bindings when not registered: the
    /// profile then comes from SAR UNREGISTERED_USER).
    pub registration: Registration,
}

impl Served {
    /// `served_user` with `registration` (its state `state`), at the start of the iFC
    /// chain of session case `case`.
    pub fn start(
        served_user: &str,
        registration: Registration,
        case: SessionCase,
        state: RegistrationState,
    ) -> Served {
        Served {
            served_user: served_user.to_string(),
            cursor: IfcCursor::start(case, state),
            registration,
        }
    }

    /// True for the originating session cases.
    pub fn is_originating(&self) -> bool {
        self.cursor.session_case.is_originating()
    }
}

/// Why a request has no served user here: the status and reason phrase it is
/// answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotServed {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: &'static str,
}

/// The request's next hop to an application server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsHop {
    /// ServerName of the AS (what cloud authorization checks, `as:<host>`).
    pub server_name: String,
    /// The request as sent to the AS: with the P-Served-User header.
    pub request: SipMessage,
    /// The forward: the AS's Route and ours with the odi, record-routed.
    pub forward: Forward,
}

/// Why no hop could be built although an iFC matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AsRoutingError {
    /// The served user is too long to be carried in an odi.
    #[error("served user too long for an original dialog identifier")]
    ServedUserTooLong,
}

/// The next application server for `request` after `served.cursor`, or `None` when no
/// further iFC matches (the request goes on to its destination).
pub fn next_hop(
    settings: &SessionSettings,
    served: &Served,
    request: &SipMessage,
) -> Result<Option<AsHop>, AsRoutingError> {
    let ifcs = served.registration.profile.ifcs(&served.served_user);
    let Some((cursor, ifc)) = served.cursor.next(ifcs, request) else {
        return Ok(None);
    };
    let odi = Odi {
        cursor,
        served_user: served.served_user.clone(),
    };
    let token = settings
        .odi
        .issue(&odi, unix_now())
        .ok_or(AsRoutingError::ServedUserTooLong)?;
    let orig = if served.is_originating() { ";orig" } else { "" };
    let carried = settings.carried.keep(request);
    let carry = carried
        .as_deref()
        .map(|key| format!(";{CARRY_PARAM}={key}"))
        .unwrap_or_default();
    let back = format!(
        "<sip:{};lr{orig};{ODI_PARAM}={token}{carry}>",
        settings.own_host
    );
    let server = &ifc.application_server;
    let continued = server.default_handling == DefaultHandling::SessionContinued;
    tracing::debug!(
        served_user = %served.served_user,
        application_server = %server.server_name,
        priority = ifc.priority,
        default_handling = ?server.default_handling,
        "request routed to an application server"
    );
    let mut edited = request.clone();
    edited
        .headers
        .set(HeaderName::PServedUser, served_user_header(&odi));
    strip_bearer(&mut edited);
    let on_failure = continued.then(|| back.clone());
    Ok(Some(AsHop {
        server_name: server.server_name.clone(),
        request: edited,
        forward: Forward {
            record_route: true,
            preload_routes: vec![loose_route(&server.server_name), back],
            no_response_timeout: Some(settings.as_timeout),
            on_failure,
            ..Forward::default()
        },
    }))
}

/// The P-Served-User value for the served user and case of `odi` (RFC 5502 §6:
/// `sescase` orig or term, RFC 8498: orig-cdiv; `regstate` reg or unreg).
pub fn served_user_header(odi: &Odi) -> String {
    let sescase = match odi.cursor.session_case {
        SessionCase::Originating | SessionCase::OriginatingUnregistered => "orig",
        SessionCase::OriginatingCdiv => "orig-cdiv",
        SessionCase::TerminatingRegistered | SessionCase::TerminatingUnregistered => "term",
    };
    let regstate = match odi.cursor.registration {
        RegistrationState::Registered => "reg",
        RegistrationState::Unregistered => "unreg",
    };
    format!(
        "<{}>;sescase={sescase};regstate={regstate}",
        odi.served_user
    )
}

/// The odi in the Route value §16.4 removed (ours), if any.
pub fn odi_of(popped_route: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(popped_route).ok()?;
    let addr = ims_sip::message::addr::NameAddr::parse(text).ok()?;
    let uri = ims_sip::message::uri::Uri::parse(addr.uri).ok()?;
    uri.param(ODI_PARAM).flatten().map(str::to_string)
}

/// True when an AS answered in a way DefaultHandling covers: no answer in time (408,
/// ours or its own) or a server error (TS 24.229 §5.4.3.2: "408 or 5xx").
pub fn is_as_failure(code: u16) -> bool {
    code == 408 || (500..600).contains(&code)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::session::tests::{ifc, registration_with, request, settings};

    const ALICE: &str = "sip:alice@ims.example.net";

    /// Alice with one iFC per `(priority, method, server, default handling)`.
    fn served(ifcs: &[(i64, &str, &str, u8)], case: SessionCase) -> Served {
        let xml: String = ifcs
            .iter()
            .map(|(prio, method, server, handling)| ifc(*prio, method, None, server, *handling))
            .collect();
        Served {
            served_user: ALICE.into(),
            cursor: IfcCursor::start(case, RegistrationState::Registered),
            registration: registration_with(ALICE, "sip:x@y", &[], &xml),
        }
    }

    #[test]
    fn the_first_matching_ifc_gets_the_request_with_our_odi_route_below() {
        let s = settings();
        let served = served(
            &[
                (20, "INVITE", "sip:as2.ims.example.net;lr", 1),
                (10, "MESSAGE", "sip:as1.ims.example.net", 0),
                (30, "INVITE", "sip:127.0.0.1:5090", 0),
            ],
            SessionCase::Originating,
        );
        let req = request("INVITE", "sip:bob@ims.example.net", "");
        let hop = next_hop(&s, &served, &req).unwrap().unwrap();
        assert_eq!(hop.server_name, "sip:as2.ims.example.net;lr");
        let f = &hop.forward;
        assert!(f.record_route && f.targets.is_empty());
        assert_eq!(f.preload_routes[0], "<sip:as2.ims.example.net;lr>");
        let prefix = "<sip:scscf.test:5080;lr;orig;odi=";
        assert!(f.preload_routes[1].starts_with(prefix), "{f:?}");
        assert_eq!(f.no_response_timeout, Some(Duration::from_millis(2000)));
        // SESSION_TERMINATED: the AS's failure goes to the caller.
        assert_eq!(f.on_failure, None);

        // The odi names the iFC of priority 20 for this call only.
        let token = odi_of(f.preload_routes[1].as_bytes()).unwrap();
        let odi = s.odi.check(&token, unix_now()).unwrap();
        assert_eq!(odi.served_user, ALICE);
        assert_eq!(odi.cursor.encode(), "00.20.0");

        // Returned: the next INVITE iFC, SESSION_CONTINUED, so a failure asks again.
        let back = Served {
            cursor: odi.cursor,
            ..served.clone()
        };
        let hop = next_hop(&s, &back, &req).unwrap().unwrap();
        assert_eq!(hop.forward.preload_routes[0], "<sip:127.0.0.1:5090;lr>");
        let token = odi_of(hop.forward.preload_routes[1].as_bytes()).unwrap();
        assert_eq!(
            hop.forward.on_failure.as_deref(),
            Some(hop.forward.preload_routes[1].as_str())
        );
        let last = Served {
            cursor: s.odi.check(&token, unix_now()).unwrap().cursor,
            ..served
        };
        assert_eq!(next_hop(&s, &last, &req), Ok(None));
    }

    #[test]
    fn the_terminating_odi_route_has_no_orig() {
        let served = served(
            &[(1, "INVITE", "sip:vm.ims.example.net", 0)],
            SessionCase::TerminatingRegistered,
        );
        let req = request("INVITE", "sip:alice@ims.example.net", "");
        let hop = next_hop(&settings(), &served, &req).unwrap().unwrap();
        assert!(hop.forward.preload_routes[1].starts_with("<sip:scscf.test:5080;lr;odi="));
    }

    #[test]
    fn odi_of_reads_only_our_parameter() {
        assert_eq!(
            odi_of(b"<sip:127.0.0.1:5080;lr;orig;odi=AbC-_1>").as_deref(),
            Some("AbC-_1")
        );
        assert_eq!(odi_of(b"<sip:orig@127.0.0.1:5080;lr>"), None);
        assert_eq!(odi_of(b"<sip:127.0.0.1:5080;lr;odi>"), None);
        assert_eq!(odi_of(b"\xff<"), None);
    }

    #[test]
    fn as_failures_are_408_and_5xx() {
        assert!(is_as_failure(408) && is_as_failure(500) && is_as_failure(503));
        assert!(!is_as_failure(486) && !is_as_failure(404) && !is_as_failure(603));
    }
}
