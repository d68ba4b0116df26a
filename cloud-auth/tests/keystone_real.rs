//! Token validation against a real Keystone 30.0.0 on 127.0.0.1 (see `support`): service
//! login, token details, negative caching, revocation within the cache TTL, single-flight,
//! fail-closed when Keystone is down, service token renewal (before expiry and on 401).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use cloud_auth::keystone::{TokenInfo, TokenValidator, Unavailable, ValidationError};
use cloud_auth::oslo::{Credentials, RuleSet, Target};
use cloud_auth::policy::{Effect, Enforcer, Policy, Request};
use support::Keystone;

const HOUR: u64 = 3600;

#[tokio::test]
async fn service_login_and_user_token_details() {
    let Some(ks) = Keystone::start(HOUR).await else {
        return;
    };
    let v = TokenValidator::new(ks.config()).unwrap();
    v.ensure_service_token().await.unwrap();
    assert_eq!(v.metrics().logins, 1);

    let alice = ks.user_token("alice").await;
    let info = v.validate(&alice.token).await.unwrap();
    assert_eq!(info.user_name, "alice");
    assert_eq!(info.user_domain_id, ks.domain_id);
    assert_eq!(info.project_id.as_deref(), Some(ks.tenant_a.as_str()));
    assert_eq!(info.project_name.as_deref(), Some("tenant-a"));
    assert_eq!(
        info.project_domain_id.as_deref(),
        Some(ks.domain_id.as_str())
    );
    assert_eq!(info.domain_id, None);
    assert!(!info.system_all);
    // member implies reader (keystone-manage bootstrap's implied roles).
    assert!(info.roles.iter().any(|r| r == "member"), "{:?}", info.roles);
    assert!(info.roles.iter().any(|r| r == "reader"), "{:?}", info.roles);
    assert_eq!(info.expires_at, alice.expires_at);

    let bob = ks.user_token("bob").await;
    let bob_info = v.validate(&bob.token).await.unwrap();
    assert_eq!(bob_info.project_id.as_deref(), Some(ks.tenant_b.as_str()));
    assert_ne!(bob_info.user_id, info.user_id);

    // Answered from the cache: no further request to Keystone.
    let before = v.metrics();
    let again = v.validate(&alice.token).await.unwrap();
    assert_eq!(again, info);
    let after = v.metrics();
    assert_eq!(after.keystone_requests, before.keystone_requests);
    assert_eq!(after.hits, before.hits + 1);
    assert_eq!((after.keystone_requests, after.logins), (2, 1));

    // The token's credentials drive a policy: the global `restrict` rule of the design brief
    // (a token reaches only its own tenant) composed with a tenant rule.
    let restrict = RuleSet::parse([("default", "project_id:%(target.tenant)s")]).unwrap();
    let tenant = RuleSet::parse([("INVITE", "role:member"), ("REGISTER", "role:reader")]).unwrap();
    let effective = Policy::new(
        "effective",
        Enforcer::OpAnd(vec![
            Policy::new("global:restrict", Enforcer::Default(restrict)).unwrap(),
            Policy::new("tenant:root", Enforcer::Default(tenant)).unwrap(),
        ]),
    )
    .unwrap();
    let decide = |info: &TokenInfo, tenant: &str, verb: &str| {
        let subject = Credentials::from_token(info);
        let object: Target = [("target.tenant".to_owned(), tenant.to_owned())].into();
        effective.decide(&Request {
            subject: &subject,
            object: &object,
            verb,
        })
    };
    assert_eq!(decide(&info, &ks.tenant_a, "INVITE"), Effect::Allow);
    assert_eq!(decide(&info, &ks.tenant_a, "REGISTER"), Effect::Allow);
    assert_eq!(decide(&info, &ks.tenant_b, "INVITE"), Effect::Deny);
    assert_eq!(decide(&bob_info, &ks.tenant_b, "INVITE"), Effect::Allow);
    assert_eq!(decide(&bob_info, &ks.tenant_a, "REGISTER"), Effect::Deny);
    assert_eq!(decide(&bob_info, &ks.tenant_b, "MESSAGE"), Effect::Deny);

    // Latency, for the record (not asserted: wall clock).
    let mut tokens = Vec::new();
    for _ in 0..20 {
        tokens.push(ks.user_token("carol").await.token);
    }
    let t = Instant::now();
    for tok in &tokens {
        v.validate(tok).await.unwrap();
    }
    let uncached = t.elapsed() / 20;
    let t = Instant::now();
    for _ in 0..10_000 {
        v.validate(&alice.token).await.unwrap();
    }
    let cached = t.elapsed() / 10_000;
    eprintln!("validation latency: uncached {uncached:?} (Keystone round trip), cached {cached:?}");
}

#[tokio::test]
async fn invalid_token_is_refused_and_cached_briefly() {
    let Some(ks) = Keystone::start(HOUR).await else {
        return;
    };
    let mut config = ks.config();
    config.negative_ttl = Duration::from_secs(1);
    let v = TokenValidator::new(config).unwrap();
    let forged = "gAAAAABforgedforgedforgedforgedforgedforgedforged";
    assert_eq!(v.validate(forged).await, Err(ValidationError::Invalid));
    assert_eq!(v.validate(forged).await, Err(ValidationError::Invalid));
    let m = v.metrics();
    assert_eq!((m.keystone_requests, m.hits, m.invalid), (1, 1, 2));

    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(v.validate(forged).await, Err(ValidationError::Invalid));
    assert_eq!(v.metrics().keystone_requests, 2, "negative entry expired");
}

