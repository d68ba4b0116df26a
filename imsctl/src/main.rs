//! `imsctl`: the operator's command-line tool.
//!
//! * `imsctl up` starts the whole core on embedded defaults (dev configs from
//!   `config/dev/`, a dev CA and TLS certificates generated into the data directory on
//!   first start, loopback addresses) and keeps it running until Ctrl-C.
//!   With the Keystone environment installed (`scripts/keystone/setup`) or `--cloud`, it
//!   also runs a local Keystone with demo tenants and turns cloud authorization on
//!   (`--no-cloud`: off).
//! * `imsctl token <subscriber>` prints a Keystone token of the subscriber's user.
//! * `imsctl status` shows each node's health.
//! * `imsctl subscriber add|list|show|update|delete|import` manages subscribers through
//!   the HSS provisioning API.
//! * `imsctl registrations <impu>` lists a user's contacts and reg event subscriptions
//!   (the S-CSCF's operator API).
//! * `imsctl deregister <impu>` de-registers a subscriber administratively (the HSS's RTR).
//! * `imsctl policy list|show|versions|put|delete` manages policies through the policy
//!   service's API with a Keystone token.
//! * `imsctl config init|check` writes and checks a multi-host core's configuration.

mod config;
mod demo;
mod devca;
mod health;
mod http;
mod ifc;
mod keystone;
mod policy;
mod registrations;
mod subscriber;
mod up;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Operate an IMS core.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Directory holding `pcscf.toml`, `icscf.toml`, `scscf.toml` and `hss.toml`.
    #[arg(long, global = true, default_value = "config/dev")]
    config_dir: PathBuf,
    /// PEM file of the CA trusted for the nodes' HTTPS listeners besides the system
    /// roots (default: the dev CA `${IMS_DATA_DIR:-data}/tls/ca.crt` when it exists).
    #[arg(long, env = "IMS_CA", global = true)]
    ca: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start every node on the dev defaults and supervise them until Ctrl-C.
    Up {
        /// Where generated certificates, node data and logs and the local Keystone go.
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Seconds to wait for each node's /health before giving up.
        #[arg(long, default_value_t = 30)]
        health_timeout: u64,
        /// Cloud authorization on: a local Keystone (installed by scripts/keystone/setup
        /// if missing) with demo tenants, policyd and the CSCFs' filters. The default
        /// when the Keystone environment is installed.
        #[arg(long, conflicts_with = "no_cloud")]
        cloud: bool,
        /// Cloud authorization off (no Keystone; requests are not checked).
        #[arg(long)]
        no_cloud: bool,
    },
    /// Print a Keystone token of a subscriber's Keystone user (the demo of `imsctl up`).
    Token(demo::TokenArgs),
    /// Show the health of each node.
    Status,
    /// Manage subscribers in the HSS (provisioning API).
    Subscriber {
        #[command(flatten)]
        target: subscriber::Target,
        #[command(subcommand)]
        command: Box<subscriber::SubscriberCommand>,
    },
    /// Show what the S-CSCF holds for a public identity: its contacts (expiry, Path)
    /// and the reg event subscriptions to its implicit set (JSON).
    Registrations {
        /// The public identity, e.g. sip:alice@ims.example.net.
        impu: String,
        /// Base URL of the S-CSCF's HTTP endpoint (default: scscf.toml `http.listen`).
        #[arg(long, env = "IMS_SCSCF_URL")]
        url: Option<String>,
        /// The S-CSCF's admin token (default: from scscf.toml `[api]`).
        #[arg(long, env = "IMS_SCSCF_TOKEN")]
        token: Option<String>,
    },
    /// De-register every public identity of a subscriber (by id, IMPI or IMPU): the HSS
    /// sends the S-CSCF an RTR (TS 29.228 §6.1.3), which notifies the reg event
    /// subscribers (RFC 3680).
    Deregister {
        #[command(flatten)]
        target: subscriber::Target,
        /// Subscription id, IMPI or IMPU.
        key: String,
        /// The RTR's Reason-Code: `server_change` (the UE registers again; contacts
        /// `deactivated`), `permanent_termination` (it may not; `rejected`),
        /// `new_server_assigned`, `remove_scscf`.
        #[arg(long, default_value = "server_change")]
        reason: String,
    },
    /// Manage global and customer policies in the policy service.
    Policy {
        #[command(flatten)]
        target: policy::Target,
        #[command(subcommand)]
        command: policy::PolicyCommand,
    },
    /// Generate (`init`) and check (`check`) the configuration of a multi-host core.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Config { command } = cli.command {
        return config::run(command);
    }
    let ca = http::trusted_ca(cli.ca);
    let ca = ca.as_deref();
    match cli.command {
        Command::Up {
            data_dir,
            health_timeout,
            cloud,
            no_cloud,
        } => {
            let cloud = up::Cloud::from_flags(cloud, no_cloud);
            up::run(&cli.config_dir, &data_dir, health_timeout, cloud).await
        }
        Command::Token(args) => demo::token(&args, &cli.config_dir, ca).await,
        Command::Status => health::print_status(&cli.config_dir, ca).await,
        Command::Subscriber { target, command } => {
            subscriber::run(&cli.config_dir, &target, ca, *command).await
        }
        Command::Registrations { impu, url, token } => {
            registrations::show(&cli.config_dir, url.as_deref(), token.as_deref(), ca, &impu).await
        }
        Command::Deregister {
            target,
            key,
            reason,
        } => subscriber::deregister(&cli.config_dir, &target, ca, &key, &reason).await,
        Command::Policy { target, command } => {
            policy::run(&cli.config_dir, &target, ca, command).await
        }
        Command::Config { .. } => Ok(()),
    }
}
