//! The policy service's REST API with a real Keystone 30.0.0 on 127.0.0.1 (see `support`):
//! constraints I-IV (cloud admin, tenant admins, members, the service user), history,
//! verify decisions, and the invalidation feed seeing a change within one second.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/policyd.rs"]
mod policyd_support;
mod support;

use std::time::{Duration, Instant};

use policyd_support::{root_rules, Policyd};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::Keystone;

const HOUR: u64 = 3600;

impl Policyd {
    /// Asks the service's verify endpoint (as `token`) whether `user` of `project`, a member,
    /// may `verb` toward `tenant`: the 200 answer.
    async fn verify(
        &self,
        token: &str,
        user: &str,
        project: &str,
        tenant: &str,
        verb: &str,
    ) -> Value {
        let q = json!({
            "subject": {"user": user, "project": project, "roles": ["member", "reader"],
                        "identity": format!("sip:{user}@ims.example.net")},
            "object": {"target": "sip:callee@ims.example.net", "tenant": tenant},
            "verb": verb,
        });
        let (status, v) = self
            .call(Method::POST, "/verify", Some(token), Some(q))
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }

    /// Opens the invalidation feed with `token`.
    async fn feed(&self, token: &str) -> reqwest::Response {
        self.request(Method::GET, "/feed", Some(token))
            .send()
            .await
            .unwrap()
    }
}

/// Reads server-sent events from a streaming response.
struct Events {
    resp: reqwest::Response,
    buf: String,
}

impl Events {
    /// The next `(event, data)`, skipping keep-alive comments.
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut event, mut data) = (String::new(), String::new());
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim());
                    }
                }
                if !event.is_empty() {
                    return (event, serde_json::from_str(&data).unwrap());
                }
                continue;
            }
            let chunk = self.resp.chunk().await.unwrap().expect("feed closed");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test]
