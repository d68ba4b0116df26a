//! The HSS's Diameter node from its `[diameter]` configuration: TCP and TLS listeners
//! (TLS on connect, RFC 6733 §13; mutual TLS when `client_ca` is set), the local
//! identity advertised in CER/CEA, the peers allowed (`[[diameter.peer]]`, RFC 6733
//! §5.3) with how each one's Origin-Host is bound to its connection (client certificate
//! name or source address, `ims_diameter::peer::binding`), and Tw (RFC 3539). Refused
//! capabilities exchanges are counted on `/metrics` ([`register_metrics`]).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ims_config::{DiameterSection, DiameterTlsSection};
use ims_diameter::cx::ServerCapabilities;
use ims_diameter::dict::command;
use ims_diameter::peer::{Acceptor, Handler, PeerBinding, PeerConfig, PeerState, Refusal, Server};
use ims_runtime::prometheus_client::collector::Collector;
use ims_runtime::prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use ims_runtime::prometheus_client::metrics::counter::ConstCounter;
use ims_runtime::prometheus_client::metrics::MetricType;
use ims_runtime::prometheus_client::registry::Registry;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// The peer configuration of `section`.
pub fn peer_config(section: &DiameterSection) -> PeerConfig {
    let mut cfg = PeerConfig::cx(&section.origin_host, &section.origin_realm);
    cfg.bindings = section
        .peer
        .iter()
        .map(|p| PeerBinding {
            host: p.host.clone(),
            from: p.from.clone(),
            tls_name: p.tls_name.clone(),
            // The config allows only the Cx request abbreviations.
            commands: p.commands.as_ref().map(|names| {
                names
                    .iter()
                    .filter_map(|n| command::cx_by_abbreviation(n))
                    .collect()
            }),
        })
        .collect();
    cfg.require_tls = section.require_tls;
    cfg.watchdog_interval = Duration::from_millis(section.tw_ms);
    // RFC 3539 §3.4.1: jitter of ±2 s, kept below Tw/4 for short test intervals.
    cfg.watchdog_jitter = Duration::from_millis((section.tw_ms / 4).min(2_000));
    cfg.product_name = "ims-core hss".to_owned();
    cfg
}

/// Server-Capabilities from `[diameter.capabilities]`.
pub fn capabilities(section: &DiameterSection) -> ServerCapabilities {
    ServerCapabilities {
        mandatory: section.capabilities.mandatory.clone(),
        optional: section.capabilities.optional.clone(),
        server_names: section.capabilities.server_names.clone(),
    }
}

/// Binds every listener of `section`, answering with `handler`.
pub async fn listen(
    section: &DiameterSection,
    handler: Arc<dyn Handler>,
) -> anyhow::Result<Vec<Server>> {
    let cfg = peer_config(section);
    let mut servers = Vec::new();
    for addr in &section.tcp {
        let s = Server::bind(cfg.clone(), *addr, Acceptor::Tcp, handler.clone())
            .await
            .with_context(|| format!("diameter.tcp: binding {addr}"))?;
        tracing::info!(addr = %s.local_addr(), "Diameter Cx listening (TCP)");
        servers.push(s);
    }
    if !section.tls.is_empty() {
        let files = section
            .tls_files
            .as_ref()
            .context("diameter.tls_files: required by the tls listeners")?;
        let tls = Acceptor::Tls(server_tls(files).context("diameter.tls_files")?);
        for addr in &section.tls {
            let s = Server::bind(cfg.clone(), *addr, tls.clone(), handler.clone())
                .await
                .with_context(|| format!("diameter.tls: binding {addr}"))?;
            tracing::info!(addr = %s.local_addr(), mutual = files.client_ca.is_some(), "Diameter Cx listening (TLS)");
            servers.push(s);
        }
    }
    Ok(servers)
}

fn certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let f = File::open(path).with_context(|| format!("{}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(f))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not PEM certificates", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{}: no certificate", path.display());
    Ok(certs)
}

/// The rustls server configuration: certificate and key, and a client verifier when a
/// client CA is configured.
fn server_tls(files: &DiameterTlsSection) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(&files.cert)?;
    let f = File::open(&files.key).with_context(|| format!("{}", files.key.display()))?;
    let key = rustls_pemfile::private_key(&mut BufReader::new(f))
        .with_context(|| format!("{}: not a PEM key", files.key.display()))?
        .with_context(|| format!("{}: no private key", files.key.display()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = match &files.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certs(ca)? {
                roots.add(c)?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
            builder
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)?
        }
        None => builder.with_no_client_auth().with_single_cert(chain, key)?,
    };
    Ok(Arc::new(config))
}

/// Exports on `/metrics` the refused connections of `servers` as
/// `diameter_peers_refused_total{reason=...}` (reasons: [`Refusal::label`]), the Cx
/// requests and answers by command and result code with their latency, and whether
/// each peer of `section`'s bindings is connected (`diameter_peer_open{peer}`).
pub fn register_metrics(
    registry: &mut Registry,
    servers: Arc<Vec<Server>>,
    section: &DiameterSection,
) {
    if let Some(first) = servers.first() {
        let metrics = first.metrics();
        for peer in &section.peer {
            let servers = servers.clone();
            let host = peer.host.clone();
            metrics.watch_peer(&peer.host, move || {
                servers
                    .iter()
                    .find_map(|s| s.peer(&host))
                    .map_or(PeerState::Closed, |p| p.state())
            });
        }
        metrics.register(registry);
    }
    registry.register_collector(Box::new(RefusalCollector(servers)));
}

/// Exports the subscription cache's lookups of `store` as
/// `hss_cache_lookups_total{result="hit|miss"}` (SQLite stores; PostgreSQL has no
/// cache and exports nothing).
pub fn register_store_metrics(registry: &mut Registry, store: crate::store::Store) {
    registry.register_collector(Box::new(StoreCollector(store)));
}

struct StoreCollector(crate::store::Store);

impl std::fmt::Debug for StoreCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreCollector")
    }
}

impl Collector for StoreCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let Some((hits, misses)) = self.0.cache_counts() else {
            return Ok(());
        };
        let mut family = enc.encode_descriptor(
            "hss_cache_lookups",
            "Subscription lookups answered from the HSS's cache (hit) or read from the database (miss)",
            None,
            MetricType::Counter,
        )?;
        for (result, n) in [("hit", hits), ("miss", misses)] {
            ConstCounter::new(n).encode(family.encode_family(&[("result", result)])?)?;
        }
        Ok(())
    }
}

struct RefusalCollector(Arc<Vec<Server>>);

impl std::fmt::Debug for RefusalCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefusalCollector")
    }
}

impl Collector for RefusalCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let mut family = enc.encode_descriptor(
            "diameter_peers_refused",
            "Diameter connections refused, by reason: Origin-Host missing or unknown, plain TCP while TLS is required, client certificate not naming the Origin-Host, source address not allowed (each answered with CEA DIAMETER_UNKNOWN_PEER), TLS handshake failed",
            None,
            MetricType::Counter,
        )?;
        for r in Refusal::ALL {
            let n: u64 = self.0.iter().map(|s| s.refusals().count(r)).sum();
            ConstCounter::new(n).encode(family.encode_family(&[("reason", r.label())])?)?;
        }
        Ok(())
    }
}
