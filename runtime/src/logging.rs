//! Logging setup.

use tracing_subscriber::EnvFilter;

/// Installs the global `tracing` subscriber. `RUST_LOG`, when set, overrides `filter`.
/// Calling it twice is harmless (the second call does nothing).
pub fn init_logging(filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .try_init();
}
