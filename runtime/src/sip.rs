//! Running a SIP node: the shared `[sip]` configuration turned into a proxy
//! engine of `ims-sip`, with its counters exported on `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ims_config::{LimitsSection, SipSection};
use ims_sip::message::via::split_host_port;
use ims_sip::proxy::engine::resolver::MAX_ENTRIES;
use ims_sip::proxy::engine::{
    EngineConfig, EngineStats, EngineStopped, HostCache, Policy, ProxyEngine, LATENCY_BUCKETS,
    METHODS,
};
use ims_sip::transport::{
    CoreListeners, PemIdentity, TlsClientSource, TlsServerSource, TransportConfig, TransportError,
    TransportKind, TransportLayer, TransportLimits,
};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The transport configuration of a node's `[sip]` section.
pub fn transport_config(sip: &SipSection) -> TransportConfig {
    TransportConfig {
        udp: sip.udp.clone(),
        tcp: sip.tcp.clone(),
        tls: sip.tls.clone(),
        core: sip
            .core
            .as_ref()
            .map(|c| CoreListeners {
                udp: c.udp.clone(),
                tcp: c.tcp.clone(),
                tls: c.tls.clone(),
            })
            .unwrap_or_default(),
        tls_server: sip.tls_files.as_ref().map(|t| TlsServerSource::Pem {
            cert: t.cert.clone(),
            key: t.key.clone(),
            client_ca: t.client_ca.clone(),
        }),
        // Outgoing TLS presents our certificate to a server that asks (mutual TLS
        // between CSCFs: the peer's `[zones] *_names` may classify us by it).
        tls_client: sip.tls_files.as_ref().and_then(|t| {
            t.ca.clone().map(|ca| TlsClientSource::Pem {
                ca,
                identity: Some(PemIdentity {
                    cert: t.cert.clone(),
                    key: t.key.clone(),
                }),
            })
        }),
        limits: transport_limits(&sip.limits),
        shard_ports: sip.shard_ports,
    }
}

fn transport_limits(l: &LimitsSection) -> TransportLimits {
    TransportLimits {
        max_message_size: l.max_message_size,
        max_headers: l.max_headers,
        max_connections_per_peer: l.max_connections_per_peer,
        max_connections: l.max_connections,
        idle_timeout: Duration::from_secs(l.idle_timeout_secs),
        ..TransportLimits::default()
    }
}

/// The engine configuration of a node's `[sip]` section: the advertised hosts (of
/// `[sip]` and of `[sip.core]`) go into Via and Record-Route; `[sip.dns]` names the DNS
/// servers next hops are looked up with (RFC 3263) and the failover limit.
pub fn engine_config(sip: &SipSection) -> EngineConfig {
    let host = |advertise: Option<&str>| {
        advertise
            .and_then(split_host_port)
            .map(|(host, _)| host.to_string())
    };
    EngineConfig {
        advertise: host(sip.advertise.as_deref()),
        advertise_core: host(sip.core.as_ref().and_then(|c| c.advertise.as_deref())),
        names: Arc::new(HostCache::new(&sip.dns.servers, MAX_ENTRIES)),
        failover_after: sip.dns.failover_after_ms.map(Duration::from_millis),
        shards: sip.workers.count(),
        ..EngineConfig::default()
    }
}

/// Starts the proxy engine of a SIP node and registers its counters in `registry`,
/// with the node's `rejections` (its budgets' and ingress filter's).
pub async fn start_proxy<P: Policy>(
    sip: &SipSection,
    policy: P,
    registry: &mut Registry,
    rejections: Rejections,
) -> Result<ProxyEngine, TransportError> {
    let config = engine_config(sip);
    let threads = tokio::runtime::Handle::current().metrics().num_workers();
    if config.shards > threads {
        tracing::warn!(
            workers = config.shards,
            threads,
            "[sip] workers is above the runtime's worker threads ([node] threads or TOKIO_WORKER_THREADS): the shards share them"
        );
    }
    let engine = ProxyEngine::start(transport_config(sip), config, policy).await?;
    if let Some(hep) = &sip.hep {
        let collector = hep.collector;
        engine
            .transport()
            .capture_to(collector, hep.agent_id)
            .map_err(|source| TransportError::Bind {
                kind: TransportKind::Udp,
                addr: collector,
                source,
            })?;
        tracing::info!(%collector, agent_id = hep.agent_id, "SIP capture: every message copied to the HEP collector");
    }
    registry.register_collector(Box::new(SipCollector {
        engine: engine.stats().clone(),
        transport: engine.transport().clone(),
        rejections,
    }));
    for (kind, addr) in engine.transport().local_addrs() {
        tracing::info!(transport = kind.via_token(), %addr, "SIP listening");
    }
    Ok(engine)
}

