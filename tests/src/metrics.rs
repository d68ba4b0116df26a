//! Reading a node's `/metrics` (Prometheus text format) in tests, checking it with
//! `promtool check metrics`, and a real Prometheus scraping the core (Debian's
//! `prometheus` package ships both).

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::stunnel::Kill;

/// The value of the series `series` (its name with labels exactly as exposed, e.g.
/// `sip_responses_out_total{class="4xx",code="401"}`), if exposed.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let rest = l.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// The sum of every series of metric `name` (all label sets; `name` itself, not its
/// `_bucket`/`_sum`/`_count` children).
pub fn sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let value = if rest.starts_with('{') {
                rest.split_once("} ")?.1
            } else {
                rest.strip_prefix(' ')?
            };
            value.trim().parse::<f64>().ok()
        })
        .sum()
}

/// Whether `promtool` is installed.
pub fn promtool_available() -> bool {
    Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `promtool check metrics` on `text`: `Ok` when it passes (lint warnings included),
/// else its output.
pub fn promtool_check(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("promtool: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("promtool stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("promtool: {e}"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(said)
    }
}

/// `promtool check <what> <file>` (`rules`, `config`): `Ok` when it passes, else its
/// output.
pub fn promtool_check_file(what: &str, file: &Path) -> Result<(), String> {
    let out = Command::new("promtool")
        .args(["check", what])
        .arg(file)
        .output()
        .map_err(|e| format!("promtool: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A real Prometheus server (`prometheus`), stopped when dropped.
pub struct Prometheus {
    /// Where its HTTP API listens.
    pub addr: SocketAddr,
    _process: Kill,
}

impl Prometheus {
    /// Starts Prometheus with the configuration file `config`, its data in `dir`, on a
    /// free loopback port; `None` unless it is ready within 30 s.
    pub fn start(config: &Path, dir: &Path) -> Option<Prometheus> {
        let addr = SocketAddr::from(([127, 0, 0, 1], crate::free_port()));
        let log = std::fs::File::create(dir.join("prometheus.log")).ok()?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(log.try_clone().ok()?)
            .stderr(log)
            .spawn()
            .ok()?;
        let prometheus = Prometheus {
            addr,
            _process: Kill(child),
        };
        crate::wait_for(Duration::from_secs(30), || {
            crate::http_get(addr, "/-/ready")
        })?;
        Some(prometheus)
    }

    /// The `data` of an instant query of `expr` (`{"resultType": ..., "result": [...]}`),
    /// `None` if the query failed.
    pub fn query(&self, expr: &str) -> Option<serde_json::Value> {
        self.api("/api/v1/query", &[("query", expr)])
    }

    /// The `data` of GET `path` of the HTTP API with `params`, if its status is
    /// `success`.
    pub fn api(&self, path: &str, params: &[(&str, &str)]) -> Option<serde_json::Value> {
        let url = format!("http://{}{path}", self.addr);
        let body: serde_json::Value = crate::block_on(async {
            let client = reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .ok()?;
            let response = client.get(url).query(params).send().await.ok()?;
            response.json().await.ok()
        })??;
        (body["status"] == "success").then(|| body["data"].clone())
    }
}

/// The finite sample values of a query's `data` (vector results; NaN left out).
pub fn finite_values(data: &serde_json::Value) -> Vec<f64> {
    data["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["value"][1].as_str()?.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE a counter\na_total{x=\"1\"} 2\na_total{x=\"2\"} 3\nb 4\nb_count 9\n";

    #[test]
    fn values_and_sums_are_read() {
        assert_eq!(value(TEXT, "a_total{x=\"2\"}"), Some(3.0));
        assert_eq!(value(TEXT, "b"), Some(4.0));
        assert_eq!(value(TEXT, "c"), None);
        assert_eq!(sum(TEXT, "a_total"), 5.0);
        assert_eq!(sum(TEXT, "b"), 4.0);
    }

    #[test]
    fn finite_values_leave_out_nan() {
        let data = serde_json::json!({"resultType": "vector", "result": [
            {"metric": {}, "value": [1.0, "0.25"]},
            {"metric": {}, "value": [1.0, "NaN"]},
        ]});
        assert_eq!(finite_values(&data), vec![0.25]);
    }
}
