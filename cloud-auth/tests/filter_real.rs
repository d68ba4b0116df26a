//! The request filter against a real Keystone 30.0.0 and the real policy service on
//! 127.0.0.1 (see `support`): tenancy decisions, the decision cache, a policy change
//! reaching the filter through the feed within one second, and failing closed when the
//! policy service is gone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/policyd.rs"]
mod policyd_support;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloud_auth::filter::{FilterSettings, Question, Refusal, RequestFilter};
use cloud_auth::keystone::{TokenInfo, TokenValidator};
use policyd_support::{root_rules, Policyd};
use serde_json::{json, Value};
use support::Keystone;

const HOUR: u64 = 3600;

/// PUTs a policy document as fixture user `user`, expecting it created.
async fn put(ks: &Keystone, svc: &Policyd, path: &str, user: &str, body: Value) {
    let token = ks.user_token(user).await.token;
    assert_eq!(svc.put(path, &token, body).await, 201, "PUT {path}");
}

/// The policy service with root policies for both fixture tenants.
async fn start_policyd(ks: &Keystone) -> Policyd {
    let svc = Policyd::start(ks).await;
    let root_a = format!("/policies/root?tenant={}", ks.tenant_a);
    put(ks, &svc, &root_a, "ada", root_rules()).await;
    let root_b = format!("/policies/root?tenant={}", ks.tenant_b);
    put(ks, &svc, &root_b, "bea", root_rules()).await;
    svc
}

fn filter(ks: &Keystone, base: &str, cache: usize) -> RequestFilter {
    let settings = FilterSettings {
        policy_url: base.to_owned(),
        decision_cache: cache,
        decision_ttl: Duration::from_secs(300),
        verify_timeout: Duration::from_millis(2000),
        policy_ca_pem: None,
    };
    RequestFilter::new(&settings, TokenValidator::new(ks.config()).unwrap()).unwrap()
}

/// Waits (at most 10 s) until the filter's feed is connected (`up`) or not.
async fn feed_state(f: &RequestFilter, up: bool) {
    let start = Instant::now();
    while f.feed_connected() != up {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "feed never became {}",
            if up { "connected" } else { "disconnected" }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The validated token of fixture user `user`.
async fn subject(ks: &Keystone, f: &RequestFilter, user: &str) -> Arc<TokenInfo> {
    let token = ks.user_token(user).await.token;
    f.authenticate(Some(&token)).await.unwrap()
}

fn q<'a>(identity: &'a str, target: &'a str, tenant: &'a str, verb: &'a str) -> Question<'a> {
    Question {
        identity,
        target,
        tenant,
        verb,
        policy: None,
    }
}

#[tokio::test]
async fn tokens_and_tenancy_decide_and_a_policy_change_arrives_within_a_second() {
    let Some(ks) = Keystone::start(HOUR).await else {
        return;
    };
    let svc = start_policyd(&ks).await;
    let f = filter(&ks, &svc.base, 1000);
    feed_state(&f, true).await;
    let (a, b) = (ks.tenant_a.clone(), ks.tenant_b.clone());

    // Tokens: none, garbage, valid.
    assert_eq!(f.authenticate(None).await.unwrap_err(), Refusal::NoToken);
    assert_eq!(
        f.authenticate(Some("gAAAAAnot-a-token")).await.unwrap_err(),
        Refusal::InvalidToken
    );
    let alice = subject(&ks, &f, "alice").await;
    let bob = subject(&ks, &f, "bob").await;

    let alice_id = "sip:alice@ims.example.net";
    let bob_id = "sip:bob@ims.example.net";
    // Own tenant: allowed; another tenant's identity: denied (global restrict).
    f.authorize(&alice, &q(alice_id, alice_id, &a, "REGISTER"))
        .await
        .unwrap();
    assert_eq!(
        f.authorize(&bob, &q(bob_id, alice_id, &a, "REGISTER"))
            .await
            .unwrap_err(),
        Refusal::Denied
    );
    // Same question again: from the cache.
    let before = f.stats();
    f.authorize(&alice, &q(alice_id, alice_id, &a, "REGISTER"))
        .await
        .unwrap();
    let after = f.stats();
    assert_eq!(
        (after.hits - before.hits, after.misses - before.misses),
        (1, 0)
    );

    // Alice calling Bob (tenant b) is denied, and the denial is cached...
    let invite = q(alice_id, bob_id, &b, "INVITE");
    assert_eq!(
        f.authorize(&alice, &invite).await.unwrap_err(),
        Refusal::Denied
    );
    assert_eq!(
        f.authorize(&alice, &invite).await.unwrap_err(),
        Refusal::Denied
    );
    assert!(f.cached_decisions() >= 3);
    // ...until tenant b lets tenant a's members call in: within one second of the PUT.
    let inbound = json!({"enforcer": "custom", "rules": format!(
        r#"permit(principal in Ims::Tenant::"{a}", action == Ims::Action::"INVITE", resource)
           when {{ principal.roles.contains("member") }};"#)});
    put(
        &ks,
        &svc,
        &format!("/policies/inbound?tenant={b}"),
        "bea",
        inbound,
    )
    .await;
    let changed = Instant::now();
    loop {
        if f.authorize(&alice, &invite).await.is_ok() {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "the change did not reach the filter within one second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "policy change effective in the filter after {:?}",
        changed.elapsed()
    );
    assert!(f.stats().wipes >= 1);
    ks.stop();
}

#[tokio::test]
async fn with_the_policy_service_down_cached_decisions_hold_and_new_ones_are_refused() {
    let Some(ks) = Keystone::start(HOUR).await else {
        return;
    };
    let svc = start_policyd(&ks).await;
    let f = filter(&ks, &svc.base, 1000);
    feed_state(&f, true).await;
    let a = ks.tenant_a.clone();
    let alice = subject(&ks, &f, "alice").await;
    let id = "sip:alice@ims.example.net";
    f.authorize(&alice, &q(id, id, &a, "REGISTER"))
        .await
        .unwrap();

    drop(svc);
    feed_state(&f, false).await;
    // The decision already held still works...
    f.authorize(&alice, &q(id, id, &a, "REGISTER"))
        .await
        .unwrap();
    // ...a new question cannot be decided: refused.
    let refused = f
        .authorize(&alice, &q(id, id, &a, "INVITE"))
        .await
        .unwrap_err();
    assert!(matches!(refused, Refusal::Undecidable(_)), "{refused:?}");
    assert_eq!(f.stats().undecidable, 1);
    ks.stop();
}

#[tokio::test]
async fn without_a_cache_every_decision_is_asked() {
    let Some(ks) = Keystone::start(HOUR).await else {
        return;
    };
    let svc = start_policyd(&ks).await;
    let f = filter(&ks, &svc.base, 0);
    let a = ks.tenant_a.clone();
    let alice = subject(&ks, &f, "alice").await;
    let id = "sip:alice@ims.example.net";
    for _ in 0..3 {
        f.authorize(&alice, &q(id, id, &a, "REGISTER"))
            .await
            .unwrap();
    }
    let s = f.stats();
    assert_eq!((s.hits, s.misses, s.allowed), (0, 3, 3));
    assert_eq!(f.cached_decisions(), 0);
    ks.stop();
}
