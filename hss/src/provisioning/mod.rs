//! The provisioning REST API (JSON) under `/api/v1/`, served on the HSS's `[http]`
//! listener next to `/health` and `/metrics`:
//!
//! | method | path | |
//! |---|---|---|
//! | `POST` | `/api/v1/subscribers` | create (201; 400 naming the field; 409 on duplicates) |
//! | `GET` | `/api/v1/subscribers?limit=&after=&impi=&impu=` | list a page, or look up by identity |
//! | `GET` | `/api/v1/subscribers/{id}` | one subscriber (404 if absent) |
//! | `PUT` | `/api/v1/subscribers/{id}` | replace |
//! | `PATCH` | `/api/v1/subscribers/{id}` | replace the sections given |
//! | `DELETE` | `/api/v1/subscribers/{id}` | delete (204) |
//! | `POST` | `/api/v1/subscribers/{id}/deregister` | de-register every public identity (200) |
//! | `GET` | `/api/v1/openapi.json` | the OpenAPI 3 document |
//!
//! Every route needs a Keystone token (`X-Auth-Token`, decided per call by the policy
//! service: a tenant's admin manages only that tenant's subscribers) or the static admin
//! token (`Authorization: Bearer`, when `[provisioning] static_token` allows it): 401
//! otherwise, 403 when the policy denies, 503 when no decision can be had
//! ([`access`]). Passwords and
//! AKA keys are accepted on write and never returned: reads show
//! `"auth": {"digest": true, "aka": {"amf": "8000", "sqn": 0}}`.

pub mod access;
mod input;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

pub use access::{Access, Caller};
pub use input::{
    AkaInput, FieldError, PrivateIdentityInput, PublicIdentityInput, SubscriberInput,
    SubscriberPatch,
};

use crate::store::{Store, StoreError, Subscription};

/// Default page size of the list.
const DEFAULT_PAGE: u32 = 100;

#[derive(Clone)]
struct ApiState {
    store: Store,
    access: Access,
    realm: Arc<str>,
    events: Option<Arc<dyn SubscriberEvents>>,
}

/// Why an operator de-registers a subscriber: the Reason-Code of the RTR the HSS sends
/// (TS 29.229 §6.3.17).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeregisterReason {
    /// PERMANENT_TERMINATION: the subscription ended; the UE must not re-register.
    PermanentTermination,
    /// NEW_SERVER_ASSIGNED.
    NewServerAssigned,
    /// SERVER_CHANGE: the UE re-registers (and gets an S-CSCF anew). The default.
    #[default]
    ServerChange,
    /// REMOVE_S-CSCF.
    RemoveScscf,
}

/// Body of `POST /api/v1/subscribers/{id}/deregister` (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeregisterInput {
    /// Reason given to the S-CSCF (default `server_change`).
    #[serde(default)]
    pub reason: DeregisterReason,
}

/// What the Cx side does when the provisioning API changes a subscriber (TS 29.228
/// §6.1.3 RTR, §6.1.4 PPR). Called after the store has changed; must not block.
pub trait SubscriberEvents: Send + Sync + 'static {
    /// The subscription was deleted; `before` is its last state.
    fn deleted(self: Arc<Self>, before: Subscription);
    /// Every public identity was de-registered; `before` holds the S-CSCF assignments.
    fn deregistered(self: Arc<Self>, before: Subscription, reason: DeregisterReason);
    /// The subscription was replaced or patched; `after` is its new state.
    fn changed(self: Arc<Self>, after: Subscription);
}

/// The API's routes, to be merged into the node's HTTP router. `token` is the admin
/// bearer token (`None` refuses every request); `realm` is the default digest realm.
pub fn router(store: Store, token: Option<String>, realm: &str) -> Router {
    router_with_events(store, token, realm, None)
}

/// [`router`], telling `events` about deletions, de-registrations and changes.
pub fn router_with_events(
    store: Store,
    token: Option<String>,
    realm: &str,
    events: Option<Arc<dyn SubscriberEvents>>,
) -> Router {
    router_with_access(store, Access::new(token, None), realm, events)
}

