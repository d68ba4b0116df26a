//! The dev core's nodes started one by one (not by `imsctl up`, which stops the whole
//! core when a node exits), so that a test can stop and restart one of them. Shared by
//! `tests/tests/registration_chain.rs` (S-CSCF and HSS restarts) and
//! `tests/tests/pcscf_restart.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::chain::{node_health, start_core, stop_core, NODE_HTTP};
use crate::{command, repo_root, signal, wait_exit, wait_for, GroupGuard};

/// The nodes started one by one (as `imsctl up` does, same binaries, configs and
/// `IMS_DATA_DIR`), so one of them can be restarted: `imsctl up` stops the whole core
/// when a node exits.
pub struct Nodes {
    /// The core's data directory (`IMS_DATA_DIR` of every node).
    pub data: PathBuf,
    /// The configs (`config/dev` when `None`).
    configs: Option<PathBuf>,
    running: Vec<(&'static str, GroupGuard)>,
}

impl Nodes {
    /// Generates the dev CA and tokens with `imsctl up` (stopped again), then starts
    /// every node.
    pub fn start(name: &str) -> (PathBuf, Nodes) {
        Nodes::start_with(name, None)
    }

    /// [`Nodes::start`] with the configs of `configs`.
    pub fn start_with(name: &str, configs: Option<PathBuf>) -> (PathBuf, Nodes) {
        let (dir, data, core) = start_core(name, configs.as_deref());
        stop_core(core);
        let mut nodes = Nodes {
            data,
            configs,
            running: Vec::new(),
        };
        for (node, _, _) in NODE_HTTP {
            nodes.start_node(node);
        }
        (dir, nodes)
    }

    /// Starts `node` with its config and waits (at most 30 s) for its `/health`.
    pub fn start_node(&mut self, node: &'static str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.join(format!("logs/{node}.log")))
            .unwrap();
        let config = match &self.configs {
            Some(dir) => dir.join(format!("{node}.toml")),
            None => repo_root().join(format!("config/dev/{node}.toml")),
        };
        let child = command(node)
            .arg("--config")
            .arg(config)
            .env("IMS_DATA_DIR", &self.data)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{node} does not start: {e}"));
        let mut guard = GroupGuard(child);
        let up = wait_for(Duration::from_secs(30), || {
            if let Ok(Some(status)) = guard.0.try_wait() {
                panic!("{node} exited during start: {status}");
            }
            node_health(&self.data, node)
        });
        assert!(up.is_some(), "{node} does not answer on /health");
        self.running.push((node, guard));
    }

    /// SIGKILLs one node (no graceful shutdown).
    pub fn kill_node(&mut self, node: &str) {
        let i = self.running.iter().position(|(n, _)| *n == node).unwrap();
        let (_, mut guard) = self.running.remove(i);
        crate::kill_group(&mut guard.0);
    }

    /// Stops one node with SIGTERM (a graceful shutdown) and waits (at most 30 s) for it
    /// to exit; asserts it did.
    pub fn stop_node(&mut self, node: &str) {
        let i = self.running.iter().position(|(n, _)| *n == node).unwrap();
        let (_, mut guard) = self.running.remove(i);
        signal(&guard.0, "TERM");
        assert!(
            wait_exit(&mut guard.0, Duration::from_secs(30)).is_some(),
            "{node} exits on SIGTERM"
        );
    }
}
