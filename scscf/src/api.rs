//! The S-CSCF's operator API, served on the node's `[http]` listener (HTTPS with
//! `[http.tls]`) when `[api]` names an admin token: what this S-CSCF holds for a public
//! identity — its registration (contacts, their expiry and Path) and the reg event
//! subscriptions to its implicit set (`imsctl registrations`).
//!
//! | method | path | answers |
//! |---|---|---|
//! | `GET` | `/api/v1/registrations/{impu}` | 200 with JSON; 404 when neither is held; 401 without the token |
//!
//! The caller shows the admin token as `Authorization: Bearer` (the HSS provisioning
//! API's rule, `ims_runtime::admin_token`). Administrative de-registration goes through
//! the HSS (`imsctl deregister`: RTR), so this API only reads.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::regevent::Notifier;
use crate::registrar::{unix_now, Registrar};

/// Where the admin token comes from.
#[derive(Debug, Clone)]
pub enum AdminToken {
    /// Given in the config.
    Inline(String),
    /// Read from this file at each call (it may be written after we start).
    File(PathBuf),
}

impl AdminToken {
    fn current(&self) -> Option<String> {
        match self {
            AdminToken::Inline(t) => Some(t.clone()),
            AdminToken::File(path) => match ims_runtime::secret_file::read_private(path) {
                Ok(t) => Some(t.trim().to_string()).filter(|t| !t.is_empty()),
                Err(e) => {
                    tracing::warn!(error = %e, "admin token unreadable: API calls refused");
                    None
                }
            },
        }
    }
}

#[derive(Clone)]
struct Api {
    registrar: Arc<Registrar>,
    notifier: Arc<Notifier>,
    token: AdminToken,
}

/// The API's routes over `registrar` and `notifier`, guarded by `token`.
pub fn router(registrar: Arc<Registrar>, notifier: Arc<Notifier>, token: AdminToken) -> Router {
    Router::new()
        .route("/api/v1/registrations/{impu}", get(registrations))
        .with_state(Api {
            registrar,
            notifier,
            token,
        })
}

async fn registrations(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(impu): Path<String>,
) -> (StatusCode, Json<Value>) {
    let allowed = api
        .token
        .current()
        .is_some_and(|t| ims_runtime::admin_token::bearer_matches(&headers, &t));
    if !allowed {
        let error = json!({ "error": "missing or invalid token" });
        return (StatusCode::UNAUTHORIZED, Json(error));
    }
    let now = unix_now();
    let reg = api.registrar.registration(&impu);
    let mut resources = vec![impu.clone()];
    if let Some(r) = &reg {
        resources = std::iter::once(r.impu.clone())
            .chain(r.profile.associated.iter().cloned())
            .chain(r.profile.barred.iter().cloned())
            .collect();
        resources.dedup();
    }
    let subscriptions: Vec<Value> = api
        .notifier
        .list(&resources)
        .into_iter()
        .map(|s| {
            json!({
                "resource": s.resource,
                "subscriber": s.subscriber,
                "kind": s.kind,
                "expires_in": s.expires_at.saturating_sub(now),
            })
        })
        .collect();
    if reg.is_none() && subscriptions.is_empty() {
        let error = json!({ "error": "not registered here" });
        return (StatusCode::NOT_FOUND, Json(error));
    }
    let registration = reg.map(|r| {
        let contacts: Vec<Value> = r
            .bindings
            .iter()
            .map(|b| {
                json!({
                    "contact": b.contact,
                    "expires_in": b.expires_at.saturating_sub(now),
                    "path": b.path,
                })
            })
            .collect();
        json!({
            "registered_impu": r.impu,
            "impi": r.impi,
            "implicit_set": r.associated_uris(),
            "contacts": contacts,
        })
    });
    let body = json!({
        "impu": impu,
        "registration": registration,
        "subscriptions": subscriptions,
    });
    (StatusCode::OK, Json(body))
}
