#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `imsctl up` starts every node on the dev defaults with a generated dev CA, `imsctl
//! status` sees them, and Ctrl-C stops them all.

use ims_e2e::{command, health, DevCore};

const NODES: [(&str, &str); 5] = [
    ("policyd", "127.0.0.1:9105"),
    ("hss", "127.0.0.1:9104"),
    ("scscf", "127.0.0.1:9103"),
    ("icscf", "127.0.0.1:9102"),
    ("pcscf", "127.0.0.1:9101"),
];

#[test]
fn up_starts_all_nodes_and_ctrl_c_stops_them() {
    let data = std::env::temp_dir().join(format!("ims-e2e-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    for (name, addr) in NODES {
        assert!(
            health(addr.parse().expect("addr")).is_none(),
            "a {name} is already running on {addr}"
        );
    }
    let core = DevCore::start(&data).unwrap_or_else(|e| panic!("{e}"));
    for (name, addr) in NODES {
        let h = health(addr.parse().expect("addr"))
            .unwrap_or_else(|| panic!("{name} does not answer /health on {addr}"));
        assert_eq!(h["kind"], name);
        assert_eq!(h["status"], "ok");
        if name == "policyd" {
            // The dev core has no Keystone: cloud auth is explicitly off, never open.
            assert_eq!(h["keystone"], "off", "{h}");
        }
    }
    // Every node on this host got its share of the cores as tokio worker threads.
    let sized = node_environments(&data)
        .iter()
        .filter(|env| {
            env.iter()
                .filter_map(|v| v.strip_prefix("TOKIO_WORKER_THREADS="))
                .any(|n| n.parse::<usize>().is_ok_and(|n| n >= 1))
        })
        .count();
    assert_eq!(
        sized,
        NODES.len(),
        "nodes started with TOKIO_WORKER_THREADS"
    );
    for f in ["ca.crt", "ca.key", "pcscf.crt", "pcscf.key"] {
        assert!(
            data.join("tls").join(f).exists(),
            "dev CA file {f} generated"
        );
    }

    let status = command("imsctl")
        .arg("status")
        .output()
        .expect("imsctl status runs");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "status failed: {text}");
    for (name, _) in NODES {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && l.contains(" ok ")),
            "{name} ok in:\n{text}"
        );
    }

    let exit = core.stop();
    assert!(
        exit.is_some_and(|s| s.success()),
        "imsctl up exits cleanly on SIGINT: {exit:?}"
    );
    for (name, addr) in NODES {
        assert!(
            health(addr.parse().expect("addr")).is_none(),
            "{name} still answering after stop"
        );
    }
    let _ = std::fs::remove_dir_all(&data);
}

/// The environments of the processes started with `IMS_DATA_DIR=<data>` (the nodes).
fn node_environments(data: &std::path::Path) -> Vec<Vec<String>> {
    let marker = format!("IMS_DATA_DIR={}", data.display());
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|p| std::fs::read(p.path().join("environ")).ok())
        .map(|raw| {
            raw.split(|b| *b == 0)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect::<Vec<_>>()
        })
        .filter(|env| env.contains(&marker))
        .collect()
}