/// The API's routes with callers authenticated and authorized by `access` (Keystone
/// tokens and policy decisions, and/or the static admin token).
pub fn router_with_access(
    store: Store,
    access: Access,
    realm: &str,
    events: Option<Arc<dyn SubscriberEvents>>,
) -> Router {
    let state = ApiState {
        store,
        access,
        realm: Arc::from(realm),
        events,
    };
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/subscribers", get(list).post(create))
        .route(
            "/api/v1/subscribers/{id}",
            get(show).put(replace).patch(patch).delete(remove),
        )
        .route(
            "/api/v1/subscribers/{id}/deregister",
            axum::routing::post(deregister),
        )
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

/// An error answer: `{"error": "...", "field": "..."}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    /// What went wrong.
    pub error: String,
    /// The field at fault, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

struct Failure(StatusCode, ApiError);

impl Failure {
    fn new(status: StatusCode, error: impl Into<String>, field: Option<String>) -> Failure {
        Failure(
            status,
            ApiError {
                error: error.into(),
                field,
            },
        )
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<FieldError> for Failure {
    fn from(e: FieldError) -> Failure {
        tracing::info!(field = %e.field, reason = %e.reason, "provisioning request refused");
        Failure::new(StatusCode::BAD_REQUEST, e.reason, Some(e.field))
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        match e {
            StoreError::Duplicate { field, value } => Failure::new(
                StatusCode::CONFLICT,
                format!("{field} {value} already exists"),
                Some(field.to_string()),
            ),
            StoreError::NotFound => Failure::new(StatusCode::NOT_FOUND, "not found", None),
            StoreError::Invalid { field, reason } => Failure::from(FieldError::new(field, reason)),
            other => {
                tracing::error!(error = %other, "store failure");
                Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "store failure", None)
            }
        }
    }
}

async fn require_token(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    match state.access.authenticate(req.headers()).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(failure) => {
            tracing::info!(path = %req.uri().path(), error = %failure.1.error, "provisioning request refused");
            let unauthorized = failure.0 == StatusCode::UNAUTHORIZED;
            let mut r = failure.into_response();
            if unauthorized {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            r
        }
    }
}

/// The tenant of a subscription (its cloud profile's Keystone project), if any.
fn tenant_of(cloud: &crate::store::CloudProfile) -> Option<&str> {
    cloud.project_id.as_deref().filter(|p| !p.is_empty())
}

/// JSON body parsed with the path of the failing field in the error.
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Failure> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let reason = e.inner().to_string();
        Failure::from(FieldError::new(field, reason))
    })
}

fn new_id() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Query of the list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size (1-1000, default 100).
    pub limit: Option<u32>,
    /// Return subscribers with an id after this one (the previous page's `next`).
    pub after: Option<String>,
    /// Only the subscriber holding this private identity.
    pub impi: Option<String>,
    /// Only the subscriber holding this public identity.
    pub impu: Option<String>,
}

/// A page of subscribers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriberPage {
    /// The subscribers.
    pub items: Vec<Subscription>,
    /// `after` value for the next page; absent on the last page.
    pub next: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/subscribers", request_body = SubscriberInput,
    responses((status = 201, body = Subscription), (status = 400, body = ApiError),
              (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError), (status = 409, body = ApiError)),
    security(("bearer" = []), ("keystone" = [])))]
async fn create(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<impl IntoResponse, Failure> {
    let input: SubscriberInput = parse(&body)?;
    let id = input.id.clone().unwrap_or_else(new_id);
    let data = input.into_data(&s.realm)?;
    s.access
        .check(&caller, access::WRITE, tenant_of(&data.cloud))
        .await?;
    let sub = s.store.create(&id, &data).await?;
    tracing::info!(id = %sub.id, "subscriber created");
    Ok((StatusCode::CREATED, Json(sub)))
}

#[utoipa::path(get, path = "/api/v1/subscribers", params(ListQuery),
    responses((status = 200, body = SubscriberPage), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)),
    security(("bearer" = []), ("keystone" = [])))]
async fn list(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<SubscriberPage>, Failure> {
    let Query(q) = q.map_err(|e| FieldError::new("query", e.body_text()))?;
    let mut readable = access::Readable::default();
    let found = match (&q.impi, &q.impu) {
        (Some(impi), _) => Some(s.store.by_impi(impi).await?.map(Arc::unwrap_or_clone)),
        (None, Some(impu)) => Some(s.store.by_impu(impu).await?.map(Arc::unwrap_or_clone)),
        (None, None) => None,
    };
    if let Some(found) = found {
        let mut items = Vec::new();
        if let Some(sub) = found {
            if readable
                .check(&s.access, &caller, tenant_of(&sub.cloud))
                .await?
            {
                items.push(sub);
            }
        }
        return Ok(Json(SubscriberPage { items, next: None }));
    }
    let page = s
        .store
        .list(q.after.as_deref(), q.limit.unwrap_or(DEFAULT_PAGE))
        .await?;
    // What the caller may not read is left out (a page may then hold fewer items).
    let mut items = Vec::with_capacity(page.items.len());
    for sub in page.items {
        if readable
            .check(&s.access, &caller, tenant_of(&sub.cloud))
            .await?
        {
            items.push(sub);
        }
    }
    Ok(Json(SubscriberPage {
        items,
        next: page.next,
    }))
}

#[utoipa::path(get, path = "/api/v1/subscribers/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Subscription), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError),
              (status = 404, body = ApiError)),
    security(("bearer" = []), ("keystone" = [])))]
