//! Cloud authorization at the S-CSCF (design brief §5-§6): the S-CSCF holds the served
//! user's profile, and so its cloud profile (the `Extension/CloudProfile` of the
//! IMSSubscription: Keystone project = tenant, optionally the Keystone user the identity
//! is bound to). A registration is allowed only with a token of that tenant (and of that
//! user, where bound), as the policy service decides for verb `REGISTER` on the identity
//! (the global `restrict` policy is what keeps one tenant's token off another tenant's
//! phones).

use cloud_auth::filter::sip::SipFilter;
use cloud_auth::filter::Question;
use ims_sip::message::build::response_with;
use ims_sip::SipMessage;

use crate::profile::UserProfile;

/// Checks a REGISTER for `impu` with `profile` against the token it carries; the answer
/// refusing it otherwise (401 Bearer challenge, 403).
pub async fn check_registration(
    filter: &SipFilter,
    req: &SipMessage,
    impu: &str,
    profile: &UserProfile,
) -> Result<(), SipMessage> {
    let who = filter.authenticate(req).await?;
    let Some(tenant) = profile.tenant.as_deref() else {
        tracing::info!(%impu, "subscription without a cloud tenant: registration refused");
        return Err(response_with(
            req,
            403,
            "Forbidden (no cloud tenant)",
            None,
            &[],
        ));
    };
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
    };
    filter.authorize(req, &who, &question).await
}
