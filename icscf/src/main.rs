//! I-CSCF: entry point of the home network (TS 24.229 §5.3). See the library docs;
//! this binary runs it on the `[sip]` listeners with its Cx client toward the HSS,
//! `/health` and `/metrics`.

use clap::Parser;
use icscf::cx::CxClient;
use icscf::IcscfPolicy;
use ims_config::IcscfConfig;
use ims_node::{Ingress, Role};
use ims_runtime::sip::run_sip_node;
use ims_runtime::NodeArgs;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = NodeArgs::parse();
    let config: IcscfConfig = ims_config::load(&args.config)?;
    ims_runtime::init_logging(&config.node.log);
    let policy = IcscfPolicy {
        cx: CxClient::connect(&config.cx).map_err(|e| anyhow::anyhow!("cx.tls_ca: {e}"))?,
        scscfs: config.scscf.clone(),
        home_network: config.node.domain.clone(),
        ingress: Ingress::new(Role::Icscf, &config.zones),
    };
    run_sip_node("icscf", &config.node, &config.http, &config.sip, policy).await?;
    Ok(())
}
