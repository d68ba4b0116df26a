//! Helpers for tests that drive the whole core started by `imsctl up` (the dev configs,
//! on the fixed dev ports): provisioning through `imsctl subscriber`, SIPp runs toward
//! the P-CSCF, and the HSS's view of a registration. Only tests call them, and a step
//! that fails must fail the test: they panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::sipp::{self, SippResult, SippTransport};
use crate::{command, free_port, scratch_dir, DevCore};

/// The dev core's home domain.
pub const DOMAIN: &str = "ims.example.net";
/// The S-CSCF's Server-Name (`config/dev/scscf.toml`), which the HSS records on SAR.
pub const SERVER_NAME: &str = "sip:scscf.ims.example.net:5080";
/// The P-CSCF's UDP/TCP port toward UEs.
pub const PCSCF: u16 = 5060;
/// The P-CSCF's TLS port.
pub const PCSCF_TLS: u16 = 5061;
/// The S-CSCF's `/health` port.
pub const SCSCF_HTTP: u16 = 9103;
/// The policy service's port.
pub const POLICYD_HTTP: u16 = 9105;

/// `127.0.0.1:port`.
pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
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

/// `sip:<user>@ims.example.net`.
pub fn impu(user: &str) -> String {
    format!("sip:{user}@{DOMAIN}")
}

/// Provisions Digest users through `imsctl subscriber import`, in Keystone project
/// `project` (the cloud tenant) when given.
pub fn provision_digest(
    data: &Path,
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
    let out = imsctl(data, &["subscriber", "import", csv.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "imsctl subscriber import: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A SIPp injection file for `names` (the format of `sipp-scenarios/register/users.csv`),
/// with `extra` as field3 of every line when given (e.g. a bearer token).
pub fn sipp_csv(
    dir: &Path,
    file: &str,
    names: &[String],
    password: &str,
    extra: Option<&str>,
) -> PathBuf {
    let path = dir.join(file);
    let mut text = String::from("SEQUENTIAL\n");
    for n in names {
        text.push_str(&format!(
            "{n};{DOMAIN};[authentication username={n}@{DOMAIN} password={password}]"
        ));
        if let Some(e) = extra {
            text.push(';');
            text.push_str(e);
        }
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `scenario` (a path under `sipp-scenarios/`) for `calls` users of `csv` toward
/// `entry`, in a fresh work directory.
pub fn run(
    dir: &Path,
    scenario: &str,
    csv: &Path,
    transport: SippTransport,
    calls: u32,
    entry: SocketAddr,
) -> SippResult {
    static RUN: AtomicU32 = AtomicU32::new(0);
    let work = dir.join(format!("sipp-{}", RUN.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&work).unwrap();
    sipp::run_uac_inf(
        &sipp::scenario(scenario),
        entry,
        None,
        Some(csv),
        addr(free_port()),
        transport,
        calls,
        50,
        60,
        &work,
    )
    .expect("sipp runs")
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

/// Asserts the HSS holds each of `names` registered at the dev S-CSCF.
pub fn assert_registered(data: &Path, names: &[String]) {
    for n in names {
        assert_eq!(
            hss_state(data, &impu(n)),
            ("REGISTERED".to_string(), Some(SERVER_NAME.to_string())),
            "HSS state of {n}"
        );
    }
}

/// Asserts the HSS holds none of `names` registered.
pub fn assert_not_registered(data: &Path, names: &[String]) {
    for n in names {
        assert_eq!(
            hss_state(data, &impu(n)).0,
            "NOT_REGISTERED",
            "HSS state of {n}"
        );
    }
}

/// A scratch directory and the core started by `imsctl up` on it (with the configs of
/// `config_dir`, the dev configs when `None`): `(dir, data dir, core)`.
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

/// Stops the core and asserts `imsctl up` exited cleanly.
pub fn stop_core(core: DevCore) {
    let exit = core.stop();
    assert!(
        exit.is_some_and(|s| s.success()),
        "imsctl up exits cleanly: {exit:?}"
    );
}
