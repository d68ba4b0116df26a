//! Logging setup.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global `tracing` subscriber, writing to standard output. `RUST_LOG`,
/// when set, overrides `filter`. Colours (ANSI escapes) only when standard output is a
/// terminal and `NO_COLOR` is unset or empty: under systemd, in a container or piped to
/// a file, the lines are plain text. Calling it twice is harmless (the second call does
/// nothing).
pub fn init_logging(filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(std::io::stdout().is_terminal() && !no_color)
        .try_init();
}
