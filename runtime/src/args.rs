//! Command-line arguments common to every node.

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches};

/// `<node> --config <file>`, and `<node> --version`.
#[derive(Debug, Clone, clap::Parser)]
pub struct NodeArgs {
    /// Configuration file (TOML).
    #[arg(short, long)]
    pub config: PathBuf,
}

impl NodeArgs {
    /// Parses the command line of the node binary `name` at `version` (its crate's),
    /// so that `--version` prints `<name> <version>` and `--help` names the node. Exits
    /// with clap's usage message on a bad command line, like `Parser::parse`.
    /// Call it as `NodeArgs::parse_for(env!("CARGO_BIN_NAME"), env!("CARGO_PKG_VERSION"))`.
    pub fn parse_for(name: &'static str, version: &'static str) -> Self {
        let mut command = Self::command().name(name).version(version);
        let matches = command.get_matches_mut();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit())
    }
}
