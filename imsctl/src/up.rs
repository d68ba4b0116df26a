//! `imsctl up`: start and supervise every node on loopback.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use ims_config::NodeKind;
use tokio::process::{Child, Command};

use crate::demo::{self, Demo};
use crate::devca::DevCa;
use crate::health;
use crate::keystone;

struct Running {
    kind: NodeKind,
    child: Child,
    log: PathBuf,
}

/// Whether `imsctl up` runs with cloud authorization (`--cloud`, `--no-cloud`, neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// On when the Keystone environment is installed (`scripts/keystone/setup`).
    Auto,
    /// On; the Keystone environment is installed first if missing.
    On,
    /// Off.
    Off,
}

impl Cloud {
    /// From `--cloud` and `--no-cloud` (which exclude each other).
    pub fn from_flags(cloud: bool, no_cloud: bool) -> Cloud {
        match (cloud, no_cloud) {
            (true, _) => Cloud::On,
            (_, true) => Cloud::Off,
            _ => Cloud::Auto,
        }
    }

    fn wanted(self, installed: bool) -> bool {
        match self {
            Cloud::On => true,
            Cloud::Off => false,
            Cloud::Auto => installed,
        }
    }
}

/// The environment variable the dev configs read `[cloud_auth] mode` from.
const CLOUD_AUTH: &str = "IMS_CLOUD_AUTH";
/// The environment variable the dev configs read the Keystone URL from.
const KEYSTONE_URL: &str = "IMS_KEYSTONE_URL";

/// With cloud authorization on: policyd and HSS first, then S-CSCF, I-CSCF and P-CSCF,
/// after a local Keystone with the demo. Waits until each node answers on `/health`,
/// then supervises them until Ctrl-C (or until one exits).
pub async fn run(
    config_dir: &Path,
    data_dir: &Path,
    health_timeout: u64,
    cloud: Cloud,
) -> anyhow::Result<()> {
    // Listen for Ctrl-C/SIGTERM from the start, so a signal during start-up still stops
    // the nodes already running instead of killing imsctl and orphaning them.
    let mut stop = Stop::install()?;
    let data_dir = &std::path::absolute(data_dir)
        .with_context(|| format!("resolving {}", data_dir.display()))?;
    // The dev configs name every file under ${IMS_DATA_DIR:-data}: read them (the HSS's
    // admin token for the demo) as the nodes do. Set before anything else runs.
    std::env::set_var("IMS_DATA_DIR", data_dir);
    let pcscf: ims_config::PcscfConfig = ims_config::load(&config_dir.join("pcscf.toml"))?;
    let diameter = diameter_hosts(config_dir)?;
    let nodes: Vec<(&str, Vec<String>)> = NodeKind::ALL
        .iter()
        .map(|k| {
            let extra = diameter.iter().filter(|(n, _)| *n == k.name());
            (k.name(), extra.map(|(_, host)| host.clone()).collect())
        })
        .collect();
    let (ca, generated) = DevCa::ensure(data_dir, &pcscf.node.domain, &nodes)?;
    if generated {
        println!(
            "generated dev CA and node certificates in {}",
            ca.dir.display()
        );
    }
    let bin_dir = binaries().await?;
    let cloud_on = cloud.wanted(keystone::installed());
    if cloud == Cloud::Auto && !cloud_on {
        println!(
            "cloud authorization OFF: no Keystone environment (scripts/keystone/setup, or \
             imsctl up --cloud, installs it)"
        );
    }
    let keystone = if cloud_on {
        tokio::select! {
            r = start_keystone(data_dir, &pcscf.node.domain) => Some(r?),
            () = stop.recv() => bail!("interrupted during start-up"),
        }
    } else {
        None
    };
    let log_dir = data_dir.join("logs");
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let launch = Launch {
        bin_dir,
        config_dir,
        data_dir: data_dir.clone(),
        log_dir: log_dir.clone(),
        ca: ca.dir.join("ca.crt"),
        health_timeout,
        keystone_url: keystone.as_ref().map(|(k, _)| k.url.clone()),
    };

    let mut running: Vec<Running> = Vec::new();
    for kind in NodeKind::ALL {
        let started = tokio::select! {
            r = start(kind, &launch) => r,
            () = stop.recv() => Err(anyhow::anyhow!("interrupted during start-up")),
        };
        match started {
            Ok(r) => running.push(r),
            Err(e) => {
                stop_all(&mut running).await;
                return Err(e);
            }
        }
    }
    if let Some((_, demo)) = &keystone {
        if let Err(e) = demo::provision(demo, config_dir, &launch.ca).await {
            stop_all(&mut running).await;
            return Err(e.context("provisioning the demo tenants and subscribers"));
        }
    }
    println!();
    if let Some((_, demo)) = &keystone {
        println!("{}", demo.summary());
    }
    println!(
        "IMS core is up (Ctrl-C stops it). P-CSCF for UEs: {}",
        ue_listeners(&pcscf)
    );
    println!(
        "dev CA: {}   logs: {}   status: imsctl status",
        ca.dir.join("ca.crt").display(),
        log_dir.display()
    );

    let exited = tokio::select! {
        () = stop.recv() => None,
        kind = first_exit(&mut running) => Some(kind),
    };
    stop_all(&mut running).await;
    drop(keystone);
    if let Some(kind) = exited {
        bail!(
            "{} exited unexpectedly; see {}",
            kind.name(),
            log_dir.join(format!("{}.log", kind.name())).display()
        );
    }
    Ok(())
}

