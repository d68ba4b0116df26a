//! `imsctl subscriber --keystone-token` (the real binary) against the HSS provisioning
//! API under cloud authorization, a real Keystone and the real policy service (see
//! `cloud-auth/tests/support`): a tenant admin adds and reads its tenant's subscribers
//! and is refused another tenant's (HTTP 403); no static admin token is accepted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../cloud-auth/tests/support/policyd.rs"]
mod policyd_support;
#[path = "../../cloud-auth/tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use cloud_auth::filter::{FilterSettings, RequestFilter};
use cloud_auth::keystone::TokenValidator;
use hss::provisioning::{router_with_access, Access};
use hss::secrets::StoreKey;
use hss::store::Store;
use policyd_support::Policyd;
use support::Keystone;

/// Runs `imsctl subscriber --url .. <auth> <args>` off the runtime's threads.
async fn imsctl(addr: SocketAddr, auth: [&str; 2], args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imsctl"));
    cmd.args(["--config-dir", "/nonexistent", "subscriber", "--url"])
        .arg(format!("http://{addr}"))
        .args(auth)
        .args(args)
        .env_remove("IMS_HSS_URL")
        .env_remove("IMS_HSS_TOKEN")
        .env_remove("IMS_HSS_KEYSTONE_TOKEN")
        .env_remove("OS_TOKEN");
    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || cmd.output().unwrap()),
    )
    .await
    .expect("imsctl finished in time")
    .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_manages_its_tenants_subscribers_with_its_keystone_token() {
    let Some(ks) = Keystone::start(3600).await else {
        return;
    };
    let svc = Policyd::start(&ks).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("hss.db").display());
    let key = StoreKey::from_hex(&"33".repeat(32), "test").unwrap();
    let store = Store::open(&url, 4, key).await.unwrap();
    let settings = FilterSettings {
        policy_url: svc.base.clone(),
        decision_cache: 100,
        decision_ttl: Duration::from_secs(300),
        verify_timeout: Duration::from_millis(2000),
        policy_ca_pem: None,
    };
    let filter = RequestFilter::new(&settings, TokenValidator::new(ks.config()).unwrap()).unwrap();
    let api = router_with_access(
        store,
        Access::new(None, Some(filter)),
        "ims.example.net",
        None,
    );
    let (addr, task) = ims_runtime::serve_with(
        "127.0.0.1:0".parse().unwrap(),
        ims_runtime::NodeStatus::new("hss-test", "hss"),
        Arc::new(Default::default()),
        api,
    )
    .await
    .unwrap();
    let ada = ks.user_token("ada").await.token;
    let bea = ks.user_token("bea").await.token;
    let as_ada = ["--keystone-token", ada.as_str()];
    let as_bea = ["--keystone-token", bea.as_str()];

    let add = |tenant: &str, user: &str| {
        vec![
            "add".to_owned(),
            "--id".to_owned(),
            user.to_owned(),
            "--impi".to_owned(),
            format!("{user}@ims.example.net"),
            "--impu".to_owned(),
            format!("sip:{user}@ims.example.net"),
            "--password".to_owned(),
            "pw-of-the-subscriber".to_owned(),
            "--project-id".to_owned(),
            tenant.to_owned(),
        ]
    };
    let a_args = add(&ks.tenant_a, "sa");
    let a_args: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let out = imsctl(addr, as_ada, &a_args).await;
    assert!(out.status.success(), "{}", text(&out));
    let b_args = add(&ks.tenant_b, "sb");
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let out = imsctl(addr, as_ada, &b_args).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("HTTP 403"), "{}", text(&out));
    let out = imsctl(addr, as_bea, &b_args).await;
    assert!(out.status.success(), "{}", text(&out));

    let out = imsctl(addr, as_ada, &["show", "sa"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = imsctl(addr, as_ada, &["show", "sb"]).await;
    assert!(text(&out).contains("HTTP 403"), "{}", text(&out));
    let out = imsctl(addr, as_ada, &["list"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let listed = text(&out);
    assert!(listed.contains("sa") && !listed.contains("sb@"), "{listed}");
    // The static admin token is not accepted by this HSS.
    let out = imsctl(addr, ["--token", "some-static-token-0123456789"], &["list"]).await;
    assert!(text(&out).contains("HTTP 401"), "{}", text(&out));

    task.abort();
    drop(svc);
    ks.stop();
}
