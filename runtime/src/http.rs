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

/// What `/health` reports: the node's name and kind, its uptime, and whatever gauges the
/// node publishes (e.g. `registered_contacts`).
#[derive(Clone)]
pub struct NodeStatus {
    name: String,
    kind: &'static str,
    started: Instant,
    fields: Arc<RwLock<BTreeMap<String, Value>>>,
}

impl NodeStatus {
    /// Status of node `name` of kind `kind` (`pcscf`, `hss`, ...), started now.
    pub fn new(name: impl Into<String>, kind: &'static str) -> NodeStatus {
        NodeStatus {
            name: name.into(),
            kind,
            started: Instant::now(),
            fields: Arc::default(),
        }
    }

    /// Sets a field shown by `/health`.
    pub fn set(&self, key: &str, value: impl Into<Value>) {
        if let Ok(mut f) = self.fields.write() {
            f.insert(key.to_string(), value.into());
        }
    }

    fn render(&self) -> Value {
        let mut v = json!({
            "status": "ok",
            "node": self.name,
            "kind": self.kind,
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_secs": self.started.elapsed().as_secs(),
        });
        if let (Some(obj), Ok(fields)) = (v.as_object_mut(), self.fields.read()) {
            for (k, val) in fields.iter() {
                obj.insert(k.clone(), val.clone());
            }
        }
        v
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
    let mut app = Router::new().route("/health", get(health));
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
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(AppState { status, registry })
        .merge(extra);
    Ok((local, spawn_plain(listener, app)))
}

async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(state.status.render())
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "metrics encoding failed".to_string(),
        ),
    }
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
        task.abort();
    }
}
