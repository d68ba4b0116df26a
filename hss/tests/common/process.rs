//! The `hss` binary as a child process, for the tests that run it, and free loopback ports.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed and reaped when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP port on 127.0.0.1 that is free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the `hss` binary on `config` in `dir` (the config's relative paths resolve
/// there), logging warnings only, its output discarded.
pub fn start_hss(dir: &Path, config: &Path) -> Running {
    Running(
        Command::new(env!("CARGO_BIN_EXE_hss"))
            .arg("--config")
            .arg(config)
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Waits until `http://{http}/health` answers 2xx, at most `limit`; panics when the
/// process exits first.
pub async fn wait_healthy(hss: &mut Running, http: SocketAddr, limit: Duration) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = hss.0.try_wait().unwrap() {
            panic!("hss exited during start: {status}");
        }
        if let Ok(r) = client.get(format!("http://{http}/health")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "hss did not become healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
