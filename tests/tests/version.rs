#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Every binary of the workspace answers `--version` with `<name> <crate version>` and
//! exit status 0 (packages, units and operators rely on it), and the nodes still take
//! `--config FILE` (without it: clap's usage error, status 2).

use ims_e2e::command;

/// The node binaries and the tools of the workspace. Every crate takes the workspace's
/// version, which is this crate's.
const BINARIES: [&str; 7] = [
    "pcscf",
    "icscf",
    "scscf",
    "hss",
    "policyd",
    "imsctl",
    "sip-proxy",
];
const NODES: [&str; 5] = ["pcscf", "icscf", "scscf", "hss", "policyd"];

#[test]
fn every_binary_prints_its_name_and_version() {
    for name in BINARIES {
        let out = command(name).arg("--version").output().unwrap();
        assert!(out.status.success(), "{name} --version: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{name} {}\n", env!("CARGO_PKG_VERSION")),
            "{name} --version"
        );
    }
}

#[test]
fn nodes_still_require_their_config_file() {
    for name in NODES {
        let out = command(name).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name} without arguments: {out:?}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--config <CONFIG>"), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("Usage: {name}")),
            "{name}: {stderr}"
        );
    }
}
