//! Cloud authorization at the S-CSCF (design brief §5-§6): the S-CSCF holds the served
//! user's profile, and so its cloud profile (the `Extension/CloudProfile` of the
//! IMSSubscription: Keystone project = tenant, optionally the Keystone user the identity
//! is bound to). A registration is allowed only with a token of that tenant (and of that
//! user, where bound), as the policy service decides for verb `REGISTER` on the identity
//! (the global `restrict` policy is what keeps one tenant's token off another tenant's
//! phones).
//!
//! Requests outside a dialog (the methods `[cloud_auth] methods` names, every method by
//! default, the method being the verb) are checked on both sides, each where the
//! tenant is known:
//!
//! - originating: the caller's token must be allowed to use the caller's identity (object
//!   = the served user, of the caller's tenant);
//! - terminating: the caller's token (it travels with the request between our nodes) must
//!   be allowed to reach the callee (object = the callee, of the callee's tenant): across
//!   tenants only when the callee's tenant has a policy letting the caller's in.
//!
//! A served user with no registration here is left to session routing (403, 480, or the
//! terminating-unregistered services).
//!
//! The Bearer token goes from the P-CSCF to the originating S-CSCF and on, through our
//! I-CSCF, to the terminating S-CSCF: our own nodes. It is removed from everything
//! else the S-CSCF sends ([`without_bearer`]): toward an application server (kept and
//! put back when the request returns, [`crate::session::carried`]), toward a domain
//! that is not ours, toward the callee's contacts (their P-CSCF may be in a visited
//! network) and on every request inside a dialog (the dialog's initial request was
//! authorized; nothing downstream needs the token).

use std::sync::Arc;

use cloud_auth::filter::sip::{has_bearer, strip_bearer, SipFilter};
use cloud_auth::filter::Question;
use cloud_auth::keystone::TokenInfo;
use ims_sip::message::build::response_with;
use ims_sip::proxy::engine::{Decision, Forward};
use ims_sip::SipMessage;

use crate::location::Registration;
use crate::profile::UserProfile;
use crate::session::case::{asserted_identity, SessionCase};

/// The token's subject and the tenant of `impu`'s subscription, or the answer refusing
/// the request (no or invalid token; a subscription without a tenant gets 403).
async fn subject_and_tenant<'p>(
    filter: &SipFilter,
    req: &SipMessage,
    impu: &str,
    profile: &'p UserProfile,
) -> Result<(Arc<TokenInfo>, &'p str), SipMessage> {
    let who = filter.authenticate(req).await?;
    let Some(tenant) = profile.tenant.as_deref() else {
        tracing::info!(%impu, "subscription without a cloud tenant: refused");
        return Err(response_with(
            req,
            403,
            "Forbidden (no cloud tenant)",
            None,
            &[],
        ));
    };
    Ok((who, tenant))
}

/// Checks a REGISTER for `impu` with `profile` against the token it carries; the answer
/// refusing it otherwise (401 Bearer challenge, 403).
pub async fn check_registration(
    filter: &SipFilter,
    req: &SipMessage,
    impu: &str,
    profile: &UserProfile,
) -> Result<(), SipMessage> {
    let (who, tenant) = subject_and_tenant(filter, req, impu, profile).await?;
    if profile
        .bound_user
        .as_ref()
        .is_some_and(|u| *u != who.user_id)
    {
        tracing::info!(%impu, "token of another user than the identity is bound to");
        return Err(response_with(req, 403, "Forbidden", None, &[]));
    }
    let question = Question {
        identity: impu,
        target: impu,
        tenant,
        verb: "REGISTER",
        policy: None,
    };
    filter.authorize(req, &who, &question).await
}

