//! The policy store and engine, on SQLite always and on PostgreSQL when
//! `IMS_TEST_POSTGRES_URL` is set (each test in a fresh schema, dropped afterwards): history,
//! built-ins, effective policies, the feed, and two nodes sharing one store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cloud_auth::oslo::{Credentials, Target};
use cloud_auth::policyd::{EnforcerKind, Engine, Reference, Scope, Spec, Store};
use ims_runtime::test_db::PgSchema;
use serde_json::{json, Value};

struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<PgSchema>,
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("p/policy.db").display());
        Db {
            url,
            _dir: Some(dir),
            pg: None,
        }
    }

    async fn postgres() -> Option<Db> {
        let pg = PgSchema::create("policyd_test").await.unwrap()?;
        Some(Db {
            url: pg.url().to_owned(),
            _dir: None,
            pg: Some(pg),
        })
    }

    async fn engine(&self) -> Engine {
        let store = Store::open(&self.url, 4).await.unwrap();
        let effective = vec![
            Reference::parse("global:restrict").unwrap(),
            Reference::parse("tenant:root").unwrap(),
        ];
        Engine::open(store, effective).await.unwrap()
    }

    async fn drop_pg(self) {
        if let Some(pg) = self.pg {
            pg.drop_schema().await.unwrap();
        }
    }
}

async fn each_backend<F, Fut>(test: F)
where
    F: Fn(Db) -> Fut,
    Fut: std::future::Future<Output = Db>,
{
    test(Db::sqlite()).await;
    if let Some(db) = Db::postgres().await {
        test(db).await.drop_pg().await;
    }
}

fn spec(enforcer: EnforcerKind, rules: Value) -> Spec {
    let s = Spec { enforcer, rules };
    s.validate().unwrap();
    s
}

fn subject(project: &str, roles: &[&str]) -> Credentials {
    let mut c = Credentials::new();
    c.insert("user_id", format!("u-{project}"));
    c.insert("project_id", project);
    c.set_roles(roles.iter().map(|r| r.to_string()).collect());
    c
}

fn object(tenant: &str) -> Target {
    [
        ("target.tenant".to_owned(), tenant.to_owned()),
        ("target.target".to_owned(), format!("sip:x@{tenant}")),
    ]
    .into()
}

fn tenant(t: &str) -> Scope {
    Scope::Customer(t.into())
}

#[tokio::test]
async fn builtins_are_created_once_and_every_version_is_kept() {
    each_backend(|db| async move {
        let e = db.engine().await;
        let names: Vec<_> = e.list().iter().map(|p| p.name.clone()).collect();
        assert_eq!(names, ["enable", "provision", "restrict", "self-protect"]);
        assert_eq!(e.revision(), 4);

        let root = spec(EnforcerKind::Default, json!({"INVITE": "role:member"}));
        let v1 = e.put(&tenant("a"), "root", &root, "ada").await.unwrap();
        let v2 = e.put(&tenant("a"), "root", &root, "ada").await.unwrap();
        assert_eq!((v1.version, v2.version), (1, 2));
        assert!(v2.revision > v1.revision);
        // Same name, other scope: its own numbering.
        let b = e.put(&tenant("b"), "root", &root, "bea").await.unwrap();
        assert_eq!(b.version, 1);
        let gone = e
            .delete(&tenant("a"), "root", "ada")
            .await
            .unwrap()
            .unwrap();
        assert!(gone.deleted && gone.spec.is_none());
        assert_eq!(gone.version, 3);
        assert!(e.current(&tenant("a"), "root").is_none());
        assert!(e
            .delete(&tenant("a"), "root", "ada")
            .await
            .unwrap()
            .is_none());
        let again = e.put(&tenant("a"), "root", &root, "ada").await.unwrap();
        assert_eq!(again.version, 4);
        let history = e.history(&tenant("a"), "root").await.unwrap();
        let seen: Vec<_> = history.iter().map(|v| (v.version, v.deleted)).collect();
        assert_eq!(seen, [(1, false), (2, false), (3, true), (4, false)]);
        assert_eq!(history[0].created_by, "ada");
        assert_eq!(history[0].spec.as_ref(), Some(&root));

        // Deleting a built-in sticks (it is only created on first start), and with no
        // restrict nothing is allowed.
        e.put(
            &tenant("a"),
            "root",
            &spec(EnforcerKind::AllPass, Value::Null),
            "ada",
        )
        .await
        .unwrap();
        e.delete(&Scope::Global, "restrict", "cloud")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            e.verify(&subject("a", &[]), &object("a"), "INVITE").effect,
            "deny"
        );
        // Reopening finds everything and adds no second set of built-ins.
        drop(e);
        let e = db.engine().await;
        assert_eq!(e.current(&Scope::Global, "enable").unwrap().version, 1);
        assert_eq!(e.current(&tenant("a"), "root").unwrap().version, 5);
        assert!(e.current(&Scope::Global, "restrict").is_none());
        assert_eq!(e.current(&tenant("b"), "root").unwrap().version, 1);
        db
    })
    .await;
}

