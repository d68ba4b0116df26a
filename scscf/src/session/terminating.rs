//! The terminating case (TS 24.229 §5.4.3.3): a request addressed to a served user.
//!
//! 1. The served user ([`served`]): registered here (TERMINATING_REGISTERED), or not
//!    registered but with a profile the HSS gives on SAR UNREGISTERED_USER for an
//!    identity of a home domain or a tel URI (TERMINATING_UNREGISTERED: the I-CSCF
//!    sends such requests here when the identity has services for the unregistered
//!    state). A barred Request-URI gets 404 (§5.4.3.3 step 1); a home identity the HSS
//!    does not give gets 480, anything else 404 (we are not its S-CSCF).
//! 2. Application servers: the iFCs of that case ([`super::as_routing`]).
//! 3. Retargeting ([`onward`], §5.4.3.3 steps 8-10): P-Called-Party-ID gets the
//!    Request-URI as received (RFC 3455 §4.2), then one branch per registered contact,
//!    whose Request-URI is the contact and whose Route is the Path the contact
//!    registered with (RFC 3327 §5.3: the P-CSCF of that UE, with the flow token that
//!    sends the request over the UE's own connection); a P-Served-User an AS left in
//!    the request is removed (RFC 5502 §4: not for the UE). The engine forks in parallel,
//!    forwards the best response and cancels the other branches on a 2xx (RFC 3261
//!    §16.7). The S-CSCF record-routes. No contact (an unregistered user whose
//!    services did not answer the request): 480.
//! 4. Diversion ([`diverted`], §5.4.3.3 step 4, TS 23.218 §6.5): an application server
//!    that changed the Request-URI to another identity (call forwarding) retargeted
//!    the request. The remaining terminating iFCs are skipped; the diverting user's
//!    ORIGINATING_CDIV iFCs run (its registration state kept), then the request goes
//!    on by its new Request-URI as an originating request does.

use cloud_auth::filter::sip::strip_bearer;
use ims_sip::message::addr::NameAddr;
use ims_sip::proxy::engine::{Decision, Forward};
use ims_sip::{HeaderName, SipMessage};

use super::as_routing::{NotServed, Served};
use super::{answer, SessionSettings};
use crate::ifc::{IfcCursor, RegistrationState, SessionCase};
use crate::location::{Binding, Registration};

/// The served user of a terminating request, at the start of its iFC chain: its
/// `registration` here (`state` registered) or its unregistered profile (`state`
/// unregistered, from SAR UNREGISTERED_USER); the 404 or 480 otherwise.
pub fn served(
    settings: &SessionSettings,
    request: &SipMessage,
    served_user: &str,
    registration: Option<Registration>,
    state: RegistrationState,
) -> Result<Served, NotServed> {
    let Some(registration) = registration else {
        if settings.is_home(request) {
            tracing::info!(%served_user, method = ?request.method(), "callee not registered");
            return Err(NotServed {
                code: 480,
                reason: "Temporarily Unavailable",
            });
        }
        tracing::info!(%served_user, "terminating request for a user we do not serve");
        return Err(NotServed {
            code: 404,
            reason: "Not Found",
        });
    };
    if registration.profile.barred.iter().any(|b| b == served_user) {
        tracing::info!(%served_user, "terminating request for a barred identity");
        return Err(NotServed {
            code: 404,
            reason: "Not Found",
        });
    }
    let case = match state {
        RegistrationState::Registered => SessionCase::TerminatingRegistered,
        RegistrationState::Unregistered => SessionCase::TerminatingUnregistered,
    };
    Ok(Served::start(served_user, registration, case, state))
}

/// `served` as it goes on: unchanged, unless it is terminating and an application
/// server changed the Request-URI to another identity (a GRUU of the served user is
/// still the served user); then at the start of the diverting user's ORIGINATING_CDIV
/// chain.
pub fn diverted(settings: &SessionSettings, served: Served, request: &SipMessage) -> Served {
    if served.is_originating()
        || settings
            .addressed_identity(request)
            .is_none_or(|target| target == served.served_user)
    {
        return served;
    }
    tracing::info!(served_user = %served.served_user, "request diverted by an application server: originating-CDIV");
    let state = served.cursor.registration;
    Served {
        cursor: IfcCursor::start(SessionCase::OriginatingCdiv, state),
        ..served
    }
}

