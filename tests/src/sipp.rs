//! Running SIPp (the `sip-tester` package) as a real SIP peer, bounded in calls and time.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use ims_sip::auth::aka::AkaNonce;
use ims_sip::auth::milenage::Milenage;

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
    /// SIPp's message trace (`-trace_msg`), when asked for.
    pub messages: String,
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

/// The network namespace SIPp runs in, when not the test's own ([`run_in_netns`]).
static NETNS: Mutex<Option<String>> = Mutex::new(None);

/// Runs every later SIPp of this test process in the network namespace `netns` (`ip
/// netns exec`), or in the test's own again with `None`: the UEs of
/// `tests/tests/deployment_netns.rs` live in a namespace of their own. Process-wide
/// (nextest runs each test in a process of its own).
pub fn run_in_netns(netns: Option<&str>) {
    if let Ok(mut ns) = NETNS.lock() {
        *ns = netns.map(String::from);
    }
}

/// The namespace of [`run_in_netns`].
fn netns() -> Option<String> {
    NETNS.lock().ok().and_then(|ns| ns.clone())
}

fn base(scenario: &Path, local: SocketAddr, transport: SippTransport, workdir: &Path) -> Command {
    let mut c = match netns() {
        // `ip netns exec` execs SIPp: the child's pid is SIPp's.
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &ns, "sipp"]);
            c
        }
        None => Command::new("sipp"),
    };
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
    /// `timeout_secs`, tracing every message when `trace_msg` (`-trace_msg`: then
    /// [`SippResult::messages`] holds what it received and sent), and waits (at most
    /// 10 s) until it has bound `local`, so a request sent afterwards finds it.
    pub fn uas(
        scenario: &Path,
        local: SocketAddr,
        calls: u32,
        timeout_secs: u32,
        workdir: &Path,
        trace_msg: bool,
    ) -> std::io::Result<Background> {
        let mut c = base(scenario, local, SippTransport::Udp, workdir);
        c.args(["-m", &calls.to_string()]);
        if trace_msg {
            c.arg("-trace_msg");
        }
        let run = Background::spawn(c, local, timeout_secs, workdir)?;
        let bound = wait_for(Duration::from_secs(10), || udp_bound(local).then_some(()));
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
        let c = base(scenario, local, transport, workdir);
        Background::ue(c, ooc, remote, inf, local, stay_ms, workdir)
    }

    /// [`Background::registered_ue`] over UDP tracing every message (`-trace_msg`: then
    /// [`SippResult::messages`] holds what it received and sent, the out-of-call
    /// requests too).
    pub fn registered_ue_traced(
        scenario: &Path,
        ooc: &Path,
        remote: SocketAddr,
        inf: &Path,
        local: SocketAddr,
        stay_ms: u32,
        workdir: &Path,
    ) -> std::io::Result<Background> {
        let mut c = base(scenario, local, SippTransport::Udp, workdir);
        c.arg("-trace_msg");
        Background::ue(c, ooc, remote, inf, local, stay_ms, workdir)
    }

    fn ue(
        mut c: Command,
        ooc: &Path,
        remote: SocketAddr,
        inf: &Path,
        local: SocketAddr,
        stay_ms: u32,
        workdir: &Path,
    ) -> std::io::Result<Background> {
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

/// True when some socket holds the UDP address `local` (in SIPp's namespace).
fn udp_bound(local: SocketAddr) -> bool {
    match netns() {
        Some(ns) => crate::netns::listening(&ns, "udp", local),
        // Nothing else may bind the port once SIPp holds it.
        None => UdpSocket::bind(local).is_err(),
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
    let run = Run {
        scenario,
        remote,
        send_to,
        inf,
        local,
        transport,
        calls,
        rate,
        timeout_secs,
    };
    run_client(&run, false, workdir)
}

/// [`run_uac_inf`] at 50 calls per second without a proxy, tracing every message
/// (`-trace_msg`: then [`SippResult::messages`] holds what it received and sent).
#[allow(clippy::too_many_arguments)]
pub fn run_uac_traced(
    scenario: &Path,
    remote: SocketAddr,
    inf: &Path,
    local: SocketAddr,
    calls: u32,
    timeout_secs: u32,
    workdir: &Path,
) -> std::io::Result<SippResult> {
    let run = Run {
        scenario,
        remote,
        send_to: None,
        inf: Some(inf),
        local,
        transport: SippTransport::Udp,
        calls,
        rate: 50,
        timeout_secs,
    };
    run_client(&run, true, workdir)
}

/// One SIPp client run.
struct Run<'a> {
    scenario: &'a Path,
    remote: SocketAddr,
    send_to: Option<SocketAddr>,
    inf: Option<&'a Path>,
    local: SocketAddr,
    transport: SippTransport,
    calls: u32,
    rate: u32,
    timeout_secs: u32,
}

/// Runs `run` in `workdir`, tracing every message when `trace_msg`.
fn run_client(run: &Run<'_>, trace_msg: bool, workdir: &Path) -> std::io::Result<SippResult> {
    let Run {
        scenario,
        remote,
        send_to,
        inf,
        local,
        transport,
        calls,
        rate,
        timeout_secs,
    } = *run;
    let stats = workdir.join(format!("uac-{}.csv", local.port()));
    let mut c = base(scenario, local, transport, workdir);
    if trace_msg {
        c.arg("-trace_msg");
    }
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
/// and message logs in its work directory.
fn result(status: Option<std::process::ExitStatus>, stats: &Path, workdir: &Path) -> SippResult {
    let (successful, failed) = read_stats(stats);
    SippResult {
        exit_code: status.and_then(|s| s.code()),
        successful,
        failed,
        errors: read_logs(workdir, "_errors.log"),
        messages: read_logs(workdir, "_messages.log"),
    }
}

/// The SIPp logs in `workdir` whose names end with `suffix`, joined.
pub fn read_logs(workdir: &Path, suffix: &str) -> String {
    std::fs::read_dir(workdir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect::<Vec<_>>()
        .join("\n")
}

/// SIPp 3.6 (Debian's `sip-tester` 3.6.1) hashes an AKAv1-MD5 RES only up to its first
/// zero octet (the RES reaches the Digest computation as a C string), so it answers
/// wrongly, and a correct S-CSCF refuses with 403 (TS 24.229 §5.4.1.2.3), every AKA
/// challenge whose 8-octet RES holds a 0x00: 1 - (255/256)^8, about 3 % of them. True
/// when `nonce`, the nonce of an AKA 401 (RFC 3310: base64 of RAND ‖ AUTN ‖ ...), is
/// such a challenge for a USIM with keys `k` and `op`.
pub fn sipp_misanswers_aka(nonce: &str, k: &[u8; 16], op: &[u8; 16]) -> bool {
    AkaNonce::parse(nonce)
        .map(|n| Milenage::with_op(k, op).f2345(&n.rand).res.contains(&0))
        .unwrap_or(false)
}

/// The nonces of the challenges, in a SIPp message trace, whose answer was refused with
/// 403: per Call-ID, the nonce of the last 401 received before a 403.
pub fn refused_nonces(messages: &str) -> Vec<String> {
    let mut last_nonce: HashMap<&str, &str> = HashMap::new();
    let mut refused = Vec::new();
    // Each traced message starts after a line of dashes and a "... message ..." line.
    for msg in messages.split("\n----------") {
        let mut lines = msg.lines().map(str::trim).filter(|l| !l.is_empty());
        let status = lines
            .find(|l| l.starts_with("SIP/2.0 ") || l.contains(" sip:"))
            .and_then(|l| l.strip_prefix("SIP/2.0 "))
            .and_then(|l| l.get(..3));
        let header = |name: &str| {
            msg.lines().find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
            })
        };
        let Some(call_id) = header("Call-ID") else {
            continue;
        };
        match status {
            Some("401") => {
                let nonce = header("WWW-Authenticate")
                    .and_then(|v| v.split("nonce=\"").nth(1))
                    .and_then(|v| v.split('"').next());
                if let Some(n) = nonce {
                    last_nonce.insert(call_id, n);
                }
            }
            Some("403") => {
                if let Some(n) = last_nonce.remove(call_id) {
                    refused.push(n.to_string());
                }
            }
            _ => {}
        }
    }
    refused
}

/// [`run_uac_inf`] of an AKA registration scenario for USIM keys `k` and `op`, around
/// SIPp's defect ([`sipp_misanswers_aka`]): a run whose every unsuccessful call got a 403
/// to a challenge SIPp cannot answer is run again, at most `attempts` times in all. Any
/// other failure, and the last attempt, are returned as they are.
#[allow(clippy::too_many_arguments)]
pub fn run_aka_uac(
    scenario: &Path,
    entry: SocketAddr,
    inf: &Path,
    local: SocketAddr,
    transport: SippTransport,
    calls: u32,
    keys: (&[u8; 16], &[u8; 16]),
    attempts: u32,
    workdir: &Path,
) -> std::io::Result<SippResult> {
    let run = Run {
        scenario,
        remote: entry,
        send_to: None,
        inf: Some(inf),
        local,
        transport,
        calls,
        rate: 50,
        // A misanswered call over TCP only ends with the run: keep that short.
        timeout_secs: 20,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let dir = workdir.join(format!("aka-{attempt}"));
        std::fs::create_dir_all(&dir)?;
        let r = run_client(&run, true, &dir)?;
        let refused = refused_nonces(&r.messages);
        // A refused call ends as failed (UDP, after SIPp's retransmissions) or not at
        // all (TCP: it waits for a 200 until the run's timeout).
        let unsuccessful = u64::from(calls).saturating_sub(r.successful);
        let only_sipp_defect = unsuccessful > 0
            && refused.len() as u64 == unsuccessful
            && refused
                .iter()
                .all(|n| sipp_misanswers_aka(n, keys.0, keys.1));
        if !only_sipp_defect || attempt >= attempts {
            return Ok(r);
        }
        eprintln!(
            "AKA attempt {attempt}: SIPp misanswered {} challenge(s) whose RES holds a zero octet; again",
            refused.len()
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    const K: &[u8; 16] = b"abcdefghijklmnop";
    const OP: &[u8; 16] = b"0123456789abcdef";
    /// From a run against the chain: RES 00427dff45dfdab1; SIPp answered with the
    /// response of an empty password and got 403.
    const NUL_RES: &str =
        "34Pd4Opfk/8cxSKILUAZYRq8AgLulkFBqs1YyhySFwUAAAAAawTTk0o4KxHpGoMolqufjt6AbN8=";
    /// Same run, RES 5223c0e23d99561c: answered and registered.
    const GOOD: &str =
        "bdw3MV/4TFfKNCV2+eYKyvLtWZF/vkFBJz1qgziSuykAAAAAawTTjveFlt1HOpsOGzaTS6Xvks0=";

    #[test]
    fn only_a_res_with_a_zero_octet_is_misanswered() {
        assert!(sipp_misanswers_aka(NUL_RES, K, OP));
        assert!(!sipp_misanswers_aka(GOOD, K, OP));
        assert!(!sipp_misanswers_aka("not base64!", K, OP));
    }

    #[test]
    fn refused_nonces_pairs_each_403_with_its_call_s_challenge() {
        let trace = format!(
            "----------------------------------------------- 2026-11-24 00:00:14.38\n\
             UDP message received [463] bytes :\n\n\
             SIP/2.0 401 Unauthorized\nCall-ID: 1-1@h\n\
             WWW-Authenticate: Digest realm=\"r\", nonce=\"{GOOD}\", algorithm=AKAv1-MD5\n\n\
             ----------------------------------------------- 2026-11-24 00:00:14.39\n\
             UDP message sent (592 bytes):\n\n\
             REGISTER sip:ims.example.net SIP/2.0\nCall-ID: 1-1@h\nCSeq: 2 REGISTER\n\n\
             ----------------------------------------------- 2026-11-24 00:00:14.40\n\
             UDP message received [300] bytes :\n\n\
             SIP/2.0 200 OK\nCall-ID: 1-1@h\n\n\
             ----------------------------------------------- 2026-11-24 00:00:15.38\n\
             UDP message received [463] bytes :\n\n\
             SIP/2.0 401 Unauthorized\nCall-ID: 2-1@h\n\
             WWW-Authenticate: Digest realm=\"r\", nonce=\"{NUL_RES}\", algorithm=AKAv1-MD5\n\n\
             ----------------------------------------------- 2026-11-24 00:00:15.40\n\
             UDP message received [200] bytes :\n\n\
             SIP/2.0 403 Forbidden\nCall-ID: 2-1@h\nCSeq: 2 REGISTER\n\n"
        );
        assert_eq!(refused_nonces(&trace), vec![NUL_RES.to_string()]);
    }
}
