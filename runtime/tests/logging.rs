#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `init_logging` writes plain text when standard output is not a terminal (systemd's
//! journal, a container's log, a pipe): no ANSI colour escapes in the lines.
//!
//! The test runs itself again as a child process with standard output piped; the child
//! installs the subscriber and logs one line.

use std::process::Command;

/// Set in the child's environment: log and return instead of spawning.
const CHILD: &str = "IMS_RUNTIME_LOGGING_TEST_CHILD";
const TEST: &str = "a_log_line_to_a_pipe_has_no_ansi_escapes";

#[test]
fn a_log_line_to_a_pipe_has_no_ansi_escapes() {
    if std::env::var_os(CHILD).is_some() {
        ims_runtime::init_logging("info");
        tracing::info!(peer = "198.51.100.7", "marker line from the child");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(out.status.success(), "child failed: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("marker line from the child"))
        .unwrap_or_else(|| panic!("no log line in the child's stdout: {stdout}"));
    assert!(!line.contains('\u{1b}'), "ANSI escape in {line:?}");
    assert!(line.contains(" INFO "), "{line:?}");
    assert!(line.contains("peer=\"198.51.100.7\""), "{line:?}");
}
