//! Command-line arguments common to every node.

use std::path::PathBuf;

/// `<node> --config <file>`.
#[derive(Debug, Clone, clap::Parser)]
pub struct NodeArgs {
    /// Configuration file (TOML).
    #[arg(short, long)]
    pub config: PathBuf,
}
