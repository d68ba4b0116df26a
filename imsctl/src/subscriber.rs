//! `imsctl subscriber add|list|show|update|delete|import`: a client of the HSS
//! provisioning API (`/api/v1/subscribers`, see `hss/src/provisioning/`).
//!
//! The HSS URL comes from `--url`/`IMS_HSS_URL`, by default from `hss.toml` in the config
//! directory (`http.listen`). The caller is, in this order: a Keystone token
//! (`X-Auth-Token`, decided by the HSS's cloud authorization) from
//! `--keystone-token`/`IMS_HSS_KEYSTONE_TOKEN`; the static admin token from
//! `--token`/`IMS_HSS_TOKEN`; a Keystone token from `OS_TOKEN` (e.g. `openstack token
//! issue -f value -c id`); the static admin token of `hss.toml`
//! (`provisioning.admin_token` or the file `admin_token_file`).
//!
//! `import` reads CSV with a header row; columns, in any order (names case-insensitive):
//!
//! | column | |
//! |---|---|
//! | `impi` | private identity (required) |
//! | `impus` (or `impu`) | public identities, separated by `;` or spaces (required); one implicit registration set |
//! | `password` | SIP Digest password (the HSS stores only HA1) |
//! | `k`, `opc` or `op`, `amf`, `sqn` | AKA: K and OPc/OP as 32 hex digits, AMF as 4 (default `8000`), initial SQN |
//! | `project_id`, `user_id` | Keystone project (tenant) and user |
//! | `id`, `realm` | subscription id (generated when empty), digest realm |
//!
//! A row needs a password or AKA keys. Bad rows are reported with their line number and
//! reason; good rows are kept. The exit status is non-zero if any row failed.
//!
//! The public identities given together (several `--impu` of `add`, the `impus` of a
//! row) form one implicit registration set (TS 23.228 §4.3.3.3): registering one
//! registers all, and the S-CSCF lists all of them in P-Associated-URI. `add
//! --separate-sets` puts each in a set of its own; `update --add-impu` adds to the set
//! of the subscriber's first public identity (or, with `--separate-sets`, alone).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::http::{base_url, http_client, segment};

/// Where the HSS is and how to authenticate.
#[derive(Debug, Default, Args)]
pub struct Target {
    /// Base URL of the HSS HTTP endpoint (default: from hss.toml `http.listen`).
    #[arg(long, env = "IMS_HSS_URL", global = true)]
    url: Option<String>,
    /// Provisioning admin token (default: hss.toml `provisioning.admin_token(_file)`).
    #[arg(long, env = "IMS_HSS_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Keystone token (X-Auth-Token), decided by the HSS's cloud authorization; also
    /// read from OS_TOKEN when no admin token is given.
    #[arg(
        long,
        env = "IMS_HSS_KEYSTONE_TOKEN",
        global = true,
        hide_env_values = true
    )]
    keystone_token: Option<String>,
}

/// How calls authenticate.
enum Credential {
    /// A Keystone token, sent as `X-Auth-Token`.
    Keystone(String),
    /// The static admin token, sent as `Authorization: Bearer`.
    Admin(String),
}

/// Credentials given on the command line.
#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// SIP Digest password (only its HA1 is stored).
    #[arg(long)]
    password: Option<String>,
    /// AKA K, 32 hex digits.
    #[arg(long)]
    k: Option<String>,
    /// AKA OPc, 32 hex digits.
    #[arg(long, conflicts_with = "op")]
    opc: Option<String>,
    /// AKA OP, 32 hex digits (the HSS derives and stores OPc).
    #[arg(long)]
    op: Option<String>,
    /// AKA AMF, 4 hex digits.
    #[arg(long)]
    amf: Option<String>,
    /// Initial SQN.
    #[arg(long)]
    sqn: Option<u64>,
    /// Digest realm (default: the HSS's domain).
    #[arg(long)]
    realm: Option<String>,
}

