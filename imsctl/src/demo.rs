//! The demo of the one-command core with cloud authorization on: two tenants (Keystone
//! projects), their users, the service user of the nodes and three subscribers bound to
//! Keystone users (`<data>/keystone/demo.json`, mode 0600); provisioning them into the
//! HSS and `policyd`; and `imsctl token`, which logs a subscriber's Keystone user in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::http::{base_url, http_client};
use crate::keystone::{random_password, user_token};
use crate::subscriber::{Api, Target};

/// The demo subscribers: user part, Keystone user (same name), tenant.
const SUBSCRIBERS: [(&str, &str); 3] = [
    ("alice", "tenant-a"),
    ("bob", "tenant-a"),
    ("carol", "tenant-b"),
];

/// Each tenant's admin, who writes the tenant's `root` policy.
const TENANT_ADMINS: [(&str, &str); 2] = [("tenant-a", "ada"), ("tenant-b", "bea")];

/// The `root` policy of each demo tenant: members may do everything (every SIP method
/// outside a dialog) in their own tenant; `global:restrict` keeps other tenants out.
fn root_policy() -> Value {
    json!({"enforcer": "default", "rules": {"default": "role:member"}})
}

/// A Keystone user of the demo.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoUser {
    /// Keystone user name (domain `ims`).
    pub name: String,
    /// Keystone user id.
    pub id: String,
    /// Its password.
    pub password: String,
    /// The project it has its role on.
    pub project: String,
    /// That project's id.
    pub project_id: String,
}

/// A demo subscriber: its identities and Digest password.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoSubscriber {
    /// Private identity.
    pub impi: String,
    /// Public identity.
    pub impu: String,
    /// SIP Digest password.
    pub password: String,
    /// Name of the Keystone user it is bound to.
    pub user: String,
}

/// Everything `imsctl up` created for the demo, with the secrets (the file is 0600).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Demo {
    /// Keystone's identity API.
    pub url: String,
    /// Password of Keystone's bootstrap `admin` (the cloud admin).
    pub admin_password: String,
    /// Password of `ims-service` (also in `service.password` for the nodes).
    pub service_password: String,
    /// Project name -> id.
    pub projects: BTreeMap<String, String>,
    /// Keystone users.
    pub users: Vec<DemoUser>,
    /// Subscribers.
    pub subscribers: Vec<DemoSubscriber>,
}

impl Demo {
    /// A demo with fresh passwords for Keystone at `url` and subscribers of `domain`;
    /// its projects and users are filled in by `keystone::create_demo`.
    pub fn new(url: &str, domain: &str) -> Demo {
        let subscribers = SUBSCRIBERS
            .iter()
            .map(|(name, _)| DemoSubscriber {
                impi: format!("{name}@{domain}"),
                impu: format!("sip:{name}@{domain}"),
                password: random_password(),
                user: (*name).to_owned(),
            })
            .collect();
        Demo {
            url: url.to_owned(),
            admin_password: random_password(),
            service_password: random_password(),
            projects: BTreeMap::new(),
            users: Vec::new(),
            subscribers,
        }
    }

    /// `<data>/keystone/demo.json`.
    pub fn file(data: &Path) -> PathBuf {
        data.join("keystone").join("demo.json")
    }