async fn management_calls_obey_constraints_i_ii_and_iv() {
    let Some(ks) = Keystone::start(HOUR).await else {
        return;
    };
    let svc = Policyd::start(&ks).await;
    let (a, b) = (ks.tenant_a.clone(), ks.tenant_b.clone());
    let cloud = ks.system_admin_token().await;
    let ada = ks.user_token("ada").await.token;
    let bea = ks.user_token("bea").await.token;
    let alice = ks.user_token("alice").await.token;
    let service = ks.service_token().await;
    let root_a = format!("/policies/root?tenant={a}");
    let root_b = format!("/policies/root?tenant={b}");

    // Authentication first.
    let (s, _) = svc.call(Method::GET, "/policies", None, None).await;
    assert_eq!(s, 401);
    let (s, _) = svc.get("/policies", "gAAAAABforgedforgedforged").await;
    assert_eq!(s, 401);

    // II: tenant admins write their own tenant's policies...
    assert_eq!(svc.put(&root_a, &ada, root_rules()).await, 201);
    assert_eq!(svc.put(&root_b, &bea, root_rules()).await, 201);
    assert_eq!(
        svc.put(&root_a, &ada, root_rules()).await,
        200,
        "second version"
    );
    // ...and nobody else's, nor globals.
    assert_eq!(svc.put(&root_b, &ada, root_rules()).await, 403);
    assert_eq!(svc.put("/policies/mine", &ada, root_rules()).await, 403);
    // II: a tenant admin cannot read another tenant's policy (it exists: 403, not 404).
    assert_eq!(svc.get(&root_b, &ada).await.0, 403);
    assert_eq!(
        svc.get(&format!("/policies/root/versions?tenant={b}"), &ada)
            .await
            .0,
        403
    );
    let (s, own) = svc.get(&root_a, &ada).await;
    assert_eq!((s, own["version"].as_i64()), (StatusCode::OK, Some(2)));
    let writer = own["created_by"].as_str().unwrap();
    assert!(!writer.is_empty() && writer != "policyd", "{own}");
    let (_, listed) = svc.get("/policies", &ada).await;
    let mut seen: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["tenant"].as_str().unwrap_or("global"),
                p["name"].as_str().unwrap()
            )
        })
        .collect();
    seen.sort();
    let mut expected = vec![
        format!("{a}/root"),
        "global/enable".into(),
        "global/provision".into(),
        "global/restrict".into(),
        "global/self-protect".into(),
    ];
    expected.sort();
    assert_eq!(seen, expected, "globals and its own tenant's only");
    // A member writes nothing and reads nothing of the tenant's.
    assert_eq!(svc.put(&root_a, &alice, root_rules()).await, 403);
    assert_eq!(svc.get(&root_a, &alice).await.0, 403);

    // I: the cloud admin reads everything, writes globals, never a tenant's policy.
    let (s, all) = svc.get("/policies", &cloud).await;
    assert_eq!(s, 200);
    assert_eq!(all.as_array().unwrap().len(), 6);
    assert_eq!(svc.get(&root_b, &cloud).await.0, 200);
    assert_eq!(svc.put(&root_a, &cloud, root_rules()).await, 403);
    let (s, _) = svc.call(Method::DELETE, &root_a, Some(&cloud), None).await;
    assert_eq!(s, 403);
    let hours = json!({"enforcer": "all-pass"});
    assert_eq!(
        svc.put("/policies/business-hours", &cloud, hours.clone())
            .await,
        201
    );
    assert_eq!(
        svc.put(
            "/policies/restrict",
            &cloud,
            json!({"enforcer": "op-or", "rules": [
        {"enforcer": "default", "rules": {"default": "project_id:%(target.tenant)s"}},
        "tenant:inbound"]})
        )
        .await,
        200
    );
    // The built-ins that guard I, II and IV cannot be rewritten, not even by the cloud admin.
    assert_eq!(
        svc.put("/policies/enable", &cloud, hours.clone()).await,
        403
    );
    assert_eq!(svc.put("/policies/self-protect", &cloud, hours).await, 403);
    // Bad rules are refused at upload.
    let cedar_bad = json!({"enforcer": "custom", "rules": "permit(principal, action, resource) when { principal.age > 1 };"});
    assert_eq!(svc.put(&root_a, &ada, cedar_bad).await, 400);

    // History: every version, deletions included.
    let (s, _) = svc.call(Method::DELETE, &root_a, Some(&ada), None).await;
    assert_eq!(s, 200);
    assert_eq!(svc.get(&root_a, &ada).await.0, 404);
    let (_, history) = svc
        .get(&format!("/policies/root/versions?tenant={a}"), &ada)
        .await;
    let versions: Vec<(i64, bool)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["deleted"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, [(1, false), (2, false), (3, true)]);

    // IV: only the service user subscribes to the feed and asks verify questions.
    for token in [&cloud, &ada, &alice] {
        assert_eq!(svc.feed(token).await.status(), 403);
    }
    let resp = svc.feed(&service).await;
    assert_eq!(resp.status(), 200);
    let mut feed = Events {
        resp,
        buf: String::new(),
    };
    assert_eq!(feed.next().await.0, "ready");
    let q =
        json!({"subject": {"user": "u", "project": a}, "object": {"tenant": a}, "verb": "INVITE"});
    for token in [&ada, &alice] {
        let (s, _) = svc
            .call(Method::POST, "/verify", Some(token), Some(q.clone()))
            .await;
        assert_eq!(s, 403);
    }
    let (s, _) = svc
        .call(Method::POST, "/verify", Some(&service), Some(q))
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn verify_follows_the_policies_and_the_feed_tells_within_a_second() {
    let Some(ks) = Keystone::start(HOUR).await else {
        return;
    };
    let svc = Policyd::start(&ks).await;
    let (a, b) = (ks.tenant_a.clone(), ks.tenant_b.clone());
    let ada = ks.user_token("ada").await.token;
    let bea = ks.user_token("bea").await.token;
    let service = ks.service_token().await;
    assert_eq!(
        svc.put(&format!("/policies/root?tenant={a}"), &ada, root_rules())
            .await,
        201
    );
    assert_eq!(
        svc.put(&format!("/policies/root?tenant={b}"), &bea, root_rules())
            .await,
        201
    );

    let resp = svc.feed(&service).await;
    assert_eq!(resp.status(), 200);
    let mut feed = Events {
        resp,
        buf: String::new(),
    };
    let (event, ready) = feed.next().await;
    assert_eq!(event, "ready");
    assert_eq!(ready["revision"].as_i64(), Some(svc.engine.revision()));

    // Same tenant allowed; across tenants denied by restrict.
    let v = svc.verify(&service, "alice", &a, &a, "INVITE").await;
    assert_eq!(
        (v["effect"].as_str(), v["policy"].as_str()),
        (Some("allow"), Some(format!("{a}/root").as_str()))
    );
    let v = svc.verify(&service, "alice", &a, &b, "INVITE").await;
    assert_eq!(
        (v["effect"].as_str(), v["policy"].as_str()),
        (Some("deny"), Some("global/restrict"))
    );
    assert_eq!(
        svc.verify(&service, "alice", &a, &a, "MESSAGE").await["effect"],
        "deny"
    );

    // Tenant b lets tenant a's members call in; the feed shows it within a second.
    let inbound = json!({"enforcer": "custom", "rules": format!(
        r#"permit(principal in Ims::Tenant::"{a}", action == Ims::Action::"INVITE", resource)
           when {{ principal.roles.contains("member") }};"#)});
    let changed = Instant::now();
    assert_eq!(
        svc.put(&format!("/policies/inbound?tenant={b}"), &bea, inbound)
            .await,
        201
    );
    let (event, change) = tokio::time::timeout(Duration::from_secs(1), feed.next())
        .await
        .expect("no feed event within one second of the change");
    let seen_after = changed.elapsed();
    assert_eq!(event, "policy");
    assert_eq!(change["policy"], "inbound");
    assert_eq!(change["tenant"], json!(b));
    assert_eq!(change["version"], 1);
    eprintln!("policy change seen on the feed {seen_after:?} after the PUT was sent");
    let v = svc.verify(&service, "alice", &a, &b, "INVITE").await;
    assert_eq!(v["effect"], "allow");
    assert_eq!(v["revision"], change["revision"]);
    assert_eq!(
        svc.verify(&service, "alice", &a, &b, "REGISTER").await["effect"],
        "deny"
    );
    assert_eq!(
        svc.verify(&service, "bob", &b, &a, "INVITE").await["effect"],
        "deny",
        "not the other way"
    );

    // Deleting it closes the door again, and the feed says so.
    let (s, _) = svc
        .call(
            Method::DELETE,
            &format!("/policies/inbound?tenant={b}"),
            Some(&bea),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (_, gone) = tokio::time::timeout(Duration::from_secs(1), feed.next())
        .await
        .unwrap();
    assert_eq!(
        (gone["policy"].as_str(), gone["deleted"].as_bool()),
        (Some("inbound"), Some(true))
    );
    assert_eq!(
        svc.verify(&service, "alice", &a, &b, "INVITE").await["effect"],
        "deny"
    );

    // Cost per decision, for the record (not asserted: wall clock).
    let n = 200;
    let t = Instant::now();
    for _ in 0..n {
        svc.verify(&service, "alice", &a, &a, "INVITE").await;
    }
    let over_http = t.elapsed() / n;
    let mut subject = cloud_auth::oslo::Credentials::new();
    subject.insert("user_id", "alice");
    subject.insert("project_id", a.clone());
    subject.set_roles(vec!["member".into()]);
    let object: cloud_auth::oslo::Target = [("target.tenant".to_owned(), a.clone())].into();
    let m = 10_000;
    let t = Instant::now();
    for _ in 0..m {
        assert_eq!(
            svc.engine.verify(&subject, &object, "INVITE").effect,
            "allow"
        );
    }
    let in_process = t.elapsed() / m;
    eprintln!("verify latency: {over_http:?} per HTTP call (token cached), {in_process:?} per decision in process");
}
