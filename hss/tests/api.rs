//! The provisioning REST API, driven in-process (tower `oneshot`) on a SQLite store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/cx.rs"]
mod cx_fixture;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const TOKEN: &str = "test-admin-token-0123456789";
const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
const OP: &str = "cdc202d5123e20f62b6d676ac72cb318";
const PASSWORD: &str = "correct horse battery";

async fn app() -> (Router, common::TestDb) {
    let db = common::TestDb::sqlite().await;
    let router = hss::provisioning::router(db.store.clone(), Some(TOKEN.into()), "ims.example.net");
    (router, db)
}

async fn call(
    app: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value, String) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
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
    let text = String::from_utf8_lossy(&bytes).to_string();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, json, text)
}

fn alice() -> Value {
    json!({
        "id": "alice",
        "cloud": {"project_id": "p1", "user_id": "u1"},
        "private_identities": [{
            "impi": "alice@ims.example.net",
            "password": PASSWORD,
            "aka": {"k": K, "op": OP, "amf": "8000", "sqn": 64}
        }],
        "public_identities": [
            {"impu": "sip:alice@ims.example.net", "implicit_set": 1},
            {"impu": "tel:+15551234", "implicit_set": 1}
        ],
        "service_profiles": [{"name": "default", "ifcs": [{
            "priority": 1,
            "trigger_point": {"condition_type_cnf": true, "spts": [
                {"group": 0, "type": "method", "method": "INVITE"},
                {"group": 1, "condition_negated": true, "type": "session_case", "session_case": "ORIGINATING"}
            ]},
            "application_server": {"server_name": "sip:as.ims.example.net", "default_handling": "SESSION_TERMINATED"}
        }]}],
        "roaming_networks": ["visited.example.org"]
    })
}

#[tokio::test]
async fn every_route_needs_the_token() {
    let (app, db) = app().await;
    for (method, path) in [
        ("GET", "/api/v1/subscribers"),
        ("POST", "/api/v1/subscribers"),
        ("GET", "/api/v1/subscribers/x"),
        ("PUT", "/api/v1/subscribers/x"),
        ("PATCH", "/api/v1/subscribers/x"),
        ("DELETE", "/api/v1/subscribers/x"),
        ("GET", "/api/v1/openapi.json"),
    ] {
        for token in [None, Some("wrong-token-wrong-token"), Some("")] {
            let (status, body, _) = call(&app, method, path, token, Some(alice())).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {token:?}"
            );
            assert!(body["error"].is_string());
        }
    }
    assert_eq!(db.store.count().await.unwrap(), 0, "nothing was written");
    db.cleanup().await;
}

