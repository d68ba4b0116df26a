//! The provisioning API under cloud authorization, against a real Keystone 30.0.0 and
//! the real policy service on 127.0.0.1 (`cloud-auth/tests/support`): every call carries
//! a Keystone token (`X-Auth-Token`) decided by the global policy `provision`. A tenant's
//! admin reads and changes its own tenant's subscribers and none of another tenant's
//! (403); the cloud admin reads everything and writes only the tenant-less subscribers;
//! a policy change applies within a second; no token, a forged token, or the static
//! admin token switched off: 401; the policy service gone: 503, never allowed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../cloud-auth/tests/support/policyd.rs"]
mod policyd_support;
#[path = "../../cloud-auth/tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use cloud_auth::filter::{FilterSettings, RequestFilter};
use cloud_auth::keystone::TokenValidator;
use hss::provisioning::{router_with_access, Access};
use http_body_util::BodyExt;
use policyd_support::Policyd;
use serde_json::{json, Value};
use support::Keystone;
use tower::ServiceExt;

const HOUR: u64 = 3600;
const STATIC: &str = "static-admin-token-0123456789";

/// How a call authenticates.
#[derive(Clone, Copy)]
enum Cred<'a> {
    None,
    Keystone(&'a str),
    Static(&'a str),
}

async fn call(
    app: &Router,
    method: &str,
    path: &str,
    cred: Cred<'_>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    req = match cred {
        Cred::None => req,
        Cred::Keystone(t) => req.header("x-auth-token", t),
        Cred::Static(t) => req.header("authorization", format!("Bearer {t}")),
    };
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A subscriber `id` of `tenant` (none when empty).
fn subscriber(id: &str, tenant: &str) -> Value {
    let cloud = if tenant.is_empty() {
        json!({})
    } else {
        json!({"project_id": tenant})
    };
    json!({
        "id": id,
        "cloud": cloud,
        "private_identities": [{"impi": format!("{id}@ims.example.net"), "password": "pw-of-the-subscriber"}],
        "public_identities": [{"impu": format!("sip:{id}@ims.example.net"), "implicit_set": 1}],
    })
}

fn filter(ks: &Keystone, policy_url: &str) -> RequestFilter {
    let settings = FilterSettings {
        policy_url: policy_url.to_owned(),
        decision_cache: 1000,
        decision_ttl: Duration::from_secs(300),
        verify_timeout: Duration::from_millis(2000),
        policy_ca_pem: None,
    };
    RequestFilter::new(&settings, TokenValidator::new(ks.config()).unwrap()).unwrap()
}

/// Waits (at most 10 s) until the filter's feed is connected.
async fn feed_up(f: &RequestFilter) {
    let start = Instant::now();
    while !f.feed_connected() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "feed never connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The ids of a list answer.
fn ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn tenant_admins_manage_only_their_own_tenants_subscribers() {
    let Some(ks) = Keystone::start(HOUR).await else {
        return;
    };
    let svc = Policyd::start(&ks).await;
    let db = common::TestDb::sqlite().await;
    let cloud = filter(&ks, &svc.base);
    let app = router_with_access(
        db.store.clone(),
        Access::new(Some(STATIC.into()), Some(cloud.clone())),
        "ims.example.net",
        None,
    );
    feed_up(&cloud).await;
    let (a, b) = (ks.tenant_a.clone(), ks.tenant_b.clone());
    let ada = ks.user_token("ada").await.token; // admin of tenant a
    let bea = ks.user_token("bea").await.token; // admin of tenant b
    let alice = ks.user_token("alice").await.token; // member of tenant a
    let cloud_admin = ks.system_admin_token().await;

    // Bootstrap with the static admin token: one subscriber of each tenant, one of none.
    for (id, tenant) in [("sa", a.as_str()), ("sb", b.as_str()), ("sg", "")] {
        let (status, body) = call(
            &app,
            "POST",
            "/api/v1/subscribers",
            Cred::Static(STATIC),
            Some(subscriber(id, tenant)),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    // No token, a forged token: 401.
    assert_eq!(
        call(&app, "GET", "/api/v1/subscribers/sa", Cred::None, None)
            .await
            .0,
        401
    );
    let forged = Cred::Keystone("gAAAAABforged-token_x");
    assert_eq!(
        call(&app, "GET", "/api/v1/subscribers/sa", forged, None)
            .await
            .0,
        401
    );

    // Tenant a's admin: its own subscriber, read and changed; tenant b's, never.
    let ada_c = Cred::Keystone(&ada);
    assert_eq!(
        call(&app, "GET", "/api/v1/subscribers/sa", ada_c, None)
            .await
            .0,
        200
    );
    let roaming = json!({"roaming_networks": ["visited.example.org"]});
    assert_eq!(
        call(
            &app,
            "PATCH",
            "/api/v1/subscribers/sa",
            ada_c,
            Some(roaming.clone())
        )
        .await
        .0,
        200
    );
    for (method, path, body) in [
        ("GET", "/api/v1/subscribers/sb", None),
        ("PATCH", "/api/v1/subscribers/sb", Some(roaming.clone())),
        ("PUT", "/api/v1/subscribers/sb", Some(subscriber("sb", &a))),
        ("DELETE", "/api/v1/subscribers/sb", None),
        ("POST", "/api/v1/subscribers/sb/deregister", None),
        ("POST", "/api/v1/subscribers", Some(subscriber("nb", &b))),
        ("GET", "/api/v1/subscribers/sg", None),
    ] {
        let (status, answer) = call(&app, method, path, ada_c, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
    }
    // Nor may it move its own subscriber to tenant b.
    let to_b = json!({"cloud": {"project_id": b}});
    assert_eq!(
        call(&app, "PATCH", "/api/v1/subscribers/sa", ada_c, Some(to_b))
            .await
            .0,
        403
    );
    // It creates in its own tenant; its list shows its tenant's subscribers only, and a
    // look-up of another tenant's identity finds nothing.
    assert_eq!(
        call(
            &app,
            "POST",
            "/api/v1/subscribers",
            ada_c,
            Some(subscriber("na", &a))
        )
        .await
        .0,
        201
    );
    let (status, list) = call(&app, "GET", "/api/v1/subscribers", ada_c, None).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&list), ["na", "sa"]);
    let (_, found) = call(
        &app,
        "GET",
        "/api/v1/subscribers?impu=sip:sb@ims.example.net",
        ada_c,
        None,
    )
    .await;
    assert_eq!(ids(&found), Vec::<String>::new());
    // Tenant b's admin: the mirror image. After all that, sb is untouched.
    let bea_c = Cred::Keystone(&bea);
    assert_eq!(
        call(&app, "GET", "/api/v1/subscribers/sa", bea_c, None)
            .await
            .0,
        403
    );
    let (status, sb) = call(&app, "GET", "/api/v1/subscribers/sb", bea_c, None).await;
    assert_eq!(status, 200);
    assert_eq!(sb["cloud"]["project_id"], b.as_str());
    assert_eq!(sb["roaming_networks"], json!([]));
    // A member of tenant a is no admin: nothing.
    assert_eq!(
        call(
            &app,
            "GET",
            "/api/v1/subscribers/sa",
            Cred::Keystone(&alice),
            None
        )
        .await
        .0,
        403
    );

    // The cloud admin reads everything, writes the tenant-less subscriber only.
    let root = Cred::Keystone(&cloud_admin);
    let (_, all) = call(&app, "GET", "/api/v1/subscribers", root, None).await;
    assert_eq!(ids(&all), ["na", "sa", "sb", "sg"]);
    assert_eq!(
        call(
            &app,
            "PATCH",
            "/api/v1/subscribers/sg",
            root,
            Some(roaming.clone())
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call(
            &app,
            "PATCH",
            "/api/v1/subscribers/sb",
            root,
            Some(roaming.clone())
        )
        .await
        .0,
        403
    );

    // The cloud admin changes `provision` (tenant admins may no longer write): within a
    // second ada's next write is refused, although the allow was cached.
    let stricter = json!({"enforcer": "default", "rules": {
        "cloud_admin": "role:admin and system_scope:all",
        "owner_admin": "role:admin and 'customer':%(target.type)s and project_id:%(target.tenant)s",
        "subscriber:read": "rule:cloud_admin or rule:owner_admin",
        "subscriber:write": "rule:cloud_admin and 'global':%(target.type)s",
    }});
    assert_eq!(
        svc.put("/policies/provision", &cloud_admin, stricter).await,
        200
    );
    let changed = Instant::now();
    loop {
        let status = call(
            &app,
            "PATCH",
            "/api/v1/subscribers/sa",
            ada_c,
            Some(roaming.clone()),
        )
        .await
        .0;
        if status == StatusCode::FORBIDDEN {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "the policy change was not honoured within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("policy change honoured after {:?}", changed.elapsed());
    assert_eq!(
        call(&app, "GET", "/api/v1/subscribers/sa", ada_c, None)
            .await
            .0,
        200
    );

    // The policy service gone: a question never asked is not allowed (503).
    assert_eq!(
        call(&app, "GET", "/api/v1/subscribers/sb", root, None)
            .await
            .0,
        200
    );
    drop(svc);
    let (status, _) = call(&app, "GET", "/api/v1/subscribers/sb", root, None).await;
    assert_eq!(status, 200, "a cached decision keeps working");
    let bob = ks.user_token("bob").await.token;
    let (status, answer) = call(
        &app,
        "GET",
        "/api/v1/subscribers/sb",
        Cred::Keystone(&bob),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    ks.stop();
}

#[tokio::test]
async fn the_static_admin_token_can_be_switched_off() {
    let Some(ks) = Keystone::start(HOUR).await else {
        return;
    };
    let svc = Policyd::start(&ks).await;
    let db = common::TestDb::sqlite().await;
    let cloud = filter(&ks, &svc.base);
    // static_token = false: no static token is configured at all.
    let app = router_with_access(
        db.store.clone(),
        Access::new(None, Some(cloud.clone())),
        "ims.example.net",
        None,
    );
    feed_up(&cloud).await;
    let new = Some(subscriber("sa", &ks.tenant_a));
    assert_eq!(
        call(
            &app,
            "POST",
            "/api/v1/subscribers",
            Cred::Static(STATIC),
            new.clone()
        )
        .await
        .0,
        401
    );
    assert_eq!(
        call(&app, "GET", "/api/v1/subscribers", Cred::None, None)
            .await
            .0,
        401
    );
    let ada = ks.user_token("ada").await.token;
    assert_eq!(
        call(
            &app,
            "POST",
            "/api/v1/subscribers",
            Cred::Keystone(&ada),
            new
        )
        .await
        .0,
        201
    );
    // Without cloud authorization, Keystone tokens are refused outright.
    let static_only = router_with_access(
        db.store.clone(),
        Access::new(Some(STATIC.into()), None),
        "ims.example.net",
        None,
    );
    assert_eq!(
        call(
            &static_only,
            "GET",
            "/api/v1/subscribers/sa",
            Cred::Keystone(&ada),
            None
        )
        .await
        .0,
        401
    );
    assert_eq!(
        call(
            &static_only,
            "GET",
            "/api/v1/subscribers/sa",
            Cred::Static(STATIC),
            None
        )
        .await
        .0,
        200
    );
    ks.stop();
}