/// `imsctl subscriber ...`
#[derive(Debug, Subcommand)]
pub enum SubscriberCommand {
    /// Create a subscriber.
    Add {
        /// Private identity, e.g. alice@ims.example.net.
        #[arg(long)]
        impi: String,
        /// Public identity (repeat for several), e.g. sip:alice@ims.example.net.
        #[arg(long = "impu", required = true)]
        impus: Vec<String>,
        /// Subscription id (generated when absent).
        #[arg(long)]
        id: Option<String>,
        /// Keystone project id.
        #[arg(long)]
        project_id: Option<String>,
        /// Keystone user id.
        #[arg(long)]
        user_id: Option<String>,
        /// Each public identity in an implicit registration set of its own (default:
        /// all in one set, registered together).
        #[arg(long)]
        separate_sets: bool,
        #[command(flatten)]
        credentials: CredentialArgs,
    },
    /// List subscribers.
    List {
        /// Page size.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Follow pages to the end.
        #[arg(long)]
        all: bool,
    },
    /// Show one subscriber (by id, IMPI or IMPU) as JSON.
    Show {
        /// Subscription id, IMPI or IMPU.
        key: String,
    },
    /// Change a subscriber (by id, IMPI or IMPU).
    Update {
        /// Subscription id, IMPI or IMPU.
        key: String,
        /// Which private identity the credentials are for (default: the first).
        #[arg(long)]
        impi: Option<String>,
        /// New Keystone project id.
        #[arg(long)]
        project_id: Option<String>,
        /// New Keystone user id.
        #[arg(long)]
        user_id: Option<String>,
        /// Add a public identity, in the implicit registration set of the first one.
        #[arg(long)]
        add_impu: Vec<String>,
        /// Each added public identity in an implicit registration set of its own.
        #[arg(long, requires = "add_impu")]
        separate_sets: bool,
        /// Remove a public identity.
        #[arg(long)]
        remove_impu: Vec<String>,
        /// Bar a public identity.
        #[arg(long)]
        bar: Vec<String>,
        /// Lift the barring of a public identity.
        #[arg(long)]
        unbar: Vec<String>,
        #[command(flatten)]
        credentials: CredentialArgs,
    },
    /// Delete a subscriber (by id, IMPI or IMPU).
    Delete {
        /// Subscription id, IMPI or IMPU.
        key: String,
    },
    /// Add an initial filter criterion (an application server in the subscriber's
    /// sessions) to a service profile of a subscriber (by id, IMPI or IMPU).
    AddIfc {
        /// Subscription id, IMPI or IMPU.
        key: String,
        /// The service profile (the one public identities use unless told otherwise).
        #[arg(long, default_value = "default")]
        profile: String,
        #[command(flatten)]
        ifc: crate::ifc::IfcArgs,
    },
    /// Remove the initial filter criterion of a priority from a service profile.
    RemoveIfc {
        /// Subscription id, IMPI or IMPU.
        key: String,
        /// The service profile.
        #[arg(long, default_value = "default")]
        profile: String,
        /// The iFC's priority.
        #[arg(long)]
        priority: i64,
    },
    /// Create subscribers from a CSV file; bad rows are reported, good rows kept.
    ///
    /// The header row names the columns, in any order: impi (required), impus or impu
    /// (required; several separated by ';' or spaces, registered together as one implicit
    /// registration set), password, k, opc or op, amf, sqn,
    /// project_id (or tenant), user_id, id, realm. A row needs a password or k with
    /// opc/op. Exits non-zero if any row failed.
    Import {
        /// The CSV file.
        file: PathBuf,
    },
}

/// A connection to the provisioning API.
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    credential: Credential,
}

/// An API answer that is not a success.
#[derive(Debug)]
struct ApiFailure {
    status: reqwest::StatusCode,
    message: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiFailure {}

impl Api {
    pub(crate) fn new(
        target: &Target,
        config_dir: &Path,
        ca: Option<&Path>,
    ) -> anyhow::Result<Api> {
        let config = || -> anyhow::Result<ims_config::HssConfig> {
            Ok(ims_config::load(&config_dir.join("hss.toml"))?)
        };
        let base = match &target.url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => base_url(&config()?.http),
        };
        let os_token = || {
            std::env::var("OS_TOKEN")
                .ok()
                .filter(|t| !t.trim().is_empty())
        };
        let credential = match (&target.keystone_token, &target.token) {
            (Some(t), _) => Credential::Keystone(t.clone()),
            (None, Some(t)) => Credential::Admin(t.clone()),
            (None, None) => match os_token() {
                Some(t) => Credential::Keystone(t),
                None => {
                    let c = config()?;
                    Credential::Admin(
                        match (c.provisioning.admin_token, c.provisioning.admin_token_file) {
                            (Some(t), _) => t,
                            (None, Some(f)) => std::fs::read_to_string(&f)
                                .with_context(|| {
                                    format!(
                                        "reading the admin token from {} (is the HSS started?)",
                                        f.display()
                                    )
                                })?
                                .trim()
                                .to_string(),
                            (None, None) => bail!(
                                "no token: use --keystone-token, --token, IMS_HSS_KEYSTONE_TOKEN, \
                                 IMS_HSS_TOKEN or OS_TOKEN"
                            ),
                        },
                    )
                }
            },
        };
        let http = http_client(&base, ca)?;
        Ok(Api {
            http,
            base,
            credential,
        })
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<Option<Value>> {
        let req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .query(query);
        let mut req = match &self.credential {
            Credential::Keystone(t) => req.header("X-Auth-Token", t),
            Credential::Admin(t) => req.bearer_auth(t),
        };
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the HSS at {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            let message = match serde_json::from_str::<Value>(&text) {
                Ok(v) => match (v["error"].as_str(), v["field"].as_str()) {
                    (Some(e), Some(f)) => format!("{f}: {e}"),
                    (Some(e), None) => e.to_string(),
                    _ => text,
                },
                Err(_) => text,
            };
            return Err(ApiFailure { status, message }.into());
        }
        if text.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some(
            serde_json::from_str(&text).context("the HSS answered with invalid JSON")?,
        ))
    }

