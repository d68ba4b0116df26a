//! Driving the whole dev core (`imsctl up` with `config/dev/`) from a test: start and
//! stop it, provision subscribers with the real `imsctl subscriber`, write SIPp CSV
//! files, run SIPp UEs, read the HSS's and the S-CSCF's state, and capture the
//! chain's traffic with tshark. Shared by `tests/tests/registration_chain.rs` and
//! `tests/tests/session_chain.rs`.
//!
//! These are test steps: a step that cannot be done fails the test (panics) with what
//! went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::sipp::{self, SippResult, SippTransport};
use crate::stunnel::Kill;
use crate::{command, free_port, health, scratch_dir, signal, wait_exit, wait_for, DevCore};

/// The home domain of the dev configs.
pub const DOMAIN: &str = "ims.example.net";
/// The S-CSCF's Server-Name (`config/dev/scscf.toml`), which the HSS records on SAR.
pub const SERVER_NAME: &str = "sip:scscf.ims.example.net:5080";
/// The P-CSCF's UDP/TCP port.
pub const PCSCF: u16 = 5060;
/// The P-CSCF's TLS port.
pub const PCSCF_TLS: u16 = 5061;
/// The S-CSCF's `/health` port.
pub const SCSCF_HTTP: u16 = 9103;
/// The policy service's HTTPS port.
pub const POLICYD_HTTP: u16 = 9105;
/// Each node's `[http] listen` port in the dev configs and whether it serves HTTPS (with
/// the dev CA): the HSS and policyd, whose APIs carry tokens, do.
pub const NODE_HTTP: [(&str, u16, bool); 5] = [
    ("policyd", POLICYD_HTTP, true),
    ("hss", 9104, true),
    ("scscf", SCSCF_HTTP, false),
    ("icscf", 9102, false),
    ("pcscf", 9101, false),
];
/// What a capture of the chain listens to: SIP between the nodes and toward UEs (all
/// UE traffic goes through the P-CSCF's 5060) and Cx over TCP ([`plain_cx_configs`]).
/// Plus the end marker [`Capture::stop`] sends to [`MARKER_PORT`].
pub const CAPTURE_FILTER: &str =
    "udp port 5060 or udp port 5070 or udp port 5080 or tcp port 3868 or udp dst port 9";
/// Where [`Capture::stop`] sends its end marker (UDP discard port; nothing listens).
const MARKER_PORT: u16 = 9;

/// `127.0.0.1:port`.
pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The `/health` of a dev-config `node` (see [`NODE_HTTP`]); over HTTPS its certificate
/// is checked against the dev CA of the core's data directory `data`.
pub fn node_health(data: &Path, node: &str) -> Option<serde_json::Value> {
    let (_, port, tls) = NODE_HTTP.iter().find(|(n, _, _)| *n == node)?;
    if *tls {
        let body = crate::https_get(addr(*port), "/health", &data.join("tls/ca.crt"))?;
        serde_json::from_str(body.trim()).ok()
    } else {
        health(addr(*port))
    }
}

/// A field of the dev P-CSCF's `/health`, as a number.
pub fn pcscf_health(data: &Path, field: &str) -> Option<u64> {
    node_health(data, "pcscf")?[field].as_u64()
}

/// Waits (at most 15 s) until the P-CSCF's `/health` `field` is `n`; asserts it is.
pub fn assert_pcscf(data: &Path, field: &str, n: u64) {
    let seen = wait_for(Duration::from_secs(15), || {
        pcscf_health(data, field).filter(|c| *c == n)
    });
    assert_eq!(
        seen,
        Some(n),
        "P-CSCF {field}: {:?}",
        pcscf_health(data, field)
    );
}

