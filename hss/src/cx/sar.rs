//! Server-Assignment-Request (TS 29.228 §6.1.2): the S-CSCF reports a registration,
//! de-registration or assignment change and fetches the user profile.

use bytes::Bytes;
use ims_diameter::cx::UserDataAlreadyAvailable;
use ims_diameter::cx::{AssociatedIdentities, CxResult, Saa, Sar, ServerAssignmentType};
use ims_diameter::dict::{experimental, result};

use super::{exp, implicit_set, user_data, CxContext, SUCCESS};
use crate::store::{PublicIdentityInfo, Registration, RegistrationState, StoreError};

/// Answers a SAR following TS 29.228 §6.1.2.1. The public identities of the request (or,
/// without any, all of the subscription of User-Name) are extended to their implicit
/// registration sets, and by Server-Assignment-Type:
/// - REGISTRATION, RE_REGISTRATION: registered at the requesting S-CSCF (a different
///   stored S-CSCF is overwritten); User-Data unless USER_DATA_ALREADY_AVAILABLE;
/// - UNREGISTERED_USER: unregistered at the requesting S-CSCF with User-Data;
///   DIAMETER_ERROR_IDENTITY_ALREADY_REGISTERED if registered at another S-CSCF;
/// - TIMEOUT_DEREGISTRATION, USER_DEREGISTRATION, DEREGISTRATION_TOO_MUCH_DATA,
///   ADMINISTRATIVE_DEREGISTRATION: not registered, S-CSCF name cleared;
///   the `_STORE_SERVER_NAME` variants keep the S-CSCF name (DIAMETER_SUCCESS); an
///   identity another S-CSCF holds is left as it is (a late release from an S-CSCF
///   the user has since left must not de-register it at its new one);
/// - AUTHENTICATION_FAILURE, AUTHENTICATION_TIMEOUT: the S-CSCF name stored by MAR is
///   cleared unless the identity is registered;
/// - NO_ASSIGNMENT: User-Data only, DIAMETER_UNABLE_TO_COMPLY from an S-CSCF other than
///   the assigned one;
/// - AAA_USER_DATA_REQUEST, PGW_UPDATE, RESTORATION (not Cx registration):
///   DIAMETER_ERROR_IN_ASSIGNMENT_TYPE.
///
/// Unknown identities are DIAMETER_ERROR_USER_UNKNOWN; a User-Name of another
/// subscription DIAMETER_ERROR_IDENTITIES_DONT_MATCH.
pub async fn answer(ctx: &CxContext, req: &Sar) -> Result<Saa, StoreError> {
    let first = req.public_identities.first();
    let sub = match (first, &req.user_name) {
        (Some(impu), _) => ctx.store.by_impu(impu).await?,
        (None, Some(impi)) => ctx.store.by_impi(impi).await?,
        (None, None) => None,
    };
    let Some(sub) = sub else {
        tracing::info!(impu = ?first, impi = ?req.user_name, "SAR: unknown user");
        return Ok(saa(
            ctx,
            req,
            exp(experimental::DIAMETER_ERROR_USER_UNKNOWN),
        ));
    };
    let impi = match &req.user_name {
        Some(u) if !sub.private_identities.iter().any(|p| &p.impi == u) => {
            tracing::info!(impi = %u, "SAR: private identity of another subscription");
            return Ok(saa(
                ctx,
                req,
                exp(experimental::DIAMETER_ERROR_IDENTITIES_DONT_MATCH),
            ));
        }
        Some(u) => u.clone(),
        None => sub
            .private_identities
            .first()
            .map(|p| p.impi.clone())
            .unwrap_or_default(),
    };
    let mut set: Vec<&PublicIdentityInfo> = Vec::new();
    if req.public_identities.is_empty() {
        set.extend(&sub.public_identities);
    }
    for impu in &req.public_identities {
        if super::identity(&sub, impu).is_none() {
            tracing::info!(%impu, "SAR: public identity not of this subscription");
            return Ok(saa(
                ctx,
                req,
                exp(experimental::DIAMETER_ERROR_IDENTITIES_DONT_MATCH),
            ));
        }
        for p in implicit_set(&sub, impu) {
            if !set.iter().any(|s| s.identity.impu == p.identity.impu) {
                set.push(p);
            }
        }
    }
    let assigned_elsewhere = set.iter().any(|p| {
        p.registration
            .scscf
            .as_deref()
            .is_some_and(|s| s != req.server_name)
    });
    let registered = set
        .iter()
        .any(|p| p.registration.state == RegistrationState::Registered);
    let server = Some(req.server_name.clone());
    use ServerAssignmentType as T;
    let (result, data) = match req.server_assignment_type {
        T::Registration | T::ReRegistration => {
            set_state(ctx, &set, RegistrationState::Registered, server).await?;
            let data = req.user_data_already_available == UserDataAlreadyAvailable::NotAvailable;
            (SUCCESS, data)
        }
        T::UnregisteredUser => {
            if registered && assigned_elsewhere {
                tracing::info!(impu = ?first, "SAR: registered at another S-CSCF");
                return Ok(saa(
                    ctx,
                    req,
                    exp(experimental::DIAMETER_ERROR_IDENTITY_ALREADY_REGISTERED),
                ));
            }
            let state = if registered {
                RegistrationState::Registered
            } else {
                RegistrationState::Unregistered
            };
            set_state(ctx, &set, state, server).await?;
            (SUCCESS, true)
        }
        T::TimeoutDeregistration
        | T::UserDeregistration
        | T::DeregistrationTooMuchData
        | T::AdministrativeDeregistration => {
            let own = held_by(&set, &req.server_name);
            set_state(ctx, &own, RegistrationState::NotRegistered, None).await?;
            (SUCCESS, false)
        }
        T::TimeoutDeregistrationStoreServerName | T::UserDeregistrationStoreServerName => {
            let own = held_by(&set, &req.server_name);
            set_state(ctx, &own, RegistrationState::NotRegistered, server).await?;
            (SUCCESS, false)
        }
        T::AuthenticationFailure | T::AuthenticationTimeout => {
            let not_registered: Vec<&PublicIdentityInfo> = set
                .iter()
                .filter(|p| p.registration.state == RegistrationState::NotRegistered)
                .copied()
                .collect();
            set_state(ctx, &not_registered, RegistrationState::NotRegistered, None).await?;
            (SUCCESS, false)
        }
        T::NoAssignment => {
            if assigned_elsewhere {
                tracing::info!(impu = ?first, "SAR NO_ASSIGNMENT from a non-assigned S-CSCF");
                (CxResult::Base(result::DIAMETER_UNABLE_TO_COMPLY), false)
            } else {
                (SUCCESS, true)
            }
        }
        T::AaaUserDataRequest | T::PgwUpdate | T::Restoration => {
            tracing::info!(kind = ?req.server_assignment_type, "SAR: assignment type not for Cx");
            (exp(experimental::DIAMETER_ERROR_IN_ASSIGNMENT_TYPE), false)
        }
    };
    let mut saa = saa(ctx, req, result);
    if result.is_success() {
        saa.user_name = Some(impi.clone());
        let others: Vec<String> = sub
            .private_identities
            .iter()
            .filter(|p| p.impi != impi)
            .map(|p| p.impi.clone())
            .collect();
        if !others.is_empty() {
            saa.associated_identities = Some(AssociatedIdentities { user_names: others });
        }
        if data {
            saa.user_data = Some(Bytes::from(user_data::ims_subscription(&sub, &impi, &set)));
        }
    }
    Ok(saa)
}

