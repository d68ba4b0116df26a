//! HSS: subscriber database speaking Diameter Cx (TS 29.228/29.229).
//!
//! Loads its configuration, opens the subscriber store (creating the SQLite file and
//! running migrations on first start), and serves `/health`, `/metrics` and the
//! provisioning API (`/api/v1/`) on its `[http]` listener. The Cx handlers arrive with
//! the Diameter stack.

use anyhow::Context;
use clap::Parser;
use hss::secrets::{self, StoreKey};
use hss::store::Store;
use ims_config::HssConfig;
use ims_runtime::{prometheus_client::registry::Registry, Node, NodeArgs};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = NodeArgs::parse();
    let config: HssConfig = ims_config::load(&args.config)?;
    ims_runtime::init_logging(&config.node.log);
    let key = StoreKey::load(&config.security).context("security: store key")?;
    let token = secrets::admin_token(&config.provisioning, &config.security)
        .context("provisioning: admin token")?;
    if token.is_none() {
        tracing::warn!(
            "no provisioning.admin_token(_file): the provisioning API refuses every request"
        );
    }
    let store = Store::open(&config.store.url, config.store.max_connections, key)
        .await
        .context("store: opening the subscriber database")?;
    let subscribers = store.count().await?;
    let backend = format!("{:?}", store.backend()).to_ascii_lowercase();
    let api = hss::provisioning::router(store, token, &config.node.domain);
    let node =
        Node::start_with("hss", &config.node, &config.http, Registry::default(), api).await?;
    node.status.set("store", backend);
    node.status.set("subscribers_at_start", subscribers);
    node.run_until_shutdown().await;
    Ok(())
}