/// Asserts the S-CSCF lists the dev P-CSCF's (`sip:127.0.0.1`) reg event subscription
/// to `user`'s registration (`imsctl registrations`).
pub fn assert_pcscf_subscribed(data: &Path, user: &str) {
    let out = imsctl(data, &["registrations", &impu(user)]);
    assert!(out.status.success(), "imsctl registrations: {out:?}");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let subs = shown["subscriptions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        subs.iter()
            .any(|s| s["kind"] == "pcscf" && s["subscriber"] == "sip:127.0.0.1"),
        "the P-CSCF's subscription to {user}: {shown}"
    );
}

/// `imsctl <args>` against the dev configs and the data directory `data`.
pub fn imsctl(data: &Path, args: &[&str]) -> Output {
    command("imsctl")
        .args(args)
        .env("IMS_DATA_DIR", data)
        .stdin(Stdio::null())
        .output()
        .expect("imsctl runs")
}

/// `n` user names `<prefix>000`, `<prefix>001`, ...
pub fn users(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:03}")).collect()
}

/// The public identity of a user: `sip:<user>@ims.example.net`.
pub fn impu(user: &str) -> String {
    format!("sip:{user}@{DOMAIN}")
}

/// Provisions Digest users through `imsctl subscriber import` (a CSV in `dir`), in
/// Keystone project `project` (their cloud tenant) when given.
pub fn provision_digest(
    data: &Path,
    dir: &Path,
    names: &[String],
    password: &str,
    project: Option<&str>,
) {
    provision_digest_with(|args| imsctl(data, args), dir, names, password, project);
}