/// Starts the local Keystone; in a new instance creates the demo (users, tenants, the
/// service user) and writes its credentials under `data`, else reads them.
async fn start_keystone(data: &Path, domain: &str) -> anyhow::Result<(keystone::Instance, Demo)> {
    println!("keystone starting on 127.0.0.1:{} ...", keystone::PORT);
    let (instance, fresh) = keystone::Instance::start(data).await?;
    let demo = if fresh {
        let demo = keystone::create_demo(&instance.url, domain).await?;
        demo.write(data)?;
        keystone::write_admin_env(data, &demo.admin_password)?;
        demo
    } else {
        Demo::read(data).with_context(|| {
            format!(
                "the Keystone instance in {} has no demo file: remove {} to start anew",
                data.join("keystone/instance").display(),
                data.join("keystone").display()
            )
        })?
    };
    println!("keystone up   ({})", instance.url);
    Ok((instance, demo))
}

/// The Diameter Origin-Hosts of the HSS, I-CSCF and S-CSCF (by node name): their dev
/// certificates must name them, since the HSS binds a CSCF's Origin-Host to its client
/// certificate and the CSCFs check the HSS's against `destination_host`.
fn diameter_hosts(config_dir: &Path) -> anyhow::Result<Vec<(&'static str, String)>> {
    let icscf: ims_config::IcscfConfig = ims_config::load(&config_dir.join("icscf.toml"))?;
    let scscf: ims_config::ScscfConfig = ims_config::load(&config_dir.join("scscf.toml"))?;
    let hss: ims_config::HssConfig = ims_config::load(&config_dir.join("hss.toml"))?;
    let mut hosts = vec![
        ("icscf", icscf.cx.origin_host),
        ("scscf", scscf.cx.origin_host),
    ];
    hosts.extend(hss.diameter.map(|d| ("hss", d.origin_host)));
    Ok(hosts)
}

fn ue_listeners(c: &ims_config::PcscfConfig) -> String {
    let mut parts = Vec::new();
    parts.extend(c.sip.tls.iter().map(|a| format!("tls {a}")));
    parts.extend(c.sip.tcp.iter().map(|a| format!("tcp {a}")));
    parts.extend(c.sip.udp.iter().map(|a| format!("udp {a}")));
    parts.join(", ")
}