/// A SIP node could not start.
#[derive(Debug, thiserror::Error)]
pub enum SipNodeError {
    /// The SIP listeners could not be bound (or TLS files not loaded).
    #[error("SIP: {0}")]
    Sip(#[from] TransportError),
    /// The health/metrics endpoint could not start.
    #[error(transparent)]
    Http(#[from] crate::HttpError),
    /// The proxy engine stopped by itself (a task panicked): the node exits.
    #[error(transparent)]
    Stopped(#[from] EngineStopped),
}

/// Makes the node's readiness (`/health/ready`) follow `engine`: not ready once one of
/// its tasks ended.
pub fn watch_engine(status: &crate::NodeStatus, engine: &ProxyEngine) {
    status.add_check("sip_engine", engine.running_check());
}

/// Serves until SIGINT/SIGTERM (`Ok`), or until the proxy engine stops by itself
/// (`Err`): a node that no longer proxies must not live on with `/health` saying ok, so
/// its `main` returns the error, the process exits non-zero and its supervisor
/// (`imsctl up`, systemd) restarts it.
pub async fn run_engine_until_shutdown(
    running: crate::Node,
    engine: &mut ProxyEngine,
) -> Result<(), EngineStopped> {
    tokio::select! {
        () = running.run_until_shutdown() => Ok(()),
        stopped = engine.stopped() => {
            tracing::error!(%stopped, "exiting: this node no longer proxies SIP");
            Err(stopped)
        }
    }
}

/// Runs a SIP node until SIGINT/SIGTERM: logging, the proxy engine on the `[sip]`
/// listeners deciding with `policy`, and `/health` + `/metrics` (with the SIP counters);
/// an error if the engine stops by itself ([`run_engine_until_shutdown`]).
/// `watch` holds the node's own metrics and readiness checks.
pub async fn run_sip_node<P: Policy>(
    kind: &'static str,
    node: &ims_config::NodeSection,
    http: &ims_config::HttpSection,
    sip: &SipSection,
    policy: P,
    watch: NodeWatch,
) -> Result<(), SipNodeError> {
    crate::init_node_logging(node);
    let NodeWatch {
        mut registry,
        rejections,
        checks,
    } = watch;
    let mut engine = start_proxy(sip, policy, &mut registry, rejections).await?;
    let running = crate::Node::start(kind, node, http, registry).await?;
    watch_engine(&running.status, &engine);
    for (name, check) in checks {
        running.status.add_check(name, move || check());
    }
    let listeners: Vec<String> = engine
        .transport()
        .local_addrs()
        .iter()
        .map(|(k, a)| format!("{}:{a}", k.via_token().to_ascii_lowercase()))
        .collect();
    running.status.set("sip_listeners", listeners);
    run_engine_until_shutdown(running, &mut engine).await?;
    drop(engine);
    Ok(())
}

/// What a SIP node exports and is judged by, for [`run_sip_node`].
#[derive(Default)]
pub struct NodeWatch {
    /// The node's own metrics.
    pub registry: Registry,
    /// Its budgets' and ingress filter's rejections.
    pub rejections: Rejections,
    /// Readiness checks beside the engine's (the Cx peer open).
    pub checks: Vec<(&'static str, crate::ReadinessCheck)>,
}

/// Why a CSCF rejected a SIP request before its policy decided, beside `malformed`
/// (the engine's parse errors): `sip_requests_rejected_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The sender's trust zone may not send this request (`ims_node::ingress`).
    Zone,
    /// A budget refused it (over a source's rate, or backed off).
    Budget,
}

/// Counters of [`Rejection`]s, shared by a node's budgets and ingress filter and
/// exported with the SIP counters: one atomic per reason.
#[derive(Debug, Clone, Default)]
pub struct Rejections(Arc<[AtomicU64; 2]>);

impl Rejections {
    /// Counts one rejection for `reason`.
    pub fn count(&self, reason: Rejection) {
        self.0[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// How many requests were rejected for `reason`.
    pub fn get(&self, reason: Rejection) -> u64 {
        self.0[reason as usize].load(Ordering::Relaxed)
    }
}

/// Exports the engine's and the transport's atomics at scrape time.
struct SipCollector {
    engine: Arc<EngineStats>,
    transport: TransportLayer,
    rejections: Rejections,
}

impl std::fmt::Debug for SipCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SipCollector")
    }
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: &AtomicU64) -> std::fmt::Result {
    let m = ConstCounter::new(v.load(Ordering::Relaxed));
    m.encode(enc.encode_descriptor(name, help, None, m.metric_type())?)
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: &AtomicU64) -> std::fmt::Result {
    let value = i64::try_from(v.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
    let m = ConstGauge::new(value);
    m.encode(enc.encode_descriptor(name, help, None, m.metric_type())?)
}

/// Status codes exported even before they were first counted (a dashboard's and an
/// alert's series exist from the start); others appear once counted.
const USUAL_CODES: [u16; 14] = [
    100, 180, 183, 200, 202, 401, 403, 404, 407, 408, 480, 486, 487, 503,
];

/// `name{class="4xx",code="401"}` for each usual or counted code of `codes`.
fn by_code(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    codes: &ims_sip::proxy::engine::ByCode,
) -> std::fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for code in 100u16..700 {
        let n = codes.get(code);
        if n == 0 && !USUAL_CODES.contains(&code) {
            continue;
        }
        // Formatted at scrape time only, never while counting.
        let text = code.to_string();
        let class = CLASSES
            .get(usize::from(code / 100).saturating_sub(1))
            .copied()
            .unwrap_or("other");
        let labels = [("class", class), ("code", text.as_str())];
        ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];

impl Collector for SipCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let t = self.transport.stats();
        let e = &self.engine;
        counter(
            &mut enc,
            "sip_messages_in",
            "SIP messages received and parsed",
            &t.messages_in,
        )?;
        counter(
            &mut enc,
            "sip_messages_out",
            "SIP messages sent",
            &t.messages_out,
        )?;
        counter(
            &mut enc,
            "sip_parse_errors",
            "Framed SIP messages that failed to parse",
            &t.parse_errors,
        )?;
        counter(
            &mut enc,
            "sip_framing_errors",
            "Streams closed because framing was lost",
            &t.framing_errors,
        )?;
        counter(
            &mut enc,
            "sip_connections_refused",
            "Connections refused by a limit",
            &t.connections_refused,
        )?;
        counter(
            &mut enc,
            "sip_log_lines_suppressed",
            "Log lines about peers' input not written: the log budget was spent",
            &t.log_lines_suppressed,
        )?;
        gauge(
            &mut enc,
            "sip_connections_open",
            "Open TCP and TLS connections",
            &t.connections_open,
        )?;
        let mut family = enc.encode_descriptor(
            "sip_requests_in",
            "Requests that created a server transaction, and ACKs for 2xx, by method",
            None,
            MetricType::Counter,
        )?;
        for (method, c) in METHODS.iter().zip(e.requests_in.iter()) {
            ConstCounter::new(c.load(Ordering::Relaxed))
                .encode(family.encode_family(&[("method", *method)])?)?;
        }
        gauge(
            &mut enc,
            "sip_transactions_active",
            "Live server and client transactions",
            &e.transactions_active,
        )?;
        by_code(
            &mut enc,
            "sip_responses_out",
            "Responses sent upstream by class and code (the automatic 100 Trying not counted)",
            &e.responses_out_by_code,
        )?;
        by_code(
            &mut enc,
            "sip_responses_in",
            "Responses received from the next hops by class and code",
            &e.responses_in_by_code,
        )?;
        counter(
            &mut enc,
            "sip_retransmissions_received",
            "Requests received again for a live server transaction (ACKs not counted)",
            &e.retransmissions_received,
        )?;
        counter(
            &mut enc,
            "sip_retransmissions_sent",
            "Requests resent on timers A and E, final responses resent",
            &e.retransmissions_sent,
        )?;
        counter(
            &mut enc,
            "sip_next_hop_failovers",
            "Branches sent on to the next server of their next hop after a 503, a timeout or a transport error (RFC 3263 §4.3)",
            &e.failovers,
        )?;
        counter(
            &mut enc,
            "sip_shard_handovers",
            "Messages handed from the shard they reached to the shard owning their transaction ([sip] workers above 1)",
            &e.handovers,
        )?;
        counter(
            &mut enc,
            "sip_shard_response_handovers",
            "Responses among sip_shard_handovers: they reached another shard than the one whose client port our Via named",
            &e.response_handovers,
        )?;
        counter(
            &mut enc,
            "sip_shard_client_port_dropped",
            "Requests and unparsable messages that reached a shard's client port (only responses are taken there), dropped",
            &e.client_port_dropped,
        )?;
        counter(
            &mut enc,
            "sip_shard_handovers_dropped",
            "Messages dropped because the owning shard's queue was full",
            &e.handovers_dropped,
        )?;
        let mut family = enc.encode_descriptor(
            "sip_shard_messages",
            "Messages each shard of the SIP engine read from its own sockets and connections",
            None,
            MetricType::Counter,
        )?;
        for (shard, c) in e.shard_messages.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            // Shard 0 always; the others once they exist and read something.
            if n == 0 && shard > 0 {
                continue;
            }
            let label = shard.to_string();
            ConstCounter::new(n).encode(family.encode_family(&[("shard", label.as_str())])?)?;
        }
        let mut family = enc.encode_descriptor(
            "sip_requests_rejected",
            "Requests rejected before the node's policy: malformed (unparsable), zone (the sender's trust zone may not send it), budget (over a source's rate or backed off)",
            None,
            MetricType::Counter,
        )?;
        let rejected = [
            ("malformed", t.parse_errors.load(Ordering::Relaxed)),
            ("zone", self.rejections.get(Rejection::Zone)),
            ("budget", self.rejections.get(Rejection::Budget)),
        ];
        for (reason, n) in rejected {
            ConstCounter::new(n).encode(family.encode_family(&[("reason", reason)])?)?;
        }
        let mut family = enc.encode_descriptor(
            "sip_request_duration_seconds",
            "Time from a request's arrival to its final response going upstream, by method (this hop and the ones after it)",
            None,
            MetricType::Histogram,
        )?;
        for (method, latency) in METHODS.iter().zip(e.latency.iter()) {
            if *method == "ACK" {
                continue;
            }
            // Per bucket (the encoder accumulates), the last one `+Inf` (`f64::MAX`).
            let mut buckets = [(f64::MAX, 0u64); LATENCY_BUCKETS.len() + 1];
            let mut count = 0;
            for (i, n) in latency.buckets.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                count += n;
                buckets[i] = (LATENCY_BUCKETS.get(i).copied().unwrap_or(f64::MAX), n);
            }
            let sum = latency.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            family
                .encode_family(&[("method", *method)])?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ims_sip::proxy::engine::DefaultRouting;

    #[tokio::test]
    async fn a_configured_hep_collector_gets_every_message() {
        let collector = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let text = format!(
            "udp = [\"127.0.0.1:0\"]\n[hep]\ncollector = \"{}\"\nagent_id = 9\n",
            collector.local_addr().unwrap()
        );
        let sip: SipSection = ims_config::parse_str(&text, std::path::Path::new("t.toml")).unwrap();
        let engine = start_proxy(
            &sip,
            DefaultRouting::default(),
            &mut Registry::default(),
            Rejections::default(),
        )
        .await
        .unwrap();
        let proxy = engine.transport().local_addrs()[0].1;
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client
            .send_to(b"OPTIONS sip:x SIP/2.0\r\n\r\n", proxy)
            .await
            .unwrap();
        let mut buf = vec![0u8; 65_535];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), collector.recv(&mut buf))
            .await
            .expect("a HEP packet")
            .unwrap();
        assert!(buf[..n].starts_with(b"HEP3"));
        assert!(buf[..n].ends_with(b"OPTIONS sip:x SIP/2.0\r\n\r\n"));
    }