/// Checks an initial request outside a dialog (a method the filter applies to) of
/// session case `case` on the side this S-CSCF serves, whose served user's registration
/// here is `registration`; the answer refusing it otherwise.
pub async fn check_session(
    filter: &SipFilter,
    req: &SipMessage,
    case: &SessionCase,
    registration: Option<&Registration>,
) -> Result<(), SipMessage> {
    let Some(reg) = registration else {
        return Ok(());
    };
    let served = case.served_user();
    let caller = match case {
        SessionCase::Originating { served_user } => served_user.clone(),
        SessionCase::Terminating { .. } => asserted_identity(req).unwrap_or_default(),
    };
    let (who, tenant) = subject_and_tenant(filter, req, served, &reg.profile).await?;
    let verb = req.method().map_or("", |m| m.as_str());
    let question = Question {
        identity: &caller,
        target: served,
        tenant,
        verb,
        policy: None,
    };
    filter.authorize(req, &who, &question).await
}

/// The name an application server is known by in policies: the host of its ServerName
/// URI (`sip:as1.ims.example.net;lr` → `as1.ims.example.net`), lower case.
pub fn as_name(server_name: &str) -> String {
    let rest = server_name
        .split_once(':')
        .map_or(server_name, |(_, r)| r)
        .trim_start_matches("//");
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = host_port.split([';', '?', '>']).next().unwrap_or_default();
    let host = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.split(':').next().unwrap_or(host)
    };
    host.to_ascii_lowercase()
}

/// Checks that the request's token may have `served_user`'s request routed to the
/// application server `server_name` (verb `as:<name>`, object = the AS, of the served
/// user's tenant, design brief §6); the answer refusing it otherwise.
pub async fn check_as_routing(
    filter: &SipFilter,
    req: &SipMessage,
    served_user: &str,
    profile: &UserProfile,
    server_name: &str,
) -> Result<(), SipMessage> {
    let (who, tenant) = subject_and_tenant(filter, req, served_user, profile).await?;
    let name = as_name(server_name);
    let verb = format!("as:{name}");
    let question = Question {
        identity: served_user,
        target: &name,
        tenant,
        verb: &verb,
        policy: None,
    };
    filter.authorize(req, &who, &question).await
}

/// `edited` (or, when `None`, `original`) without its Bearer credentials: `Some` copy
/// when there was one to remove, else `edited` as it was.
pub fn without_bearer(edited: Option<SipMessage>, original: &SipMessage) -> Option<SipMessage> {
    if !has_bearer(edited.as_ref().unwrap_or(original)) {
        return edited;
    }
    let mut stripped = edited.unwrap_or_else(|| original.clone());
    strip_bearer(&mut stripped);
    Some(stripped)
}

/// The decision for a request inside a dialog: on along its Route set (RFC 3261
/// §16.12), without a Bearer token.
pub fn in_dialog(request: &SipMessage) -> Decision {
    match without_bearer(None, request) {
        Some(request) => Decision::ForwardWith {
            request,
            flow: None,
            forward: Forward::default(),
        },
        None => Decision::Forward(Forward::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_application_server_is_named_by_its_host() {
        assert_eq!(as_name("sip:AS1.ims.example.net;lr"), "as1.ims.example.net");
        assert_eq!(
            as_name("sip:mmtel@as2.example.net:5090;transport=tcp"),
            "as2.example.net"
        );
        assert_eq!(as_name("sip:[::1]:5090"), "[::1]");
        assert_eq!(as_name("sip:127.0.0.1:5090"), "127.0.0.1");
    }
}

#[cfg(test)]
mod strip_tests {
    use super::*;

    fn bye(auth: &str) -> SipMessage {
        SipMessage::parse(format!(
            "BYE sip:bob@127.0.0.1:7002 SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\n\
             From: <sip:alice@ims.example.net>;tag=1\r\nTo: <sip:bob@ims.example.net>;tag=2\r\n\
             Call-ID: c\r\nCSeq: 2 BYE\r\n{auth}Content-Length: 0\r\n\r\n"
        ))
        .unwrap()
    }

    #[test]
    fn in_dialog_requests_go_on_without_the_bearer() {
        assert!(matches!(in_dialog(&bye("")), Decision::Forward(_)));
        for auth in [
            "Authorization: Bearer tok\r\n",
            "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n",
            "Authorization: Bearer\r\n",
        ] {
            let Decision::ForwardWith { request, .. } = in_dialog(&bye(auth)) else {
                panic!("{auth:?} forwarded as it was");
            };
            assert!(!has_bearer(&request), "{auth:?}");
        }
    }
}
