//! Helpers for the end-to-end tests in `tests/tests/`: locating the workspace's binaries,
//! running child processes with bounded waits, and reading nodes' `/health`.

pub mod chain;
pub mod cloud;
pub mod dnsmasq;
pub mod hss_api;
pub mod lone_pcscf;
pub mod metrics;
pub mod netns;
pub mod nodes;
pub mod reginfo;
pub mod sipp;
pub mod stunnel;
pub mod third_party;
pub mod uar_hss;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Path of a workspace binary built in the same profile as the running test
/// (`target/<profile>/<name>`; tests live in `target/<profile>/deps/`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}

/// A command for a workspace binary (built by `cargo build --workspace --bins`, which
/// `./scripts/test` runs before the tests) that runs in the repository root, in a process group
/// of its own (so [`kill_group`] reaches its children too), and does not think it runs
/// under cargo.
pub fn command(name: &str) -> Command {
    in_group(Command::new(binary(name)))
}

/// `c` running in the repository root, in a process group of its own, not under cargo
/// (see [`command`]).
pub fn in_group(mut c: Command) -> Command {
    c.current_dir(repo_root()).env_remove("CARGO");
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    c
}

/// SIGKILLs the process group of a child started by [`command`]: the child and every
/// process it started. Used when a test fails, so nothing outlives it.
pub fn kill_group(child: &mut Child) {
    // `--` matters: procps' `kill -KILL -PID` parses -PID as an option and signals
    // every process (kill(-1)); `kill -s KILL -- -PGID` signals the group only.
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--"])
        .arg(format!("-{}", child.id()))
        .status();
    let _ = child.wait();
}

/// Kills the process group of the child when dropped (a failed assertion included).
pub struct GroupGuard(pub Child);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        // The group outlives its leader while any member lives: always sweep it.
        kill_group(&mut self.0);
    }
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// GETs `http://addr/path` and returns the body of a 200 answer.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// GETs `/health` and parses it.
pub fn health(addr: SocketAddr) -> Option<serde_json::Value> {
    serde_json::from_str(http_get(addr, "/health")?.trim()).ok()
}

/// Runs `future` to completion on a runtime of its own thread: the caller may be inside
/// a tokio runtime (`#[tokio::test]`), where blocking on another one is refused. `None`
/// if no runtime can be built; a panic in `future` is resumed in the caller.
pub fn block_on<T: Send>(future: impl std::future::Future<Output = T> + Send) -> Option<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()
                .map(|runtime| runtime.block_on(future))
        })
        .join()
    })
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// An HTTPS client that trusts the CA in the PEM file `ca` and nothing else (no system
/// roots, no proxy): what the dev core's HTTPS listeners are checked against.
pub fn https_client(ca: &std::path::Path) -> Option<reqwest::Client> {
    let pem = std::fs::read(ca).ok()?;
    let mut builder = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .no_proxy()
        .timeout(Duration::from_secs(10));
    for cert in reqwest::Certificate::from_pem_bundle(&pem).ok()? {
        builder = builder.add_root_certificate(cert);
    }
    builder.build().ok()
}

/// GETs `https://addr/path`, the server's certificate checked against the CA in `ca`,
/// and returns the body of a 200 answer.
pub fn https_get(addr: SocketAddr, path: &str, ca: &std::path::Path) -> Option<String> {
    let client = https_client(ca)?;
    let url = format!("https://{addr}{path}");
    block_on(async move {
        let answer = client
            .get(url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        if answer.status() != reqwest::StatusCode::OK {
            return None;
        }
        answer.text().await.ok()
    })
    .flatten()
}

/// Sends a signal to a child (`INT`, `TERM`, `KILL`).
pub fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .args(["-s", sig, "--"])
        .arg(child.id().to_string())
        .status();
}

/// Waits at most `limit` for the child to exit; kills it if it does not.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let status = wait_for(limit, || child.try_wait().ok().flatten());
    if status.is_none() {
        kill_group(child);
    }
    status
}

/// Reads a child's stdout (or stderr) on a thread and waits, at most `limit`, for a line containing
/// `needle`. Returns the lines read so far on failure.
pub fn wait_for_line(
    stdout: impl Read + Send + 'static,
    needle: &str,
    limit: Duration,
) -> Result<(), String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            // Keep draining after the waiter is gone, so the child never writes to a
            // closed pipe.
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + limit;
    let mut seen = String::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return Ok(()),
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => break,
        }
    }
    Err(seen)
}

/// A loopback port that is free for both UDP and TCP right now.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let Ok(tcp) = std::net::TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = tcp.local_addr() else {
            continue;
        };
        if std::net::UdpSocket::bind(addr).is_ok() {
            return addr.port();
        }
    }
    0
}

/// The first of `n` consecutive loopback ports that are free for UDP right now (for
/// `[sip] shard_ports`, shard `i` binding the first one plus `i`).
pub fn free_udp_ports(n: u16) -> u16 {
    for _ in 0..100 {
        let Ok(first) = std::net::UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = first.local_addr() else {
            continue;
        };
        let base = addr.port();
        let rest: Option<Vec<_>> = (1..n)
            .map(|i| {
                let port = base.checked_add(i)?;
                std::net::UdpSocket::bind(("127.0.0.1", port)).ok()
            })
            .collect();
        if rest.is_some() {
            return base;
        }
    }
    0
}

/// A fresh scratch directory for one test.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ims-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// The whole core started by `imsctl up --data-dir <data>` (the dev configs), killed
/// with all its nodes if dropped before [`DevCore::stop`].
pub struct DevCore {
    up: GroupGuard,
}

impl DevCore {
    /// Starts `imsctl up --no-cloud` and waits (at most 60 s) until it reports the core
    /// up.
    pub fn start(data: &std::path::Path) -> Result<DevCore, String> {
        Self::start_with(None, data)
    }

    /// [`DevCore::start`] with the configurations of `config_dir` (the dev ones when
    /// `None`). `--no-cloud`: the tests register without Bearer tokens, and a config
    /// that turns cloud authorization on says `mode = "on"` itself.
    pub fn start_with(
        config_dir: Option<&std::path::Path>,
        data: &std::path::Path,
    ) -> Result<DevCore, String> {
        Self::start_args(config_dir, data, &["--no-cloud"])
    }

    /// `imsctl up` with `up_args` (e.g. none: cloud authorization on when the Keystone
    /// environment is installed); waits at most 180 s (a first Keystone set-up included).
    pub fn start_args(
        config_dir: Option<&std::path::Path>,
        data: &std::path::Path,
        up_args: &[&str],
    ) -> Result<DevCore, String> {
        let mut cmd = command("imsctl");
        if let Some(c) = config_dir {
            cmd.arg("--config-dir").arg(c);
        }
        let child = cmd
            .args(["up", "--data-dir"])
            .arg(data)
            .args(up_args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .map_err(|e| format!("imsctl does not start: {e}"))?;
        let mut up = GroupGuard(child);
        let stdout = up.0.stdout.take().ok_or("no stdout pipe")?;
        wait_for_line(stdout, "IMS core is up", Duration::from_secs(180))
            .map_err(|seen| format!("imsctl up did not report the core up; it printed:\n{seen}"))?;
        Ok(DevCore { up })
    }

    /// Ctrl-C to `imsctl up`, and its exit status (`None` if it did not exit in 30 s).
    pub fn stop(mut self) -> Option<std::process::ExitStatus> {
        signal(&self.up.0, "INT");
        wait_exit(&mut self.up.0, Duration::from_secs(30))
    }
}
