//! P-CSCF: the IMS edge proxy toward UEs (TS 24.229 §5.2). See the library docs for
//! what it does; this binary runs it on the `[sip]` listeners with `/health` (which
//! shows `registered_contacts`, `restored_registrations`, `reg_event_subscriptions` and
//! `restored_reg_event_subscriptions`) and `/metrics`. At start it takes back the
//! registrations and reg event subscription dialogs `[pcscf] store` kept
//! ([`pcscf::store`], [`pcscf::regsub`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ims_config::{PcscfConfig, MEMORY_STORE};
use ims_node::{Ingress, Role};
use ims_runtime::budget::BudgetMetrics;
use ims_runtime::prometheus_client::metrics::gauge::Gauge;
use ims_runtime::prometheus_client::registry::Registry;
use ims_runtime::sip::{run_engine_until_shutdown, start_proxy, watch_engine};
use ims_runtime::NodeArgs;
use ims_sip::message::via::split_host_port;
use ims_sip::proxy::engine::Originator;
use ims_sip::transport::{Face, TransportKind, TransportLayer};
use pcscf::budget::SourceBudget;
use pcscf::flow_token::FlowTokens;
use pcscf::registrations::Registration;
use pcscf::store::{unix_now, Change, Persistence, RegistrationStore, StoredSubscription};
use pcscf::{Pcscf, PcscfPolicy, PcscfSettings};

fn main() -> anyhow::Result<()> {
    let args = NodeArgs::parse_for(env!("CARGO_BIN_NAME"), env!("CARGO_PKG_VERSION"));
    let config: PcscfConfig = ims_config::load(&args.config)?;
    let threads = config.node.threads(config.sip.workers.count());
    ims_runtime::node_runtime(threads)?.block_on(run(config))
}

async fn run(config: PcscfConfig) -> anyhow::Result<()> {
    ims_runtime::init_node_logging(&config.node);
    let section = &config.pcscf;
    let tokens = match (&section.flow_token_key, &section.flow_token_key_file) {
        (Some(key), _) => FlowTokens::new(hex::decode(key)?),
        (None, Some(path)) => {
            FlowTokens::from_key_file(path).context("pcscf.flow_token_key_file")?
        }
        (None, None) => {
            tracing::warn!("no pcscf.flow_token_key(_file): a random key, so flow tokens issued before a restart will be refused");
            FlowTokens::random()
        }
    };
    let metrics = BudgetMetrics::default();
    let budget = Arc::new(SourceBudget::new(&config.budget, metrics.clone()));
    let reporter = budget
        .refusals
        .spawn_reporter(Duration::from_secs(config.budget.summary_secs));
    let ingress = Ingress::new(Role::Pcscf, &config.zones).with_refusals(budget.refusals.sink());
    let (persistence, restored, subscriptions) = open_store(&config).await?;
    let settings = PcscfSettings {
        budget,
        home_networks: section
            .home_networks
            .iter()
            .map(|(domain, uri)| (domain.clone(), format!("<{uri}>")))
            .collect(),
        visited_network_id: section
            .visited_network_id
            .clone()
            .unwrap_or_else(|| config.node.domain.clone()),
        tokens,
        cloud_auth: cloud_auth::filter::setup::from_section(
            &config.cloud_auth,
            &config.node.domain,
            "pcscf",
        )?,
        ingress,
        persistence: persistence.clone(),
        originator: Originator::default(),
        reg_event: section.reg_event,
    };
    let originator = settings.originator.clone();
    let settings_filter = settings.cloud_auth.clone();
    let pcscf = Pcscf::new(settings, section.max_registrations);
    let now = tokio::time::Instant::now();
    let restored = pcscf.registrations.restore(restored, now);
    let restored_subscriptions =
        pcscf
            .subscriptions
            .restore(subscriptions, &pcscf.registrations, now, unix_now());
    if persistence.is_some() {
        tracing::info!(
            restored,
            restored_subscriptions,
            "registrations and their reg event subscriptions restored from the store"
        );
    }
    let mut registry = Registry::default();
    if let Some(p) = &persistence {
        registry.register(
            "pcscf_registration_store_failures",
            "Registration writes the store refused (the registration then lives in memory only)",
            p.failures.clone(),
        );
        registry.register(
            "pcscf_store_refreshes_unwritten",
            "Refreshes not written to the store: only their expiry changed, the stored one lagging by at most min(duration / 20, 60 s)",
            p.unwritten.clone(),
        );
    }
    metrics.register(&mut registry);
    if let Some(f) = &settings_filter {
        f.filter().register_metrics(&mut registry);
    }
    let registered: Gauge = Gauge::default();
    registry.register(
        "pcscf_registered_contacts",
        "UE contacts registered through this P-CSCF (refreshed every second)",
        registered.clone(),
    );
    let mut engine = start_proxy(
        &config.sip,
        PcscfPolicy(pcscf.clone()),
        &mut registry,
        metrics.rejections(),
    )
    .await?;
    pcscf.set_core_address(core_address(&config, engine.transport()));
    engine.bind_originator(&originator);
    let running = ims_runtime::Node::start("pcscf", &config.node, &config.http, registry).await?;
    watch_engine(&running.status, &engine);
    let listeners: Vec<String> = engine
        .transport()
        .local_addrs()
        .iter()
        .map(|(k, a)| format!("{}:{a}", k.via_token().to_ascii_lowercase()))
        .collect();
    running.status.set("sip_listeners", listeners);
    running.status.set(
        "cloud_auth",
        if settings_filter.is_some() {
            "on"
        } else {
            "off"
        },
    );
    running.status.set("restored_registrations", restored);
    running
        .status
        .set("restored_reg_event_subscriptions", restored_subscriptions);
    let status = running.status.clone();
    let purger = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for second in 0u64.. {
            tick.tick().await;
            let now = tokio::time::Instant::now();
            let n = pcscf.registrations.purge(now);
            pcscf.subscriptions.refresh(now);
            status.set("reg_event_subscriptions", pcscf.subscriptions.len());
            status.set("registered_contacts", n);
            registered.set(i64::try_from(n).unwrap_or(i64::MAX));
            if let Some(p) = persistence
                .as_ref()
                .filter(|_| second % PURGE_STORE_SECS == 0)
            {
                // The rows of registrations that lapsed: the table stays as bounded as
                // the memory.
                let unix = unix_now();
                p.forget_expired(unix);
                tokio::spawn(p.write(Change::DeleteExpired(unix)));
            }
        }
    });
    let served = run_engine_until_shutdown(running, &mut engine).await;
    purger.abort();
    reporter.abort();
    drop(engine);
    Ok(served?)
}

