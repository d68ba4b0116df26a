//! Logging setup.

use std::io::IsTerminal;

use ims_config::{LogFormat, NodeSection};
use tracing_subscriber::EnvFilter;

/// The environment variable that chooses the log format (`text` or `json`), over the
/// configuration's `[node] log_format`.
pub const LOG_FORMAT_ENV: &str = "IMS_LOG_FORMAT";

/// Installs the global `tracing` subscriber, writing to standard output. `RUST_LOG`,
/// when set, overrides `filter`; `IMS_LOG_FORMAT=json` writes JSON lines. Colours (ANSI
/// escapes) only in text, when standard output is a terminal and `NO_COLOR` is unset
/// or empty: under systemd, in a container or piped to a file, the lines are plain
/// text. Calling it twice is harmless (the second call does nothing).
pub fn init_logging(filter: &str) {
    install(filter, LogFormat::Text);
}

/// [`init_logging`] with the node's `[node] log` filter and `log_format` (which
/// `IMS_LOG_FORMAT` overrides).
pub fn init_node_logging(node: &NodeSection) {
    install(&node.log, node.log_format);
}

fn install(filter: &str, configured: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let format = match std::env::var(LOG_FORMAT_ENV).as_deref() {
        Ok("json") => LogFormat::Json,
        Ok("text") => LogFormat::Text,
        _ => configured,
    };
    let _ = match format {
        // One object per line: time, level, target, the event's fields at the top
        // level, the current span and the list of spans (a request's `sip` span with
        // its Call-ID and icid).
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(filter)
            .with_target(true)
            .try_init(),
        LogFormat::Text => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_target(true)
                .with_ansi(std::io::stdout().is_terminal() && !no_color)
                .try_init()
        }
    };
}
