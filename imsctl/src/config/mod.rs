//! `imsctl config init|check`: a multi-host core's configuration, generated and checked
//! as a whole (deploy/README.md).

pub mod check;
mod init;
mod pki;
pub mod plan;
mod render;

use std::path::PathBuf;

use clap::Subcommand;

/// `imsctl config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write every node's TOML, a CA and per-node certificates for one VM per node;
    /// pools of P-CSCFs, S-CSCFs and HSSs when --pcscf, --scscf, --hss are repeated.
    Init(Box<init::InitArgs>),
    /// Load every node config in DIR and check the rules between the files.
    Check {
        /// Directory holding pcscf.toml, icscf.toml, scscf.toml, hss.toml, policyd.toml
        /// (a pool's nodes as <role>1.toml, <role>2.toml, ...).
        dir: PathBuf,
        /// Paths in the configs under this directory are read from DIR (configs are
        /// written for their installed place).
        #[arg(long, default_value = "/etc/ims-core")]
        paths_base: PathBuf,
    },
}

/// Runs a `config` subcommand.
pub fn run(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Init(args) => init::run(*args),
        ConfigCommand::Check { dir, paths_base } => check::run(&dir, &paths_base),
    }
}
