//! `/health` and `/metrics`, and a node's HTTP listeners (HTTPS with `[http.tls]`,
//! `/metrics` on a listener of its own with `metrics_listen`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use serde_json::{json, Value};

/// A readiness check: true while what it watches works.
pub type ReadinessCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// What `/health` reports: the node's name and kind, its uptime, whatever gauges the
/// node publishes (e.g. `registered_contacts`), and whether it is ready: every
/// readiness check the node registered (its SIP engine running, its Cx peer open)
/// passes. `/health/live` answers 200 while the process serves HTTP; `/health/ready`
/// answers 503 while a check fails.
#[derive(Clone)]
pub struct NodeStatus {
    name: String,
    kind: &'static str,
    started: Instant,
    fields: Arc<RwLock<BTreeMap<String, Value>>>,
    checks: Arc<RwLock<Vec<(&'static str, ReadinessCheck)>>>,
}

impl NodeStatus {
    /// Status of node `name` of kind `kind` (`pcscf`, `hss`, ...), started now.
    pub fn new(name: impl Into<String>, kind: &'static str) -> NodeStatus {
        NodeStatus {
            name: name.into(),
            kind,
            started: Instant::now(),
            fields: Arc::default(),
            checks: Arc::default(),
        }
    }

    /// Adds a readiness check named `name` (`sip_engine`, `cx_peer`): the node is
    /// ready while every check returns true.
    pub fn add_check(&self, name: &'static str, check: impl Fn() -> bool + Send + Sync + 'static) {
        if let Ok(mut c) = self.checks.write() {
            c.push((name, Arc::new(check)));
        }
    }

    /// Each check's result, and whether all pass.
    fn readiness(&self) -> (bool, serde_json::Map<String, Value>) {
        let mut results = serde_json::Map::new();
        let mut ready = true;
        if let Ok(checks) = self.checks.read() {
            for (name, check) in checks.iter() {
                let ok = check();
                ready &= ok;
                results.insert((*name).to_string(), Value::Bool(ok));
            }
        }
        (ready, results)
    }

    /// Sets a field shown by `/health`.
    pub fn set(&self, key: &str, value: impl Into<Value>) {
        if let Ok(mut f) = self.fields.write() {
            f.insert(key.to_string(), value.into());
        }
    }

    /// The `/health` document, and whether the node is ready. `status` is the
    /// liveness (`ok` while it answers); `ready` and `checks` the readiness.
    fn render(&self) -> (Value, bool) {
        let (ready, checks) = self.readiness();
        let mut v = json!({
            "status": "ok",
            "ready": ready,
            "checks": checks,
            "node": self.name,
            "kind": self.kind,
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_secs": self.started.elapsed().as_secs(),
            // The runtime's worker threads (`[node] threads`, `TOKIO_WORKER_THREADS`).
            "worker_threads": tokio::runtime::Handle::try_current()
                .ok()
                .map(|h| h.metrics().num_workers()),
        });
        if let (Some(obj), Ok(fields)) = (v.as_object_mut(), self.fields.read()) {
            for (k, val) in fields.iter() {
                obj.insert(k.clone(), val.clone());
            }
        }
        (v, ready)
    }
}

#[derive(Clone)]
struct AppState {
    status: NodeStatus,
    registry: Arc<Registry>,
}

/// The HTTP endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Binding the listen address failed.
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The `[http.tls]` certificate or key could not be loaded.
    #[error("http.tls: {0}")]
    Tls(#[from] ims_sip::transport::TransportError),
}

/// A node's HTTP endpoints as started by [`serve_node`].
pub struct NodeHttp {
    /// Where `/health` and the node's API listen.
    pub addr: SocketAddr,
    /// Where `/metrics` listens, when on a listener of its own.
    pub metrics_addr: Option<SocketAddr>,
    /// The serving tasks.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), HttpError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    Ok((listener, local))
}

/// Serves a node's `[http]` section: `/health` and `extra` on `listen` (HTTPS with
/// `[http.tls]`), and `/metrics` in plain HTTP on `metrics_listen` when set, else on
/// `listen` too.
pub async fn serve_node(
    http: &ims_config::HttpSection,
    status: NodeStatus,
    registry: Arc<Registry>,
    extra: Router,
) -> Result<NodeHttp, HttpError> {
    let state = AppState { status, registry };
    let mut app = health_routes();
    let mut tasks = Vec::new();
    let mut metrics_addr = None;
    match http.metrics_listen {
        Some(addr) => {
            let (listener, local) = bind(addr).await?;
            let metrics = Router::new()
                .route("/metrics", get(metrics))
                .with_state(state.clone());
            tasks.push(spawn_plain(listener, metrics));
            metrics_addr = Some(local);
        }
        None => app = app.route("/metrics", get(metrics)),
    }
    let app = app.with_state(state).merge(extra);
    let (listener, addr) = bind(http.listen).await?;
    let task = match &http.tls {
        Some(tls) => {
            let config = ims_sip::transport::tls::server_config(
                &ims_sip::transport::TlsServerSource::Pem {
                    cert: tls.cert.clone(),
                    key: tls.key.clone(),
                    client_ca: None,
                },
            )?;
            let listener = crate::https::TlsListener::new(listener, config)
                .map_err(|source| HttpError::Bind { addr, source })?;
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "HTTPS endpoint stopped");
                }
            })
        }
        None => spawn_plain(listener, app),
    };
    tasks.push(task);
    Ok(NodeHttp {
        addr,
        metrics_addr,
        tasks,
    })
}

fn spawn_plain(listener: tokio::net::TcpListener, app: Router) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP endpoint stopped");
        }
    })
}

