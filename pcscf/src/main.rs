//! P-CSCF: the IMS edge proxy toward UEs (TS 24.229 §5.2).
//!
//! Today the node is a stateful SIP proxy (the `ims-sip` proxy engine) on its `[sip]`
//! listeners that forwards initial requests to its `[route] next_hop` (or by
//! Request-URI), and serves `/health` and `/metrics`. Its IMS functions arrive with
//! their issues (see ARCHITECTURE.md).

use clap::Parser;
use ims_config::PcscfConfig;
use ims_runtime::sip::{default_routing, run_sip_node};
use ims_runtime::NodeArgs;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = NodeArgs::parse();
    let config: PcscfConfig = ims_config::load(&args.config)?;
    let policy = default_routing(config.route.as_ref());
    run_sip_node("pcscf", &config.node, &config.http, &config.sip, policy).await?;
    Ok(())
}
