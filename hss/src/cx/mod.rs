//! The HSS side of the Cx interface (TS 29.228 §6, TS 29.229 §6.1): a Diameter
//! [`Handler`] answering UAR ([`uar`]), MAR ([`mar`]), SAR ([`sar`]) and LIR ([`lir`])
//! from the [`Store`], the IMSSubscription document of SAA/PPA ([`user_data`]), and the
//! HSS-initiated RTR/PPR ([`push`]).
//!
//! A request that does not decode is answered with its Diameter error (missing AVP,
//! invalid value, unsupported command); a store failure with DIAMETER_UNABLE_TO_COMPLY.

pub mod lir;
pub mod mar;
pub mod push;
pub mod sar;
pub mod uar;
pub mod user_data;

use std::sync::Arc;

use ims_diameter::cx::{AnswerHeader, CxRequest, CxResult, RequestHeader, ServerCapabilities};
use ims_diameter::dict::{experimental, result};
use ims_diameter::peer::{BoxFuture, Handler};
use ims_diameter::Message;

use crate::store::{PublicIdentityInfo, Store, StoreError, Subscription};

/// What the Cx handlers need: the store and this node's identity and policy.
#[derive(Debug, Clone)]
pub struct CxContext {
    /// The subscriber store.
    pub store: Store,
    /// Origin-Host of our answers.
    pub origin_host: String,
    /// Origin-Realm of our answers; also the home network for the roaming check.
    pub origin_realm: String,
    /// Server-Capabilities returned when no S-CSCF is assigned (TS 29.228 §6.1.1.1).
    pub capabilities: ServerCapabilities,
}

impl CxContext {
    fn header(&self, req: &RequestHeader, result: CxResult) -> AnswerHeader {
        AnswerHeader::for_request(req, &self.origin_host, &self.origin_realm, result)
    }
}

/// The Diameter request handler of the HSS.
#[derive(Debug, Clone)]
pub struct CxServer {
    ctx: Arc<CxContext>,
}

impl CxServer {
    /// A handler over `ctx`.
    pub fn new(ctx: CxContext) -> CxServer {
        CxServer { ctx: Arc::new(ctx) }
    }

    /// The answer to `req` (also used by tests, without a connection).
    pub async fn answer(&self, req: &Message) -> Message {
        let ctx = &self.ctx;
        let decoded = match CxRequest::from_message(req) {
            Ok(d) => d,
            Err(e) => {
                tracing::info!(command = req.command_code, error = %e, "Cx request refused");
                return e.answer(req, &ctx.origin_host, &ctx.origin_realm);
            }
        };
        let answer = match decoded {
            CxRequest::Uar(r) => uar::answer(ctx, &r).await.map(|a| a.to_answer(req)),
            CxRequest::Mar(r) => mar::answer(ctx, &r).await.map(|a| a.to_answer(req)),
            CxRequest::Sar(r) => sar::answer(ctx, &r).await.map(|a| a.to_answer(req)),
            CxRequest::Lir(r) => lir::answer(ctx, &r).await.map(|a| a.to_answer(req)),
            CxRequest::Rtr(_) | CxRequest::Ppr(_) => {
                // The HSS sends these; it never receives them (TS 29.228 §6.1.3, §6.1.4).
                tracing::info!(
                    command = req.command_code,
                    "Cx request not served by an HSS"
                );
                return Message::error_answer(
                    req,
                    &ctx.origin_host,
                    &ctx.origin_realm,
                    result::DIAMETER_COMMAND_UNSUPPORTED,
                    None,
                );
            }
        };
        answer.unwrap_or_else(|e| {
            tracing::error!(command = req.command_code, error = %e, "Cx request failed in the store");
            Message::error_answer(
                req,
                &ctx.origin_host,
                &ctx.origin_realm,
                result::DIAMETER_UNABLE_TO_COMPLY,
                None,
            )
        })
    }
}

impl Handler for CxServer {
    fn handle(&self, request: Message) -> BoxFuture<'_, Message> {
        Box::pin(async move { self.answer(&request).await })
    }
}

/// Experimental-Result (vendor 10415) with a TS 29.229 §6.2 code.
fn exp(code: u32) -> CxResult {
    CxResult::experimental(code)
}

/// Result-Code DIAMETER_SUCCESS.
const SUCCESS: CxResult = CxResult::Base(result::DIAMETER_SUCCESS);

/// The subscription holding `impu`, checked against `impi` (TS 29.228 §6.1.1.1 steps
/// 1-2, §6.3.1 steps 1-2): an unknown identity is DIAMETER_ERROR_USER_UNKNOWN, a pair
/// from different subscriptions DIAMETER_ERROR_IDENTITIES_DONT_MATCH.
async fn subscription_of_pair(
    store: &Store,
    impi: &str,
    impu: &str,
) -> Result<Result<Arc<Subscription>, CxResult>, StoreError> {
    let Some(sub) = store.by_impu(impu).await? else {
        tracing::info!(%impu, "Cx: unknown public identity");
        return Ok(Err(exp(experimental::DIAMETER_ERROR_USER_UNKNOWN)));
    };
    if sub.private_identities.iter().any(|p| p.impi == impi) {
        return Ok(Ok(sub));
    }
    if store.by_impi(impi).await?.is_none() {
        tracing::info!(%impi, "Cx: unknown private identity");
        return Ok(Err(exp(experimental::DIAMETER_ERROR_USER_UNKNOWN)));
    }
    tracing::info!(%impi, %impu, "Cx: identities of different subscriptions");
    Ok(Err(exp(experimental::DIAMETER_ERROR_IDENTITIES_DONT_MATCH)))
}

/// The public identity `impu` of `sub`.
fn identity<'a>(sub: &'a Subscription, impu: &str) -> Option<&'a PublicIdentityInfo> {
    sub.public_identities
        .iter()
        .find(|p| p.identity.impu == impu)
}

/// The implicit registration set of `impu` (TS 23.228 §4.3.3.3): the identities of the
/// subscription with the same set number, or `impu` alone when it has none.
fn implicit_set<'a>(sub: &'a Subscription, impu: &str) -> Vec<&'a PublicIdentityInfo> {
    let set = identity(sub, impu).and_then(|p| p.identity.implicit_set);
    sub.public_identities
        .iter()
        .filter(|p| match set {
            Some(n) => p.identity.implicit_set == Some(n),
            None => p.identity.impu == impu,
        })
        .collect()
}

/// Whether the profile of `impu` has services for the unregistered state: an iFC whose
/// ProfilePartIndicator is UNREGISTERED or absent (TS 29.228 Annex B.2.2, §6.1.4.1).
fn has_unregistered_services(sub: &Subscription, impu: &str) -> bool {
    use crate::store::ProfilePartIndicator;
    let Some(p) = identity(sub, impu) else {
        return false;
    };
    sub.service_profiles
        .iter()
        .filter(|s| s.name == p.identity.service_profile)
        .flat_map(|s| &s.ifcs)
        .any(|i| i.profile_part_indicator != Some(ProfilePartIndicator::Registered))
}
