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

/// The cloud profile of a subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudProfile {
    /// Keystone project id (the tenant).
    pub tenant: Option<String>,
    /// Keystone user id the identities are bound to.
    pub user: Option<String>,
}

/// Longest tenant or user id read.
const MAX_ID: usize = 255;

/// The text of `<tag>...</tag>` inside `s`, if short and plain.
fn text_of<'a>(s: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = s.find(&open)? + open.len();
    let len = s.get(start..)?.find(&format!("</{tag}>"))?;
    let v = s.get(start..start + len)?.trim();
    (!v.is_empty() && v.len() <= MAX_ID && !v.contains(['<', '&'])).then_some(v)
}

impl CloudProfile {
    /// Reads the cloud profile of an IMSSubscription document (absent parts are `None`).
    pub fn of(profile: &UserProfile) -> CloudProfile {
        let Ok(text) = std::str::from_utf8(&profile.raw) else {
            return CloudProfile::default();
        };
        let Some(start) = text.find("<CloudProfile>") else {
            return CloudProfile::default();
        };
        let body = &text[start..];
        let body = body
            .find("</CloudProfile>")
            .map_or(body, |end| &body[..end]);
        CloudProfile {
            tenant: text_of(body, "ProjectId").map(str::to_owned),
            user: text_of(body, "UserId").map(str::to_owned),
        }
    }
}

/// Checks a REGISTER for `impu` with `profile` against the token it carries; the answer
/// refusing it otherwise (401 Bearer challenge, 403).
pub async fn check_registration(
    filter: &SipFilter,
    req: &SipMessage,
    impu: &str,
    profile: &UserProfile,
) -> Result<(), SipMessage> {
    let who = filter.authenticate(req).await?;
    let cloud = CloudProfile::of(profile);
    let Some(tenant) = cloud.tenant.as_deref() else {
        tracing::info!(%impu, "subscription without a cloud tenant: registration refused");
        return Err(response_with(
            req,
            403,
            "Forbidden (no cloud tenant)",
            None,
            &[],
        ));
    };
    if cloud.user.as_ref().is_some_and(|u| *u != who.user_id) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn profile(xml: &str) -> UserProfile {
        UserProfile::parse(Bytes::from(xml.to_owned())).unwrap()
    }

    #[test]
    fn reads_the_cloud_profile_the_hss_writes() {
        let p = profile(
            "<IMSSubscription><ServiceProfile><PublicIdentity><Identity>sip:a@x</Identity>\
             </PublicIdentity></ServiceProfile><Extension><CloudProfile>\
             <ProjectId>4f1c</ProjectId><UserId>u-9</UserId></CloudProfile></Extension>\
             </IMSSubscription>",
        );
        assert_eq!(
            CloudProfile::of(&p),
            CloudProfile {
                tenant: Some("4f1c".into()),
                user: Some("u-9".into())
            }
        );
    }

    #[test]
    fn absent_or_odd_parts_are_none() {
        let p = profile("<IMSSubscription></IMSSubscription>");
        assert_eq!(CloudProfile::of(&p), CloudProfile::default());
        let p = profile(
            "<IMSSubscription><Extension><CloudProfile><ProjectId>a&amp;b</ProjectId>\
             </CloudProfile></Extension></IMSSubscription>",
        );
        assert_eq!(CloudProfile::of(&p).tenant, None);
        // A UserId outside the CloudProfile is not read as one.
        let p = profile(
            "<IMSSubscription><Extension><CloudProfile><ProjectId>t</ProjectId>\
             </CloudProfile></Extension><UserId>x</UserId></IMSSubscription>",
        );
        assert_eq!(
            CloudProfile::of(&p),
            CloudProfile {
                tenant: Some("t".into()),
                user: None
            }
        );
    }
}