    /// The subscriber whose id, IMPI or IMPU is `key`.
    pub(crate) async fn find(&self, key: &str) -> anyhow::Result<Value> {
        let by_id = self
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/subscribers/{}", segment(key)),
                &[],
                None,
            )
            .await;
        match by_id {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => bail!("empty answer"),
            Err(e)
                if e.downcast_ref::<ApiFailure>()
                    .is_some_and(|f| f.status == reqwest::StatusCode::NOT_FOUND) => {}
            Err(e) => return Err(e),
        }
        let lower = key.to_ascii_lowercase();
        let by = if ["sip:", "sips:", "tel:"]
            .iter()
            .any(|s| lower.starts_with(s))
        {
            "impu"
        } else {
            "impi"
        };
        let page = self
            .send(
                reqwest::Method::GET,
                "/api/v1/subscribers",
                &[(by, key)],
                None,
            )
            .await?
            .unwrap_or_default();
        match page["items"].get(0) {
            Some(v) => Ok(v.clone()),
            None => bail!("no subscriber with id, IMPI or IMPU {key}"),
        }
    }
}

/// The `aka` object for `credentials`, if any AKA option was given.
fn aka_json(c: &CredentialArgs) -> anyhow::Result<Option<Value>> {
    let Some(k) = &c.k else {
        anyhow::ensure!(
            c.opc.is_none() && c.op.is_none() && c.amf.is_none() && c.sqn.is_none(),
            "--opc, --op, --amf and --sqn need --k"
        );
        return Ok(None);
    };
    let mut aka = Map::new();
    aka.insert("k".into(), json!(k));
    for (name, v) in [("opc", &c.opc), ("op", &c.op), ("amf", &c.amf)] {
        if let Some(v) = v {
            aka.insert(name.into(), json!(v));
        }
    }
    if let Some(s) = c.sqn {
        aka.insert("sqn".into(), json!(s));
    }
    Ok(Some(Value::Object(aka)))
}

fn private_identity(impi: &str, c: &CredentialArgs) -> anyhow::Result<Value> {
    let mut p = Map::new();
    p.insert("impi".into(), json!(impi));
    if let Some(r) = &c.realm {
        p.insert("realm".into(), json!(r));
    }
    if let Some(pw) = &c.password {
        p.insert("password".into(), json!(pw));
    }
    if let Some(aka) = aka_json(c)? {
        p.insert("aka".into(), aka);
    }
    Ok(Value::Object(p))
}

/// The `public_identities` entries of `impus`, all in implicit registration set `set`,
/// or each in a set of its own (`null`) when `set` is `None`.
fn public_identities<S: AsRef<str>>(impus: &[S], set: Option<i64>) -> Vec<Value> {
    impus
        .iter()
        .map(|u| json!({"impu": u.as_ref(), "implicit_set": set}))
        .collect()
}

fn cloud(project_id: Option<&str>, user_id: Option<&str>) -> Value {
    json!({ "project_id": project_id, "user_id": user_id })
}

