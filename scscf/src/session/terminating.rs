//! The terminating case (TS 24.229 §5.4.3.3): a request addressed to a served user.
//!
//! 1. A barred Request-URI gets 404 (§5.4.3.3 step 1).
//! 2. Not registered here: 480 Temporarily Unavailable for an identity of a home
//!    domain or a tel URI (the terminating-unregistered case with iFC comes with
//!    application servers), 404 Not Found for anything else (we are not its S-CSCF).
//! 3. Application servers: see the marked hook in [`route`].
//! 4. Retargeting (§5.4.3.3 steps 8-10): P-Called-Party-ID gets the Request-URI as
//!    received (RFC 3455 §4.2), then one branch per registered contact, whose
//!    Request-URI is the contact and whose Route is the Path the contact registered
//!    with (RFC 3327 §5.3: the P-CSCF of that UE, with the flow token that sends the
//!    request over the UE's own connection). The engine forks in parallel, forwards
//!    the best response and cancels the other branches on a 2xx (RFC 3261 §16.7). The
//!    S-CSCF record-routes.

use ims_sip::message::addr::NameAddr;
use ims_sip::proxy::engine::{Decision, Forward};
use ims_sip::{HeaderName, SipMessage};

use super::{answer, SessionSettings};
use crate::location::Registration;

/// Routes a terminating request for `served_user`, whose registration here is
/// `registration`.
pub fn route(
    settings: &SessionSettings,
    request: &SipMessage,
    served_user: &str,
    registration: Option<&Registration>,
) -> Decision {
    let Some(registration) = registration else {
        if settings.is_home(request) {
            tracing::info!(%served_user, method = ?request.method(), "callee not registered");
            return answer(request, 480, "Temporarily Unavailable");
        }
        tracing::info!(%served_user, "terminating request for a user we do not serve");
        return answer(request, 404, "Not Found");
    };
    if registration.profile.barred.iter().any(|b| b == served_user) {
        tracing::info!(%served_user, "terminating request for a barred identity");
        return answer(request, 404, "Not Found");
    }

    // AS-ROUTING HOOK (terminating, TS 24.229 §5.4.3.3 steps 3-4, TS 29.228 Annex F):
    // evaluate `registration.profile`'s iFC for the terminating-registered session case
    // against `request`, in priority order; when one matches, return a Forward to that
    // AS with `preload_routes: [<AS URI;lr>, <our URI;lr;odi=...>]` instead of going
    // on. (The terminating-unregistered case belongs in the `None` branch above.)
    // When none (or no more) matches, fall through to the contacts.

    let mut targets = Vec::with_capacity(registration.bindings.len());
    let mut target_routes = Vec::with_capacity(registration.bindings.len());
    for binding in &registration.bindings {
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
        return answer(request, 480, "Temporarily Unavailable");
    }
    let mut edited = request.clone();
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
        let req = request("INVITE", "sip:bob@ims.example.net;user=phone", "");
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
