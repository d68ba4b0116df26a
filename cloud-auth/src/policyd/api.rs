//! The REST API of the policy service (JSON over HTTP, axum).
//!
//! | call | what | who (decided by the built-in policies) |
//! |------|------|-----|
//! | `GET /v1/policies[?tenant=T]` | current policies the caller may read (of tenant `T` only) | `enable`, `policy:read` per policy |
//! | `GET /v1/policies/{name}[?tenant=T]` | one policy (global, or tenant `T`'s) | `enable`, `policy:read` |
//! | `GET /v1/policies/{name}/versions[?tenant=T]` | its history, deletions included | `enable`, `policy:read` |
//! | `PUT /v1/policies/{name}[?tenant=T]` | body `{"enforcer", "rules"}`: a new version (validated) | `enable`, `policy:write` |
//! | `DELETE /v1/policies/{name}[?tenant=T]` | a deletion version | `enable`, `policy:write` |
//! | `POST /v1/verify` | `{"subject": {"user", "project", "roles", "identity"}, "object": {"target", "tenant"}, "verb"}` → `{"effect", "policy", "version", "revision"}` | `self-protect`, `policy:verify` |
//! | `GET /v1/feed` | server-sent events: `ready` (`{"revision"}`) once, then `policy` (`{"policy", "tenant", "version", "revision", "deleted"}`) per change, `reset` when the subscriber fell behind | `self-protect`, `feed:subscribe` |
//!
//! Every call carries a Keystone token in `X-Auth-Token`: missing or invalid `401`, Keystone
//! unreachable `503`, refused by policy `403`. Without a Keystone configured, every call is
//! answered `503` (the service never opens up for want of a way to authenticate).
//! Authorization is checked before existence, so a `404` tells nothing to whom may not read.

use std::convert::Infallible;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::Stream;
use ims_runtime::prometheus_client::metrics::counter::Counter;
use ims_runtime::prometheus_client::metrics::gauge::Gauge;
use ims_runtime::prometheus_client::registry::Registry;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::builtin::{ENABLE, PROTECTED, SELF_PROTECT};
use super::engine::Engine;
use super::model::{valid_name, PolicyVersion, Scope, Spec, MAX_TENANT_LEN};
use crate::keystone::{TokenValidator, ValidationError};
use crate::oslo::{Credentials, Target};
use crate::policy::Effect;

/// Largest request body.
const MAX_BODY: usize = 256 * 1024;
/// Longest string in a verify question.
pub const MAX_FIELD_LEN: usize = 1024;
/// Most roles in a verify question.
pub const MAX_ROLES: usize = 64;

/// Counters of the policy service, on `/metrics`.
#[derive(Clone, Default)]
pub struct Metrics {
    verify_allow: Counter,
    verify_deny: Counter,
    refused: Counter,
    feed_subscribers: Gauge<i64, AtomicI64>,
}

impl Metrics {
    /// Registers the counters in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "policyd_verify_allow",
            "verify answers allow",
            self.verify_allow.clone(),
        );
        registry.register(
            "policyd_verify_deny",
            "verify answers deny",
            self.verify_deny.clone(),
        );
        registry.register(
            "policyd_refused",
            "API calls refused (no or invalid token, denied by policy)",
            self.refused.clone(),
        );
        registry.register(
            "policyd_feed_subscribers",
            "open invalidation feed streams",
            self.feed_subscribers.clone(),
        );
    }
}

#[derive(Clone)]
struct Api {
    engine: Engine,
    keystone: Option<TokenValidator>,
    metrics: Metrics,
}

/// The API routes. `keystone` is `None` when no Keystone is configured: every call is then
/// refused with `503`.
pub fn router(engine: Engine, keystone: Option<TokenValidator>, metrics: Metrics) -> Router {
    Router::new()
        .route("/v1/policies", get(list))
        .route(
            "/v1/policies/{name}",
            get(show).put(put_policy).delete(delete_policy),
        )
        .route("/v1/policies/{name}/versions", get(versions))
        .route("/v1/verify", post(verify))
        .route("/v1/feed", get(feed))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Api {
            engine,
            keystone,
            metrics,
        })
}

/// An API failure, answered as `{"error": "..."}`.
#[derive(Debug)]
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn fail(status: StatusCode, msg: impl Into<String>) -> Failure {
    Failure(status, msg.into())
}

impl From<super::store::StoreError> for Failure {
    fn from(e: super::store::StoreError) -> Failure {
        tracing::error!(error = %e, "policy store failed");
        fail(StatusCode::SERVICE_UNAVAILABLE, "policy store unavailable")
    }
}

type Result<T> = std::result::Result<T, Failure>;

/// The authenticated caller.
struct Caller {
    creds: Credentials,
    user_id: String,
}