/// Runs one `imsctl subscriber` command.
pub async fn run(
    config_dir: &Path,
    target: &Target,
    ca: Option<&Path>,
    command: SubscriberCommand,
) -> anyhow::Result<()> {
    let api = Api::new(target, config_dir, ca)?;
    match command {
        SubscriberCommand::Add {
            impi,
            impus,
            id,
            project_id,
            user_id,
            separate_sets,
            credentials,
        } => {
            anyhow::ensure!(
                credentials.password.is_some() || credentials.k.is_some(),
                "give --password or --k with --opc/--op"
            );
            let mut body = json!({
                "cloud": cloud(project_id.as_deref(), user_id.as_deref()),
                "private_identities": [private_identity(&impi, &credentials)?],
                "public_identities": public_identities(&impus, (!separate_sets).then_some(1)),
            });
            if let Some(id) = id {
                body["id"] = json!(id);
            }
            let created = api
                .send(
                    reqwest::Method::POST,
                    "/api/v1/subscribers",
                    &[],
                    Some(&body),
                )
                .await?
                .unwrap_or_default();
            println!(
                "created subscriber {}",
                created["id"].as_str().unwrap_or("?")
            );
        }
        SubscriberCommand::List { limit, all } => list(&api, limit, all).await?,
        SubscriberCommand::Show { key } => {
            println!("{}", serde_json::to_string_pretty(&api.find(&key).await?)?);
        }
        SubscriberCommand::Update {
            key,
            impi,
            project_id,
            user_id,
            add_impu,
            remove_impu,
            bar,
            unbar,
            separate_sets,
            credentials,
        } => {
            let current = api.find(&key).await?;
            let id = current["id"]
                .as_str()
                .context("subscriber without id")?
                .to_string();
            let patch = update_patch(
                &current,
                impi.as_deref(),
                project_id,
                user_id,
                &ImpuChanges {
                    add: &add_impu,
                    remove: &remove_impu,
                    bar: &bar,
                    unbar: &unbar,
                    separate_sets,
                },
                &credentials,
            )?;
            anyhow::ensure!(!patch.is_empty(), "nothing to update");
            api.send(
                reqwest::Method::PATCH,
                &format!("/api/v1/subscribers/{}", segment(&id)),
                &[],
                Some(&Value::Object(patch)),
            )
            .await?;
            println!("updated subscriber {id}");
        }
        SubscriberCommand::Delete { key } => {
            let current = api.find(&key).await?;
            let id = current["id"].as_str().context("subscriber without id")?;
            api.send(
                reqwest::Method::DELETE,
                &format!("/api/v1/subscribers/{}", segment(id)),
                &[],
                None,
            )
            .await?;
            println!("deleted subscriber {id}");
        }
        SubscriberCommand::AddIfc { key, profile, ifc } => {
            let current = api.find(&key).await?;
            let profiles = crate::ifc::with_ifc(&current, &profile, crate::ifc::ifc_json(&ifc)?)?;
            let id = patch_profiles(&api, &current, profiles).await?;
            println!(
                "added the iFC of priority {} to {id} ({profile})",
                ifc.priority
            );
        }
        SubscriberCommand::RemoveIfc {
            key,
            profile,
            priority,
        } => {
            let current = api.find(&key).await?;
            let profiles = crate::ifc::without_ifc(&current, &profile, priority)?;
            let id = patch_profiles(&api, &current, profiles).await?;
            println!("removed the iFC of priority {priority} from {id} ({profile})");
        }
        SubscriberCommand::Import { file } => import(&api, &file).await?,
    }
    Ok(())
}

/// Replaces the service profiles of the subscriber `current` shows; its id.
/// `imsctl deregister`: `POST /api/v1/subscribers/{id}/deregister` with `reason`.
pub async fn deregister(
    config_dir: &Path,
    target: &Target,
    ca: Option<&Path>,
    key: &str,
    reason: &str,
) -> anyhow::Result<()> {
    const REASONS: [&str; 4] = [
        "server_change",
        "permanent_termination",
        "new_server_assigned",
        "remove_scscf",
    ];
    anyhow::ensure!(
        REASONS.contains(&reason),
        "--reason must be one of {}",
        REASONS.join(", ")
    );
    let api = Api::new(target, config_dir, ca)?;
    let current = api.find(key).await?;
    let id = current["id"].as_str().context("subscriber without id")?;
    api.send(
        reqwest::Method::POST,
        &format!("/api/v1/subscribers/{}/deregister", segment(id)),
        &[],
        Some(&json!({ "reason": reason })),
    )
    .await?;
    println!("de-registered subscriber {id} ({reason})");
    Ok(())
}

