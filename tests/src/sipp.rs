//! Running SIPp (the `sip-tester` package) as a real SIP peer, bounded in calls and time.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::stunnel::Kill;
use crate::{repo_root, wait_exit, wait_for};

/// SIPp transport mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SippTransport {
    /// `-t u1`: UDP, one socket.
    Udp,
    /// `-t t1`: TCP, one connection.
    Tcp,
}

impl SippTransport {
    fn flag(self) -> &'static str {
        match self {
            SippTransport::Udp => "u1",
            SippTransport::Tcp => "t1",
        }
    }
}

/// What a finished SIPp client run reported.
#[derive(Debug)]
pub struct SippResult {
    /// SIPp's exit code: 0 when every call succeeded.
    pub exit_code: Option<i32>,
    /// Cumulative successful calls from the statistics file.
    pub successful: u64,
    /// Cumulative failed calls from the statistics file.
    pub failed: u64,
    /// SIPp's error log, if it wrote one.
    pub errors: String,
}

/// A scenario file under `sipp-scenarios/`.
pub fn scenario(rel: &str) -> PathBuf {
    repo_root().join("sipp-scenarios").join(rel)
}

/// True when the `sipp` binary is installed (`./scripts/test` installs it).
pub fn available() -> bool {
    Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn base(scenario: &Path, local: SocketAddr, transport: SippTransport, workdir: &Path) -> Command {
    let mut c = Command::new("sipp");
    c.current_dir(workdir)
        .arg("-sf")
        .arg(scenario)
        .args(["-i", &local.ip().to_string()])
        .args(["-p", &local.port().to_string()])
        .args(["-t", transport.flag()])
        .args(["-nd", "-trace_err", "-buff_size", "4194304"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Starts a SIPp server that handles at most `calls` calls and quits after
/// `timeout_secs`. Kill it (or let it end) with [`wait_exit`].
pub fn start_uas(
    scenario: &Path,
    local: SocketAddr,
    transport: SippTransport,
    calls: u32,
    timeout_secs: u32,
    workdir: &Path,
) -> std::io::Result<Child> {
    base(scenario, local, transport, workdir)
        .args(["-m", &calls.to_string()])
        .args(["-timeout", &format!("{timeout_secs}s")])
        .spawn()
}

/// A SIPp run in the background (a server, or a registered UE answering calls), with
/// its own statistics; killed if dropped before [`Background::finish`].
pub struct Background {
    child: Kill,
    stats: PathBuf,
    workdir: PathBuf,
    timeout_secs: u32,
}

impl Background {
    /// Starts `scenario` as a UDP server on `local` for at most `calls` calls and
    /// `timeout_secs`, and waits (at most 10 s) until it has bound `local`, so a
    /// request sent afterwards finds it.
    pub fn uas(
        scenario: &Path,
        local: SocketAddr,
        calls: u32,
        timeout_secs: u32,
        workdir: &Path,
    ) -> std::io::Result<Background> {
        let mut c = base(scenario, local, SippTransport::Udp, workdir);
        c.args(["-m", &calls.to_string()]);
        let run = Background::spawn(c, local, timeout_secs, workdir)?;
        // Nothing else may bind the port once SIPp holds it.
        let bound = wait_for(Duration::from_secs(10), || {
            UdpSocket::bind(local).is_err().then_some(())
        });
        match bound {
            Some(()) => Ok(run),
            None => Err(std::io::Error::other(format!("SIPp did not bind {local}"))),
        }
    }

    /// Starts a UE that runs the client `scenario` once toward `remote` with the CSV
    /// `inf` (a registration ending in a `<pause/>`), stays for `stay_ms` (`-d`), and
    /// meanwhile answers requests of other calls with `ooc` (`-oocsf`) over the same
    /// socket or connection: a UE over TCP (or TLS through stunnel) that registers and
    /// is then called.
    #[allow(clippy::too_many_arguments)]
    pub fn registered_ue(
        scenario: &Path,
        ooc: &Path,
        remote: SocketAddr,
        inf: &Path,
        local: SocketAddr,
        transport: SippTransport,
        stay_ms: u32,
        workdir: &Path,
    ) -> std::io::Result<Background> {
        let mut c = base(scenario, local, transport, workdir);
        c.arg(remote.to_string())
            .arg("-oocsf")
            .arg(ooc)
            .arg("-inf")
            .arg(inf)
            .args(["-m", "1", "-d", &stay_ms.to_string()]);
        Background::spawn(c, local, stay_ms / 1000 + 30, workdir)
    }

    fn spawn(
        mut c: Command,
        local: SocketAddr,
        timeout_secs: u32,
        workdir: &Path,
    ) -> std::io::Result<Background> {
        let stats = workdir.join(format!("sipp-{}.csv", local.port()));
        let child = c
            .args(["-timeout", &format!("{timeout_secs}s")])
            .args(["-timeout_error", "-trace_stat", "-fd", "1", "-stf"])
            .arg(&stats)
            .spawn()?;
        Ok(Background {
            child: Kill(child),
            stats,
            workdir: workdir.to_path_buf(),
            timeout_secs,
        })
    }

    /// Waits for the run to end (its calls done, or its timeout) and reports.
    pub fn finish(mut self) -> SippResult {
        let status = wait_exit(
            &mut self.child.0,
            Duration::from_secs(u64::from(self.timeout_secs) + 10),
        );
        result(status, &self.stats, &self.workdir)
    }
}

/// Runs a SIPp client to completion: `calls` calls at `rate` per second toward `remote`
/// (which names the final target in the Request-URI), sending to `send_to` (the proxy)
/// when given. Bounded by `timeout_secs`.
#[allow(clippy::too_many_arguments)]
pub fn run_uac(
    scenario: &Path,
    remote: SocketAddr,
    send_to: Option<SocketAddr>,
    local: SocketAddr,
    transport: SippTransport,
    calls: u32,
    rate: u32,
    timeout_secs: u32,
    workdir: &Path,
) -> std::io::Result<SippResult> {
    run_uac_inf(
        scenario,
        remote,
        send_to,
        None,
        local,
        transport,
        calls,
        rate,
        timeout_secs,
        workdir,
    )
}

/// [`run_uac`] with an injection file (`-inf`): call `i` takes its `[fieldN]` values from
/// line `i` of the CSV (`SEQUENTIAL`).
#[allow(clippy::too_many_arguments)]
pub fn run_uac_inf(
    scenario: &Path,
    remote: SocketAddr,
    send_to: Option<SocketAddr>,
    inf: Option<&Path>,
    local: SocketAddr,
    transport: SippTransport,
    calls: u32,
    rate: u32,
    timeout_secs: u32,
    workdir: &Path,
) -> std::io::Result<SippResult> {
    let stats = workdir.join(format!("uac-{}.csv", local.port()));
    let mut c = base(scenario, local, transport, workdir);
    if let Some(inf) = inf {
        c.arg("-inf").arg(inf);
    }
    c.arg(remote.to_string())
        .args(["-m", &calls.to_string()])
        .args(["-r", &rate.to_string()])
        .args(["-timeout", &format!("{timeout_secs}s")])
        .args(["-timeout_error", "-trace_stat", "-fd", "1", "-stf"])
        .arg(&stats);
    if let Some(proxy) = send_to {
        c.args(["-rsa", &proxy.to_string()]);
    }
    let mut child = c.spawn()?;
    let status = wait_exit(
        &mut child,
        Duration::from_secs(u64::from(timeout_secs) + 10),
    );
    Ok(result(status, &stats, workdir))
}

/// What a finished SIPp run reported: its exit status, its statistics file, the error
/// logs in its work directory.
fn result(status: Option<std::process::ExitStatus>, stats: &Path, workdir: &Path) -> SippResult {
    let (successful, failed) = read_stats(stats);
    let errors = std::fs::read_dir(workdir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect::<Vec<_>>()
        .join("\n");
    SippResult {
        exit_code: status.and_then(|s| s.code()),
        successful,
        failed,
        errors,
    }
}

/// Reads the cumulative SuccessfulCall(C)/FailedCall(C) columns of the last line of a
/// SIPp statistics file.
fn read_stats(path: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return (0, 0);
    };
    let Some(last) = lines.next_back() else {
        return (0, 0);
    };
    let cols: Vec<&str> = header.split(';').collect();
    let vals: Vec<&str> = last.split(';').collect();
    let get = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .and_then(|i| vals.get(i))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (get("SuccessfulCall(C)"), get("FailedCall(C)"))
}