impl Api {
    async fn caller(&self, headers: &HeaderMap) -> Result<Caller> {
        let refused = |f: Failure| {
            self.metrics.refused.inc();
            f
        };
        let Some(keystone) = &self.keystone else {
            return Err(refused(fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "no Keystone configured: the policy service refuses every call",
            )));
        };
        let Some(token) = headers.get("x-auth-token").and_then(|v| v.to_str().ok()) else {
            return Err(refused(fail(
                StatusCode::UNAUTHORIZED,
                "X-Auth-Token required",
            )));
        };
        match keystone.validate(token).await {
            Ok(info) => Ok(Caller {
                creds: Credentials::from_token(&info),
                user_id: info.user_id.clone(),
            }),
            Err(ValidationError::Invalid) => {
                tracing::info!("API call with an invalid token refused");
                Err(refused(fail(StatusCode::UNAUTHORIZED, "invalid token")))
            }
            Err(ValidationError::Unavailable(e)) => {
                tracing::warn!(error = %e, "cannot validate a token: refused");
                Err(refused(fail(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Keystone unavailable",
                )))
            }
        }
    }

    fn check(&self, caller: &Caller, policy: &str, target: &Target, verb: &str) -> Result<()> {
        match self.engine.authorize(policy, &caller.creds, target, verb) {
            Effect::Allow => Ok(()),
            Effect::Deny => {
                self.metrics.refused.inc();
                tracing::info!(user = %caller.user_id, verb, ?target, "refused by policy {policy}");
                Err(fail(
                    StatusCode::FORBIDDEN,
                    format!("{verb} denied by global/{policy}"),
                ))
            }
        }
    }

    /// `policy:read`/`policy:write` on a policy of `scope` named `name`.
    fn check_policy(&self, caller: &Caller, scope: &Scope, name: &str, verb: &str) -> Result<()> {
        let mut target = Target::new();
        target.insert("target.type".into(), scope.kind().into());
        if let Some(t) = scope.tenant() {
            target.insert("target.tenant".into(), t.into());
        }
        let protected = *scope == Scope::Global && PROTECTED.contains(&name);
        target.insert(
            "target.protected".into(),
            if protected { "True" } else { "False" }.into(),
        );
        self.check(caller, ENABLE, &target, verb)
    }
}

#[derive(Debug, Deserialize)]
struct TenantQuery {
    tenant: Option<String>,
}

fn scope_of(q: &TenantQuery) -> Result<Scope> {
    match &q.tenant {
        None => Ok(Scope::Global),
        Some(t) if t.len() <= MAX_TENANT_LEN && valid_name(t) => Ok(Scope::Customer(t.clone())),
        Some(_) => Err(fail(StatusCode::BAD_REQUEST, "tenant: not a project id")),
    }
}

fn checked_name(name: &str) -> Result<()> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(fail(
            StatusCode::BAD_REQUEST,
            "name: 1 to 64 of A-Z a-z 0-9 _ - .",
        ))
    }
}

async fn list(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(q): Query<TenantQuery>,
) -> Result<Json<Vec<PolicyVersion>>> {
    let caller = api.caller(&headers).await?;
    let only = q.tenant.as_ref().map(|_| scope_of(&q)).transpose()?;
    let visible = api
        .engine
        .list()
        .into_iter()
        .filter(|p| only.as_ref().is_none_or(|s| *s == p.scope()))
        .filter(|p| {
            // A filter, not a refusal: the counter is not bumped for what is hidden.
            let scope = p.scope();
            let mut target = Target::new();
            target.insert("target.type".into(), scope.kind().into());
            if let Some(t) = scope.tenant() {
                target.insert("target.tenant".into(), t.into());
            }
            api.engine
                .authorize(ENABLE, &caller.creds, &target, "policy:read")
                == Effect::Allow
        })
        .collect();
    Ok(Json(visible))
}

async fn show(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<TenantQuery>,
) -> Result<Json<PolicyVersion>> {
    checked_name(&name)?;
    let scope = scope_of(&q)?;
    let caller = api.caller(&headers).await?;
    api.check_policy(&caller, &scope, &name, "policy:read")?;
    api.engine
        .current(&scope, &name)
        .map(Json)
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, "no such policy"))
}

async fn versions(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<TenantQuery>,
) -> Result<Json<Vec<PolicyVersion>>> {
    checked_name(&name)?;
    let scope = scope_of(&q)?;
    let caller = api.caller(&headers).await?;
    api.check_policy(&caller, &scope, &name, "policy:read")?;
    let history = api.engine.history(&scope, &name).await?;
    if history.is_empty() {
        return Err(fail(StatusCode::NOT_FOUND, "no such policy"));
    }
    Ok(Json(history))
}

