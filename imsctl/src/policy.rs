//! `imsctl policy list|show|versions|put|delete`: a client of the policy service's REST
//! API (`cloud_auth::policyd::api`).
//!
//! The service URL comes from `--url`/`IMS_POLICYD_URL`, by default from `policyd.toml`
//! in the config directory (`http.listen`). Every call carries a Keystone token from
//! `--token`, `IMS_POLICY_TOKEN` or `OS_TOKEN` (e.g. `openstack token issue -f value -c id`);
//! the service decides with its `enable` policy what that token may do. `--tenant` picks a
//! tenant's customer policy; without it the global policy of that name is meant.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::http::{base_url, http_client, segment};

/// Where the policy service is and the caller's token.
#[derive(Debug, Args)]
pub struct Target {
    /// Base URL of the policy service (default: from policyd.toml `http.listen`).
    #[arg(long, env = "IMS_POLICYD_URL", global = true)]
    url: Option<String>,
    /// Keystone token (X-Auth-Token); also read from OS_TOKEN.
    #[arg(long, env = "IMS_POLICY_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
}

/// `imsctl policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List the policies the token may read.
    List {
        /// Only this tenant's (Keystone project id) customer policies.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Show the current version of a policy.
    Show {
        /// Policy name.
        name: String,
        /// Owner tenant of a customer policy (absent: a global policy).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Show every version of a policy, deletions included.
    Versions {
        /// Policy name.
        name: String,
        /// Owner tenant of a customer policy (absent: a global policy).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Write a new version of a policy.
    Put {
        /// Policy name.
        name: String,
        /// Owner tenant of a customer policy (absent: a global policy).
        #[arg(long)]
        tenant: Option<String>,
        /// default, op-and, op-or, all-pass, all-forbid or custom.
        #[arg(long)]
        enforcer: String,
        /// The rules as JSON (default: object of oslo rules; op-and/op-or: array).
        #[arg(long, conflicts_with = "rules_file")]
        rules: Option<String>,
        /// File with the rules: JSON, or Cedar text for `custom`.
        #[arg(long)]
        rules_file: Option<PathBuf>,
    },
    /// Delete a policy (its history is kept).
    Delete {
        /// Policy name.
        name: String,
        /// Owner tenant of a customer policy (absent: a global policy).
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// The body of a PUT: `custom` rules from a file are Cedar text, anything else JSON.
fn put_body(enforcer: &str, rules: Option<&str>, file_text: Option<&str>) -> anyhow::Result<Value> {
    let rules = match (rules, file_text) {
        (Some(r), _) => serde_json::from_str(r).context("--rules is not JSON")?,
        (None, Some(text)) if enforcer == "custom" => Value::String(text.to_owned()),
        (None, Some(text)) => serde_json::from_str(text).context("the rules file is not JSON")?,
        (None, None) if matches!(enforcer, "all-pass" | "all-forbid") => Value::Null,
        (None, None) => bail!("{enforcer} needs --rules or --rules-file"),
    };
    Ok(json!({ "enforcer": enforcer, "rules": rules }))
}

fn path(name: &str, suffix: &str) -> String {
    format!("/v1/policies/{}{suffix}", segment(name))
}

/// Runs one `imsctl policy` command.
pub async fn run(
    config_dir: &Path,
    target: &Target,
    ca: Option<&Path>,
    command: PolicyCommand,
) -> anyhow::Result<()> {
    let base = match &target.url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let c: ims_config::PolicydConfig = ims_config::load(&config_dir.join("policyd.toml"))?;
            base_url(&c.http)
        }
    };
    let token = match &target.token {
        Some(t) => t.clone(),
        None => std::env::var("OS_TOKEN")
            .context("no Keystone token: use --token, IMS_POLICY_TOKEN or OS_TOKEN")?,
    };
    let http = http_client(&base, ca)?;
    let (method, path, tenant, body) = match command {
        PolicyCommand::List { tenant } => {
            (reqwest::Method::GET, "/v1/policies".into(), tenant, None)
        }
        PolicyCommand::Show { name, tenant } => {
            (reqwest::Method::GET, path(&name, ""), tenant, None)
        }
        PolicyCommand::Versions { name, tenant } => {
            (reqwest::Method::GET, path(&name, "/versions"), tenant, None)
        }
        PolicyCommand::Delete { name, tenant } => {
            (reqwest::Method::DELETE, path(&name, ""), tenant, None)
        }
        PolicyCommand::Put {
            name,
            tenant,
            enforcer,
            rules,
            rules_file,
        } => {
            let text = rules_file
                .map(|f| {
                    std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))
                })
                .transpose()?;
            let body = put_body(&enforcer, rules.as_deref(), text.as_deref())?;
            (reqwest::Method::PUT, path(&name, ""), tenant, Some(body))
        }
    };
    let mut req = http
        .request(method, format!("{base}{path}"))
        .header("X-Auth-Token", token);
    if let Some(t) = &tenant {
        req = req.query(&[("tenant", t)]);
    }
    if let Some(b) = &body {
        req = req.json(b);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach the policy service at {base}"))?;
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let message = answer["error"].as_str().unwrap_or("no details");
        bail!("HTTP {}: {message}", status.as_u16());
    }
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_bodies() {
        let cedar = "permit(principal, action, resource);";
        assert_eq!(
            put_body("custom", None, Some(cedar)).unwrap(),
            json!({"enforcer": "custom", "rules": cedar})
        );
        assert_eq!(
            put_body("default", Some(r#"{"INVITE": "@"}"#), None).unwrap(),
            json!({"enforcer": "default", "rules": {"INVITE": "@"}})
        );
        assert_eq!(
            put_body("op-and", None, Some(r#"["global:restrict"]"#)).unwrap()["rules"],
            json!(["global:restrict"])
        );
        assert_eq!(
            put_body("all-pass", None, None).unwrap()["rules"],
            Value::Null
        );
        assert!(put_body("default", None, None).is_err());
        assert!(put_body("default", Some("{not json"), None).is_err());
        assert_eq!(path("a b", "/versions"), "/v1/policies/a%20b/versions");
    }
}
