#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The README's cloud authorization walkthrough, run as written against `imsctl up`
//! started the way `./scripts/up` ends (no `--cloud`/`--no-cloud`: cloud authorization
//! on because the Keystone environment is installed): `imsctl token`, a REGISTER
//! refused without a token (401 with a Bearer challenge), accepted with alice's, and a
//! call to carol of another tenant refused (403). The block runs in a scratch directory
//! laid out like the repository root (`target/release` is this build's binaries, `data`
//! the core's data directory), so its relative paths resolve as they do for a reader.

use std::path::{Path, PathBuf};
use std::process::Command;

use ims_e2e::chain::{assert_not_registered, assert_registered, node_health};
use ims_e2e::{binary, repo_root, scratch_dir, DevCore};

/// The README's block below the comment naming this test.
fn readme_block() -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let marker = readme
        .find("tests/tests/cloud_demo.rs runs this block")
        .expect("README marks the block this test runs");
    let rest = &readme[marker..];
    let start = rest.find("```sh\n").expect("a sh block after the marker") + 6;
    let len = rest[start..].find("```").expect("the block ends");
    rest[start..start + len].to_owned()
}

/// `dir` laid out like the repository root for the block's relative paths.
fn workspace_like(dir: &Path, data: &Path) {
    let link = |target: &Path, name: &str| {
        std::os::unix::fs::symlink(target, dir.join(name)).unwrap();
    };
    std::fs::create_dir_all(dir.join("target")).unwrap();
    link(binary("imsctl").parent().unwrap(), "target/release");
    link(&repo_root().join("sipp-scenarios"), "sipp-scenarios");
    link(&repo_root().join("config"), "config");
    link(data, "data");
}

/// Whether a Keystone can run here: `scripts/keystone/setup` (what makes cloud
/// authorization the default) succeeded. Without python3 the test is skipped unless
/// `IMS_TEST_KEYSTONE=1` demands it.
fn keystone_environment() -> bool {
    let demanded = std::env::var("IMS_TEST_KEYSTONE").is_ok_and(|v| v == "1");
    let python = Command::new("python3").arg("--version").output();
    if !python.is_ok_and(|o| o.status.success()) {
        assert!(!demanded, "IMS_TEST_KEYSTONE=1 but no python3");
        eprintln!("SKIPPED: no python3 on this machine, so no Keystone");
        return false;
    }
    let setup = Command::new(repo_root().join("scripts/keystone/setup"))
        .status()
        .unwrap();
    assert!(setup.success(), "scripts/keystone/setup");
    true
}

fn run_block(work: &Path, block: &str) -> std::process::Output {
    let script = work.join("readme.sh");
    std::fs::write(
        &script,
        format!("shopt -s expand_aliases\nset -euo pipefail\n{block}"),
    )
    .unwrap();
    Command::new("bash")
        .arg(&script)
        .current_dir(work)
        .env_remove("IMS_DATA_DIR")
        .output()
        .unwrap()
}

/// policyd authenticates with Keystone; the P-CSCF and S-CSCF check requests.
fn cloud_is_on(data: &Path) {
    for (name, key) in [
        ("policyd", "keystone"),
        ("pcscf", "cloud_auth"),
        ("scscf", "cloud_auth"),
    ] {
        let h = node_health(data, name).unwrap_or_else(|| panic!("{name} /health"));
        assert_eq!(h[key], "on", "{name}: {h}");
    }
}

/// Stops the Keystone `imsctl up` runs for `data` (its own session, so a killed `imsctl`
/// does not take it along) when the test ends, failed or not.
struct KeystoneGuard(PathBuf);

impl Drop for KeystoneGuard {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/keystone/stop"))
            .arg(self.0.join("keystone/instance"))
            .status();
    }
}

#[test]
fn the_readme_token_walkthrough_works_against_imsctl_up() {
    if !keystone_environment() {
        return;
    }
    let dir = scratch_dir("cloud-demo");
    let data = dir.join("data");
    let work: PathBuf = dir.join("repo");
    std::fs::create_dir_all(&work).unwrap();
    workspace_like(&work, &data);
    let block = readme_block();
    let _keystone = KeystoneGuard(data.clone());

    let core = DevCore::start_args(None, &data, &[]).unwrap_or_else(|e| panic!("{e}"));
    cloud_is_on(&data);
    let out = run_block(&work, &block);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the README block failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // `imsctl token alice` printed a Keystone (Fernet) token first.
    let token = stdout.lines().next().unwrap_or_default();
    assert!(
        token.starts_with("gAAAAA") && token.len() > 100,
        "a token: {token:?}"
    );
    // alice and carol registered with their tokens; bob never did.
    assert_registered(&data, &["alice".to_owned(), "carol".to_owned()]);
    assert_not_registered(&data, &["bob".to_owned()]);
    let exit = core.stop();
    assert!(exit.is_some_and(|s| s.success()), "imsctl up: {exit:?}");

    // Started again on the same data: the same Keystone instance and demo, and the
    // walkthrough works again.
    let core = DevCore::start_args(None, &data, &[]).unwrap_or_else(|e| panic!("{e}"));
    let again = run_block(&work, &block);
    assert!(
        again.status.success(),
        "the README block after a restart:\n{}\n{}",
        String::from_utf8_lossy(&again.stdout),
        String::from_utf8_lossy(&again.stderr)
    );
    let exit = core.stop();
    assert!(exit.is_some_and(|s| s.success()), "imsctl up: {exit:?}");
    let demo = data.join("keystone/demo.json");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&demo).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "{} is private", demo.display());
}
