//! Who may call the provisioning API and what they may do (design brief §5-§6: every
//! REST call to a cloud service passes the request filter).
//!
//! | credential | who | decided by |
//! |---|---|---|
//! | `X-Auth-Token: <Keystone token>` (with `[provisioning.cloud_auth]` on) | the token's subject | the policy service, global policy `provision`, per call and per subscriber tenant |
//! | `Authorization: Bearer <admin token>` (with `static_token = true`) | the operator (bootstrap, development) | nothing more: everything |
//!
//! Answers: no usable credential 401; a Keystone token Keystone refuses 401; Keystone or
//! the policy service unreachable (nothing cached) 503, never allowed; denied 403.
//!
//! The question asked for a subscriber is `Verb = subscriber:read` or
//! `subscriber:write`, `Object = the subscriber's tenant` (its cloud profile's Keystone
//! project; a subscriber without one is `global`). With the built-in `provision` policy a
//! tenant's admin (role `admin` on the project) reads and writes that tenant's
//! subscribers only, and the cloud admin (system-scoped role `admin`) reads every
//! subscriber and writes the tenant-less ones; the cloud admin may change `provision`.
//! Writing a subscriber needs `subscriber:write` on its tenant before and after the
//! change (moving one to another tenant needs both). A list shows only what the caller
//! may read. Decisions are cached by the filter and wiped by the policy service's feed,
//! so a policy change applies within a second.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};
use cloud_auth::filter::{Question, Refusal, RequestFilter};
use cloud_auth::keystone::TokenInfo;

use super::Failure;

/// Header carrying a Keystone token (as OpenStack APIs take it).
pub const KEYSTONE_TOKEN: &str = "x-auth-token";
/// Verb of a read.
pub const READ: &str = "subscriber:read";
/// Verb of a create, change, delete or de-registration.
pub const WRITE: &str = "subscriber:write";
/// The global policy deciding the API.
pub const POLICY: &str = "provision";
/// The object named in every question: decisions depend on the tenant only, so one is
/// cached per caller, tenant and verb.
const TARGET: &str = "subscriber";

/// How callers are authenticated and authorized.
#[derive(Clone, Default)]
pub struct Access {
    static_token: Option<Arc<str>>,
    cloud: Option<RequestFilter>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The static admin token: the operator, allowed everything.
    Operator,
    /// A Keystone token's subject, decided per call.
    Cloud(Arc<TokenInfo>),
}

impl Access {
    /// `static_token`: the admin token accepted as `Authorization: Bearer` (`None`:
    /// refused); `cloud`: the filter deciding Keystone tokens (`None`: refused).
    pub fn new(static_token: Option<String>, cloud: Option<RequestFilter>) -> Access {
        Access {
            static_token: static_token.map(Arc::from),
            cloud,
        }
    }

    /// The caller of a request with `headers`, or the answer refusing it.
    pub(super) async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, Failure> {
        if let Some(token) = headers.get(KEYSTONE_TOKEN) {
            let Some(filter) = &self.cloud else {
                return Err(unauthorized("Keystone tokens are not accepted here"));
            };
            let token = token.to_str().ok().map(str::trim);
            return match filter.authenticate(token).await {
                Ok(who) => Ok(Caller::Cloud(who)),
                Err(Refusal::Undecidable(e)) => {
                    tracing::warn!(error = %e, "provisioning call refused: Keystone unavailable");
                    Err(unavailable())
                }
                Err(_) => Err(unauthorized("invalid Keystone token")),
            };
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match (&self.static_token, presented) {
            (Some(t), Some(p)) if ims_runtime::admin_token::same(t.as_bytes(), p.as_bytes()) => {
                Ok(Caller::Operator)
            }
            _ => Err(unauthorized("missing or invalid token")),
        }
    }

    /// Whether `caller` may do `verb` on a subscriber of `tenant` (`None` or empty:
    /// none); `Err` (503) when there is no decision to be had.
    pub(super) async fn allowed(
        &self,
        caller: &Caller,
        verb: &str,
        tenant: Option<&str>,
    ) -> Result<bool, Failure> {
        let who = match caller {
            Caller::Operator => return Ok(true),
            Caller::Cloud(who) => who,
        };
        let Some(filter) = &self.cloud else {
            return Ok(false);
        };
        let question = Question {
            identity: "",
            target: TARGET,
            tenant: tenant.unwrap_or_default(),
            verb,
            policy: Some(POLICY),
        };
        match filter.authorize(who, &question).await {
            Ok(()) => Ok(true),
            Err(Refusal::Undecidable(e)) => {
                tracing::warn!(error = %e, verb, "provisioning call refused: no policy decision");
                Err(unavailable())
            }
            Err(_) => Ok(false),
        }
    }

    /// [`Access::allowed`], answered 403 when denied.
    pub(super) async fn check(
        &self,
        caller: &Caller,
        verb: &str,
        tenant: Option<&str>,
    ) -> Result<(), Failure> {
        if self.allowed(caller, verb, tenant).await? {
            return Ok(());
        }
        if let Caller::Cloud(who) = caller {
            tracing::info!(user = %who.user_id, verb, tenant = tenant.unwrap_or_default(), "provisioning call denied by policy");
        }
        Err(Failure::new(StatusCode::FORBIDDEN, "forbidden", None))
    }
}

/// Memoised read decisions for one list: one question per tenant met.
#[derive(Default)]
pub(super) struct Readable(HashMap<String, bool>);

impl Readable {
    /// Whether `caller` may read a subscriber of `tenant`.
    pub(super) async fn check(
        &mut self,
        access: &Access,
        caller: &Caller,
        tenant: Option<&str>,
    ) -> Result<bool, Failure> {
        let key = tenant.unwrap_or_default();
        if let Some(known) = self.0.get(key) {
            return Ok(*known);
        }
        let allowed = access.allowed(caller, READ, tenant).await?;
        self.0.insert(key.to_owned(), allowed);
        Ok(allowed)
    }
}

/// Compares without an early exit, so the time taken does not reveal the prefix matched.
fn unauthorized(why: &str) -> Failure {
    Failure::new(StatusCode::UNAUTHORIZED, why, None)
}

fn unavailable() -> Failure {
    Failure::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "no authorization decision",
        None,
    )
}
