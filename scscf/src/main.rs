//! S-CSCF: registrar and session control (TS 24.229 §5.4).
//!
//! Today the node loads and validates its configuration and serves `/health` and
//! `/metrics`; its protocol functions arrive with their issues (see ARCHITECTURE.md).

use clap::Parser;
use ims_config::ScscfConfig;
use ims_runtime::{prometheus_client::registry::Registry, Node, NodeArgs};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = NodeArgs::parse();
    let config: ScscfConfig = ims_config::load(&args.config)?;
    let node = Node::start("scscf", &config.node, &config.http, Registry::default()).await?;
    node.run_until_shutdown().await;
    Ok(())
}
