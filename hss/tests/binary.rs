//! The `hss` binary: first start generates its secrets and database, provisioned data
//! survives a restart, and a configuration whose key is missing is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/process.rs"]
mod process;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use process::{free_port, start_hss, wait_healthy};
use serde_json::{json, Value};

fn config(dir: &Path, port: u16, security: &str) -> std::path::PathBuf {
    let path = dir.join("hss.toml");
    std::fs::write(
        &path,
        format!(
            "[node]\nname = \"hss-test\"\ndomain = \"ims.example.net\"\n\
             [http]\nlisten = \"127.0.0.1:{port}\"\n\
             [store]\nurl = \"sqlite://data/hss.db\"\n\
             [provisioning]\nadmin_token_file = \"data/admin.token\"\n\
             [security]\n{security}\n"
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn provisioned_data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = config(
        dir.path(),
        port,
        "key_file = \"data/store.key\"\ngenerate_missing = true",
    );
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let mut hss = start_hss(dir.path(), &cfg);
    wait_healthy(&mut hss, addr, Duration::from_secs(30)).await;
    let token = std::fs::read_to_string(dir.path().join("data/admin.token")).unwrap();
    let token = token.trim();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["data/hss.db", "data/admin.token", "data/store.key"] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }
    let key = std::fs::read_to_string(dir.path().join("data/store.key")).unwrap();
    let body = json!({
        "id": "alice",
        "private_identities": [{"impi": "alice@ims.example.net", "password": "pw",
            "aka": {"k": "465b5ce8b199b49faa5f0a2ee238a6bc", "opc": "cd63cb71954a9f4e48a5994e37a02baf"}}],
        "public_identities": [{"impu": "sip:alice@ims.example.net"}]
    });
    let r = client
        .post(format!("http://{addr}/api/v1/subscribers"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    drop(hss);

    let mut hss = start_hss(dir.path(), &cfg);
    wait_healthy(&mut hss, addr, Duration::from_secs(30)).await;
    assert_eq!(
        std::fs::read_to_string(dir.path().join("data/store.key")).unwrap(),
        key,
        "the key is not regenerated"
    );
    let health: Value = client
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["subscribers_at_start"], 1);
    let got: Value = client
        .get(format!("http://{addr}/api/v1/subscribers/alice"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, created);
    let unauth = client
        .get(format!("http://{addr}/api/v1/subscribers/alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status(), 401);
}

#[test]
fn missing_key_is_refused_without_generation() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), free_port(), "key_file = \"data/store.key\"");
    let out = Command::new(env!("CARGO_BIN_EXE_hss"))
        .arg("--config")
        .arg(&cfg)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("store key") && err.contains("data/store.key"),
        "{err}"
    );
    assert!(!dir.path().join("data/store.key").exists());
    assert!(
        !dir.path().join("data/hss.db").exists(),
        "no database without a key"
    );

    let cfg = config(dir.path(), free_port(), "");
    let out = Command::new(env!("CARGO_BIN_EXE_hss"))
        .arg("--config")
        .arg(&cfg)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("security.key_file"), "{err}");
}
