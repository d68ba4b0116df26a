//! Location-Info-Request (TS 29.228 §6.1.4): the I-CSCF asks which S-CSCF serves a
//! public identity, to route a request to it.

use ims_diameter::cx::{CxResult, Lia, Lir, UserAuthorizationType};
use ims_diameter::dict::experimental;

use super::{exp, has_unregistered_services, CxContext, SUCCESS};
use crate::store::{RegistrationState, StoreError};

/// Answers a LIR following TS 29.228 §6.1.4.1:
/// - unknown identity: DIAMETER_ERROR_USER_UNKNOWN;
/// - User-Authorization-Type REGISTRATION_AND_CAPABILITIES: DIAMETER_SUCCESS with the
///   Server-Capabilities;
/// - registered, or unregistered (an S-CSCF keeps the profile): DIAMETER_SUCCESS with
///   the stored Server-Name;
/// - not registered with services for the unregistered state (or an originating
///   request): the stored Server-Name with DIAMETER_SUCCESS if there is one, else
///   DIAMETER_UNREGISTERED_SERVICE with the Server-Capabilities;
/// - not registered otherwise: DIAMETER_ERROR_IDENTITY_NOT_REGISTERED.
pub async fn answer(ctx: &CxContext, req: &Lir) -> Result<Lia, StoreError> {
    let Some(sub) = ctx.store.by_impu(&req.public_identity).await? else {
        tracing::info!(impu = %req.public_identity, "LIR: unknown public identity");
        return Ok(lia(
            ctx,
            req,
            exp(experimental::DIAMETER_ERROR_USER_UNKNOWN),
            None,
            false,
        ));
    };
    if req.user_authorization_type == Some(UserAuthorizationType::RegistrationAndCapabilities) {
        return Ok(lia(ctx, req, SUCCESS, None, true));
    }
    let registration = super::identity(&sub, &req.public_identity)
        .map(|p| p.registration.clone())
        .unwrap_or_default();
    Ok(match (registration.state, registration.scscf) {
        (RegistrationState::Registered | RegistrationState::Unregistered, Some(s)) => {
            lia(ctx, req, SUCCESS, Some(s), false)
        }
        (_, scscf)
            if req.originating_request || has_unregistered_services(&sub, &req.public_identity) =>
        {
            match scscf {
                Some(s) => lia(ctx, req, SUCCESS, Some(s), false),
                None => lia(
                    ctx,
                    req,
                    exp(experimental::DIAMETER_UNREGISTERED_SERVICE),
                    None,
                    true,
                ),
            }
        }
        _ => lia(
            ctx,
            req,
            exp(experimental::DIAMETER_ERROR_IDENTITY_NOT_REGISTERED),
            None,
            false,
        ),
    })
}

fn lia(
    ctx: &CxContext,
    req: &Lir,
    result: CxResult,
    server_name: Option<String>,
    capabilities: bool,
) -> Lia {
    Lia {
        header: ctx.header(&req.header, result),
        supported_features: Vec::new(),
        server_name,
        server_capabilities: capabilities.then(|| ctx.capabilities.clone()),
        wildcarded_public_identity: None,
        lia_flags: None,
    }
}
