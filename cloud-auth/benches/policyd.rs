//! Cost of one verify decision in the policy service's engine (no HTTP): the effective
//! policy `op-and(global:restrict, tenant:root)` with an oslo root and with a Cedar root,
//! allow and deny; and one Cedar decision alone.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use cloud_auth::cedar::CedarPolicy;
use cloud_auth::oslo::{Credentials, Target};
use cloud_auth::policyd::{EnforcerKind, Engine, Reference, Scope, Spec, Store};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde_json::json;

const CEDAR_ROOT: &str = r#"permit(principal, action == Ims::Action::"INVITE", resource)
    when { principal.roles.contains("member") && principal.project == resource.tenant };"#;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = rt.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("policy.db").display());
        let store = Store::open(&url, 2).await.unwrap();
        let effective = vec![
            Reference::parse("global:restrict").unwrap(),
            Reference::parse("tenant:root").unwrap(),
        ];
        let e = Engine::open(store, effective).await.unwrap();
        let oslo = Spec {
            enforcer: EnforcerKind::Default,
            rules: json!({"INVITE": "role:member", "REGISTER": "role:member"}),
        };
        let cedar = Spec {
            enforcer: EnforcerKind::Custom,
            rules: json!(CEDAR_ROOT),
        };
        e.put(&Scope::Customer("a".into()), "root", &oslo, "b")
            .await
            .unwrap();
        e.put(&Scope::Customer("c".into()), "root", &cedar, "b")
            .await
            .unwrap();
        e
    });
    let subject = |project: &str| {
        let mut s = Credentials::new();
        s.insert("user_id", "alice");
        s.insert("project_id", project);
        s.insert("identity", "sip:alice@ims.example.net");
        s.set_roles(vec!["member".into(), "reader".into()]);
        s
    };
    let object = |tenant: &str| -> Target {
        [
            ("target.tenant".to_owned(), tenant.to_owned()),
            (
                "target.target".to_owned(),
                "sip:bob@ims.example.net".to_owned(),
            ),
        ]
        .into()
    };
    let (sa, sc, oa, ob, oc) = (
        subject("a"),
        subject("c"),
        object("a"),
        object("b"),
        object("c"),
    );
    assert_eq!(engine.verify(&sa, &oa, "INVITE").effect, "allow");
    assert_eq!(engine.verify(&sc, &oc, "INVITE").effect, "allow");
    c.bench_function("policyd/verify oslo root, allow", |b| {
        b.iter(|| engine.verify(black_box(&sa), black_box(&oa), "INVITE"))
    });
    c.bench_function("policyd/verify cross-tenant, deny", |b| {
        b.iter(|| engine.verify(black_box(&sa), black_box(&ob), "INVITE"))
    });
    c.bench_function("policyd/verify Cedar root, allow", |b| {
        b.iter(|| engine.verify(black_box(&sc), black_box(&oc), "INVITE"))
    });
    let cedar = CedarPolicy::parse(CEDAR_ROOT).unwrap();
    c.bench_function("cedar/one decision", |b| {
        b.iter(|| cedar.allows(black_box(&sc), black_box(&oc), "INVITE"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
