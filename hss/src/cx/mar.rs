//! Multimedia-Auth-Request (TS 29.228 §6.3): the S-CSCF asks for authentication data,
//! SIP Digest (RFC 4740 §9.5 Digest AVPs, TS 29.229 §6.3.36) or Digest-AKAv1-MD5
//! (TS 33.203 §6.1, Milenage vectors of TS 33.102 §6.3.2).

use bytes::Bytes;
use ims_diameter::cx::{CxResult, Maa, Mar, SipAuthDataItem, SipDigestAuthenticate};
use ims_diameter::dict::{experimental, result};
use ims_sip::auth::aka::{encode_auts, resync};
use ims_sip::auth::milenage::Milenage;
use ims_sip::auth::AuthVector;

use super::{exp, implicit_set, subscription_of_pair, CxContext};
use crate::store::{AkaCredentials, AuthInfo, Registration, StoreError};

/// SIP-Authentication-Scheme of AKA (TS 29.229 §6.3.14).
pub const SCHEME_AKA: &str = "Digest-AKAv1-MD5";
/// SIP-Authentication-Scheme of SIP Digest (TS 29.229 §6.3.14).
pub const SCHEME_DIGEST: &str = "SIP Digest";
/// SIP-Authentication-Scheme asking for whatever the subscriber has (TS 29.228 §6.3.1).
pub const SCHEME_UNKNOWN: &str = "Unknown";

/// Most AKA vectors returned in one MAA, whatever SIP-Number-Auth-Items asks.
pub const MAX_VECTORS: u32 = 5;

/// Length of RAND || AUTS in SIP-Authorization on re-synchronisation (TS 29.229 §6.3.11).
const RESYNC_LEN: usize = 16 + 14;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Aka,
    Digest,
}

/// Answers a MAR following TS 29.228 §6.3.1:
/// 1-2. identities known and of one subscription (USER_UNKNOWN, IDENTITIES_DONT_MATCH);
/// 3. the scheme asked must be one the IMPI has credentials for
///    (DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED); `Unknown` takes AKA, else Digest;
/// 4. when no S-CSCF is stored for the public identity, the Server-Name of the request
///    is stored for its implicit registration set (registration state unchanged);
/// 5. AKA: a SIP-Authorization of RAND || AUTS re-synchronises SQN_HE from AUTS
///    (TS 33.102 §6.3.5) before fresh vectors are made (also under a Digest scheme for
///    an IMPI with AKA credentials, as Kamailio sends it: see `choose_scheme`);
///    SIP-Number-Auth-Items vectors
///    (1 to [`MAX_VECTORS`]), each with RAND || AUTN, XRES, CK and IK.
///    Digest: one SIP-Digest-Authenticate with realm, MD5, qop `auth` and the stored HA1.
///
/// Which credentials the IMPI has comes from its subscription. A Digest MAR whose
/// subscription is cached and whose S-CSCF is already stored waits for nothing: the HA1
/// is opened from the cache's sealed copy ([`Store::digest_ha1`]). AKA reads K and OPc
/// from the database and advances SQN_HE there.
///
/// [`Store::digest_ha1`]: crate::store::Store::digest_ha1
pub async fn answer(ctx: &CxContext, req: &Mar) -> Result<Maa, StoreError> {
    let sub = match subscription_of_pair(&ctx.store, &req.user_name, &req.public_identity).await? {
        Ok(s) => s,
        Err(result) => return Ok(maa(ctx, req, result, Vec::new())),
    };
    let Some(impi) = sub
        .private_identities
        .iter()
        .find(|p| p.impi == req.user_name)
    else {
        return Ok(unknown(ctx, req));
    };
    let asked = req
        .sip_auth_data_item
        .authentication_scheme
        .as_deref()
        .unwrap_or(SCHEME_UNKNOWN);
    let authorization = req.sip_auth_data_item.authorization.as_deref();
    let Some(scheme) = choose_scheme(asked, &impi.auth, authorization) else {
        tracing::info!(impi = %req.user_name, scheme = %asked, "MAR: scheme not provisioned");
        return Ok(maa(
            ctx,
            req,
            exp(experimental::DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED),
            Vec::new(),
        ));
    };
    if let Some(p) = super::identity(&sub, &req.public_identity) {
        if p.registration.scscf.is_none() {
            let set: Vec<&str> = implicit_set(&sub, &req.public_identity)
                .iter()
                .map(|p| p.identity.impu.as_str())
                .collect();
            let reg = Registration {
                state: p.registration.state,
                scscf: Some(req.server_name.clone()),
            };
            ctx.store.set_registration(&set, &reg).await?;
        }
    }
    let items = match scheme {
        Scheme::Aka => {
            let Some(aka) = ctx
                .store
                .credentials(&req.user_name)
                .await?
                .and_then(|c| c.aka)
            else {
                return Ok(unknown(ctx, req));
            };
            match aka_items(ctx, req, &aka).await? {
                Ok(items) => items,
                Err(result) => return Ok(maa(ctx, req, result, Vec::new())),
            }
        }
        Scheme::Digest => {
            let Some(ha1) = ctx.store.digest_ha1(&req.user_name).await? else {
                return Ok(unknown(ctx, req));
            };
            vec![SipAuthDataItem {
                item_number: Some(1),
                authentication_scheme: Some(SCHEME_DIGEST.to_owned()),
                digest: Some(SipDigestAuthenticate {
                    realm: impi.realm.clone(),
                    algorithm: Some("MD5".to_owned()),
                    qop: Some("auth".to_owned()),
                    ha1: Bytes::copy_from_slice(ha1.as_hex().as_bytes()),
                }),
                ..SipAuthDataItem::default()
            }]
        }
    };
    Ok(maa(ctx, req, super::SUCCESS, items))
}

