//! HSS: subscriber database speaking Diameter Cx (TS 29.228/29.229).
//!
//! Loads its configuration, opens the subscriber store (creating the SQLite file and
//! running migrations on first start), listens for Diameter Cx peers on its
//! `[diameter]` listeners (UAR/MAR/SAR/LIR answered from the store; RTR/PPR sent when
//! the provisioning API de-registers, deletes or changes a subscriber), and serves
//! `/health`, `/metrics` and the provisioning API (`/api/v1/`) on its `[http]` listener.

use std::sync::Arc;

use anyhow::Context;
use hss::cx::push::Push;
use hss::cx::{CxContext, CxServer};
use hss::provisioning::{Access, SubscriberEvents};
use hss::secrets::{self, StoreKey};
use hss::store::Store;
use ims_config::HssConfig;
use ims_runtime::{prometheus_client::registry::Registry, Node, NodeArgs};

fn main() -> anyhow::Result<()> {
    let args = NodeArgs::parse_for(env!("CARGO_BIN_NAME"), env!("CARGO_PKG_VERSION"));
    let config: HssConfig = ims_config::load(&args.config)?;
    let threads = config.node.threads(ims_config::available_cores());
    ims_runtime::node_runtime(threads)?.block_on(run(config))
}

async fn run(config: HssConfig) -> anyhow::Result<()> {
    ims_runtime::init_node_logging(&config.node);
    let key = StoreKey::load(&config.security).context("security: store key")?;
    let token = if config.provisioning.static_token {
        let token = secrets::admin_token(&config.provisioning, &config.security)
            .context("provisioning: admin token")?;
        if token.is_none() {
            tracing::warn!("no provisioning.admin_token(_file): the static admin token is refused");
        }
        token
    } else {
        tracing::info!("provisioning.static_token = false: only Keystone tokens are accepted");
        None
    };
    let cloud = match &config.provisioning.cloud_auth {
        Some(section) => cloud_auth::filter::setup::request_filter(section, "hss")
            .context("provisioning.cloud_auth")?,
        None => {
            tracing::warn!(
                "no [provisioning.cloud_auth]: Keystone tokens are refused by the provisioning API"
            );
            None
        }
    };
    let cloud_status = if cloud.is_some() { "on" } else { "off" };
    let access = Access::new(token, cloud.clone());
    let store = Store::open(&config.store.url, config.store.max_connections, key)
        .await
        .context("store: opening the subscriber database")?;
    let subscribers = store.count().await?;
    let backend = format!("{:?}", store.backend()).to_ascii_lowercase();
    let mut registry = Registry::default();
    hss::node::register_store_metrics(&mut registry, store.clone());
    let events: Option<Arc<dyn SubscriberEvents>> = match &config.diameter {
        Some(d) => {
            let handler = CxServer::new(CxContext {
                store: store.clone(),
                origin_host: d.origin_host.clone(),
                origin_realm: d.origin_realm.clone(),
                capabilities: hss::node::capabilities(d),
            });
            let servers = Arc::new(hss::node::listen(d, Arc::new(handler)).await?);
            hss::node::register_metrics(&mut registry, servers.clone(), d);
            Some(Arc::new(Push::new(
                servers,
                &d.origin_host,
                &d.origin_realm,
            )))
        }
        None => {
            tracing::warn!("no [diameter] section: the HSS serves no Cx peer");
            None
        }
    };
    let api = hss::provisioning::router_with_access(store, access, &config.node.domain, events);
    if let Some(filter) = &cloud {
        filter.register_metrics(&mut registry);
    }
    let node = Node::start_with("hss", &config.node, &config.http, registry, api).await?;
    node.status.set("cloud_auth", cloud_status);
    node.status.set("store", backend);
    node.status.set("subscribers_at_start", subscribers);
    node.run_until_shutdown().await;
    Ok(())
}
