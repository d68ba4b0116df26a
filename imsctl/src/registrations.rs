//! `imsctl registrations <impu>`: what the S-CSCF holds for a public identity — its
//! contacts (expiry, Path) and the reg event subscriptions to its implicit set — from
//! the S-CSCF's operator API (`GET /api/v1/registrations/{impu}`, `scscf/src/api.rs`),
//! with the admin token of `scscf.toml` `[api]` (or `--token`).

use std::path::Path;

use anyhow::{bail, Context};

use crate::http::{base_url, http_client, segment};

/// Prints the S-CSCF's JSON for `impu`.
pub async fn show(
    config_dir: &Path,
    url: Option<&str>,
    token: Option<&str>,
    ca: Option<&Path>,
    impu: &str,
) -> anyhow::Result<()> {
    let config: ims_config::ScscfConfig = ims_config::load(&config_dir.join("scscf.toml"))?;
    let base = url.map_or_else(
        || base_url(&config.http),
        |u| u.trim_end_matches('/').to_string(),
    );
    let token = match (token, &config.api.admin_token, &config.api.admin_token_file) {
        (Some(t), _, _) => t.to_string(),
        (None, Some(t), _) => t.clone(),
        (None, None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("reading the admin token from {}", f.display()))?
            .trim()
            .to_string(),
        (None, None, None) => bail!("no token: scscf.toml has no [api] token; use --token"),
    };
    let resp = http_client(&base, ca)?
        .get(format!("{base}/api/v1/registrations/{}", segment(impu)))
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("calling the S-CSCF at {base}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if status == reqwest::StatusCode::NOT_FOUND {
        bail!("{impu} is not registered at this S-CSCF and has no reg event subscription");
    }
    if !status.is_success() {
        bail!(
            "HTTP {}: {}",
            status.as_u16(),
            body["error"].as_str().unwrap_or("")
        );
    }
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}