/// [`provision_digest`] through `imsctl`, which runs `imsctl` with the arguments it is
/// given against some core (e.g. in a management network namespace).
pub fn provision_digest_with(
    imsctl: impl Fn(&[&str]) -> Output,
    dir: &Path,
    names: &[String],
    password: &str,
    project: Option<&str>,
) {
    let csv = dir.join(format!("import-{}.csv", names[0]));
    let mut text = String::from("impi,impus,password,project_id\n");
    for n in names {
        text.push_str(&format!(
            "{n}@{DOMAIN},{},{password},{}\n",
            impu(n),
            project.unwrap_or("")
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let out = imsctl(&["subscriber", "import", csv.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "imsctl subscriber import: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// [`provision_digest_with`] (password `secret`, no project) through `imsctl` run in
/// namespace `ns` of `bed`, against the core `imsctl config init` wrote to `core` (its
/// configs, CA and the HSS's static admin token).
pub fn provision_digest_in(
    bed: &crate::netns::Bed,
    ns: &str,
    core: &Path,
    dir: &Path,
    names: &[String],
) {
    let token = std::fs::read_to_string(core.join("hss/admin.token")).unwrap();
    provision_digest_with(
        |args| {
            bed.command(ns, &crate::binary("imsctl"))
                .arg("--config-dir")
                .arg(core)
                .arg("--ca")
                .arg(core.join("tls/ca.crt"))
                .args(args)
                .env("IMS_HSS_TOKEN", token.trim())
                .output()
                .unwrap()
        },
        dir,
        names,
        "secret",
        None,
    );
}

/// A SIPp injection file, one line per user: field0 = user, field1 = domain, field2 =
/// the whole `[authentication ...]` keyword (the format of
/// `sipp-scenarios/register/users.csv`), field3 = `peer` (the callee of
/// `sipp-scenarios/session/`, or the bearer token of `sipp-scenarios/cloud/`), when given.
pub fn sipp_csv(
    dir: &Path,
    file: &str,
    names: &[String],
    password: &str,
    peer: Option<&str>,
) -> PathBuf {
    let path = dir.join(file);
    let mut text = String::from("SEQUENTIAL\n");
    for n in names {
        text.push_str(&format!(
            "{n};{DOMAIN};[authentication username={n}@{DOMAIN} password={password}]"
        ));
        if let Some(peer) = peer {
            text.push(';');
            text.push_str(peer);
        }
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// [`sipp_csv`] (password `secret`) with a peer of its own per user: one line per
/// `(user, peer)` of `users` and `peers` zipped.
pub fn sipp_pairs_csv(dir: &Path, file: &str, users: &[String], peers: &[String]) -> PathBuf {
    let mut text = String::from("SEQUENTIAL\n");
    for (user, peer) in users.iter().zip(peers) {
        text.push_str(&format!(
            "{user};{DOMAIN};[authentication username={user}@{DOMAIN} password=secret];{peer}\n"
        ));
    }
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// A fresh work directory under `dir` for one SIPp run (its logs stay apart).
pub fn workdir(dir: &Path) -> PathBuf {
    static RUN: AtomicU32 = AtomicU32::new(0);
    let work = dir.join(format!("sipp-{}", RUN.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&work).unwrap();
    work
}

/// Runs `scenario` (a path under `sipp-scenarios/`) for `calls` lines of `csv` toward
/// `entry` from `local`, at 50 calls per second, in a fresh work directory, bounded by
/// 60 s.
pub fn run_from(
    dir: &Path,
    scenario: &str,
    csv: &Path,
    transport: SippTransport,
    calls: u32,
    entry: SocketAddr,
    local: SocketAddr,
) -> SippResult {
    sipp::run_uac_inf(
        &sipp::scenario(scenario),
        entry,
        None,
        Some(csv),
        local,
        transport,
        calls,
        50,
        60,
        &workdir(dir),
    )
    .expect("sipp runs")
}

/// [`run_from`] a free local port.
pub fn run(
    dir: &Path,
    scenario: &str,
    csv: &Path,
    transport: SippTransport,
    calls: u32,
    entry: SocketAddr,
) -> SippResult {
    run_from(
        dir,
        scenario,
        csv,
        transport,
        calls,
        entry,
        addr(free_port()),
    )
}

/// Asserts that SIPp finished all `calls` calls successfully.
pub fn assert_all_passed(r: &SippResult, calls: usize) {
    assert_eq!((r.successful, r.failed), (calls as u64, 0), "{r:?}");
    assert_eq!(r.exit_code, Some(0), "{r:?}");
}

/// The HSS's registration state and S-CSCF for `impu`, from `imsctl subscriber show`.
pub fn hss_state(data: &Path, impu: &str) -> (String, Option<String>) {
    let out = imsctl(data, &["subscriber", "show", impu]);
    assert!(
        out.status.success(),
        "imsctl subscriber show {impu}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sub: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let id = sub["public_identities"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["impu"] == impu)
        .unwrap_or_else(|| panic!("{impu} not in {sub}"));
    (
        id["registration"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        id["registration"]["scscf"].as_str().map(String::from),
    )
}

/// Asserts the HSS has each user REGISTERED at the dev S-CSCF.
pub fn assert_registered(data: &Path, names: &[String]) {
    for n in names {
        assert_eq!(
            hss_state(data, &impu(n)),
            ("REGISTERED".to_string(), Some(SERVER_NAME.to_string())),
            "HSS state of {n}"
        );
    }
}

/// Asserts the HSS has each user NOT_REGISTERED.
pub fn assert_not_registered(data: &Path, names: &[String]) {
    for n in names {
        assert_eq!(
            hss_state(data, &impu(n)).0,
            "NOT_REGISTERED",
            "HSS state of {n}"
        );
    }
}

/// The S-CSCF's `registered_contacts` on `/health`.
pub fn scscf_contacts() -> Option<u64> {
    health(addr(SCSCF_HTTP))?["registered_contacts"].as_u64()
}

/// Waits (at most 10 s) until the S-CSCF counts `n` contacts; asserts it does.
pub fn assert_contacts(n: u64) {
    let seen = wait_for(Duration::from_secs(10), || {
        scscf_contacts().filter(|c| *c == n)
    });
    assert_eq!(
        seen,
        Some(n),
        "S-CSCF registered_contacts: {:?}",
        scscf_contacts()
    );
}

/// Starts the core (with the configs of `config_dir`, the dev ones when `None`) in a
/// fresh scratch directory `ims-e2e-<name>-<pid>`; returns that directory, the core's
/// data directory in it, and the core.
pub fn start_core(name: &str, config_dir: Option<&Path>) -> (PathBuf, PathBuf, DevCore) {
    assert!(
        sipp::available(),
        "sipp is not installed: run ./scripts/test"
    );
    let dir = scratch_dir(name);
    let data = dir.join("data");
    let core = DevCore::start_with(config_dir, &data).unwrap_or_else(|e| panic!("{e}"));
    (dir, data, core)
}

/// The dev configs, each passed through `edit(node, text)`, written to a scratch
/// directory `ims-e2e-<name>-cfg-<pid>`; returns that config directory.
pub fn edited_dev_configs(name: &str, edit: impl Fn(&str, String) -> String) -> PathBuf {
    let out = scratch_dir(&format!("{name}-cfg")).join("config");
    std::fs::create_dir_all(&out).unwrap();
    for node in ["hss", "icscf", "pcscf", "scscf", "policyd"] {
        let text =
            std::fs::read_to_string(crate::repo_root().join(format!("config/dev/{node}.toml")))
                .unwrap();
        std::fs::write(out.join(format!("{node}.toml")), edit(node, text)).unwrap();
    }
    out
}

/// The dev configs with Cx over plain TCP on 3868, bound by source address (127.0.0.1)
/// instead of mutual TLS, so a capture can decode it.
pub fn plain_cx_configs(name: &str) -> PathBuf {
    edited_dev_configs(name, |node, text| match node {
        "hss" => text
            .replace(
                "require_tls = true",
                "require_tls = false\ntcp = [\"127.0.0.1:3868\"]",
            )
            .replace(
                "\nhost = \"icscf.ims.example.net\"",
                "\nhost = \"icscf.ims.example.net\"\nfrom = [\"127.0.0.1/32\"]",
            )
            .replace(
                "\nhost = \"scscf.ims.example.net\"",
                "\nhost = \"scscf.ims.example.net\"\nfrom = [\"127.0.0.1/32\"]",
            ),
        "icscf" | "scscf" => plain_cx_section(&text),
        _ => text,
    })
}

/// `text` with its `[cx]` section on 127.0.0.1:3868 and without its TLS keys.
fn plain_cx_section(text: &str) -> String {
    let mut in_cx = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with('[') {
            in_cx = line == "[cx]";
        }
        let key = line.split('=').next().unwrap_or("").trim();
        if in_cx && ["tls_ca", "tls_cert", "tls_key", "require_tls"].contains(&key) {
            continue;
        }
        if in_cx && key == "hss" {
            out.push_str("hss = [\"127.0.0.1:3868\"]\n");
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Stops the core and asserts `imsctl up` exits cleanly.
pub fn stop_core(core: DevCore) {
    let exit = core.stop();
    assert!(
        exit.is_some_and(|s| s.success()),
        "imsctl up exits cleanly: {exit:?}"
    );
}

/// A SIPp UE of `user`, registered through the P-CSCF over UDP from its own port by
/// `sipp-scenarios/session/register.xml`; later scenarios run from that port, which is
/// where the P-CSCF sends requests for it (its registered flow).
#[derive(Debug, Clone)]
pub struct Ue {
    /// The user part.
    pub user: String,
    /// The UE's address (its Contact and UDP flow).
    pub local: SocketAddr,
    /// The CSV the UE's scenarios read: this user, its credentials, `peer` as field3.
    pub csv: PathBuf,
    /// Where its requests go: the P-CSCF.
    pub entry: SocketAddr,
}

impl Ue {
    /// Registers `user` (password `secret`) from a free port, with `peer` as the
    /// callee of its later calls; asserts the registration passed.
    pub fn register(dir: &Path, user: &str, peer: &str) -> Ue {
        Ue::register_with(dir, user, peer, "session/register.xml")
    }

    /// [`Ue::register`] with the registration scenario `scenario`; `fields` is field3
    /// and on (`;`-separated: the callee, then e.g. a bearer token).
    pub fn register_with(dir: &Path, user: &str, fields: &str, scenario: &str) -> Ue {
        Ue::register_at(dir, user, fields, scenario, addr(free_port()), addr(PCSCF))
    }

    /// [`Ue::register_with`] from `local` through the P-CSCF at `entry`.
    pub fn register_at(
        dir: &Path,
        user: &str,
        fields: &str,
        scenario: &str,
        local: SocketAddr,
        entry: SocketAddr,
    ) -> Ue {
        let file = format!("ue-{user}-{}.csv", local.port());
        let csv = sipp_csv(dir, &file, &[user.to_string()], "secret", Some(fields));
        let ue = Ue {
            user: user.to_string(),
            local,
            csv,
            entry,
        };
        let r = ue.run(dir, scenario);
        assert_all_passed(&r, 1);
        ue
    }

    /// Runs a client scenario (path under `sipp-scenarios/`) once from the UE's port.
    pub fn run(&self, dir: &Path, scenario: &str) -> SippResult {
        self.run_calls(dir, scenario, 1)
    }

    /// Runs a client scenario `calls` times (at 50 per second) from the UE's port.
    pub fn run_calls(&self, dir: &Path, scenario: &str, calls: u32) -> SippResult {
        run_from(
            dir,
            scenario,
            &self.csv,
            SippTransport::Udp,
            calls,
            self.entry,
            self.local,
        )
    }

    /// Runs a client scenario once from the UE's port, tracing every message
    /// ([`SippResult::messages`]).
    pub fn run_traced(&self, dir: &Path, scenario: &str) -> SippResult {
        sipp::run_uac_traced(
            &sipp::scenario(scenario),
            self.entry,
            &self.csv,
            self.local,
            1,
            60,
            &workdir(dir),
        )
        .expect("sipp runs")
    }

    /// Runs a client scenario ending in a `<pause/>` once from the UE's port, staying
    /// `stay_ms` afterwards, and meanwhile answers the requests of other dialogs (the
    /// NOTIFYs of an earlier subscription) with the out-of-call scenario `ooc`; every
    /// message traced ([`SippResult::messages`]).
    pub fn run_answering(&self, dir: &Path, scenario: &str, ooc: &str, stay_ms: u32) -> SippResult {
        sipp::Background::registered_ue_traced(
            &sipp::scenario(scenario),
            &sipp::scenario(ooc),
            self.entry,
            &self.csv,
            self.local,
            stay_ms,
            &workdir(dir),
        )
        .expect("sipp runs")
        .finish()
    }

    /// Starts a server scenario on the UE's port for `calls` calls, bounded by 60 s.
    pub fn serve(&self, dir: &Path, scenario: &str, calls: u32) -> sipp::Background {
        sipp::Background::uas(
            &sipp::scenario(scenario),
            self.local,
            calls,
            60,
            &workdir(dir),
            false,
        )
        .expect("sipp UAS starts")
    }
}

/// A UE behind stunnel (TCP from SIPp to `entry`, TLS onward to the P-CSCF) with the
/// CSV `csv`: it registers (`session/register.xml`), stays `stay_ms` and answers a call
/// over its connection (`session/uas_answer_hangup.xml`, `-oocsf`).
pub fn tls_ue_answering(
    dir: &Path,
    entry: SocketAddr,
    csv: &Path,
    stay_ms: u32,
) -> sipp::Background {
    sipp::Background::registered_ue(
        &sipp::scenario("session/register.xml"),
        &sipp::scenario("session/uas_answer_hangup.xml"),
        entry,
        csv,
        addr(free_port()),
        SippTransport::Tcp,
        stay_ms,
        &workdir(dir),
    )
    .expect("sipp UE starts")
}

/// A tshark capture of the chain's traffic ([`CAPTURE_FILTER`]) on `lo` into a file,
/// stopped (and the file complete) by [`Capture::stop`], killed if dropped before.
pub struct Capture {
    tshark: Kill,
    /// The capture file.
    pub file: PathBuf,
}

impl Capture {
    /// Starts capturing into `file` (at most 120 s) and waits until tshark captures.
    pub fn start(file: &Path) -> Capture {
        let mut child = Command::new("tshark")
            .args(["-i", "lo", "-f", CAPTURE_FILTER, "-w"])
            .arg(file)
            .args(["-a", "duration:120"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tshark runs (package tshark)");
        let stderr = child.stderr.take().unwrap();
        let capture = Capture {
            tshark: Kill(child),
            file: file.to_path_buf(),
        };
        // tshark says "Capturing on 'Loopback: lo'" once the capture runs.
        crate::wait_for_line(stderr, "Capturing on", Duration::from_secs(20))
            .unwrap_or_else(|seen| panic!("tshark does not capture:\n{seen}"));
        capture
    }

    /// Stops tshark once everything sent before has reached the file, and waits for it
    /// to close the file.
    ///
    /// dumpcap reads the kernel's capture ring in blocks and drops what it has not read
    /// when it is interrupted; on a loaded machine a fixed pause before the interrupt
    /// lost a whole call. So an end marker (a UDP datagram to the discard port) is sent,
    /// again every 200 ms, until the file holds it (at most 30 s): packets reach the file
    /// in order, so everything before the marker is in it too.
    pub fn stop(mut self) -> PathBuf {
        let marker = std::net::UdpSocket::bind("127.0.0.1:0").expect("a marker socket");
        let filter = format!("udp.dstport == {MARKER_PORT}");
        let seen = wait_for(Duration::from_secs(30), || {
            let _ = marker.send_to(b"end of capture", addr(MARKER_PORT));
            std::thread::sleep(Duration::from_millis(200));
            // The file is still being written: its last block may be cut short, which
            // tshark reports (non-zero exit) after printing what it could read.
            let out = Command::new("tshark")
                .arg("-r")
                .arg(&self.file)
                .args(["-Y", &filter, "-T", "fields", "-e", "frame.number"])
                .output()
                .ok()?;
            (!out.stdout.trim_ascii().is_empty()).then_some(())
        });
        assert!(
            seen.is_some(),
            "the capture's end marker never reached {}",
            self.file.display()
        );
        signal(&self.tshark.0, "INT");
        assert!(
            wait_exit(&mut self.tshark.0, Duration::from_secs(20)).is_some(),
            "tshark stops"
        );
        self.file.clone()
    }
}

/// Reads a capture with SIP decoded on the CSCFs' ports and Diameter on 3868, with
/// `args` (e.g. `-V`, or `-T fields ...`); returns tshark's output.
pub fn decode(pcap: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args([
            "-d",
            "tcp.port==3868,diameter",
            "-d",
            "udp.port==5070,sip",
            "-d",
            "udp.port==5080,sip",
        ])
        .args(args)
        .output()
        .expect("tshark reads the capture");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The status codes of the dev P-CSCF's answers to the S-CSCF's NOTIFYs (UDP 5060 to
/// 5080) in `pcap` that also match the display filter `narrower` (`""`: all of them).
pub fn notify_answers(pcap: &Path, narrower: &str) -> Vec<String> {
    let mut filter = "sip.Status-Code && sip.CSeq.method == \"NOTIFY\" && udp.srcport == 5060 \
                      && udp.dstport == 5080"
        .to_string();
    if !narrower.is_empty() {
        filter.push_str(&format!(" && {narrower}"));
    }
    decode(
        pcap,
        &["-Y", &filter, "-T", "fields", "-e", "sip.Status-Code"],
    )
    .lines()
    .map(|l| l.trim().to_string())
    .collect()
}

/// Asserts that tshark's full decode of `pcap` has no malformed packet or error-level
/// expert info, and returns the decode.
pub fn decode_cleanly(pcap: &Path) -> String {
    let text = decode(pcap, &["-V"]);
    for bad in ["Malformed", "Expert Info (Error"] {
        assert!(
            !text.contains(bad),
            "{bad:?} in the decode of {}",
            pcap.display()
        );
    }
    text
}
