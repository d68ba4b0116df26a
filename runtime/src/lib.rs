//! The runtime every node binary shares: command-line arguments, configuration loading,
//! logging, and the HTTP endpoint with `/health` (JSON) and `/metrics` (Prometheus text
//! exposition format).

pub mod admin_token;
mod args;
pub mod budget;
pub mod expiry_lag;
pub mod group_commit;
mod http;
mod https;
mod logging;
pub mod migrations;
pub mod secret_file;
pub mod sip;
pub mod sqlite;
#[cfg(feature = "test-support")]
pub mod test_db;
mod threads;

pub use args::NodeArgs;
pub use axum::Router;
pub use http::{serve, serve_node, serve_with, HttpError, NodeHttp, NodeStatus, ReadinessCheck};
pub use logging::{init_logging, init_node_logging, LOG_FORMAT_ENV};
pub use prometheus_client;
pub use threads::{node_runtime, WORKER_THREADS_ENV};

/// Resolves when the process receives SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        // If the handler cannot be installed, never resolve from this branch.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// A started node: logging installed, `/health` and `/metrics` served.
pub struct Node {
    /// Published on `/health`.
    pub status: NodeStatus,
    /// Where the HTTP endpoint (`/health`, the node's API) listens.
    pub http_addr: std::net::SocketAddr,
    /// Where `/metrics` listens when `[http] metrics_listen` is set.
    pub metrics_addr: Option<std::net::SocketAddr>,
    http_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Node {
    /// Installs logging and serves health and metrics for node `kind` (`pcscf`, ...).
    /// `registry` holds the node's metrics.
    pub async fn start(
        kind: &'static str,
        node: &ims_config::NodeSection,
        http: &ims_config::HttpSection,
        registry: prometheus_client::registry::Registry,
    ) -> Result<Node, HttpError> {
        Node::start_with(kind, node, http, registry, Router::new()).await
    }

    /// [`Node::start`], with the node's own HTTP routes in `extra` served beside
    /// `/health` and `/metrics`. Logging must already be installed by the caller or is
    /// installed here.
    pub async fn start_with(
        kind: &'static str,
        node: &ims_config::NodeSection,
        http: &ims_config::HttpSection,
        registry: prometheus_client::registry::Registry,
        extra: Router,
    ) -> Result<Node, HttpError> {
        init_node_logging(node);
        let status = NodeStatus::new(node.name.clone(), kind);
        let served = serve_node(http, status.clone(), std::sync::Arc::new(registry), extra).await?;
        let scheme = if http.tls.is_some() { "https" } else { "http" };
        let metrics = served.metrics_addr.unwrap_or(served.addr);
        tracing::info!(node = %node.name, http = %format!("{scheme}://{}", served.addr), %metrics, "{kind} started; health on /health, metrics on /metrics");
        Ok(Node {
            status,
            http_addr: served.addr,
            metrics_addr: served.metrics_addr,
            http_tasks: served.tasks,
        })
    }

    /// Waits for SIGINT/SIGTERM, then stops the HTTP endpoint.
    pub async fn run_until_shutdown(self) {
        shutdown_signal().await;
        tracing::info!("shutting down");
        for task in &self.http_tasks {
            task.abort();
        }
    }
}