async fn patch_profiles(api: &Api, current: &Value, profiles: Value) -> anyhow::Result<String> {
    let id = current["id"]
        .as_str()
        .context("subscriber without id")?
        .to_string();
    api.send(
        reqwest::Method::PATCH,
        &format!("/api/v1/subscribers/{}", segment(&id)),
        &[],
        Some(&json!({ "service_profiles": profiles })),
    )
    .await?;
    Ok(id)
}

async fn list(api: &Api, limit: u32, all: bool) -> anyhow::Result<()> {
    println!(
        "{:<34} {:<32} {:<20} public identities",
        "id", "private identities", "project"
    );
    let mut after: Option<String> = None;
    loop {
        let limit_text = limit.to_string();
        let mut query = vec![("limit", limit_text.as_str())];
        if let Some(a) = &after {
            query.push(("after", a.as_str()));
        }
        let page = api
            .send(reqwest::Method::GET, "/api/v1/subscribers", &query, None)
            .await?
            .unwrap_or_default();
        for s in page["items"].as_array().into_iter().flatten() {
            let join = |list: &str, field: &str| {
                s[list]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p[field].as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            println!(
                "{:<34} {:<32} {:<20} {}",
                s["id"].as_str().unwrap_or(""),
                join("private_identities", "impi"),
                s["cloud"]["project_id"].as_str().unwrap_or("-"),
                join("public_identities", "impu"),
            );
        }
        match page["next"].as_str() {
            Some(n) if all => after = Some(n.to_string()),
            Some(_) => {
                println!("(more: use --all)");
                break;
            }
            None => break,
        }
    }
    Ok(())
}

/// What `update` does to the public identities.
struct ImpuChanges<'a> {
    add: &'a [String],
    remove: &'a [String],
    bar: &'a [String],
    unbar: &'a [String],
    /// The added ones each in a set of their own, not in the first one's.
    separate_sets: bool,
}

impl ImpuChanges<'_> {
    fn is_empty(&self) -> bool {
        self.add.is_empty()
            && self.remove.is_empty()
            && self.bar.is_empty()
            && self.unbar.is_empty()
    }

    /// The implicit registration set the added identities go to: the first remaining
    /// identity's; when it has none, a number no identity uses, given to it too.
    fn set_for_added(&self, publics: &mut [Value]) -> Option<i64> {
        if self.separate_sets {
            return None;
        }
        if let Some(n) = publics.first().and_then(|p| p["implicit_set"].as_i64()) {
            return Some(n);
        }
        let taken: Vec<i64> = publics
            .iter()
            .filter_map(|p| p["implicit_set"].as_i64())
            .collect();
        let fresh = (1..).find(|n| !taken.contains(n)).unwrap_or(i64::MAX);
        if let Some(first) = publics.first_mut() {
            first["implicit_set"] = json!(fresh);
        }
        Some(fresh)
    }
}

fn update_patch(
    current: &Value,
    impi: Option<&str>,
    project_id: Option<String>,
    user_id: Option<String>,
    impus: &ImpuChanges<'_>,
    credentials: &CredentialArgs,
) -> anyhow::Result<Map<String, Value>> {
    let mut patch = Map::new();
    if project_id.is_some() || user_id.is_some() {
        let project =
            project_id.or_else(|| current["cloud"]["project_id"].as_str().map(String::from));
        let user = user_id.or_else(|| current["cloud"]["user_id"].as_str().map(String::from));
        patch.insert("cloud".into(), cloud(project.as_deref(), user.as_deref()));
    }
    let changes_credentials =
        credentials.password.is_some() || credentials.k.is_some() || credentials.realm.is_some();
    if changes_credentials {
        let privates = current["private_identities"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let target = match impi {
            Some(i) => i.to_string(),
            None => privates
                .first()
                .and_then(|p| p["impi"].as_str())
                .context("subscriber has no private identity")?
                .to_string(),
        };
        anyhow::ensure!(
            privates.iter().any(|p| p["impi"] == target.as_str()),
            "{target} is not a private identity of this subscriber"
        );
        let list: Vec<Value> = privates
            .iter()
            .map(|p| {
                let name = p["impi"].as_str().unwrap_or_default();
                if name == target {
                    private_identity(name, credentials)
                } else {
                    Ok(json!({"impi": name, "realm": p["realm"]}))
                }
            })
            .collect::<anyhow::Result<_>>()?;
        patch.insert("private_identities".into(), Value::Array(list));
    }
    if !impus.is_empty() {
        let mut publics: Vec<Value> = current["public_identities"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                json!({
                    "impu": p["impu"],
                    "barred": p["barred"],
                    "implicit_set": p["implicit_set"],
                    "service_profile": p["service_profile"],
                })
            })
            .collect();
        for u in impus.remove {
            let before = publics.len();
            publics.retain(|p| p["impu"] != u.as_str());
            anyhow::ensure!(
                publics.len() < before,
                "{u} is not a public identity of this subscriber"
            );
        }
        if !impus.add.is_empty() {
            let set = impus.set_for_added(&mut publics);
            publics.extend(public_identities(impus.add, set));
        }
        for (list, barred) in [(impus.bar, true), (impus.unbar, false)] {
            for u in list {
                let p = publics
                    .iter_mut()
                    .find(|p| p["impu"] == u.as_str())
                    .with_context(|| format!("{u} is not a public identity of this subscriber"))?;
                p["barred"] = json!(barred);
            }
        }
        patch.insert("public_identities".into(), Value::Array(publics));
    }
    Ok(patch)
}

