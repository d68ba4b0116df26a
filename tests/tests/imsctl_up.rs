#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `imsctl up` starts every node on the dev defaults with a generated dev CA, `imsctl
//! status` sees them, and Ctrl-C stops them all.

use std::net::TcpStream;
use std::time::Duration;

use ims_e2e::chain::{addr, node_health, NODE_HTTP};
use ims_e2e::{command, http_get, https_get, DevCore};

/// Whether something accepts connections on `port` of 127.0.0.1.
fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&addr(port), Duration::from_secs(1)).is_ok()
}

/// The plain `/metrics` listeners of the HSS and policyd (`metrics_listen`).
const METRICS: [(&str, u16); 2] = [("hss", 9114), ("policyd", 9115)];

#[test]
fn up_starts_all_nodes_and_ctrl_c_stops_them() {
    let data = std::env::temp_dir().join(format!("ims-e2e-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    for (name, port, _) in NODE_HTTP {
        assert!(!listening(port), "a {name} is already running on {port}");
    }
    let core = DevCore::start(&data).unwrap_or_else(|e| panic!("{e}"));
    for (name, port, _) in NODE_HTTP {
        let h = node_health(&data, name)
            .unwrap_or_else(|| panic!("{name} does not answer /health on {port}"));
        assert_eq!(h["kind"], name);
        assert_eq!(h["status"], "ok");
        if name == "policyd" {
            // The dev core has no Keystone: cloud auth is explicitly off, never open.
            assert_eq!(h["keystone"], "off", "{h}");
        }
    }
    https_listeners_carry_the_tokens(&data);
    // `imsctl up` no longer sizes the nodes' runtimes through the environment: each SIP
    // node runs one worker thread per engine shard (one in the dev configs), by itself.
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        assert!(
            node_environments(&data)
                .iter()
                .all(|env| !env.iter().any(|v| v.starts_with("TOKIO_WORKER_THREADS="))),
            "imsctl up set TOKIO_WORKER_THREADS"
        );
        for name in ["pcscf", "icscf", "scscf"] {
            let h = node_health(&data, name).unwrap_or_else(|| panic!("{name} /health"));
            assert_eq!(h["worker_threads"], 1, "{name}: {h}");
        }
    }
    for f in ["ca.crt", "ca.key", "pcscf.crt", "pcscf.key"] {
        assert!(
            data.join("tls").join(f).exists(),
            "dev CA file {f} generated"
        );
    }

    // `imsctl status` trusts the dev CA of IMS_DATA_DIR for the HTTPS listeners ...
    let text = status(Some(&data));
    for (name, _, _) in NODE_HTTP {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && l.contains(" ok ")),
            "{name} ok in:\n{text}"
        );
    }
    // ... and nothing else: without it, the HTTPS nodes' certificates are refused.
    let untrusted = status(None);
    for (name, _, tls) in NODE_HTTP {
        let ok = untrusted
            .lines()
            .any(|l| l.starts_with(name) && l.contains(" ok "));
        assert_eq!(ok, !tls, "{name} without the dev CA in:\n{untrusted}");
    }

    let exit = core.stop();
    assert!(
        exit.is_some_and(|s| s.success()),
        "imsctl up exits cleanly on SIGINT: {exit:?}"
    );
    for (name, port, _) in NODE_HTTP {
        assert!(
            !listening(port),
            "{name} still listening on {port} after stop"
        );
    }
    let _ = std::fs::remove_dir_all(&data);
}

/// The HSS's and policyd's APIs (tokens, passwords, keys) are served over HTTPS only:
/// a plain-HTTP request gets no HTTP answer there, and `/metrics` is on a plain listener
/// of its own, not on the HTTPS one.
fn https_listeners_carry_the_tokens(data: &std::path::Path) {
    let ca = data.join("tls/ca.crt");
    for (name, port, _) in NODE_HTTP.into_iter().filter(|(_, _, tls)| *tls) {
        assert_eq!(
            http_get(addr(port), "/health"),
            None,
            "{name} answers plain HTTP on its API listener"
        );
        assert_eq!(
            https_get(addr(port), "/metrics", &ca),
            None,
            "{name} serves /metrics on its API listener"
        );
    }
    for (name, port) in METRICS {
        let text = http_get(addr(port), "/metrics")
            .unwrap_or_else(|| panic!("{name} serves /metrics in plain HTTP on {port}"));
        assert!(text.contains("# TYPE"), "{name} metrics: {text}");
        assert_eq!(
            http_get(addr(port), "/health"),
            None,
            "{name}'s metrics listener serves only /metrics"
        );
    }
}

/// `imsctl status` with `IMS_DATA_DIR=data` (its dev CA trusted), or with no CA at all;
/// its output.
fn status(data: Option<&std::path::Path>) -> String {
    let mut cmd = command("imsctl");
    cmd.arg("status").env_remove("IMS_CA");
    match data {
        Some(d) => cmd.env("IMS_DATA_DIR", d),
        None => cmd.env(
            "IMS_DATA_DIR",
            std::env::temp_dir().join("ims-e2e-no-such-data"),
        ),
    };
    let out = cmd.output().expect("imsctl status runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.success(),
        data.is_some(),
        "imsctl status exit: {text}"
    );
    text
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