    #[tokio::test]
    async fn node_proxy_starts_from_config_and_exports_metrics() {
        let sip: SipSection = ims_config::parse_str(
            "udp = [\"127.0.0.1:0\"]\ntcp = [\"127.0.0.1:0\"]\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let mut registry = Registry::default();
        let engine = start_proxy(
            &sip,
            DefaultRouting::default(),
            &mut registry,
            Rejections::default(),
        )
        .await
        .unwrap();
        assert_eq!(engine.transport().local_addrs().len(), 2);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("sip_messages_in_total 0"), "{text}");
        for series in [
            "sip_responses_out_total{class=\"2xx\",code=\"200\"} 0",
            "sip_responses_out_total{class=\"4xx\",code=\"401\"} 0",
            "sip_requests_in_total{method=\"REGISTER\"} 0",
            "sip_requests_rejected_total{reason=\"zone\"} 0",
            "sip_requests_rejected_total{reason=\"malformed\"} 0",
            "sip_retransmissions_sent_total 0",
            "sip_next_hop_failovers_total 0",
            "sip_request_duration_seconds_count{method=\"INVITE\"} 0",
            "sip_request_duration_seconds_bucket{le=\"+Inf\",method=\"INVITE\"} 0",
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
    }

    /// Forwards to `target`; panics on the response (a policy bug).
    struct Panicky {
        target: String,
    }

    impl Policy for Panicky {
        async fn decide(
            &self,
            _request: &ims_sip::SipMessage,
            _source: &ims_sip::transport::Source,
        ) -> ims_sip::proxy::engine::Decision {
            ims_sip::proxy::engine::Decision::Forward(ims_sip::proxy::engine::Forward {
                targets: vec![self.target.clone()],
                ..Default::default()
            })
        }

        fn on_response(
            &self,
            _request: &ims_sip::SipMessage,
            _source: &ims_sip::transport::Source,
            _response: &mut ims_sip::SipMessage,
        ) {
            panic!("a policy bug");
        }
    }

    /// The node's serving loop ends with the engine's error when its core task dies, so
    /// `main` returns it and the process exits non-zero.
    #[tokio::test]
    async fn a_dead_engine_ends_the_node_with_an_error() {
        let path = std::path::Path::new("t.toml");
        let sip: SipSection = ims_config::parse_str("udp = [\"127.0.0.1:0\"]\n", path).unwrap();
        let node: ims_config::NodeSection =
            ims_config::parse_str("name = \"n\"\ndomain = \"d\"\n", path).unwrap();
        let http: ims_config::HttpSection =
            ims_config::parse_str("listen = \"127.0.0.1:0\"\n", path).unwrap();
        let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let policy = Panicky {
            target: format!("sip:{}", server.local_addr().unwrap()),
        };
        let mut engine = start_proxy(
            &sip,
            policy,
            &mut Registry::default(),
            Rejections::default(),
        )
        .await
        .unwrap();
        let running = crate::Node::start("pcscf", &node, &http, Registry::default())
            .await
            .unwrap();
        let proxy = engine.transport().local_addrs()[0].1;
        let serving = tokio::spawn(async move {
            let result = run_engine_until_shutdown(running, &mut engine).await;
            drop(engine);
            result
        });
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let me = client.local_addr().unwrap();
        let text = format!(
            "OPTIONS sip:b@y SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKdead\r\n\
             Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: dead@x\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        client.send_to(text.as_bytes(), proxy).await.unwrap();
        let mut buf = vec![0u8; 65_535];
        let (n, from) = server.recv_from(&mut buf).await.unwrap();
        let forwarded = ims_sip::SipMessage::parse(buf[..n].to_vec()).unwrap();
        let ok = ims_sip::message::build::response(&forwarded, 200);
        server.send_to(&ok.to_bytes(), from).await.unwrap();
        let ended = tokio::time::timeout(std::time::Duration::from_secs(5), serving)
            .await
            .expect("the node stops serving")
            .unwrap();
        assert_eq!(
            ended.unwrap_err().to_string(),
            "the SIP proxy engine's core task panicked"
        );
    }
}
