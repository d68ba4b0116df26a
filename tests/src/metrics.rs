//! Reading a node's `/metrics` (Prometheus text format) in tests, and checking it with
//! `promtool check metrics` (Debian's `prometheus` package).

use std::io::Write;
use std::process::{Command, Stdio};

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
}
