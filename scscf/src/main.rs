//! S-CSCF: registrar and session control (TS 24.229 §5.4).
//!
//! The node runs the `ims-sip` proxy engine on its `[sip]` listeners with the
//! [`scscf::policy::ScscfPolicy`]: REGISTER is answered by the registrar (Digest/AKA
//! authentication with MAR, SAR, bindings persisted in `[registrar] store`), initial
//! requests are routed as originating (toward `[session] icscf`) or terminating (to the
//! callee's contacts), through the served user's application servers (iFC, `[session]
//! as_timeout_ms`), requests in a dialog by their Route set. The Diameter Cx client connects to
//! each HSS of `[cx] hss` and keeps reconnecting. `/health` shows `registered_contacts`,
//! `cx_peer` (open while one HSS peer is)
//! and the store writer's `store_changes` and `store_transactions` (group commit).

use std::sync::Arc;
use std::time::Duration;

use ims_config::{BudgetSection, ScscfConfig};
use ims_runtime::budget::{Backoff, BackoffPolicy, BudgetMetrics, Refusals};
use ims_runtime::prometheus_client::metrics::gauge::Gauge;
use ims_runtime::sip::{run_engine_until_shutdown, start_proxy, watch_engine};
use ims_runtime::NodeArgs;
use ims_sip::message::uri::Uri;
use ims_sip::proxy::engine::Originator;
use scscf::api::AdminToken;
use scscf::auth::Challenges;
use scscf::cx::{CxClient, HssRequests};
use scscf::gruu::Gruus;
use scscf::location::ExpiryLimits;
use scscf::policy::ScscfPolicy;
use scscf::regevent::{Notifier, NotifierSettings};
use scscf::registrar::takeover::PoolSettings;
use scscf::registrar::{Registrar, Settings};
use scscf::session::case::ORIG_USER;
use scscf::session::SessionSettings;
use scscf::store::BindingStore;
use scscf::thirdparty::ThirdParty;

/// Our SIP `host[:port]` for other nodes and application servers: the advertised SIP
/// address toward the core ([`ims_config::SipSection::core_host_port`]), else the host
/// of the Server-Name.
fn own_host(config: &ScscfConfig) -> String {
    config.sip.core_host_port().unwrap_or_else(|| {
        Uri::parse(&config.registrar.server_name)
            .map(|u| match u.port {
                Some(p) => format!("{}:{p}", u.host),
                None => u.host.to_string(),
            })
            .unwrap_or_else(|_| config.node.domain.clone())
    })
}

/// `<sip:orig@HOST;lr>` ([`ORIG_USER`]) at [`own_host`].
fn service_route(config: &ScscfConfig) -> String {
    format!("<sip:{ORIG_USER}@{};lr>", own_host(config))
}

/// The back-off per private identity after failed authentications, when `[budget]`
/// is on.
fn identity_backoff(
    section: &BudgetSection,
    metrics: &BudgetMetrics,
) -> Option<Arc<Backoff<String>>> {
    section.enabled.then(|| {
        let policy = BackoffPolicy {
            after_failures: section.failures_before_backoff,
            base: Duration::from_secs(section.backoff_base_secs),
            max: Duration::from_secs(section.backoff_max_secs),
        };
        Arc::new(Backoff::new(
            "scscf_auth_failures",
            policy,
            section.max_keys,
            metrics.clone(),
        ))
    })
}

fn main() -> anyhow::Result<()> {
    let args = NodeArgs::parse_for(env!("CARGO_BIN_NAME"), env!("CARGO_PKG_VERSION"));
    let config: ScscfConfig = ims_config::load(&args.config)?;
    let threads = config.node.threads(config.sip.workers.count());
    ims_runtime::node_runtime(threads)?.block_on(run(config))
}

