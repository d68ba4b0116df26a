#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `init_logging` writes plain text when standard output is not a terminal (systemd's
//! journal, a container's log, a pipe): no ANSI colour escapes in the lines; with
//! `[node] log_format = "json"` each line is a JSON object carrying the request span's
//! Call-ID and icid.
//!
//! The test runs itself again as a child process with standard output piped; the child
//! installs the subscriber and logs one line.

use std::process::Command;

/// Set in the child's environment: log and return instead of spawning.
const CHILD: &str = "IMS_RUNTIME_LOGGING_TEST_CHILD";
const TEST: &str = "a_log_line_to_a_pipe_has_no_ansi_escapes";

/// Runs `test` again as a child with standard output piped (and no `NO_COLOR`,
/// `RUST_LOG` or `IMS_LOG_FORMAT`); its marker line.
fn child_line(test: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .env_remove(ims_runtime::LOG_FORMAT_ENV)
        .output()
        .unwrap();
    assert!(out.status.success(), "child failed: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find(|l| l.contains("marker line from the child"))
        .unwrap_or_else(|| panic!("no log line in the child's stdout: {stdout}"))
        .to_string()
}

#[test]
fn a_log_line_to_a_pipe_has_no_ansi_escapes() {
    if std::env::var_os(CHILD).is_some() {
        ims_runtime::init_logging("info");
        tracing::info!(peer = "198.51.100.7", "marker line from the child");
        return;
    }
    let line = child_line(TEST);
    assert!(!line.contains('\u{1b}'), "ANSI escape in {line:?}");
    assert!(line.contains(" INFO "), "{line:?}");
    assert!(line.contains("peer=\"198.51.100.7\""), "{line:?}");
}

const JSON_TEST: &str = "json_lines_carry_the_request_span";

#[test]
fn json_lines_carry_the_request_span() {
    if std::env::var_os(CHILD).is_some() {
        let node: ims_config::NodeSection = ims_config::parse_str(
            "name = \"n\"\ndomain = \"d\"\nlog_format = \"json\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        ims_runtime::init_node_logging(&node);
        let span = tracing::info_span!("sip", call_id = "a84b4c76e66710@pc33", icid = "0123abcd");
        let _inside = span.enter();
        tracing::info!(code = 401, "marker line from the child");
        return;
    }
    let line = child_line(JSON_TEST);
    // libtest may print its `test ... ` prefix on the same line.
    let line = &line[line.find('{').unwrap_or(0)..];
    let v: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(v["level"], "INFO", "{line}");
    assert_eq!(v["message"], "marker line from the child", "{line}");
    assert_eq!(v["code"], 401, "{line}");
    assert_eq!(v["span"]["call_id"], "a84b4c76e66710@pc33", "{line}");
    assert_eq!(v["span"]["icid"], "0123abcd", "{line}");
    assert!(!line.contains('\u{1b}'), "ANSI escape in {line:?}");
}