#[tokio::test]
async fn effective_policy_is_restrict_and_the_tenant_root() {
    each_backend(|db| async move {
        let e = db.engine().await;
        let alice = subject("a", &["member"]);
        // No root yet: denied, and the missing policy is named.
        let v = e.verify(&alice, &object("a"), "INVITE");
        assert_eq!(
            (v.effect, v.policy.as_str(), v.version),
            ("deny", "a/root", 0)
        );

        let root = spec(EnforcerKind::Default, json!({"INVITE": "role:member"}));
        e.put(&tenant("a"), "root", &root, "ada").await.unwrap();
        e.put(&tenant("b"), "root", &root, "bea").await.unwrap();
        let v = e.verify(&alice, &object("a"), "INVITE");
        assert_eq!(
            (v.effect, v.policy.as_str(), v.version),
            ("allow", "a/root", 1)
        );
        assert_eq!(e.verify(&alice, &object("a"), "MESSAGE").effect, "deny");
        // Across tenants: restrict denies...
        let v = e.verify(&alice, &object("b"), "INVITE");
        assert_eq!((v.effect, v.policy.as_str()), ("deny", "global/restrict"));
        // ...until the callee's tenant lets tenant a in.
        let inbound = spec(EnforcerKind::Default, json!({"INVITE": "project_id:a"}));
        e.put(&tenant("b"), "inbound", &inbound, "bea")
            .await
            .unwrap();
        assert_eq!(e.verify(&alice, &object("b"), "INVITE").effect, "allow");
        assert_eq!(
            e.verify(&subject("c", &["member"]), &object("b"), "INVITE")
                .effect,
            "deny"
        );
        // Tenant b's inbound does not open tenant a to b.
        assert_eq!(
            e.verify(&subject("b", &["member"]), &object("a"), "INVITE")
                .effect,
            "deny"
        );

        // A Cedar root.
        let cedar = spec(
            EnforcerKind::Custom,
            json!(
                r#"permit(principal, action == Ims::Action::"REGISTER", resource)
                     when { principal.project == resource.tenant };"#
            ),
        );
        e.put(&tenant("a"), "root", &cedar, "ada").await.unwrap();
        let v = e.verify(&alice, &object("a"), "REGISTER");
        assert_eq!((v.effect, v.version), ("allow", 2));
        assert_eq!(e.verify(&alice, &object("a"), "INVITE").effect, "deny");

        // A reference cycle denies instead of looping.
        let cyc = spec(EnforcerKind::OpAnd, json!(["tenant:root"]));
        e.put(&tenant("a"), "root", &cyc, "ada").await.unwrap();
        assert_eq!(e.verify(&alice, &object("a"), "REGISTER").effect, "deny");
        db
    })
    .await;
}

#[tokio::test]
async fn changes_reach_the_feed_and_other_nodes() {
    each_backend(|db| async move {
        let a = db.engine().await;
        let b = db.engine().await;
        let mut feed_a = a.subscribe();
        let mut feed_b = b.subscribe();
        let root = spec(EnforcerKind::AllPass, Value::Null);
        a.put(&tenant("t"), "root", &root, "x").await.unwrap();
        let c = feed_a.try_recv().unwrap();
        assert_eq!(
            (c.policy.as_str(), c.tenant.as_deref(), c.version, c.deleted),
            ("root", Some("t"), 1, false)
        );
        // Node b learns it when it reads the log (its periodic refresh).
        assert!(b.current(&tenant("t"), "root").is_none());
        b.refresh().await.unwrap();
        assert_eq!(feed_b.try_recv().unwrap(), c);
        assert_eq!(
            b.verify(&subject("t", &[]), &object("t"), "X").effect,
            "allow"
        );
        b.delete(&tenant("t"), "root", "y").await.unwrap();
        assert!(feed_b.try_recv().unwrap().deleted);
        a.refresh().await.unwrap();
        assert!(feed_a.try_recv().unwrap().deleted);
        assert_eq!(
            a.verify(&subject("t", &[]), &object("t"), "X").effect,
            "deny"
        );
        assert_eq!(a.revision(), b.revision());
        db
    })
    .await;
}

#[tokio::test]
async fn concurrent_writers_on_two_nodes_get_distinct_versions() {
    each_backend(|db| async move {
        let (a, b) = (db.engine().await, db.engine().await);
        let root = spec(EnforcerKind::AllPass, Value::Null);
        let writes: Vec<_> = (0..20)
            .map(|i| {
                let e = if i % 2 == 0 { a.clone() } else { b.clone() };
                let root = root.clone();
                tokio::spawn(async move { e.put(&tenant("t"), "root", &root, "w").await })
            })
            .collect();
        let mut versions = Vec::new();
        for w in writes {
            versions.push(w.await.unwrap().unwrap().version);
        }
        versions.sort_unstable();
        assert_eq!(versions, (1..=20).collect::<Vec<i64>>());
        let history = a.history(&tenant("t"), "root").await.unwrap();
        let mut revisions: Vec<i64> = history.iter().map(|v| v.revision).collect();
        revisions.dedup();
        assert_eq!(revisions.len(), 20);
        db
    })
    .await;
}
