//! P-CSCF: the IMS edge proxy toward UEs (TS 24.229 §5.2).
//!
//! Today the node loads and validates its configuration and serves `/health` and
//! `/metrics`; its protocol functions arrive with their issues (see ARCHITECTURE.md).

use clap::Parser;
use ims_config::PcscfConfig;
use ims_runtime::{prometheus_client::registry::Registry, Node, NodeArgs};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = NodeArgs::parse();
    let config: PcscfConfig = ims_config::load(&args.config)?;
    let node = Node::start("pcscf", &config.node, &config.http, Registry::default()).await?;
    node.run_until_shutdown().await;
    Ok(())
}
