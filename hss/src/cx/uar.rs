//! User-Authorization-Request (TS 29.228 §6.1.1): the I-CSCF asks, on REGISTER, whether
//! the user may register and which S-CSCF serves it.

use ims_diameter::cx::{CxResult, Uaa, Uar, UserAuthorizationType};
use ims_diameter::dict::{experimental, result};

use super::{exp, implicit_set, subscription_of_pair, CxContext, SUCCESS};
use crate::store::{RegistrationState, StoreError, Subscription};

/// Answers a UAR following TS 29.228 §6.1.1.1:
/// 1-2. identities known and of one subscription (USER_UNKNOWN, IDENTITIES_DONT_MATCH);
/// 3. a barred public identity whose implicit set holds no non-barred identity may not
///    register (DIAMETER_AUTHORIZATION_REJECTED), de-registration stays allowed;
/// 4. registration from a visited network needs roaming permission
///    (DIAMETER_ERROR_ROAMING_NOT_ALLOWED); the home network is our realm;
/// 5. by User-Authorization-Type: REGISTRATION (the default) answers
///    DIAMETER_SUBSEQUENT_REGISTRATION with Server-Name when the identity is registered or
///    unregistered, else DIAMETER_FIRST_REGISTRATION with the stored Server-Name or the
///    Server-Capabilities; DE_REGISTRATION answers DIAMETER_SUCCESS with Server-Name, or
///    DIAMETER_ERROR_IDENTITY_NOT_REGISTERED; REGISTRATION_AND_CAPABILITIES answers
///    DIAMETER_SUCCESS with the Server-Capabilities.
pub async fn answer(ctx: &CxContext, req: &Uar) -> Result<Uaa, StoreError> {
    let sub = match subscription_of_pair(&ctx.store, &req.user_name, &req.public_identity).await? {
        Ok(s) => s,
        Err(result) => return Ok(uaa(ctx, req, result, None, false)),
    };
    let kind = req
        .user_authorization_type
        .unwrap_or(UserAuthorizationType::Registration);
    let registering = kind != UserAuthorizationType::DeRegistration;
    if registering && all_barred(&sub, &req.public_identity) {
        tracing::info!(impu = %req.public_identity, "UAR: barred public identity");
        return Ok(uaa(
            ctx,
            req,
            CxResult::Base(result::DIAMETER_AUTHORIZATION_REJECTED),
            None,
            false,
        ));
    }
    if registering && !roaming_allowed(ctx, &sub, &req.visited_network_identifier) {
        tracing::info!(visited = %req.visited_network_identifier, "UAR: roaming not allowed");
        return Ok(uaa(
            ctx,
            req,
            exp(experimental::DIAMETER_ERROR_ROAMING_NOT_ALLOWED),
            None,
            false,
        ));
    }
    let registration = super::identity(&sub, &req.public_identity)
        .map(|p| p.registration.clone())
        .unwrap_or_default();
    Ok(match kind {
        UserAuthorizationType::Registration => match registration.state {
            RegistrationState::Registered | RegistrationState::Unregistered => uaa(
                ctx,
                req,
                exp(experimental::DIAMETER_SUBSEQUENT_REGISTRATION),
                registration.scscf,
                false,
            ),
            RegistrationState::NotRegistered => {
                let caps = registration.scscf.is_none();
                uaa(
                    ctx,
                    req,
                    exp(experimental::DIAMETER_FIRST_REGISTRATION),
                    registration.scscf,
                    caps,
                )
            }
        },
        UserAuthorizationType::DeRegistration => match (registration.state, registration.scscf) {
            (RegistrationState::NotRegistered, _) | (_, None) => uaa(
                ctx,
                req,
                exp(experimental::DIAMETER_ERROR_IDENTITY_NOT_REGISTERED),
                None,
                false,
            ),
            (_, Some(scscf)) => uaa(ctx, req, SUCCESS, Some(scscf), false),
        },
        UserAuthorizationType::RegistrationAndCapabilities => uaa(ctx, req, SUCCESS, None, true),
    })
}

fn uaa(
    ctx: &CxContext,
    req: &Uar,
    result: CxResult,
    server_name: Option<String>,
    capabilities: bool,
) -> Uaa {
    Uaa {
        header: ctx.header(&req.header, result),
        supported_features: Vec::new(),
        server_name,
        server_capabilities: capabilities.then(|| ctx.capabilities.clone()),
    }
}

/// The identity is barred and so is every identity of its implicit registration set
/// (TS 29.228 §6.1.1.1 step 3).
fn all_barred(sub: &Subscription, impu: &str) -> bool {
    implicit_set(sub, impu).iter().all(|p| p.identity.barred)
}

/// Registration from the home network, or from a visited network the subscription may
/// roam to (TS 29.228 §6.1.1.1 step 4).
fn roaming_allowed(ctx: &CxContext, sub: &Subscription, visited: &str) -> bool {
    visited.eq_ignore_ascii_case(&ctx.origin_realm)
        || sub
            .roaming_networks
            .iter()
            .any(|n| n.eq_ignore_ascii_case(visited))
}
