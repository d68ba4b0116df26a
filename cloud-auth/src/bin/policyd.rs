//! `policyd`: the policy service (design brief §6). Loads its configuration, opens the
//! policy store (creating the SQLite file, the schema and the built-in global policies on
//! first start), and serves `/health`, `/metrics` and the policy API (`/v1/`, see
//! `cloud_auth::policyd::api`) on its `[http]` listener. Without `[keystone]` (or with
//! `[cloud_auth] mode = "off"`) it runs with cloud auth off: every API call is refused
//! with 503, and the log and `/health` say so.

use std::time::Duration;

use anyhow::Context;
use cloud_auth::keystone::{KeystoneConfig, TokenValidator};
use cloud_auth::policyd::{self, Engine, Reference, Store};
use ims_config::PolicydConfig;
use ims_runtime::{prometheus_client::registry::Registry, Node, NodeArgs};

fn main() -> anyhow::Result<()> {
    let args = NodeArgs::parse_for(env!("CARGO_BIN_NAME"), env!("CARGO_PKG_VERSION"));
    let config: PolicydConfig = ims_config::load(&args.config)?;
    let threads = config.node.threads(ims_config::available_cores());
    ims_runtime::node_runtime(threads)?.block_on(run(config))
}

async fn run(config: PolicydConfig) -> anyhow::Result<()> {
    ims_runtime::init_node_logging(&config.node);
    let effective = config
        .policy
        .effective
        .iter()
        .map(|r| Reference::parse(r).with_context(|| format!("policy.effective: {r}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let keystone = match config.keystone() {
        Some(k) => {
            let v = TokenValidator::new(KeystoneConfig::from_section(k)?).context("keystone")?;
            // Find a wrong service password or URL at once; not fatal (Keystone may come up
            // later), calls are refused with 503 meanwhile.
            if let Err(e) = v.ensure_service_token().await {
                tracing::warn!(error = %e, url = %k.url, "Keystone service login failed; API calls get 503 until it works");
            }
            Some(v)
        }
        None => {
            tracing::warn!(
                "no [keystone] configured, or [cloud_auth] mode = \"off\": cloud auth is OFF; \
                 every policy API call (management, verify, feed) is refused with 503"
            );
            None
        }
    };
    let store = Store::open(&config.store.url, config.store.max_connections)
        .await
        .context("store: opening the policy database")?;
    let engine = Engine::open(store, effective)
        .await
        .context("store: loading policies")?;
    let metrics = policyd::Metrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let keystone_on = keystone.is_some();
    let api = policyd::router(engine.clone(), keystone, metrics);
    let node = Node::start_with("policyd", &config.node, &config.http, registry, api).await?;
    node.status
        .set("keystone", if keystone_on { "on" } else { "off" });
    node.status.set("policies_at_start", engine.list().len());
    let poll = Duration::from_millis(config.policy.poll_interval_ms);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(poll);
        loop {
            tick.tick().await;
            if let Err(e) = engine.refresh().await {
                tracing::warn!(error = %e, "reading the policy change log failed");
            }
        }
    });
    node.run_until_shutdown().await;
    Ok(())
}
