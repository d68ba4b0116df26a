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
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    // A free port can be taken by another test between our probe and policyd's bind:
    // then policyd exits (or another server answers), and a fresh port is tried.
    let mut started = None;
    for _ in 0..3 {
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
        let mut child = Running(
            Command::new(env!("CARGO_BIN_EXE_policyd"))
                .arg("--config")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && child.0.try_wait().unwrap().is_none() {
            if let Ok(r) = http.get(format!("{base}/health")).send().await {
                let health: serde_json::Value = r.json().await.unwrap_or_default();
                if health["node"] == "policyd-test" {
                    started = Some((child, base, health));
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if started.is_some() {
            break;
        }
    }
    let (_child, base, health) = started.expect("policyd answered /health on one of 3 ports");
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