#[tokio::test]
async fn crud_round_trip() {
    let (app, db) = app().await;
    let t = Some(TOKEN);
    let (status, created, _) = call(&app, "POST", "/api/v1/subscribers", t, Some(alice())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["id"], "alice");
    assert_eq!(created["cloud"]["project_id"], "p1");
    assert_eq!(
        created["private_identities"][0]["auth"],
        json!({"digest": true, "aka": {"amf": "8000", "sqn": 64}})
    );
    assert_eq!(created["public_identities"][1]["impu"], "tel:+15551234");
    assert_eq!(
        created["public_identities"][0]["registration"]["state"],
        "NOT_REGISTERED"
    );
    assert_eq!(
        created["service_profiles"][0]["ifcs"][0]["trigger_point"]["spts"][1]["session_case"],
        "ORIGINATING"
    );

    let (status, got, _) = call(&app, "GET", "/api/v1/subscribers/alice", t, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, created);

    let (status, page, _) = call(&app, "GET", "/api/v1/subscribers?limit=10", t, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["next"].is_null());
    let (_, by_impu, _) = call(
        &app,
        "GET",
        "/api/v1/subscribers?impu=tel:%2B15551234",
        t,
        None,
    )
    .await;
    assert_eq!(by_impu["items"][0]["id"], "alice");
    let (_, by_impi, _) = call(&app, "GET", "/api/v1/subscribers?impi=nobody@x", t, None).await;
    assert_eq!(by_impi["items"], json!([]));

    // PUT without credentials keeps them; drops the tel: identity.
    let mut put = alice();
    put["private_identities"][0] = json!({"impi": "alice@ims.example.net"});
    put["public_identities"] = json!([{"impu": "sip:alice@ims.example.net"}]);
    let (status, replaced, _) = call(&app, "PUT", "/api/v1/subscribers/alice", t, Some(put)).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["public_identities"].as_array().unwrap().len(), 1);
    assert_eq!(replaced["private_identities"][0]["auth"]["digest"], true);
    let creds = db
        .store
        .credentials("alice@ims.example.net")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        creds.digest_ha1.unwrap(),
        ims_sip::auth::Ha1::compute(
            ims_sip::auth::Algorithm::Md5,
            "alice@ims.example.net",
            "ims.example.net",
            PASSWORD.as_bytes()
        )
    );

    // PATCH one section.
    let (status, patched, _) = call(
        &app,
        "PATCH",
        "/api/v1/subscribers/alice",
        t,
        Some(
            json!({"roaming_networks": ["a.example", "b.example"], "cloud": {"project_id": "p2"}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["roaming_networks"],
        json!(["a.example", "b.example"])
    );
    assert_eq!(
        patched["cloud"],
        json!({"project_id": "p2", "user_id": null})
    );
    assert_eq!(
        patched["public_identities"], replaced["public_identities"],
        "untouched section kept"
    );

    let (status, _, _) = call(&app, "DELETE", "/api/v1/subscribers/alice", t, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for (method, body) in [
        ("GET", None),
        ("DELETE", None),
        ("PATCH", Some(json!({}))),
        ("PUT", Some(alice())),
    ] {
        let (status, _, _) = call(&app, method, "/api/v1/subscribers/alice", t, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} after delete");
    }
    db.cleanup().await;
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let (app, db) = app().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut v = alice();
                v["private_identities"][0]["aka"]["k"] = json!("abc");
                v
            },
            "private_identities[0].aka.k",
        ),
        (
            {
                let mut v = alice();
                v["private_identities"][0]["aka"]["opc"] = json!(OP);
                v
            },
            "private_identities[0].aka.opc",
        ),
        (
            {
                let mut v = alice();
                v["private_identities"][0]["aka"]["amf"] = json!("80");
                v
            },
            "private_identities[0].aka.amf",
        ),
        (
            {
                let mut v = alice();
                v["private_identities"][0]["aka"]["sqn"] = json!(1u64 << 48);
                v
            },
            "private_identities[0].aka.sqn",
        ),
        (
            {
                let mut v = alice();
                v["private_identities"][0]["password"] = json!("");
                v
            },
            "private_identities[0].password",
        ),
        (
            {
                let mut v = alice();
                v["private_identities"][0]["impi"] = json!("has space");
                v
            },
            "private_identities[0].impi",
        ),
        (
            {
                let mut v = alice();
                v["public_identities"][1]["impu"] = json!("mailto:x@y");
                v
            },
            "public_identities[1].impu",
        ),
        (
            {
                let mut v = alice();
                v["public_identities"][0]["service_profile"] = json!("gold");
                v
            },
            "public_identities[0].service_profile",
        ),
        (
            {
                let mut v = alice();
                v["id"] = json!("bad/id");
                v
            },
            "id",
        ),
        (
            {
                let mut v = alice();
                v["private_identities"] = json!([]);
                v
            },
            "private_identities",
        ),
        (
            {
                let mut v = alice();
                v["service_profiles"][0]["ifcs"][0]["application_server"]["server_name"] =
                    json!("http://x");
                v
            },
            "service_profiles[0].ifcs[0].application_server.server_name",
        ),
        (
            {
                let mut v = alice();
                v["colour"] = json!("blue");
                v
            },
            "colour",
        ),
        (
            {
                let mut v = alice();
                v["public_identities"][0]["barred"] = json!("yes");
                v
            },
            "public_identities[0].barred",
        ),
        (
            {
                let mut v = alice();
                v["private_identities"][0] = json!({"impi": "x@y"});
                v
            },
            "private_identities[0].auth",
        ),
    ];
    for (body, field) in cases {
        let (status, err, text) =
            call(&app, "POST", "/api/v1/subscribers", Some(TOKEN), Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {text}");
        assert_eq!(err["field"], field, "{text}");
        assert!(err["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let (status, err, _) = call(
        &app,
        "GET",
        "/api/v1/subscribers?limit=many",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["field"], "query");
    let (status, _, _) = call(
        &app,
        "PUT",
        "/api/v1/subscribers/other",
        Some(TOKEN),
        Some(alice()),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "id in body differs from path"
    );
    assert_eq!(db.store.count().await.unwrap(), 0);
    db.cleanup().await;
}

#[tokio::test]
async fn duplicates_conflict() {
    let (app, db) = app().await;
    let t = Some(TOKEN);
    assert_eq!(
        call(&app, "POST", "/api/v1/subscribers", t, Some(alice()))
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, err, _) = call(&app, "POST", "/api/v1/subscribers", t, Some(alice())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["field"], "id");
    let mut other = alice();
    other["id"] = json!("bob");
    other["private_identities"][0]["impi"] = json!("bob@ims.example.net");
    let (status, err, _) = call(&app, "POST", "/api/v1/subscribers", t, Some(other.clone())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["field"], "impu");
    other["public_identities"] = json!([{"impu": "sip:bob@ims.example.net"}]);
    other["private_identities"][0]["impi"] = json!("alice@ims.example.net");
    let (status, err, _) = call(&app, "POST", "/api/v1/subscribers", t, Some(other)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["field"], "impi");
    db.cleanup().await;
}

#[tokio::test]
async fn secrets_are_never_returned() {
    let (app, db) = app().await;
    let t = Some(TOKEN);
    let mut texts = vec![
        call(&app, "POST", "/api/v1/subscribers", t, Some(alice()))
            .await
            .2,
    ];
    texts.push(
        call(&app, "GET", "/api/v1/subscribers/alice", t, None)
            .await
            .2,
    );
    texts.push(call(&app, "GET", "/api/v1/subscribers", t, None).await.2);
    texts.push(
        call(
            &app,
            "PATCH",
            "/api/v1/subscribers/alice",
            t,
            Some(json!({"cloud": {}})),
        )
        .await
        .2,
    );
    let creds = db
        .store
        .credentials("alice@ims.example.net")
        .await
        .unwrap()
        .unwrap();
    let ha1 = creds.digest_ha1.unwrap().as_hex().to_string();
    let opc = hex::encode(creds.aka.unwrap().opc);
    for text in texts {
        assert!(text.contains("alice@ims.example.net"), "{text}");
        for secret in [PASSWORD, K, OP, opc.as_str(), ha1.as_str()] {
            assert!(
                !text.to_ascii_lowercase().contains(secret),
                "secret {secret} in {text}"
            );
        }
        assert!(!text.contains("password"), "{text}");
    }
    db.cleanup().await;
}

#[tokio::test]
async fn openapi_document_lists_the_paths() {
    let (app, db) = app().await;
    let (status, doc, text) = call(&app, "GET", "/api/v1/openapi.json", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{text}"
    );
    let paths = doc["paths"].as_object().unwrap();
    let subscribers = &paths["/api/v1/subscribers"];
    assert!(subscribers["get"].is_object() && subscribers["post"].is_object());
    let one = &paths["/api/v1/subscribers/{id}"];
    for m in ["get", "put", "patch", "delete"] {
        assert!(one[m].is_object(), "{m} missing");
    }
    assert!(paths["/api/v1/subscribers/{id}/deregister"]["post"].is_object());
    assert_eq!(subscribers["get"]["parameters"][0]["in"], "query");
    assert!(doc["components"]["schemas"]["SubscriberInput"].is_object());
    let set = &doc["components"]["schemas"]["PublicIdentityInput"]["properties"]["implicit_set"];
    assert!(
        set["description"]
            .as_str()
            .is_some_and(|d| d.contains("Absent: the set of the first public identity")),
        "{set}"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    db.cleanup().await;
}

/// Records what the provisioning API tells the Cx side.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

impl hss::provisioning::SubscriberEvents for Recorder {
    fn deleted(self: std::sync::Arc<Self>, before: hss::store::Subscription) {
        self.0
            .lock()
            .unwrap()
            .push(format!("deleted {}", before.id));
    }
    fn deregistered(
        self: std::sync::Arc<Self>,
        before: hss::store::Subscription,
        reason: hss::provisioning::DeregisterReason,
    ) {
        let state = before.public_identities[0].registration.state;
        self.0
            .lock()
            .unwrap()
            .push(format!("deregistered {} {reason:?} {state:?}", before.id));
    }
    fn changed(self: std::sync::Arc<Self>, after: hss::store::Subscription) {
        let p = after.cloud.project_id.unwrap_or_default();
        self.0
            .lock()
            .unwrap()
            .push(format!("changed {} {p}", after.id));
    }
}

#[tokio::test]
async fn deregister_and_events_for_the_cx_side() {
    use hss::store::{Registration, RegistrationState};
    let db = common::TestDb::sqlite().await;
    let events = std::sync::Arc::new(Recorder::default());
    let app = hss::provisioning::router_with_events(
        db.store.clone(),
        Some(TOKEN.into()),
        "ims.example.net",
        Some(events.clone()),
    );
    let path = "/api/v1/subscribers/alice/deregister";
    assert_eq!(
        call(&app, "POST", path, None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, "POST", path, Some(TOKEN), None).await.0,
        StatusCode::NOT_FOUND
    );
    let (s, ..) = call(
        &app,
        "POST",
        "/api/v1/subscribers",
        Some(TOKEN),
        Some(alice()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, body, _) = call(
        &app,
        "POST",
        path,
        Some(TOKEN),
        Some(json!({"reason": "sometime"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "reason");
    let impus = ["sip:alice@ims.example.net", "tel:+15551234"];
    let registered = Registration {
        state: RegistrationState::Registered,
        scscf: Some("sip:scscf.ims.example.net".into()),
    };
    db.store
        .set_registration(&impus, &registered)
        .await
        .unwrap();
    let body = json!({"reason": "permanent_termination"});
    let (s, after, _) = call(&app, "POST", path, Some(TOKEN), Some(body)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        after["public_identities"][0]["registration"]["state"],
        "NOT_REGISTERED"
    );
    for impu in impus {
        let r = db.store.registration(impu).await.unwrap().unwrap();
        assert_eq!(r, Registration::default(), "{impu}");
    }
    let patch = json!({"cloud": {"project_id": "p9"}});
    let (s, ..) = call(
        &app,
        "PATCH",
        "/api/v1/subscribers/alice",
        Some(TOKEN),
        Some(patch),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, ..) = call(
        &app,
        "DELETE",
        "/api/v1/subscribers/alice",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        *events.0.lock().unwrap(),
        [
            "deregistered alice PermanentTermination Registered",
            "changed alice p9",
            "deleted alice"
        ]
    );
    db.cleanup().await;
}

/// Attack: a credential revoked through the API must not keep working from the HSS's
/// cache. The Cx side reads the same store; each change (new password by PUT and by PATCH,
/// IMPI removed, subscription deleted) is seen by the next MAR.
#[tokio::test]
async fn a_password_changed_or_an_identity_removed_by_the_api_is_seen_by_the_next_mar() {
    use ims_diameter::cx::{CxResult, Maa};
    use ims_diameter::dict::{experimental, result};
    use ims_sip::auth::{Algorithm, Ha1};
    let (app, db) = app().await;
    let t = Some(TOKEN);
    let cx = cx_fixture::server(&db.store);
    let impi = "alice@ims.example.net";
    let impu = "sip:alice@ims.example.net";
    let mar = |impi: &'static str| {
        let m = cx_fixture::mar(impi, impu, "SIP Digest", 1, None).to_message();
        let cx = cx.clone();
        async move {
            let maa = Maa::from_message(&cx.answer(&m).await).unwrap();
            let ha1 = maa
                .sip_auth_data_items
                .first()
                .and_then(|i| i.digest.as_ref())
                .map(|d| String::from_utf8(d.ha1.to_vec()).unwrap());
            (maa.header.result, ha1)
        }
    };
    let ha1 = |password: &str| {
        Some(
            Ha1::compute(Algorithm::Md5, impi, "ims.example.net", password.as_bytes())
                .as_hex()
                .to_string(),
        )
    };
    let ok = CxResult::Base(result::DIAMETER_SUCCESS);
    let unknown = CxResult::experimental(experimental::DIAMETER_ERROR_USER_UNKNOWN);
    assert_eq!(
        call(&app, "POST", "/api/v1/subscribers", t, Some(alice()))
            .await
            .0,
        StatusCode::CREATED
    );
    // Answered twice: the second from the cache.
    for _ in 0..2 {
        assert_eq!(mar(impi).await, (ok, ha1(PASSWORD)));
    }
    let mut put = alice();
    put["private_identities"][0]["password"] = json!("first new password");
    let (status, ..) = call(&app, "PUT", "/api/v1/subscribers/alice", t, Some(put)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mar(impi).await, (ok, ha1("first new password")));
    let patch = json!({"private_identities": [{"impi": impi, "password": "second new password"}]});
    let (status, ..) = call(&app, "PATCH", "/api/v1/subscribers/alice", t, Some(patch)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mar(impi).await, (ok, ha1("second new password")));
    let patch =
        json!({"private_identities": [{"impi": "alice2@ims.example.net", "password": "x y z w"}]});
    let (status, ..) = call(&app, "PATCH", "/api/v1/subscribers/alice", t, Some(patch)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mar(impi).await, (unknown, None), "the removed IMPI");
    assert_eq!(mar("alice2@ims.example.net").await.0, ok);
    let (status, ..) = call(&app, "DELETE", "/api/v1/subscribers/alice", t, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        mar("alice2@ims.example.net").await,
        (unknown, None),
        "the deleted subscription"
    );
    db.cleanup().await;
}

/// A subscriber as `imsctl subscriber add` with several `--impu` wrote it before it
/// numbered the set, and as any client that leaves `implicit_set` out writes it.
fn several_impus(id: &str, sets: &[Option<Option<i64>>]) -> Value {
    let impus: Vec<Value> = sets
        .iter()
        .enumerate()
        .map(|(i, set)| {
            let mut p = json!({"impu": format!("sip:{id}-{i}@ims.example.net")});
            if let Some(set) = set {
                p["implicit_set"] = json!(set);
            }
            p
        })
        .collect();
    json!({
        "id": id,
        "private_identities": [{"impi": format!("{id}@ims.example.net"), "password": PASSWORD}],
        "public_identities": impus,
    })
}

fn sets_of(sub: &Value) -> Vec<Value> {
    sub["public_identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["implicit_set"].clone())
        .collect()
}

/// The S-CSCF's SAR REGISTRATION of `impu`: the User-Data, and the registration state
/// of each public identity of `id` afterwards.
async fn register(store: &hss::store::Store, id: &str, impu: &str) -> (String, Vec<String>) {
    use ims_diameter::cx::{CxResult, ServerAssignmentType};
    let cx = cx_fixture::server(store);
    let impi = format!("{id}@ims.example.net");
    let saa = cx_fixture::sar_answer(
        &cx,
        cx_fixture::sar(
            Some(&impi),
            &[impu],
            cx_fixture::SCSCF,
            ServerAssignmentType::Registration,
        ),
    )
    .await;
    assert_eq!(
        saa.header.result,
        CxResult::Base(ims_diameter::dict::result::DIAMETER_SUCCESS)
    );
    let xml = String::from_utf8(saa.user_data.unwrap().to_vec()).unwrap();
    let sub = store.get(id).await.unwrap().unwrap();
    let states = sub
        .public_identities
        .iter()
        .map(|p| format!("{:?}", p.registration.state))
        .collect();
    (xml, states)
}

/// TS 29.228 §6.5 / TS 24.229 §5.4.1.2: the public identities written in one request
/// without `implicit_set` form one implicit registration set. Registering one registers
/// all, and the SAA's User-Data (hence the S-CSCF's P-Associated-URI) holds all of them
/// in one ServiceProfile. `null` keeps an identity alone; numbers are taken as given; an
/// identity added later without a number joins the first one's set; a read subscription
/// written back unchanged keeps its sets.
async fn identities_of_one_request_are_one_implicit_set(store: hss::store::Store, _: String) {
    let app = hss::provisioning::router(store.clone(), Some(TOKEN.into()), "ims.example.net");
    let t = Some(TOKEN);
    let post = |body: Value| {
        let app = app.clone();
        async move {
            let (status, sub, text) =
                call(&app, "POST", "/api/v1/subscribers", t, Some(body)).await;
            assert_eq!(status, StatusCode::CREATED, "{text}");
            sub
        }
    };
    // No numbers: one set.
    let sub = post(several_impus("one", &[None, None, None])).await;
    assert_eq!(sets_of(&sub), vec![json!(1); 3]);
    let (xml, states) = register(&store, "one", "sip:one-1@ims.example.net").await;
    assert_eq!(
        states,
        vec!["Registered"; 3],
        "registering one registers the set"
    );
    assert_eq!(xml.matches("<ServiceProfile>").count(), 1, "{xml}");
    for i in 0..3 {
        assert!(
            xml.contains(&format!("<Identity>sip:one-{i}@ims.example.net</Identity>")),
            "{xml}"
        );
    }
    // UAR for another identity of the set: it is registered already.
    let cx = cx_fixture::server(&store);
    let uaa = ims_diameter::cx::Uaa::from_message(
        &cx.answer(
            &cx_fixture::uar(
                "one@ims.example.net",
                "sip:one-2@ims.example.net",
                cx_fixture::HOME,
                None,
            )
            .to_message(),
        )
        .await,
    )
    .unwrap();
    assert_eq!(
        uaa.header.result,
        ims_diameter::cx::CxResult::experimental(
            ims_diameter::dict::experimental::DIAMETER_SUBSEQUENT_REGISTRATION
        )
    );

    // `null`: sets of their own, as before.
    let sub = post(several_impus("apart", &[Some(None), Some(None)])).await;
    assert_eq!(sets_of(&sub), vec![Value::Null; 2]);
    let (xml, states) = register(&store, "apart", "sip:apart-0@ims.example.net").await;
    assert_eq!(states, vec!["Registered", "NotRegistered"]);
    assert!(!xml.contains("apart-1"), "{xml}");

    // Numbers as given; the unnumbered one joins the first's set.
    let sub = post(several_impus(
        "numbered",
        &[Some(Some(7)), Some(Some(8)), None],
    ))
    .await;
    assert_eq!(sets_of(&sub), vec![json!(7), json!(8), json!(7)]);
    // The first alone (`null`): the unnumbered ones form a set with a free number.
    let sub = post(several_impus(
        "first-alone",
        &[Some(None), Some(Some(1)), None, None],
    ))
    .await;
    assert_eq!(
        sets_of(&sub),
        vec![Value::Null, json!(1), json!(2), json!(2)]
    );

    // PATCH adding an identity without a number: it joins the first identity's set.
    let mut publics = sub_publics(&store, "one").await;
    publics.push(json!({"impu": "tel:+15550123"}));
    let (status, sub, text) = call(
        &app,
        "PATCH",
        "/api/v1/subscribers/one",
        t,
        Some(json!({ "public_identities": publics })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(sets_of(&sub), vec![json!(1); 4]);

    // A subscription read and written back unchanged keeps its sets (`null` included).
    for id in ["apart", "first-alone"] {
        let (_, before, _) = call(&app, "GET", &format!("/api/v1/subscribers/{id}"), t, None).await;
        let mut body = json!({
            "private_identities": [{"impi": format!("{id}@ims.example.net")}],
            "public_identities": sub_publics(&store, id).await,
        });
        body["cloud"] = before["cloud"].clone();
        let (status, after, text) = call(
            &app,
            "PUT",
            &format!("/api/v1/subscribers/{id}"),
            t,
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(sets_of(&after), sets_of(&before), "{id}");
    }
}

/// The public identities of `id` as a client reads them (`impu`, `barred`,
/// `implicit_set`, `service_profile`), ready to be written back.
async fn sub_publics(store: &hss::store::Store, id: &str) -> Vec<Value> {
    let sub = store.get(id).await.unwrap().unwrap();
    sub.public_identities
        .iter()
        .map(|p| serde_json::to_value(&p.identity).unwrap())
        .collect()
}

on_every_backend!(identities_of_one_request_are_one_implicit_set);

/// `alice()` with one iFC whose SPT is `spt` (a REGISTER trigger unless changed).
fn alice_with_spt(spt: Value) -> Value {
    let mut v = alice();
    v["service_profiles"][0]["ifcs"][0]["trigger_point"]["spts"] = json!([spt]);
    v
}

#[tokio::test]
async fn register_triggers_take_registration_types_only_on_register() {
    let (app, db) = app().await;
    let spt = json!({"group": 0, "type": "method", "method": "REGISTER",
                     "registration_type": ["DE_REGISTRATION", "INITIAL_REGISTRATION"]});
    let (status, created, text) = call(
        &app,
        "POST",
        "/api/v1/subscribers",
        Some(TOKEN),
        Some(alice_with_spt(spt)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let stored = &created["service_profiles"][0]["ifcs"][0]["trigger_point"]["spts"][0];
    // Returned in the order of the values' codes (0 initial, 1 re, 2 de).
    assert_eq!(
        stored["registration_type"],
        json!(["INITIAL_REGISTRATION", "DE_REGISTRATION"]),
        "{text}"
    );
    let (_, got, _) = call(&app, "GET", "/api/v1/subscribers/alice", Some(TOKEN), None).await;
    assert_eq!(
        got["service_profiles"][0]["ifcs"][0]["trigger_point"]["spts"][0],
        *stored
    );
    // An SPT without it shows none (every registration matches).
    let (status, plain, text) = call(
        &app,
        "PATCH",
        "/api/v1/subscribers/alice",
        Some(TOKEN),
        Some(json!({"service_profiles": alice_with_spt(
            json!({"group": 0, "type": "method", "method": "register"})
        )["service_profiles"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let spt = &plain["service_profiles"][0]["ifcs"][0]["trigger_point"]["spts"][0];
    assert!(spt.get("registration_type").is_none(), "{text}");

    let field = "service_profiles[0].ifcs[0].trigger_point.spts[0].registration_type";
    let refused: Vec<(Value, &str)> = vec![
        // Not the REGISTER method.
        (
            json!({"group": 0, "type": "method", "method": "INVITE",
                   "registration_type": ["INITIAL_REGISTRATION"]}),
            field,
        ),
        // Not a method SPT at all.
        (
            json!({"group": 0, "type": "session_case", "session_case": "ORIGINATING",
                   "registration_type": ["INITIAL_REGISTRATION"]}),
            "service_profiles[0].ifcs[0].trigger_point.spts[0]",
        ),
        // A value listed twice, all three (the XSD allows two; none means all), an
        // unknown value, not a list.
        (
            json!({"group": 0, "type": "method", "method": "REGISTER",
                   "registration_type": ["RE_REGISTRATION", "RE_REGISTRATION"]}),
            field,
        ),
        (
            json!({"group": 0, "type": "method", "method": "REGISTER",
                   "registration_type": ["INITIAL_REGISTRATION", "RE_REGISTRATION",
                                         "DE_REGISTRATION"]}),
            field,
        ),
        (
            json!({"group": 0, "type": "method", "method": "REGISTER",
                   "registration_type": ["SOMETIMES"]}),
            "service_profiles[0].ifcs[0].trigger_point.spts[0]",
        ),
        (
            json!({"group": 0, "type": "method", "method": "REGISTER",
                   "registration_type": "INITIAL_REGISTRATION"}),
            "service_profiles[0].ifcs[0].trigger_point.spts[0]",
        ),
    ];
    for (spt, want) in refused {
        let mut body = alice_with_spt(spt.clone());
        body["id"] = json!("bob");
        body["private_identities"][0]["impi"] = json!("bob@ims.example.net");
        body["public_identities"] = json!([{"impu": "sip:bob@ims.example.net"}]);
        let (status, err, text) =
            call(&app, "POST", "/api/v1/subscribers", Some(TOKEN), Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{spt}: {text}");
        assert!(
            err["field"].as_str().is_some_and(|f| f.starts_with(want)),
            "{spt}: {text}"
        );
        assert!(err["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    assert_eq!(db.store.count().await.unwrap(), 1, "only alice");

    let (_, doc, _) = call(&app, "GET", "/api/v1/openapi.json", Some(TOKEN), None).await;
    let values = &doc["components"]["schemas"]["RegistrationType"]["enum"];
    assert_eq!(
        *values,
        json!(["INITIAL_REGISTRATION", "RE_REGISTRATION", "DE_REGISTRATION"]),
        "{doc}"
    );
    db.cleanup().await;
}
