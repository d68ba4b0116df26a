//! I-CSCF: entry point of the home network (TS 24.229 §5.3). See the library docs;
//! this binary runs it on the `[sip]` listeners with its Cx client toward the HSS,
//! `/health` and `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use icscf::memory::ScscfMemory;
use icscf::unknown::UnknownUsers;
use icscf::IcscfPolicy;
use ims_config::IcscfConfig;
use ims_node::cx::{CxClient, RefuseRequests};
use ims_node::{Ingress, Role};
use ims_runtime::budget::BudgetMetrics;
use ims_runtime::prometheus_client::registry::Registry;
use ims_runtime::sip::{run_sip_node, NodeWatch};
use ims_runtime::NodeArgs;

fn main() -> anyhow::Result<()> {
    let args = NodeArgs::parse_for(env!("CARGO_BIN_NAME"), env!("CARGO_PKG_VERSION"));
    let config: IcscfConfig = ims_config::load(&args.config)?;
    let threads = config.node.threads(config.sip.workers.count());
    ims_runtime::node_runtime(threads)?.block_on(run(config))
}

async fn run(config: IcscfConfig) -> anyhow::Result<()> {
    ims_runtime::init_node_logging(&config.node);
    let metrics = BudgetMetrics::default();
    let unknown = Arc::new(UnknownUsers::new(
        &config.budget,
        &config.node.domain,
        metrics.clone(),
    ));
    let ingress = Ingress::new(Role::Icscf, &config.zones).with_refusals(unknown.refusals.sink());
    let policy = IcscfPolicy {
        cx: CxClient::start(
            &config.cx,
            RefuseRequests::new(&config.cx.origin_host, &config.cx.origin_realm),
        )
        .map_err(|e| anyhow::anyhow!("cx TLS files: {e}"))?,
        scscfs: config.scscf.clone(),
        home_network: config.node.domain.clone(),
        unknown,
        memory: Arc::new(ScscfMemory::new(&config.registration, metrics.clone())),
        ingress,
    };
    let reporter = policy
        .unknown
        .refusals
        .spawn_reporter(Duration::from_secs(config.budget.summary_secs));
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let cx_open = policy.cx.peers().register_metrics(&mut registry);
    run_sip_node(
        "icscf",
        &config.node,
        &config.http,
        &config.sip,
        policy,
        NodeWatch {
            registry,
            rejections: metrics.rejections(),
            checks: vec![("cx_peer", Arc::new(cx_open))],
        },
    )
    .await?;
    reporter.abort();
    Ok(())
}