/// Routes a terminating request past the served user's application servers: to every
/// registered contact, or for a GRUU only to the contacts of its instance (RFC 5627
/// §5.4); 480 when there is none.
pub fn onward(settings: &SessionSettings, request: &SipMessage, served: &Served) -> Decision {
    let served_user = served.served_user.as_str();
    let gruu = settings.gruu_target(request);
    let bindings: Vec<&Binding> = served
        .registration
        .bindings
        .iter()
        .filter(|b| gruu.as_ref().is_none_or(|g| g.reaches(b)))
        .collect();
    let mut targets = Vec::with_capacity(bindings.len());
    let mut target_routes = Vec::with_capacity(bindings.len());
    for binding in bindings {
        match NameAddr::parse(&binding.contact) {
            Ok(contact) => {
                targets.push(contact.uri.to_string());
                target_routes.push(binding.path.clone());
            }
            Err(error) => {
                tracing::warn!(%error, contact = %binding.contact, "stored contact does not parse");
            }
        }
    }
    if targets.is_empty() {
        tracing::info!(%served_user, "no contact to reach");
        return answer(request, 480, "Temporarily Unavailable");
    }
    let mut edited = request.clone();
    edited.headers.remove_all(&HeaderName::PServedUser);
    // The callee's P-CSCF may be in a visited network; it strips the token toward the
    // UE anyway.
    strip_bearer(&mut edited);
    if let Some(uri) = request
        .request()
        .and_then(|r| std::str::from_utf8(&r.uri).ok())
    {
        edited
            .headers
            .set(HeaderName::PCalledPartyId, format!("<{uri}>"));
    }
    tracing::debug!(%served_user, branches = targets.len(), "terminating request forked to the contacts");
    Decision::ForwardWith {
        request: edited,
        flow: None,
        forward: Forward {
            targets,
            record_route: true,
            target_routes,
            ..Forward::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::tests::{code, registration, request, settings};

    /// [`served`] (registered only) then [`onward`].
    fn route(
        s: &SessionSettings,
        req: &SipMessage,
        user: &str,
        reg: Option<&Registration>,
    ) -> Decision {
        match served(s, req, user, reg.cloned(), RegistrationState::Registered) {
            Ok(served) => onward(s, req, &served),
            Err(n) => answer(req, n.code, n.reason),
        }
    }

    fn bob() -> Registration {
        registration(
            "sip:bob@ims.example.net",
            "sip:bob-barred@ims.example.net",
            &[
                (
                    "<sip:bob@127.0.0.1:7002;transport=udp>;+sip.instance=\"<urn:gsma:imei:1>\"",
                    "<sip:TOKEN1@127.0.0.1:5060;lr>",
                ),
                ("<sip:bob@127.0.0.1:7003>", "<sip:TOKEN2@127.0.0.1:5060;lr>"),
            ],
        )
    }

    #[test]
    fn every_contact_gets_a_branch_along_its_own_path() {
        let reg = bob();
        let req = request(
            "INVITE",
            "sip:bob@ims.example.net;user=phone",
            "P-Served-User: <sip:bob@ims.example.net>;sescase=term;regstate=reg\r\n",
        );
        let Decision::ForwardWith {
            request: edited,
            flow,
            forward,
        } = route(&settings(), &req, "sip:bob@ims.example.net", Some(&reg))
        else {
            panic!("forwarded");
        };
        assert_eq!(flow, None);
        assert_eq!(
            forward.targets,
            [
                "sip:bob@127.0.0.1:7002;transport=udp",
                "sip:bob@127.0.0.1:7003"
            ]
        );
        assert_eq!(
            forward.target_routes,
            [
                ["<sip:TOKEN1@127.0.0.1:5060;lr>"],
                ["<sip:TOKEN2@127.0.0.1:5060;lr>"]
            ]
        );
        assert!(forward.preload_routes.is_empty());
        assert!(forward.record_route);
        assert_eq!(
            edited.headers.get_str(&HeaderName::PCalledPartyId),
            Some("<sip:bob@ims.example.net;user=phone>")
        );
        assert!(edited.headers.get(&HeaderName::PServedUser).is_none());
    }

    #[test]
    fn not_registered_is_480_and_foreign_or_barred_is_404() {
        let s = settings();
        let home = request("INVITE", "sip:carol@ims.example.net", "");
        assert_eq!(
            code(route(&s, &home, "sip:carol@ims.example.net", None)),
            480
        );
        let tel = request("MESSAGE", "tel:+15551230009", "");
        assert_eq!(code(route(&s, &tel, "tel:+15551230009", None)), 480);
        let foreign = request("INVITE", "sip:carol@other.example.org", "");
        assert_eq!(
            code(route(&s, &foreign, "sip:carol@other.example.org", None)),
            404
        );
        let reg = bob();
        let barred = request("INVITE", "sip:bob-barred@ims.example.net", "");
        assert_eq!(
            code(route(
                &s,
                &barred,
                "sip:bob-barred@ims.example.net",
                Some(&reg)
            )),
            404
        );
    }

    #[test]
    fn unreadable_contacts_are_skipped() {
        let mut reg = bob();
        reg.bindings[0].contact = "<not a uri".into();
        let req = request("OPTIONS", "sip:bob@ims.example.net", "");
        let Decision::ForwardWith { forward, .. } =
            route(&settings(), &req, "sip:bob@ims.example.net", Some(&reg))
        else {
            panic!("forwarded");
        };
        assert_eq!(forward.targets, ["sip:bob@127.0.0.1:7003"]);
        reg.bindings.truncate(1);
        assert_eq!(
            code(route(
                &settings(),
                &req,
                "sip:bob@ims.example.net",
                Some(&reg)
            )),
            480
        );
    }
}