    /// Reads the demo of the core whose data directory is `data`.
    pub fn read(data: &Path) -> anyhow::Result<Demo> {
        let file = Demo::file(data);
        let text = std::fs::read_to_string(&file).with_context(|| {
            format!(
                "reading {} (written by imsctl up with cloud authorization on)",
                file.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a demo file", file.display()))
    }

    /// Writes `demo.json` and the service user's password file (`service.password`,
    /// which the dev configs name), both mode 0600.
    pub fn write(&self, data: &Path) -> anyhow::Result<()> {
        let dir = data.join("keystone");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        crate::devca::write_secret(&Demo::file(data), &serde_json::to_string_pretty(self)?)?;
        crate::devca::write_secret(&dir.join("service.password"), &self.service_password)
    }

    fn user(&self, name: &str) -> Option<&DemoUser> {
        self.users.iter().find(|u| u.name == name)
    }

    /// What `imsctl up` prints about the demo.
    pub fn summary(&self) -> String {
        let mut tenants: Vec<String> = Vec::new();
        for tenant in self.projects.keys() {
            let members: Vec<&str> = SUBSCRIBERS
                .iter()
                .filter(|(_, t)| t == tenant)
                .map(|(n, _)| *n)
                .collect();
            tenants.push(format!("{tenant} ({})", members.join(", ")));
        }
        format!(
            "cloud authorization ON: Keystone {}, subscribers of {}; a token: imsctl token alice",
            self.url,
            tenants.join(" and ")
        )
    }
}

/// Makes sure the core knows the demo: each tenant's `root` policy in `policyd` (written
/// by the tenant's admin when missing) and each demo subscriber in the HSS, bound to its
/// Keystone user (created, or its cloud profile corrected when the Keystone instance was
/// made anew).
pub async fn provision(demo: &Demo, config_dir: &Path, ca: &Path) -> anyhow::Result<()> {
    let policyd: ims_config::PolicydConfig = ims_config::load(&config_dir.join("policyd.toml"))?;
    let base = base_url(&policyd.http);
    let http = http_client(&base, Some(ca))?;
    for (tenant, admin) in TENANT_ADMINS {
        let user = demo.user(admin).context("demo without its tenant admins")?;
        let token = user_token(&demo.url, user).await?;
        let url = format!("{base}/v1/policies/root");
        let query = [("tenant", user.project_id.as_str())];
        let found = http
            .get(&url)
            .query(&query)
            .header("X-Auth-Token", &token)
            .send()
            .await
            .with_context(|| format!("cannot reach policyd at {base}"))?
            .status();
        if found == reqwest::StatusCode::NOT_FOUND {
            let put = http
                .put(&url)
                .query(&query)
                .header("X-Auth-Token", &token)
                .json(&root_policy())
                .send()
                .await?
                .status();
            anyhow::ensure!(
                put.is_success(),
                "policyd: root policy of {tenant}: HTTP {}",
                put.as_u16()
            );
        } else if !found.is_success() {
            bail!("policyd: root policy of {tenant}: HTTP {}", found.as_u16());
        }
    }
    let hss = Api::new(&Target::default(), config_dir, Some(ca))?;
    for s in &demo.subscribers {
        let user = demo
            .user(&s.user)
            .context("demo subscriber without its user")?;
        let cloud = json!({"project_id": user.project_id, "user_id": user.id});
        let page = hss
            .send(
                reqwest::Method::GET,
                "/api/v1/subscribers",
                &[("impu", &s.impu)],
                None,
            )
            .await?
            .unwrap_or_default();
        match page["items"].get(0) {
            None => {
                let body = json!({
                    "cloud": cloud,
                    "private_identities": [{"impi": s.impi, "password": s.password}],
                    "public_identities": [{"impu": s.impu}],
                });
                hss.send(
                    reqwest::Method::POST,
                    "/api/v1/subscribers",
                    &[],
                    Some(&body),
                )
                .await?;
            }
            Some(found) if found["cloud"] != cloud => {
                let id = found["id"].as_str().context("subscriber without id")?;
                let path = format!("/api/v1/subscribers/{}", crate::http::segment(id));
                let patch = json!({
                    "cloud": cloud,
                    "private_identities": [{"impi": s.impi, "password": s.password}],
                });
                hss.send(reqwest::Method::PATCH, &path, &[], Some(&patch))
                    .await?;
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// `imsctl token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The subscriber (IMPU, IMPI or the user part of a home-domain IMPU, e.g. alice) whose
    /// bound Keystone user (the HSS's cloud profile) gets the token; or a demo Keystone
    /// user (ada and bea are the tenants' admins).
    subscriber: String,
    /// Print a SIPp injection file instead (`sipp-scenarios/cloud/`): user part; domain;
    /// the Digest `[authentication ...]` keyword; the callee; the token.
    #[arg(long)]
    sipp_csv: bool,
    /// The callee (user part) for `--sipp-csv`.
    #[arg(long, requires = "sipp_csv")]
    callee: Option<String>,
    /// The data directory of the core (`imsctl up --data-dir`).
    #[arg(long, env = "IMS_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    #[command(flatten)]
    hss: Target,
}

/// Prints a Keystone token (or a SIPp injection file) for `args.subscriber`.
pub async fn token(args: &TokenArgs, config_dir: &Path, ca: Option<&Path>) -> anyhow::Result<()> {
    let demo = Demo::read(&args.data_dir)?;
    let hss_config: ims_config::HssConfig = ims_config::load(&config_dir.join("hss.toml"))?;
    let domain = hss_config.node.domain;
    let key = &args.subscriber;
    let impu = if key.contains(':') {
        key.clone()
    } else if key.contains('@') {
        format!("sip:{key}")
    } else {
        format!("sip:{key}@{domain}")
    };
    let api = Api::new(&args.hss, config_dir, ca)?;
    let user = match api.find(&impu).await {
        Ok(found) => {
            let cloud = &found["cloud"];
            let (Some(user_id), Some(project_id)) =
                (cloud["user_id"].as_str(), cloud["project_id"].as_str())
            else {
                bail!("{impu} is bound to no Keystone user and project (its cloud profile)");
            };
            let user = demo
                .users
                .iter()
                .find(|u| u.id == user_id)
                .with_context(|| {
                    format!(
                        "{impu} is bound to Keystone user {user_id}, which is not a demo user of \
                     imsctl up: get its token from its Keystone (openstack token issue)"
                    )
                })?;
            DemoUser {
                project_id: project_id.to_owned(),
                ..user.clone()
            }
        }
        Err(e) => match demo.user(key) {
            Some(u) if !args.sipp_csv => u.clone(),
            _ => return Err(e.context(format!("no subscriber {impu}"))),
        },
    };
    let token = user_token(&demo.url, &user).await?;
    if !args.sipp_csv {
        println!("{token}");
        return Ok(());
    }
    let sub = demo
        .subscribers
        .iter()
        .find(|s| s.impu == impu)
        .with_context(|| format!("{impu} is not a demo subscriber: its password is unknown"))?;
    let name = sub.impi.split('@').next().unwrap_or(&sub.impi);
    println!("SEQUENTIAL");
    println!(
        "{name};{domain};[authentication username={} password={}];{};{token}",
        sub.impi,
        sub.password,
        args.callee.as_deref().unwrap_or("-")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::Demo;

    #[test]
    fn the_demo_files_are_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let demo = Demo::new("http://127.0.0.1:5000/v3", "ims.example.net");
        assert_eq!(demo.subscribers[2].impu, "sip:carol@ims.example.net");
        assert_ne!(demo.service_password, demo.admin_password);
        std::fs::create_dir_all(dir.path().join("keystone")).unwrap();
        // A file left world-readable is made private.
        let stale = dir.path().join("keystone/service.password");
        std::fs::write(&stale, "old").unwrap();
        std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();
        demo.write(dir.path()).unwrap();
        for f in ["demo.json", "service.password"] {
            let mode = std::fs::metadata(dir.path().join("keystone").join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        let text = std::fs::read_to_string(&stale).unwrap();
        assert_eq!(text, demo.service_password);
        let back = Demo::read(dir.path()).unwrap();
        assert_eq!(back.subscribers[0].password, demo.subscribers[0].password);
    }
}