/// DIAMETER_ERROR_USER_UNKNOWN: the IMPI or its credentials are gone (deleted while
/// the request was answered).
fn unknown(ctx: &CxContext, req: &Mar) -> Maa {
    maa(
        ctx,
        req,
        exp(experimental::DIAMETER_ERROR_USER_UNKNOWN),
        Vec::new(),
    )
}

/// The scheme to answer with, `None` when the IMPI has no credentials for it.
///
/// A Digest scheme whose SIP-Authorization is RAND || AUTS (exactly [`RESYNC_LEN`]
/// bytes) for an IMPI with AKA credentials is an AKA re-synchronisation: Kamailio 5.6's
/// S-CSCF (`ims_auth`, `auth_scheme_types[registration_default_algorithm]`) sends its
/// resync MAR with `Digest-MD5` when its default algorithm is MD5. It is answered as
/// `Digest-AKAv1-MD5`, so AUTS is still verified (MAC-S) before SQN_HE moves; a Digest
/// MAR never carries SIP-Authorization otherwise, and an IMPI without AKA credentials
/// keeps its Digest answer.
fn choose_scheme(asked: &str, auth: &AuthInfo, authorization: Option<&[u8]>) -> Option<Scheme> {
    let (aka, digest) = (auth.aka.is_some(), auth.digest);
    let scheme = if asked.eq_ignore_ascii_case(SCHEME_AKA) {
        Scheme::Aka
    } else if asked.eq_ignore_ascii_case(SCHEME_DIGEST)
        || asked.eq_ignore_ascii_case("Digest")
        || asked.eq_ignore_ascii_case("Digest-MD5")
    {
        if aka && authorization.is_some_and(|a| a.len() == RESYNC_LEN) {
            tracing::info!(scheme = %asked, "MAR: RAND || AUTS under a Digest scheme, answered as AKA re-synchronisation");
            return Some(Scheme::Aka);
        }
        Scheme::Digest
    } else if asked.eq_ignore_ascii_case(SCHEME_UNKNOWN) {
        return if aka {
            Some(Scheme::Aka)
        } else if digest {
            Some(Scheme::Digest)
        } else {
            None
        };
    } else {
        return None;
    };
    let has = match scheme {
        Scheme::Aka => aka,
        Scheme::Digest => digest,
    };
    has.then_some(scheme)
}

/// Re-synchronises when asked, then makes the AKA vectors.
async fn aka_items(
    ctx: &CxContext,
    req: &Mar,
    aka: &AkaCredentials,
) -> Result<Result<Vec<SipAuthDataItem>, CxResult>, StoreError> {
    let m = Milenage::new(&aka.k, &aka.opc);
    if let Some(auth) = &req.sip_auth_data_item.authorization {
        let (Some(rand), Some(auts)) = (
            auth.get(..16).and_then(|r| <[u8; 16]>::try_from(r).ok()),
            auth.get(16..RESYNC_LEN)
                .filter(|_| auth.len() == RESYNC_LEN)
                .and_then(|a| <[u8; 14]>::try_from(a).ok()),
        ) else {
            tracing::info!(impi = %req.user_name, len = auth.len(), "MAR: SIP-Authorization is not RAND || AUTS");
            return Ok(Err(CxResult::Base(result::DIAMETER_INVALID_AVP_VALUE)));
        };
        match resync(&m, &rand, &encode_auts(&auts)) {
            Ok(sqn_ms) => {
                tracing::info!(impi = %req.user_name, sqn = sqn_ms.value(), "MAR: SQN re-synchronised");
                ctx.store.set_sqn(&req.user_name, sqn_ms).await?;
            }
            Err(e) => {
                // TS 33.102 §6.3.5: a MAC-S that does not verify leaves SQN_HE alone.
                tracing::info!(impi = %req.user_name, error = %e, "MAR: AUTS rejected");
                return Ok(Err(CxResult::Base(
                    result::DIAMETER_AUTHENTICATION_REJECTED,
                )));
            }
        }
    }
    let count = req.sip_number_auth_items.clamp(1, MAX_VECTORS) as usize;
    let sqns = ctx.store.next_sqns(&req.user_name, count).await?;
    Ok(Ok(sqns
        .into_iter()
        .zip(1u32..)
        .map(|(sqn, n)| {
            let v = AuthVector::generate(&m, aka.amf, sqn, rand::random());
            SipAuthDataItem {
                item_number: Some(n),
                authentication_scheme: Some(SCHEME_AKA.to_owned()),
                authenticate: Some(Bytes::copy_from_slice(&v.rand_autn())),
                authorization: Some(Bytes::copy_from_slice(&v.xres)),
                confidentiality_key: Some(Bytes::copy_from_slice(&v.ck)),
                integrity_key: Some(Bytes::copy_from_slice(&v.ik)),
                ..SipAuthDataItem::default()
            }
        })
        .collect()))
}

fn maa(ctx: &CxContext, req: &Mar, result: CxResult, items: Vec<SipAuthDataItem>) -> Maa {
    let ok = result.is_success();
    Maa {
        header: ctx.header(&req.header, result),
        user_name: Some(req.user_name.clone()),
        supported_features: Vec::new(),
        public_identity: Some(req.public_identity.clone()),
        sip_number_auth_items: ok.then(|| u32::try_from(items.len()).unwrap_or(0)),
        sip_auth_data_items: items,
    }
}