async fn show(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Subscription>, Failure> {
    let sub = s.store.get(&id).await?.ok_or(StoreError::NotFound)?;
    s.access
        .check(&caller, access::READ, tenant_of(&sub.cloud))
        .await?;
    Ok(Json(sub))
}

/// The subscription `id`, if `caller` may change it (403 otherwise, 404 if absent).
async fn writable(s: &ApiState, caller: &Caller, id: &str) -> Result<Subscription, Failure> {
    let sub = s.store.get(id).await?.ok_or(StoreError::NotFound)?;
    s.access
        .check(caller, access::WRITE, tenant_of(&sub.cloud))
        .await?;
    Ok(sub)
}

#[utoipa::path(put, path = "/api/v1/subscribers/{id}", params(("id" = String, Path)),
    request_body = SubscriberInput,
    responses((status = 200, body = Subscription), (status = 400, body = ApiError),
              (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError), (status = 404, body = ApiError),
              (status = 409, body = ApiError)),
    security(("bearer" = []), ("keystone" = [])))]
async fn replace(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Subscription>, Failure> {
    let input: SubscriberInput = parse(&body)?;
    if input.id.as_deref().is_some_and(|b| b != id) {
        return Err(FieldError::new("id", "differs from the id in the path").into());
    }
    let data = input.into_data(&s.realm)?;
    writable(&s, &caller, &id).await?;
    s.access
        .check(&caller, access::WRITE, tenant_of(&data.cloud))
        .await?;
    let after = s.store.update(&id, &data).await?;
    if let Some(e) = &s.events {
        e.clone().changed(after.clone());
    }
    Ok(Json(after))
}

#[utoipa::path(patch, path = "/api/v1/subscribers/{id}", params(("id" = String, Path)),
    request_body = SubscriberPatch,
    responses((status = 200, body = Subscription), (status = 400, body = ApiError),
              (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError), (status = 404, body = ApiError),
              (status = 409, body = ApiError)),
    security(("bearer" = []), ("keystone" = [])))]
async fn patch(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Subscription>, Failure> {
    let patch: SubscriberPatch = parse(&body)?;
    let current = writable(&s, &caller, &id).await?;
    let data = patch.apply(current, &s.realm)?;
    s.access
        .check(&caller, access::WRITE, tenant_of(&data.cloud))
        .await?;
    let after = s.store.update(&id, &data).await?;
    if let Some(e) = &s.events {
        e.clone().changed(after.clone());
    }
    Ok(Json(after))
}

#[utoipa::path(delete, path = "/api/v1/subscribers/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError), (status = 404, body = ApiError)),
    security(("bearer" = []), ("keystone" = [])))]
async fn remove(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, Failure> {
    let before = Some(writable(&s, &caller, &id).await?);
    if s.store.delete(&id).await? {
        tracing::info!(%id, "subscriber deleted");
        if let (Some(e), Some(before)) = (&s.events, before) {
            e.clone().deleted(before);
        }
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(StoreError::NotFound.into())
    }
}

/// Administrative de-registration (TS 29.228 §6.1.3): every public identity becomes not
/// registered with no S-CSCF, and the S-CSCFs that held them get an RTR.
#[utoipa::path(post, path = "/api/v1/subscribers/{id}/deregister", params(("id" = String, Path)),
    request_body = DeregisterInput,
    responses((status = 200, body = Subscription), (status = 400, body = ApiError),
              (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError), (status = 404, body = ApiError)),
    security(("bearer" = []), ("keystone" = [])))]
async fn deregister(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Subscription>, Failure> {
    writable(&s, &caller, &id).await?;
    let input: DeregisterInput = if body.iter().all(u8::is_ascii_whitespace) {
        DeregisterInput::default()
    } else {
        parse(&body)?
    };
    let before = s.store.get(&id).await?.ok_or(StoreError::NotFound)?;
    let impus: Vec<&str> = before
        .public_identities
        .iter()
        .map(|p| p.identity.impu.as_str())
        .collect();
    s.store
        .set_registration(&impus, &crate::store::Registration::default())
        .await?;
    tracing::info!(%id, reason = ?input.reason, "subscriber de-registered by the operator");
    let after = s.store.get(&id).await?.ok_or(StoreError::NotFound)?;
    if let Some(e) = &s.events {
        e.clone().deregistered(before, input.reason);
    }
    Ok(Json(after))
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "keystone",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Auth-Token"))),
        );
    }
}

/// The OpenAPI 3 description of this API.
#[derive(OpenApi)]
#[openapi(
    info(title = "HSS provisioning API", description = "Subscribers of the IMS core's HSS."),
    paths(create, list, show, replace, patch, remove, deregister),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

async fn openapi() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(_) => {
            Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "cannot render", None).into_response()
        }
    }
}