#[tokio::test]
async fn revoked_token_is_refused_once_the_cache_ttl_has_passed() {
    let Some(ks) = Keystone::start(HOUR).await else {
        return;
    };
    let ttl = Duration::from_secs(3);
    let mut config = ks.config();
    config.cache_ttl = ttl;
    let v = TokenValidator::new(config).unwrap();
    let bob = ks.user_token("bob").await;
    // The cache entry's TTL runs from when Keystone's answer came: after `asked`, by
    // `answered` (the first validation also logs the service user in, which can take a while
    // on a loaded machine).
    let asked = Instant::now();
    v.validate(&bob.token).await.unwrap();
    let answered = Instant::now();
    ks.revoke(&bob.token).await;

    // Keystone refuses it (seen through a validator that caches nothing); poll, bounded, in
    // case the revocation takes a moment to show.
    let mut uncached = ks.config();
    uncached.cache_capacity = 0;
    let probe = TokenValidator::new(uncached).unwrap();
    let mut refused = false;
    for _ in 0..50 {
        if probe.validate(&bob.token).await == Err(ValidationError::Invalid) {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused,
        "Keystone still accepts the revoked token after 5 s"
    );
    eprintln!(
        "Keystone refused the revoked token {:?} after it was validated",
        answered.elapsed()
    );

    // Ours holds the cached answer until the TTL runs out, then asks again and refuses it.
    if asked.elapsed() < ttl - Duration::from_millis(500) {
        assert!(
            v.validate(&bob.token).await.is_ok(),
            "still cached within the TTL"
        );
        assert_eq!(v.metrics().keystone_requests, 1);
    }
    tokio::time::sleep(ttl.saturating_sub(answered.elapsed())).await;
    assert_eq!(v.validate(&bob.token).await, Err(ValidationError::Invalid));
    assert_eq!(v.metrics().keystone_requests, 2);
}

#[tokio::test]
async fn concurrent_validations_of_one_token_share_one_request() {
    let Some(ks) = Keystone::start(HOUR).await else {
        return;
    };
    let v = TokenValidator::new(ks.config()).unwrap();
    v.ensure_service_token().await.unwrap();
    let carol = ks.user_token("carol").await.token;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (v, t) = (v.clone(), carol.clone());
            tokio::spawn(async move { v.validate(&t).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().user_name, "carol");
    }
    let m = v.metrics();
    assert_eq!(m.keystone_requests, 1, "{m:?}");
    assert_eq!(m.misses, 1, "{m:?}");
    assert!(m.coalesced > 0, "{m:?}");
    assert_eq!(m.hits + m.coalesced + m.misses, 50, "{m:?}");
}

#[tokio::test]
async fn keystone_down_keeps_cached_tokens_and_refuses_the_rest() {
    let Some(ks) = Keystone::start(HOUR).await else {
        return;
    };
    let v = TokenValidator::new(ks.config()).unwrap();
    let alice = ks.user_token("alice").await.token;
    let bob = ks.user_token("bob").await.token;
    v.validate(&alice).await.unwrap();
    ks.stop();

    assert_eq!(v.validate(&alice).await.unwrap().user_name, "alice");
    let r = v.validate(&bob).await;
    assert!(
        matches!(
            r,
            Err(ValidationError::Unavailable(Unavailable::Transport(_)))
        ),
        "{r:?}"
    );
    // Not cached: still refused, still asking.
    assert!(v.validate(&bob).await.is_err());
    assert_eq!(v.metrics().errors, 2);
}

#[tokio::test]
async fn service_token_is_renewed_before_it_expires() {
    // Tokens live 8 s: the validator renews a quarter of the lifetime early (about 6 s).
    let Some(ks) = Keystone::start(8).await else {
        return;
    };
    let v = TokenValidator::new(ks.config()).unwrap();
    v.validate(&ks.user_token("alice").await.token)
        .await
        .unwrap();
    assert_eq!(v.metrics().logins, 1);
    tokio::time::sleep(Duration::from_millis(6500)).await;
    let carol = ks.user_token("carol").await.token;
    v.validate(&carol).await.unwrap();
    let m = v.metrics();
    assert_eq!((m.logins, m.keystone_requests), (2, 2), "{m:?}");
}

#[tokio::test]
async fn service_token_refused_by_keystone_is_replaced() {
    let Some(ks) = Keystone::start(HOUR).await else {
        return;
    };
    let v = TokenValidator::new(ks.config()).unwrap();
    v.validate(&ks.user_token("alice").await.token)
        .await
        .unwrap();
    // Disabling the service user revokes its token; re-enabled, it may log in again.
    ks.set_service_user_enabled(false).await;
    ks.set_service_user_enabled(true).await;
    // Keystone compares revocation times in whole seconds: a token issued in the same
    // second as the revocation counts as revoked.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let bob = ks.user_token("bob").await.token;
    assert_eq!(v.validate(&bob).await.unwrap().user_name, "bob");
    let m = v.metrics();
    // One 401 with the old service token, a new login, the retried request.
    assert_eq!((m.logins, m.keystone_requests), (2, 3), "{m:?}");
}