/// How often the store drops the rows of lapsed registrations, in seconds.
const PURGE_STORE_SECS: u64 = 60;

/// What the store gave back at start: its writer, the registrations that can be used
/// again (live, over UDP) and the reg event subscription dialogs.
type Restored = (
    Option<Persistence>,
    Vec<Registration>,
    Vec<StoredSubscription>,
);

/// The store of `[pcscf] store` with its writer, the registrations it holds that can be
/// used again (live, over UDP) and the stored subscription dialogs; none with
/// `store = "memory"`.
async fn open_store(config: &PcscfConfig) -> anyhow::Result<Restored> {
    let url = &config.pcscf.store;
    if url == MEMORY_STORE {
        tracing::warn!("pcscf.store = \"memory\": every UE must register again after a restart");
        return Ok((None, Vec::new(), Vec::new()));
    }
    let store = RegistrationStore::open(url, &config.node.name)
        .await
        .context("pcscf.store")?;
    let unix = unix_now();
    let stored = store.load(unix).await.context("pcscf.store: loading")?;
    let subscriptions = store
        .subscriptions()
        .await
        .context("pcscf.store: loading the reg event subscriptions")?;
    let now = tokio::time::Instant::now();
    let count = stored.len();
    let (live, rows): (Vec<Registration>, Vec<_>) = stored
        .into_iter()
        .filter_map(|r| Some((r.clone().restore(now, unix)?, r)))
        .unzip();
    if live.len() < count {
        tracing::info!(
            dropped = count - live.len(),
            "stored registrations over connections of the previous run (or unreadable) not restored"
        );
    }
    let persistence = Persistence::spawn(store);
    // What the store holds: their refreshes within the bound need no write.
    persistence.restored(rows);
    Ok((Some(persistence), live, subscriptions))
}

/// Where the core reaches us (the host part of Path): the first UDP listener (else the
/// first listener, with its transport) of `[sip.core]` with its advertised host when
/// the node has one, else of `[sip]`.
fn core_address(config: &PcscfConfig, transport: &TransportLayer) -> String {
    let (face, advertise) = match &config.sip.core {
        Some(core) => (Face::Core, core.advertise.as_deref()),
        None => (Face::Main, config.sip.advertise.as_deref()),
    };
    let listeners: Vec<_> = transport
        .listeners()
        .filter(|&(_, _, f)| f == face)
        .map(|(k, a, _)| (k, a))
        .collect();
    let (kind, addr) = listeners
        .iter()
        .find(|(k, _)| *k == TransportKind::Udp)
        .or_else(|| listeners.first())
        .copied()
        .unwrap_or((
            TransportKind::Udp,
            std::net::SocketAddr::from(([127, 0, 0, 1], 5060)),
        ));
    let host = advertise
        .and_then(split_host_port)
        .map_or_else(|| addr.ip().to_string(), |(h, _)| h.to_string());
    let transport = match kind {
        TransportKind::Udp => String::new(),
        k => format!(";transport={}", k.uri_param()),
    };
    format!("{host}:{}{transport}", addr.port())
}