async fn run(config: ScscfConfig) -> anyhow::Result<()> {
    ims_runtime::init_node_logging(&config.node);
    let r = &config.registrar;
    let store = BindingStore::open(&r.store)
        .await
        .map_err(|e| anyhow::anyhow!("registrar.store: {e}"))?
        .owned_by(&r.server_name);
    let metrics = BudgetMetrics::default();
    let handler = HssRequests::new(&config.cx.origin_host, &config.cx.origin_realm);
    let cx = CxClient::start(&config.cx, &r.server_name, handler.clone())
        .map_err(|e| anyhow::anyhow!("cx TLS files: {e}"))?;
    // One GRUU key for the registrar, session routing and the reg event notifier;
    // temporary GRUUs name our own SIP address as their host.
    let gruus = Arc::new(match &r.gruu_key_file {
        Some(path) => Gruus::from_key_file(path, &own_host(&config))
            .map_err(|e| anyhow::anyhow!("registrar.gruu_key_file: {e}"))?,
        None => {
            tracing::warn!(
                "no [registrar] gruu_key_file: temporary GRUUs do not survive a restart"
            );
            Gruus::random(&own_host(&config))
        }
    });
    let settings = Settings {
        limits: ExpiryLimits {
            min: r.min_expires,
            max: r.max_expires,
            default: r.default_expires,
        },
        service_route: service_route(&config),
        realm: config.node.domain.clone(),
        cloud_auth: cloud_auth::filter::setup::from_section(
            &config.cloud_auth,
            &config.node.domain,
            "scscf",
        )?,
        unregistered_ttl_secs: config.session.unregistered_ttl_secs,
        max_unregistered_profiles: config.session.max_unregistered_profiles,
        failures: identity_backoff(&config.budget, &metrics),
        pool: r.pool,
        gruus: gruus.clone(),
    };
    let filter = settings.cloud_auth.clone();
    let challenges = Challenges::new(r.nonce_lifetime, r.max_pending_challenges);
    let registrar = Registrar::new(settings, challenges, cx, store.clone()).await?;
    handler.bind(&registrar);
    // The NOTIFYs leave through the SIP engine, bound once it runs.
    let originator = Originator::default();
    let ev = &config.regevent;
    let notifier = Notifier::new(
        NotifierSettings {
            min_expires: ev.min_expires,
            max_expires: ev.max_expires,
            default_expires: ev.default_expires,
            max_subscriptions: ev.max_subscriptions,
            max_per_identity: ev.max_per_identity,
            contact: format!("<sip:{}>", own_host(&config)),
            terminate_on_shutdown: ev.terminate_on_shutdown,
            gruus: gruus.clone(),
        },
        store.clone(),
        originator.clone(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("registrar.store (reg event subscriptions): {e}"))?;
    registrar.notify_to(notifier.clone());
    // Third-party REGISTERs (TS 24.229 §5.4.1.7) leave through the same engine.
    let (third_party, as_failures) =
        ThirdParty::new(format!("sip:{}", own_host(&config)), originator.clone());
    registrar.third_party_to(third_party, as_failures);
    let expiry = registrar.spawn_expiry();
    let pool = registrar.spawn_pool(PoolSettings {
        lease_secs: r.lease_secs,
        takeover_batch: r.takeover_batch,
    });

    let mut registry = ims_runtime::prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    if let Some(f) = &filter {
        f.filter().register_metrics(&mut registry);
    }
    // Requests refused at the trust boundary: one summary line per interval.
    let refusals = Refusals::new("scscf", metrics.clone());
    let reporter = refusals.spawn_reporter(Duration::from_secs(config.budget.summary_secs));
    let mut sessions = SessionSettings::new(
        &config.session.icscf,
        &config.session.home_domains,
        &config.node.domain,
    );
    sessions.own_host = own_host(&config);
    sessions.gruus = gruus;
    sessions.as_timeout = Duration::from_millis(config.session.as_timeout_ms);
    let policy = ScscfPolicy {
        registrar: registrar.clone(),
        sessions,
        ingress: ims_node::Ingress::new(ims_node::Role::Scscf, &config.zones)
            .with_refusals(refusals.sink()),
        notifier: notifier.clone(),
    };
    let registered: Gauge = Gauge::default();
    registry.register(
        "scscf_registered_contacts",
        "Contacts bound in the S-CSCF's registrar (refreshed every second)",
        registered.clone(),
    );
    registrar.auth_outcomes().register(&mut registry);
    registry.register(
        "scscf_store_refreshes_unwritten",
        "REGISTERs not written to the store: only expiries (and CSeqs) changed, each stored expiry lagging by at most min(duration / 20, 60 s)",
        registrar.refreshes_unwritten().clone(),
    );
    let cx_open = registrar.cx_peers().register_metrics(&mut registry);
    let mut engine = start_proxy(&config.sip, policy, &mut registry, metrics.rejections()).await?;
    engine.bind_originator(&originator);
    let token = match (&config.api.admin_token, &config.api.admin_token_file) {
        (Some(t), _) => Some(AdminToken::Inline(t.clone())),
        (None, Some(f)) => Some(AdminToken::File(f.clone())),
        (None, None) => None,
    };
    let api = token.map_or_else(ims_runtime::Router::new, |t| {
        scscf::api::router(registrar.clone(), notifier.clone(), t)
    });
    let running =
        ims_runtime::Node::start_with("scscf", &config.node, &config.http, registry, api).await?;
    watch_engine(&running.status, &engine);
    running.status.add_check("cx_peer", cx_open);
    let listeners: Vec<String> = engine
        .transport()
        .local_addrs()
        .iter()
        .map(|(k, a)| format!("{}:{a}", k.via_token().to_ascii_lowercase()))
        .collect();
    running.status.set("sip_listeners", listeners);
    registrar.publish_to(running.status.clone());
    running
        .status
        .set("cloud_auth", if filter.is_some() { "on" } else { "off" });
    let status = running.status.clone();
    let peer_watch = {
        let registrar = Arc::downgrade(&registrar);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(r) = registrar.upgrade() else { return };
                status.set("cx_peer", format!("{:?}", r.cx_state()));
                registered.set(i64::try_from(r.contacts()).unwrap_or(i64::MAX));
                let store = r.store_stats();
                status.set("store_changes", store.changes);
                status.set("store_transactions", store.transactions);
            }
        })
    };
    let served = run_engine_until_shutdown(running, &mut engine).await;
    if served.is_ok() && config.regevent.terminate_on_shutdown {
        // The engine still runs: the last NOTIFYs leave through it.
        let lookup = |impu: &str| registrar.registration(impu);
        notifier
            .terminate_all(lookup, scscf::registrar::unix_now(), Duration::from_secs(2))
            .await;
    }
    peer_watch.abort();
    expiry.abort();
    pool.abort();
    reporter.abort();
    drop(engine);
    // An orderly stop: the pool's other S-CSCFs take our registrations over at once.
    if let Err(e) = store.release_lease().await {
        tracing::warn!(error = %e, "cannot release the pool lease");
    }
    store.close().await;
    Ok(served?)
}