/// Binds `addr` and serves `/health` and `/metrics` until the task is dropped.
/// Returns the bound address (useful with port 0) and the serving task.
pub async fn serve(
    addr: SocketAddr,
    status: NodeStatus,
    registry: Arc<Registry>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), HttpError> {
    serve_with(addr, status, registry, Router::new()).await
}

/// [`serve`], plus the node's own routes in `extra` (e.g. the HSS provisioning API).
pub async fn serve_with(
    addr: SocketAddr,
    status: NodeStatus,
    registry: Arc<Registry>,
    extra: Router,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), HttpError> {
    let (listener, local) = bind(addr).await?;
    let app = health_routes()
        .route("/metrics", get(metrics))
        .with_state(AppState { status, registry })
        .merge(extra);
    Ok((local, spawn_plain(listener, app)))
}

fn health_routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
}

/// The whole document, 200 whether ready or not (`imsctl status` reads it).
async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(state.status.render().0)
}

/// Liveness: the process serves HTTP.
async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: 200 when every check passes, else 503; the document says which failed.
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let (doc, ready) = state.status.render();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(doc))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            prometheus_text(&body),
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "metrics encoding failed".to_string(),
        ),
    }
}

/// OpenMetrics text (what `prometheus-client` writes) in the Prometheus text format
/// 0.0.4, which every Prometheus and `promtool check metrics` read: a counter's `HELP`
/// and `TYPE` name its samples (`x_total`, not `x`), an info metric is a gauge
/// `x_info`, `unknown` is `untyped`, and the `# UNIT` and `# EOF` lines go.
fn prometheus_text(openmetrics: &str) -> String {
    let mut renamed: std::collections::HashMap<&str, (&str, &'static str)> =
        std::collections::HashMap::new();
    for line in openmetrics.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let Some((name, kind)) = rest.split_once(' ') else {
            continue;
        };
        match kind {
            "counter" => renamed.insert(name, ("_total", "counter")),
            "info" => renamed.insert(name, ("_info", "gauge")),
            "unknown" => renamed.insert(name, ("", "untyped")),
            _ => None,
        };
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (*p, rest)));
        if let Some((prefix, rest)) = meta {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some((suffix, kind)) = renamed.get(name) {
                let tail = if prefix == "# TYPE " { *kind } else { tail };
                out.push_str(&format!("{prefix}{name}{suffix} {tail}\n"));
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get_path(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn health_and_metrics_are_served() {
        let mut registry = Registry::default();
        let c: Counter = Counter::default();
        registry.register("sip_messages_in", "SIP messages received", c.clone());
        c.inc_by(3);
        let status = NodeStatus::new("pcscf-test", "pcscf");
        status.set("registered_contacts", 7);
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), status, Arc::new(registry))
            .await
            .unwrap();
        let health = get_path(addr, "/health").await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        assert!(health.contains("\"node\":\"pcscf-test\""), "{health}");
        assert!(health.contains("\"registered_contacts\":7"), "{health}");
        let metrics = get_path(addr, "/metrics").await;
        assert!(metrics.contains("sip_messages_in_total 3"), "{metrics}");
        // The Prometheus text format: the counter's metadata names its sample.
        assert!(
            metrics.contains("# TYPE sip_messages_in_total counter"),
            "{metrics}"
        );
        assert!(!metrics.contains("# EOF"), "{metrics}");
        task.abort();
    }

    #[test]
    fn openmetrics_becomes_the_prometheus_text_format() {
        let om = "# HELP a_seconds Time.\n# TYPE a_seconds histogram\n# UNIT a_seconds seconds\n\
                  a_seconds_sum 0.0\n# HELP c Things.\n# TYPE c counter\nc_total{x=\"1\"} 2\n\
                  # HELP v Build.\n# TYPE v info\nv_info{version=\"1\"} 1\n# EOF\n";
        let text = prometheus_text(om);
        assert_eq!(
            text,
            "# HELP a_seconds Time.\n# TYPE a_seconds histogram\na_seconds_sum 0.0\n\
             # HELP c_total Things.\n# TYPE c_total counter\nc_total{x=\"1\"} 2\n\
             # HELP v_info Build.\n# TYPE v_info gauge\nv_info{version=\"1\"} 1\n"
        );
    }

    /// `/health/ready` follows the node's checks (503 while one fails, naming it);
    /// `/health/live` and `/health` keep answering 200.
    #[tokio::test]
    async fn readiness_fails_while_a_check_fails() {
        let status = NodeStatus::new("scscf-test", "scscf");
        let peer_open = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open = peer_open.clone();
        status.add_check("sip_engine", || true);
        status.add_check("cx_peer", move || {
            open.load(std::sync::atomic::Ordering::Relaxed)
        });
        let (addr, task) = serve(
            "127.0.0.1:0".parse().unwrap(),
            status,
            Arc::new(Registry::default()),
        )
        .await
        .unwrap();
        let ready = get_path(addr, "/health/ready").await;
        assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
        assert!(ready.contains("\"cx_peer\":false"), "{ready}");
        assert!(ready.contains("\"ready\":false"), "{ready}");
        let live = get_path(addr, "/health/live").await;
        assert!(live.starts_with("HTTP/1.1 200"), "{live}");
        let health = get_path(addr, "/health").await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        assert!(health.contains("\"status\":\"ok\""), "{health}");
        peer_open.store(true, std::sync::atomic::Ordering::Relaxed);
        let ready = get_path(addr, "/health/ready").await;
        assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
        assert!(ready.contains("\"ready\":true"), "{ready}");
        task.abort();
    }
}
