//! The chain with cloud authorization on toward a Keystone of the test's own
//! (`cloud-auth/tests/support`): the dev configs turned on toward it, and tenant
//! policies put through `policyd`'s API. Shared by `tests/tests/cloud_auth_chain.rs` and
//! `tests/tests/reg_event_cloud.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::chain::POLICYD_HTTP;
use crate::repo_root;

/// The Keystone the configs point at: its URL, the service user the nodes log in as
/// and its password.
#[derive(Debug, Clone, Copy)]
pub struct KeystoneAccount<'a> {
    /// `http://host:port/v3`.
    pub url: &'a str,
    /// The service user's name.
    pub service_user: &'a str,
    /// The service user's password.
    pub service_password: &'a str,
}

/// The dev configs in `dir/config` with cloud authorization on (`mode = "on"`),
/// pointed at `keystone`, with a Keystone cache of `ttl_s` seconds (the CSCFs and
/// policyd); returns that config directory.
pub fn configs(dir: &Path, keystone: KeystoneAccount<'_>, ttl_s: u64) -> PathBuf {
    let out = dir.join("config");
    std::fs::create_dir_all(&out).unwrap();
    for node in ["hss", "icscf", "pcscf", "scscf", "policyd"] {
        let mut text =
            std::fs::read_to_string(repo_root().join(format!("config/dev/{node}.toml"))).unwrap();
        if matches!(node, "pcscf" | "scscf" | "policyd") {
            let mut password = format!("service_password = \"{}\"", keystone.service_password);
            if node == "policyd" {
                text = text.replace("cache_ttl_secs = 60", &format!("cache_ttl_secs = {ttl_s}"));
            } else {
                password.push_str(&format!("\ncache_ttl_secs = {ttl_s}"));
            }
            for (from, to) in [
                ("mode = \"${IMS_CLOUD_AUTH:-off}\"", "mode = \"on\""),
                (
                    "${IMS_KEYSTONE_URL:-http://127.0.0.1:5000/v3}",
                    keystone.url,
                ),
                (
                    "service_password_file = \"${IMS_DATA_DIR:-data}/keystone/service.password\"",
                    &password,
                ),
            ] {
                assert!(text.contains(from), "{node}.toml has {from}");
                text = text.replace(from, to);
            }
            assert!(text.contains(&format!("cache_ttl_secs = {ttl_s}")));
            assert!(
                text.contains(&format!("service_user = \"{}\"", keystone.service_user)),
                "{node}.toml names the fixture's service user"
            );
        }
        std::fs::write(out.join(format!("{node}.toml")), text).unwrap();
    }
    out
}

/// `PUT /v1/policies/<name>?tenant=<tenant>` with `body` and `admin_token` (a token
/// of a tenant admin of that tenant), over HTTPS checked against the dev CA of the
/// core's data directory `data`; the status.
pub async fn put_policy(
    data: &Path,
    admin_token: &str,
    tenant: &str,
    name: &str,
    body: Value,
) -> reqwest::StatusCode {
    crate::https_client(&data.join("tls/ca.crt"))
        .expect("the dev CA")
        .put(format!(
            "https://127.0.0.1:{POLICYD_HTTP}/v1/policies/{name}?tenant={tenant}"
        ))
        .header("X-Auth-Token", admin_token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
}

/// The root policy of `tenant` (created or replaced) with `rules` (`default`
/// enforcer), put with `admin_token`; asserts it was taken.
pub async fn put_root(data: &Path, admin_token: &str, tenant: &str, rules: Value) {
    let body = json!({"enforcer": "default", "rules": rules});
    let status = put_policy(data, admin_token, tenant, "root", body).await;
    assert!(
        status == 200 || status == 201,
        "PUT root policy of {tenant}: {status}"
    );
}
