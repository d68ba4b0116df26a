//! Reading nodes' `/health` endpoints.

use std::path::Path;
use std::time::Duration;

use ims_config::{HttpSection, NodeKind};

use crate::http::{base_url, http_client};

/// The `[http]` section of `node` from its config file in `config_dir`.
pub fn http_section(config_dir: &Path, node: NodeKind) -> anyhow::Result<HttpSection> {
    let path = config_dir.join(format!("{}.toml", node.name()));
    Ok(match node {
        NodeKind::Pcscf => ims_config::load::<ims_config::PcscfConfig>(&path)?.http,
        NodeKind::Icscf => ims_config::load::<ims_config::IcscfConfig>(&path)?.http,
        NodeKind::Scscf => ims_config::load::<ims_config::ScscfConfig>(&path)?.http,
        NodeKind::Hss => ims_config::load::<ims_config::HssConfig>(&path)?.http,
        NodeKind::Policyd => ims_config::load::<ims_config::PolicydConfig>(&path)?.http,
    })
}

/// Where a node's `/health` is and how to ask it: over HTTPS (with `[http.tls]`) the
/// server certificate must chain to the trusted CA.
pub struct HealthUrl {
    /// `http(s)://addr`.
    pub base: String,
    client: reqwest::Client,
}

impl HealthUrl {
    /// The `/health` of `node` (config in `config_dir`), trusting `ca` for HTTPS.
    pub fn of(config_dir: &Path, node: NodeKind, ca: Option<&Path>) -> anyhow::Result<HealthUrl> {
        let base = base_url(&http_section(config_dir, node)?);
        let client = http_client(&base, ca)?;
        Ok(HealthUrl { base, client })
    }

    /// GETs `/health` and returns the JSON body of a 200 answer.
    pub async fn fetch(&self) -> anyhow::Result<serde_json::Value> {
        let answer = self
            .client
            .get(format!("{}/health", self.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await?;
        anyhow::ensure!(
            answer.status() == reqwest::StatusCode::OK,
            "unexpected answer: {}",
            answer.status()
        );
        Ok(answer.json().await?)
    }
}

/// `imsctl status`: one line per node.
pub async fn print_status(config_dir: &Path, ca: Option<&Path>) -> anyhow::Result<()> {
    println!(
        "{:<6} {:<28} {:<8} {:>8}  details",
        "node", "http", "status", "uptime"
    );
    let mut down = 0;
    for node in NodeKind::ALL {
        let url = HealthUrl::of(config_dir, node, ca)?;
        let addr = &url.base;
        match url.fetch().await {
            Ok(v) => {
                let mut details: Vec<String> = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "status" | "node" | "kind" | "version" | "uptime_secs"
                        )
                    })
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                details.sort();
                println!(
                    "{:<6} {:<28} {:<8} {:>7}s  {}",
                    node.name(),
                    addr,
                    v["status"].as_str().unwrap_or("?"),
                    v["uptime_secs"].as_u64().unwrap_or(0),
                    details.join(" ")
                );
            }
            Err(e) => {
                down += 1;
                println!(
                    "{:<6} {:<28} {:<8} {:>8}  {e:#}",
                    node.name(),
                    addr,
                    "down",
                    "-"
                );
            }
        }
    }
    anyhow::ensure!(down == 0, "{down} node(s) down");
    Ok(())
}
