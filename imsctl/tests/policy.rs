//! `imsctl policy` against the policy service (in process, SQLite) with a real Keystone on
//! 127.0.0.1 (cloud-auth's test fixtures): a tenant admin writes, reads, lists and deletes
//! its tenant's policies; a member is refused; a service without Keystone refuses all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../cloud-auth/tests/support/policyd.rs"]
mod policyd_support;
#[path = "../../cloud-auth/tests/support/mod.rs"]
mod support;

use std::process::Output;

use policyd_support::Policyd;
use serde_json::Value;

async fn imsctl(url: &str, token: &str, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imsctl"));
    cmd.args([
        "--config-dir",
        "/nonexistent",
        "policy",
        "--url",
        url,
        "--token",
        token,
    ])
    .args(args)
    .env_remove("IMS_POLICYD_URL")
    .env_remove("IMS_POLICY_TOKEN")
    .env_remove("OS_TOKEN");
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::task::spawn_blocking(move || cmd.output().unwrap()),
    )
    .await
    .expect("imsctl finished in time")
    .unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_admin_manages_its_policies_with_imsctl() {
    let Some(ks) = support::Keystone::start(3600).await else {
        return;
    };
    let svc = Policyd::start(&ks).await;
    let url = &svc.base;
    let dir = tempfile::tempdir().unwrap();
    let a = ks.tenant_a.clone();
    let ada = ks.user_token("ada").await.token;
    let alice = ks.user_token("alice").await.token;

    let put = [
        "put",
        "root",
        "--tenant",
        &a,
        "--enforcer",
        "default",
        "--rules",
        r#"{"INVITE": "role:member"}"#,
    ];
    let v = json_of(&imsctl(url, &ada, &put).await);
    assert_eq!(
        (v["version"].as_i64(), v["tenant"].as_str()),
        (Some(1), Some(a.as_str()))
    );
    let cedar = dir.path().join("inbound.cedar");
    std::fs::write(
        &cedar,
        r#"permit(principal, action == Ims::Action::"INVITE", resource);"#,
    )
    .unwrap();
    let cedar = cedar.display().to_string();
    let put_cedar = [
        "put",
        "inbound",
        "--tenant",
        &a,
        "--enforcer",
        "custom",
        "--rules-file",
        &cedar,
    ];
    assert_eq!(
        json_of(&imsctl(url, &ada, &put_cedar).await)["enforcer"],
        "custom"
    );

    let shown = json_of(&imsctl(url, &ada, &["show", "root", "--tenant", &a]).await);
    assert_eq!(shown["rules"]["INVITE"], "role:member");
    let listed = json_of(&imsctl(url, &ada, &["list", "--tenant", &a]).await);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    json_of(&imsctl(url, &ada, &["delete", "root", "--tenant", &a]).await);
    let history = json_of(&imsctl(url, &ada, &["versions", "root", "--tenant", &a]).await);
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert_eq!(history[1]["deleted"], true);

    // A member is refused, and imsctl says why and fails.
    let out = imsctl(url, &alice, &put).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HTTP 403"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keystone_every_call_is_refused() {
    let svc = Policyd::without_keystone().await;
    let out = imsctl(&svc.base, "anything", &["list"]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HTTP 503") && err.contains("no Keystone configured"),
        "{err}"
    );
}
