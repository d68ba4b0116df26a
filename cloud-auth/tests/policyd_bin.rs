//! The `policyd` binary with cloud auth off (no `[keystone]`): it starts, creates its
//! store, says `"keystone": "off"` on `/health` and refuses every API call with 503.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn without_keystone_it_starts_and_refuses_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = dir.path().join("policyd.toml");
    std::fs::write(
        &config,
        format!(
            "[node]\nname = \"policyd-test\"\ndomain = \"ims.example.net\"\n\
             [http]\nlisten = \"127.0.0.1:{port}\"\n\
             [store]\nurl = \"sqlite://{}/db/policy.db\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let _child = Running(
        Command::new(env!("CARGO_BIN_EXE_policyd"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let health: serde_json::Value = loop {
        if let Ok(r) = http.get(format!("{base}/health")).send().await {
            break r.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "policyd did not answer in 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health["keystone"], "off");
    assert_eq!(health["policies_at_start"], 4, "the built-in globals");
    assert!(dir.path().join("db/policy.db").exists());
    for (method, path) in [
        (reqwest::Method::GET, "/v1/policies"),
        (reqwest::Method::POST, "/v1/verify"),
        (reqwest::Method::GET, "/v1/feed"),
        (reqwest::Method::PUT, "/v1/policies/root?tenant=p1"),
    ] {
        let r = http
            .request(method, format!("{base}{path}"))
            .header("X-Auth-Token", "whatever")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "{path}");
    }
}