/// One CSV row turned into a request body, or why it cannot be.
fn row_body(headers: &csv::StringRecord, row: &csv::StringRecord) -> Result<Value, String> {
    let get = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
            .and_then(|i| row.get(i))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let impi = get(&["impi"]).ok_or("impi is empty")?;
    let impus: Vec<&str> = get(&["impus", "impu"])
        .ok_or("impus is empty")?
        .split(|c: char| c == ';' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .collect();
    let sqn = get(&["sqn"])
        .map(|s| {
            s.parse::<u64>()
                .map_err(|_| format!("sqn {s:?} is not a number"))
        })
        .transpose()?;
    let credentials = CredentialArgs {
        password: get(&["password"]).map(String::from),
        k: get(&["k"]).map(String::from),
        opc: get(&["opc"]).map(String::from),
        op: get(&["op"]).map(String::from),
        amf: get(&["amf"]).map(String::from),
        sqn,
        realm: get(&["realm"]).map(String::from),
    };
    if credentials.password.is_none() && credentials.k.is_none() {
        return Err("needs a password or k with opc/op".into());
    }
    let mut body = json!({
        "cloud": cloud(get(&["project_id", "tenant"]), get(&["user_id"])),
        "private_identities": [private_identity(impi, &credentials).map_err(|e| e.to_string())?],
        "public_identities": public_identities(&impus, Some(1)),
    });
    if let Some(id) = get(&["id"]) {
        body["id"] = json!(id);
    }
    Ok(body)
}

async fn import(api: &Api, file: &Path) -> anyhow::Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(file)
        .with_context(|| format!("opening {}", file.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: reading the header row", file.display()))?
        .clone();
    for required in [&["impi"][..], &["impus", "impu"]] {
        anyhow::ensure!(
            headers
                .iter()
                .any(|h| required.iter().any(|r| h.eq_ignore_ascii_case(r))),
            "{}: the header row has no {} column",
            file.display(),
            required.join(" or ")
        );
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        rows.push(record);
    }
    let bar = indicatif::ProgressBar::new(rows.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut good, mut bad) = (0usize, 0usize);
    for record in rows {
        let outcome = match &record {
            Err(e) => Err((e.position().map_or(0, |p| p.line()), e.to_string())),
            Ok(row) => {
                let line = row.position().map_or(0, |p| p.line());
                if row.len() != headers.len() {
                    Err((
                        line,
                        format!("{} fields, the header has {}", row.len(), headers.len()),
                    ))
                } else {
                    match row_body(&headers, row) {
                        Err(reason) => Err((line, reason)),
                        Ok(body) => api
                            .send(
                                reqwest::Method::POST,
                                "/api/v1/subscribers",
                                &[],
                                Some(&body),
                            )
                            .await
                            .map(|_| ())
                            .map_err(|e| (line, format!("{e:#}"))),
                    }
                }
            }
        };
        match outcome {
            Ok(()) => good += 1,
            Err((line, reason)) => {
                bad += 1;
                bar.suspend(|| println!("{}:{line}: {reason}", file.display()));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!("imported {good} subscriber(s); {bad} row(s) failed");
    anyhow::ensure!(bad == 0, "{bad} row(s) of {} failed", file.display());
    Ok(())
}
