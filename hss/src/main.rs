//! HSS: subscriber database speaking Diameter Cx (TS 29.228/29.229).
//!
//! Today the node loads and validates its configuration and serves `/health` and
//! `/metrics`; its protocol functions arrive with their issues (see ARCHITECTURE.md).

use clap::Parser;
use ims_config::HssConfig;
use ims_runtime::{prometheus_client::registry::Registry, Node, NodeArgs};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = NodeArgs::parse();
    let config: HssConfig = ims_config::load(&args.config)?;
    let node = Node::start("hss", &config.node, &config.http, Registry::default()).await?;
    node.run_until_shutdown().await;
    Ok(())
}
