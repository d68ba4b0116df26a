//! The originating case (TS 24.229 §5.4.3.2): a request from a served user, arriving
//! along the Service-Route with the P-Asserted-Identity its P-CSCF set.
//!
//! 1. The served user must be registered here (its registration holds the profile);
//!    otherwise 403 (the originating-unregistered case, which needs iFC, comes with
//!    application servers). A barred identity gets 403 too (§5.4.3.2 step 1, TS 29.228
//!    §6.5.1: a barred public identity cannot originate).
//! 2. Application servers: see the marked hook in [`route`].
//! 3. Toward the callee: a Request-URI of a home domain (or a tel URI) goes to our
//!    I-CSCF, which finds the callee's S-CSCF with LIR (§5.4.3.2 step 11, TS 29.228
//!    §6.1.4); any other goes by its Request-URI (RFC 3261 §16.5). The S-CSCF
//!    record-routes (§5.4.3.2 step 9) so that it sees the dialog's later requests.

use ims_sip::proxy::engine::{Decision, Forward};
use ims_sip::SipMessage;

use super::{answer, SessionSettings};
use crate::location::Registration;

/// Routes an originating request of `served_user`, whose registration here is
/// `registration`.
pub fn route(
    settings: &SessionSettings,
    request: &SipMessage,
    served_user: &str,
    registration: Option<&Registration>,
) -> Decision {
    let Some(registration) = registration else {
        tracing::info!(%served_user, method = ?request.method(), "originating request from an unregistered user refused");
        return answer(request, 403, "Forbidden - not registered");
    };
    if registration.profile.barred.iter().any(|b| b == served_user) {
        tracing::info!(%served_user, "originating request from a barred identity refused");
        return answer(request, 403, "Forbidden - barred");
    }

    // AS-ROUTING HOOK (originating, TS 24.229 §5.4.3.2 steps 3-4, TS 29.228 Annex F):
    // evaluate `registration.profile`'s iFC for the originating session case against
    // `request`, in priority order; when one matches, return a Forward to that AS with
    // `preload_routes: [<AS URI;lr>, <our URI;lr;orig;odi=...>]` instead of going on.
    // The request comes back with our odi Route; `case::recognise` must then resume
    // after the iFC that sent it. When none (or no more) matches, fall through.

    let preload_routes = if settings.is_home(request) {
        vec![settings.icscf_route.clone()]
    } else {
        Vec::new()
    };
    tracing::debug!(%served_user, home = !preload_routes.is_empty(), "originating request routed");
    Decision::Forward(Forward {
        record_route: true,
        preload_routes,
        ..Forward::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::tests::{code, registration, request, settings};

    fn alice() -> Registration {
        registration(
            "sip:alice@ims.example.net",
            "sip:alice-barred@ims.example.net",
            &[("<sip:alice@127.0.0.1:7001>", "<sip:A@127.0.0.1:5060;lr>")],
        )
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
