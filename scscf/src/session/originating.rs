//! The originating case (TS 24.229 §5.4.3.2): a request from a served user, arriving
//! along the Service-Route with the P-Asserted-Identity its P-CSCF set.
//!
//! 1. The served user ([`served`]): registered here (ORIGINATING, its registration holds
//!    the profile), or not registered but with a profile the HSS gives on SAR
//!    UNREGISTERED_USER (ORIGINATING_UNREGISTERED: an AS originating on behalf of a
//!    user who is not registered, TS 24.229 §5.4.3.2, §5.7.3; the P-CSCF sends requests
//!    only for registered users). An identity the HSS does not give, or a barred one,
//!    gets 403 (§5.4.3.2 step 1, TS 29.228 §6.5.1: a barred public identity cannot
//!    originate).
//! 2. Application servers: the iFCs of that case ([`super::as_routing`]).
//! 3. Toward the callee ([`onward`]): a Request-URI of a home domain (or a tel URI)
//!    goes to our I-CSCF, which finds the callee's S-CSCF with LIR (§5.4.3.2 step 11,
//!    TS 29.228 §6.1.4); any other goes by its Request-URI (RFC 3261 §16.5). The
//!    S-CSCF record-routes (§5.4.3.2 step 9) so that it sees the dialog's later
//!    requests, and removes a P-Served-User an AS left in it.

use ims_sip::proxy::engine::{Decision, Forward};
use ims_sip::{HeaderName, SipMessage};

use super::as_routing::{NotServed, Served};
use super::SessionSettings;
use crate::cloud_auth::without_bearer;
use crate::gruu::Target;
use crate::ifc::{RegistrationState, SessionCase};
use crate::location::Registration;

/// The served user of an originating request, at the start of its iFC chain, given
/// its `registration` here (`state` registered) or its unregistered profile (`state`
/// unregistered); the 403 when there is none or the identity is barred.
pub fn served(
    request: &SipMessage,
    served_user: &str,
    registration: Option<Registration>,
    state: RegistrationState,
) -> Result<Served, NotServed> {
    let Some(registration) = registration else {
        tracing::info!(%served_user, method = ?request.method(), "originating request from an unknown, unregistered user refused");
        return Err(NotServed {
            code: 403,
            reason: "Forbidden - not registered",
        });
    };
    if registration.profile.barred.iter().any(|b| b == served_user) {
        tracing::info!(%served_user, "originating request from a barred identity refused");
        return Err(NotServed {
            code: 403,
            reason: "Forbidden - barred",
        });
    }
    let case = match state {
        RegistrationState::Registered => SessionCase::Originating,
        RegistrationState::Unregistered => SessionCase::OriginatingUnregistered,
    };
    Ok(Served::start(served_user, registration, case, state))
}

/// Routes an originating request of `served_user` past its application servers:
/// toward the callee's home network, record-routed.
pub fn onward(settings: &SessionSettings, request: &SipMessage, served_user: &str) -> Decision {
    // One of our temporary GRUUs names this S-CSCF as its host: it goes there by its
    // Request-URI (no I-CSCF could ask the HSS about it), still inside our network.
    let own_gruu = matches!(settings.gruu_target(request), Some(Target::Temporary(_)));
    let home = settings.is_home(request) && !own_gruu;
    let preload_routes = if home {
        vec![settings.icscf_route.clone()]
    } else {
        Vec::new()
    };
    tracing::debug!(%served_user, home = !preload_routes.is_empty(), "originating request routed");
    let forward = Forward {
        record_route: true,
        preload_routes,
        ..Forward::default()
    };
    // The Bearer token goes on to our I-CSCF (the callee's S-CSCF asks with it), never
    // to another network.
    let edited = without_served_user(request);
    let edited = if home || own_gruu {
        edited
    } else {
        without_bearer(edited, request)
    };
    match edited {
        Some(edited) => Decision::ForwardWith {
            request: edited,
            flow: None,
            forward,
        },
        None => Decision::Forward(forward),
    }
}

/// The request without its P-Served-User, when it has one: the header is between the
/// S-CSCF and its application servers (RFC 5502 §4) and does not go on with the
/// request.
pub fn without_served_user(request: &SipMessage) -> Option<SipMessage> {
    request.headers.get(&HeaderName::PServedUser)?;
    let mut edited = request.clone();
    edited.headers.remove_all(&HeaderName::PServedUser);
    Some(edited)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::answer;
    use crate::session::tests::{code, registration, request, settings};

    fn alice() -> Registration {
        registration(
            "sip:alice@ims.example.net",
            "sip:alice-barred@ims.example.net",
            &[("<sip:alice@127.0.0.1:7001>", "<sip:A@127.0.0.1:5060;lr>")],
        )
    }

    fn route(
        s: &SessionSettings,
        req: &SipMessage,
        user: &str,
        reg: Option<&Registration>,
    ) -> Decision {
        match served(req, user, reg.cloned(), RegistrationState::Registered) {
            Ok(served) => onward(s, req, &served.served_user),
            Err(n) => answer(req, n.code, n.reason),
        }
    }

    fn forward(d: Decision) -> Forward {
        match d {
            Decision::Forward(f) => f,
            other => panic!("not forwarded: {other:?}"),
        }
    }

    #[test]
    fn home_callee_goes_to_the_icscf_record_routed() {
        let reg = alice();
        for ruri in ["sip:bob@ims.example.net", "tel:+15551230002"] {
            let req = request("INVITE", ruri, "");
            let f = forward(route(
                &settings(),
                &req,
                "sip:alice@ims.example.net",
                Some(&reg),
            ));
            assert_eq!(f.preload_routes, ["<sip:127.0.0.1:5070;lr>"], "{ruri}");
            assert!(f.record_route);
            assert!(f.targets.is_empty(), "the Request-URI is kept");
        }
    }

    #[test]
    fn a_p_served_user_does_not_go_on() {
        let req = request(
            "INVITE",
            "sip:bob@ims.example.net",
            "P-Served-User: <sip:alice@ims.example.net>;sescase=orig\r\n",
        );
        let Decision::ForwardWith { request, .. } =
            onward(&settings(), &req, "sip:alice@ims.example.net")
        else {
            panic!("edited");
        };
        assert!(request.headers.get(&HeaderName::PServedUser).is_none());
    }

    #[test]
    fn other_domains_go_by_request_uri() {
        let reg = alice();
        let req = request("MESSAGE", "sip:carol@other.example.org", "");
        let f = forward(route(
            &settings(),
            &req,
            "sip:alice@ims.example.net",
            Some(&reg),
        ));
        assert!(f.preload_routes.is_empty());
        assert!(f.record_route);
    }

    #[test]
    fn unregistered_or_barred_callers_get_403() {
        let req = request("INVITE", "sip:bob@ims.example.net", "");
        let s = settings();
        assert_eq!(
            code(route(&s, &req, "sip:mallory@ims.example.net", None)),
            403
        );
        let reg = alice();
        assert_eq!(
            code(route(
                &s,
                &req,
                "sip:alice-barred@ims.example.net",
                Some(&reg)
            )),
            403
        );
    }
}