async fn put_policy(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<TenantQuery>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<PolicyVersion>)> {
    checked_name(&name)?;
    let scope = scope_of(&q)?;
    let caller = api.caller(&headers).await?;
    api.check_policy(&caller, &scope, &name, "policy:write")?;
    let spec: Spec = serde_json::from_slice(&body)
        .map_err(|e| fail(StatusCode::BAD_REQUEST, format!("body: {e}")))?;
    spec.validate()
        .map_err(|e| fail(StatusCode::BAD_REQUEST, e.to_string()))?;
    let v = api
        .engine
        .put(&scope, &name, &spec, &caller.user_id)
        .await?;
    let status = if v.version == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(v)))
}

async fn delete_policy(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<TenantQuery>,
) -> Result<Json<PolicyVersion>> {
    checked_name(&name)?;
    let scope = scope_of(&q)?;
    let caller = api.caller(&headers).await?;
    api.check_policy(&caller, &scope, &name, "policy:write")?;
    api.engine
        .delete(&scope, &name, &caller.user_id)
        .await?
        .map(Json)
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, "no such policy"))
}

/// `POST /v1/verify` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    subject: VerifySubject,
    object: VerifyObject,
    verb: String,
    /// A global policy to decide with instead of the object tenant's effective policy
    /// (the HSS asks `provision`); the object's tenant may then be empty.
    #[serde(default)]
    policy: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifySubject {
    user: String,
    project: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    identity: Option<String>,
    /// A system-scoped token (`system_scope:all` in rules).
    #[serde(default)]
    system: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyObject {
    #[serde(default)]
    target: Option<String>,
    tenant: String,
}

impl VerifyRequest {
    /// Subject credentials and target of the question, or why it is refused.
    fn into_parts(self) -> Result<(Credentials, Target, String, Option<String>)> {
        let s = &self.subject;
        let o = &self.object;
        let strings = [Some(&s.user), Some(&s.project), s.identity.as_ref()]
            .into_iter()
            .flatten()
            .chain(o.target.iter())
            .chain([&o.tenant, &self.verb])
            .chain(self.policy.iter())
            .chain(s.roles.iter());
        if s.roles.len() > MAX_ROLES || strings.into_iter().any(|v| v.len() > MAX_FIELD_LEN) {
            return Err(fail(StatusCode::BAD_REQUEST, "verify question too large"));
        }
        if (o.tenant.is_empty() && self.policy.is_none()) || self.verb.is_empty() {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                "object.tenant and verb are required",
            ));
        }
        let mut creds = Credentials::new();
        creds.insert("user_id", s.user.clone());
        creds.insert("project_id", s.project.clone());
        if let Some(i) = &s.identity {
            creds.insert("identity", i.clone());
        }
        if s.system {
            creds.insert("system_scope", "all");
        }
        creds.set_roles(self.subject.roles);
        let mut target = Target::new();
        let kind = if self.object.tenant.is_empty() {
            "global"
        } else {
            "customer"
        };
        target.insert("target.type".into(), kind.into());
        target.insert("target.tenant".into(), self.object.tenant);
        if let Some(t) = self.object.target {
            target.insert("target.target".into(), t);
        }
        Ok((creds, target, self.verb, self.policy))
    }
}

async fn verify(
    State(api): State<Api>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<super::engine::Verdict>> {
    let caller = api.caller(&headers).await?;
    api.check(&caller, SELF_PROTECT, &Target::new(), "policy:verify")?;
    let question: VerifyRequest = serde_json::from_slice(&body)
        .map_err(|e| fail(StatusCode::BAD_REQUEST, format!("body: {e}")))?;
    let (subject, object, verb, policy) = question.into_parts()?;
    let verdict = match policy {
        Some(name) => {
            checked_name(&name)?;
            api.engine.verify_global(&name, &subject, &object, &verb)
        }
        None => api.engine.verify(&subject, &object, &verb),
    };
    if verdict.effect == "allow" {
        api.metrics.verify_allow.inc();
    } else {
        api.metrics.verify_deny.inc();
    }
    Ok(Json(verdict))
}

/// Lowers the subscriber gauge when a feed stream ends.
struct Subscribed(Gauge<i64, AtomicI64>);

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn feed(
    State(api): State<Api>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let caller = api.caller(&headers).await?;
    api.check(&caller, SELF_PROTECT, &Target::new(), "feed:subscribe")?;
    let rx = api.engine.subscribe();
    api.metrics.feed_subscribers.inc();
    let guard = Subscribed(api.metrics.feed_subscribers.clone());
    let ready = Event::default()
        .event("ready")
        .data(json!({ "revision": api.engine.revision() }).to_string());
    tracing::info!(user = %caller.user_id, "feed subscriber connected");
    let changes = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        let event = match rx.recv().await {
            Ok(change) => Event::default()
                .event("policy")
                .data(serde_json::to_string(&change).unwrap_or_default()),
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "feed subscriber fell behind: reset");
                Event::default().event("reset").data("{}")
            }
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), (rx, guard)))
    });
    let stream = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok(ready) }),
        changes,
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