/// Directory of the node binaries: beside `imsctl`. Under `cargo run`, builds them first
/// with the same profile so one command is enough: every binary of the workspace in one
/// invocation, with the workspace's feature set (`scripts/up` does the same before it
/// starts `imsctl`, so nothing is built twice there).
async fn binaries() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating imsctl")?;
    let dir = exe
        .parent()
        .context("imsctl has no parent directory")?
        .to_path_buf();
    if let Ok(cargo) = std::env::var("CARGO") {
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--workspace", "--bins"]);
        if release {
            cmd.arg("--release");
        }
        println!("building node binaries ...");
        let status = cmd.status().await.context("running cargo build")?;
        anyhow::ensure!(status.success(), "cargo build failed");
    }
    Ok(dir)
}

/// Where the nodes' binaries, configs and data are.
struct Launch<'a> {
    bin_dir: PathBuf,
    config_dir: &'a Path,
    /// Absolute, handed to the nodes as `IMS_DATA_DIR` (the dev configs use it).
    data_dir: PathBuf,
    log_dir: PathBuf,
    /// The dev CA, trusted for the nodes' HTTPS listeners.
    ca: PathBuf,
    health_timeout: u64,
    /// The local Keystone when cloud authorization is on.
    keystone_url: Option<String>,
}

async fn start(kind: NodeKind, launch: &Launch<'_>) -> anyhow::Result<Running> {
    let Launch {
        bin_dir,
        config_dir,
        data_dir,
        log_dir,
        ca,
        health_timeout,
        keystone_url,
    } = launch;
    let health_timeout = *health_timeout;
    let name = kind.name();
    let bin = bin_dir.join(name);
    anyhow::ensure!(
        bin.exists(),
        "{} not found (build the workspace first: cargo build --release)",
        bin.display()
    );
    let config = config_dir.join(format!("{name}.toml"));
    let log = log_dir.join(format!("{name}.log"));
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening {}", log.display()))?;
    let mut command = Command::new(&bin);
    command
        .arg("--config")
        .arg(&config)
        .env("IMS_DATA_DIR", data_dir);
    match keystone_url {
        Some(url) => command.env(CLOUD_AUTH, "on").env(KEYSTONE_URL, url),
        None => command.env(CLOUD_AUTH, "off").env_remove(KEYSTONE_URL),
    };
    let child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut r = Running { kind, child, log };
    let health = health::HealthUrl::of(config_dir, kind, Some(ca.as_path()))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(health_timeout);
    loop {
        if let Some(status) = r.child.try_wait()? {
            bail!(
                "{name} exited during start ({status}); last log lines:\n{}",
                tail(&r.log)
            );
        }
        if health.fetch().await.is_ok() {
            println!("{name:<6} up   (health {}/health)", health.base);
            return Ok(r);
        }
        if tokio::time::Instant::now() > deadline {
            stop_all(std::slice::from_mut(&mut r)).await;
            bail!(
                "{name} did not answer on {}/health within {health_timeout} s",
                health.base
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// SIGINT and SIGTERM.
struct Stop {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Stop {
    fn install() -> anyhow::Result<Stop> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Stop {
            int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {},
            _ = self.term.recv() => {},
        }
    }
}

async fn first_exit(running: &mut [Running]) -> NodeKind {
    loop {
        for r in running.iter_mut() {
            if let Ok(Some(_)) = r.child.try_wait() {
                return r.kind;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// SIGTERM every child (reverse start order), give them 5 s, then kill what is left.
async fn stop_all(running: &mut [Running]) {
    for r in running.iter_mut().rev() {
        if let Some(pid) = r.child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
    }
    for r in running.iter_mut().rev() {
        if tokio::time::timeout(Duration::from_secs(5), r.child.wait())
            .await
            .is_err()
        {
            let _ = r.child.kill().await;
        }
        println!("{:<6} stopped", r.kind.name());
    }
}

#[cfg(test)]
mod tests {
    use super::Cloud;

    #[test]
    fn cloud_authorization_is_on_by_default_only_when_keystone_is_installed() {
        assert!(Cloud::from_flags(false, false).wanted(true));
        assert!(!Cloud::from_flags(false, false).wanted(false));
        assert!(Cloud::from_flags(true, false).wanted(false));
        assert!(!Cloud::from_flags(false, true).wanted(true));
    }
}