/// The identities of `set` held by S-CSCF `server_name` or by none (logging the others).
fn held_by<'a>(set: &[&'a PublicIdentityInfo], server_name: &str) -> Vec<&'a PublicIdentityInfo> {
    set.iter()
        .filter(|p| match p.registration.scscf.as_deref() {
            Some(other) if other != server_name => {
                tracing::info!(impu = %p.identity.impu, %other, requester = %server_name, "SAR de-registration from an S-CSCF not holding the identity: left as it is");
                false
            }
            _ => true,
        })
        .copied()
        .collect()
}

/// Gives each identity of `set` the registration `state` at `scscf`; only those whose
/// stored registration differs are written (a re-registration usually changes nothing).
async fn set_state(
    ctx: &CxContext,
    set: &[&PublicIdentityInfo],
    state: RegistrationState,
    scscf: Option<String>,
) -> Result<(), StoreError> {
    let registration = Registration { state, scscf };
    let changed: Vec<&str> = set
        .iter()
        .filter(|p| p.registration != registration)
        .map(|p| p.identity.impu.as_str())
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    ctx.store.set_registration(&changed, &registration).await
}

fn saa(ctx: &CxContext, req: &Sar, result: CxResult) -> Saa {
    Saa {
        header: ctx.header(&req.header, result),
        user_name: None,
        supported_features: Vec::new(),
        user_data: None,
        charging_information: None,
        associated_identities: None,
        server_name: None,
        wildcarded_public_identity: None,
    }
}
