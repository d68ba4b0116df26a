//! Reading nodes' `/health` endpoints.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use ims_config::NodeKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The HTTP address of `node` from its config file in `config_dir`.
pub fn http_addr(config_dir: &Path, node: NodeKind) -> anyhow::Result<SocketAddr> {
    let path = config_dir.join(format!("{}.toml", node.name()));
    Ok(match node {
        NodeKind::Pcscf => {
            ims_config::load::<ims_config::PcscfConfig>(&path)?
                .http
                .listen
        }
        NodeKind::Icscf => {
            ims_config::load::<ims_config::IcscfConfig>(&path)?
                .http
                .listen
        }
        NodeKind::Scscf => {
            ims_config::load::<ims_config::ScscfConfig>(&path)?
                .http
                .listen
        }
        NodeKind::Hss => {
            ims_config::load::<ims_config::HssConfig>(&path)?
                .http
                .listen
        }
        NodeKind::Policyd => {
            ims_config::load::<ims_config::PolicydConfig>(&path)?
                .http
                .listen
        }
    })
}

/// GETs `/health` (HTTP/1.1 on loopback; no proxy, no TLS) and returns the JSON body.
pub async fn fetch(addr: SocketAddr) -> anyhow::Result<serde_json::Value> {
    let io = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut buf = Vec::with_capacity(1024);
        s.take(64 * 1024).read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let raw = tokio::time::timeout(Duration::from_secs(2), io)
        .await
        .context("timed out")??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP body")?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.1 200"),
        "unexpected answer: {}",
        head.lines().next().unwrap_or("")
    );
    Ok(serde_json::from_str(body.trim())?)
}

/// `imsctl status`: one line per node.
pub async fn print_status(config_dir: &Path) -> anyhow::Result<()> {
    println!(
        "{:<6} {:<22} {:<8} {:>8}  details",
        "node", "http", "status", "uptime"
    );
    let mut down = 0;
    for node in NodeKind::ALL {
        let addr = http_addr(config_dir, node)?;
        match fetch(addr).await {
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
                    "{:<6} {:<22} {:<8} {:>7}s  {}",
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
                    "{:<6} {:<22} {:<8} {:>8}  {e:#}",
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
