//! The local Keystone of `imsctl up` with cloud authorization on: the pinned Keystone of
//! `scripts/keystone/` (installed by `scripts/keystone/setup`) run on 127.0.0.1:5000,
//! its instance under `<data>/keystone/instance` (kept across restarts), and the demo
//! tenants and users created in it when the instance is new.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::process::Command;

use crate::demo::{Demo, DemoUser};

/// Port of the local Keystone (the dev configs' `${IMS_KEYSTONE_URL:-...}` default).
pub const PORT: u16 = 5000;

/// The scripts that install, start and stop it, relative to the repository root (where
/// `imsctl up` runs, as its `--config-dir config/dev` default).
const SCRIPTS: &str = "scripts/keystone";

/// Where `scripts/keystone/setup` keeps the virtualenv and the bootstrapped template.
fn env_dir() -> PathBuf {
    match std::env::var_os("IMS_KEYSTONE_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/ims-core/keystone"),
    }
}

/// Whether the Keystone environment is installed (`scripts/keystone/setup` has run):
/// then `imsctl up` turns cloud authorization on by default.
pub fn installed() -> bool {
    env_dir().join("template/.ims-ready").is_file()
}

/// A running local Keystone, stopped when dropped.
pub struct Instance {
    dir: PathBuf,
    /// Identity API v3 base URL.
    pub url: String,
}

impl Instance {
    /// Installs the environment if needed (`setup`, idempotent), then starts the instance
    /// in `<data>/keystone/instance`, reusing its database when there is one. Also says
    /// whether the instance is new (nothing created in it yet).
    pub async fn start(data: &Path) -> anyhow::Result<(Instance, bool)> {
        let scripts = Path::new(SCRIPTS);
        anyhow::ensure!(
            scripts.join("start").is_file(),
            "{SCRIPTS}/ not found: run imsctl up from the repository root (or with --no-cloud)"
        );
        if !installed() {
            println!("installing the pinned Keystone ({SCRIPTS}/setup, once, about 30 s) ...");
        }
        run_script(Command::new(scripts.join("setup")), "setup").await?;
        // The instance's database holds password hashes; the demo file, passwords.
        let parent = data.join("keystone");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o700))?;
        let dir = parent.join("instance");
        // An instance left running by an imsctl that was killed (SIGKILL) holds the port.
        let mut stop = Command::new(scripts.join("stop"));
        stop.arg(&dir);
        run_script(stop, "stop").await?;
        let fresh = !dir.join("keystone.db").is_file();
        let mut start = Command::new(scripts.join("start"));
        start
            .arg(PORT.to_string())
            .arg(&dir)
            .env("IMS_KEYSTONE_KEEP", "1");
        run_script(start, "start").await?;
        let instance = Instance {
            dir,
            url: format!("http://127.0.0.1:{PORT}/v3"),
        };
        Ok((instance, fresh))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let stopped = std::process::Command::new(Path::new(SCRIPTS).join("stop"))
            .arg(&self.dir)
            .status();
        if stopped.is_ok_and(|s| s.success()) {
            println!("keystone stopped");
        } else {
            eprintln!("stopping Keystone ({}) failed", self.dir.display());
        }
    }
}

async fn run_script(mut cmd: Command, name: &str) -> anyhow::Result<()> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {SCRIPTS}/{name}"))?;
    if !out.status.success() {
        bail!(
            "{SCRIPTS}/{name} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(())
}

/// A random password: 128 bits in hex.
pub fn random_password() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST /v3/auth/tokens` for `user` (a JSON user reference) with `password`, scoped to
/// `scope`: the token. A first burst of logins on a fresh Keystone may get a 500 while it
/// initialises lazily, so a login is tried three times.
async fn login(
    http: &reqwest::Client,
    url: &str,
    user: Value,
    password: &str,
    scope: Value,
) -> anyhow::Result<String> {
    let mut user = user;
    user["password"] = json!(password);
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": user}},
        "scope": scope}});
    let mut attempt = 0;
    loop {
        attempt += 1;
        let resp = http
            .post(format!("{url}/auth/tokens?nocatalog"))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("cannot reach Keystone at {url}"))?;
        let status = resp.status();
        if status.is_success() {
            let token = resp
                .headers()
                .get("X-Subject-Token")
                .and_then(|t| t.to_str().ok())
                .context("Keystone answered without X-Subject-Token")?;
            return Ok(token.to_owned());
        }
        if !status.is_server_error() || attempt == 3 {
            bail!("Keystone refused the login: HTTP {}", status.as_u16());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A token of the demo user `user`, scoped to its project.
pub async fn user_token(url: &str, user: &DemoUser) -> anyhow::Result<String> {
    let http = client()?;
    login(
        &http,
        url,
        json!({"id": user.id}),
        &user.password,
        json!({"project": {"id": user.project_id}}),
    )
    .await
}

fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .context("building the HTTP client")
}

/// Keystone's identity API as its bootstrap admin.
struct Admin {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Admin {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .header("X-Auth-Token", &self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.context("cannot reach Keystone")?;
        let status = resp.status();
        anyhow::ensure!(
            status.is_success(),
            "Keystone: {method} {path}: HTTP {}",
            status.as_u16()
        );
        Ok(resp.json().await.unwrap_or(Value::Null))
    }

    /// Creates `kind` (`domain`, `project`, `user`) from `fields`; its id.
    async fn create(&self, kind: &str, fields: Value) -> anyhow::Result<String> {
        let made = self
            .call(
                reqwest::Method::POST,
                &format!("/{kind}s"),
                Some(json!({ kind: fields })),
            )
            .await?;
        made[kind]["id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("Keystone created a {kind} without an id"))
    }

    async fn grant(&self, project: &str, user: &str, role: &str) -> anyhow::Result<()> {
        let path = format!("/projects/{project}/users/{user}/roles/{role}");
        self.call(reqwest::Method::PUT, &path, None).await?;
        Ok(())
    }
}

/// The bootstrap admin's password of the template (`scripts/keystone/setup`).
fn template_admin_password() -> anyhow::Result<String> {
    let file = env_dir().join("template/admin.env");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("ADMIN_PASSWORD="))
        .map(str::to_owned)
        .with_context(|| format!("{}: no ADMIN_PASSWORD", file.display()))
}

/// The demo in a new instance at `url`: domain `ims` with projects `tenant-a` (members
/// alice and bob, admin ada) and `tenant-b` (member carol, admin bea), the service user
/// `ims-service` (role `service` on project `service`), every password random; the
/// bootstrap admin's well-known template password is replaced by a random one too.
pub async fn create_demo(url: &str, domain: &str) -> anyhow::Result<Demo> {
    let http = client()?;
    let default = json!({"id": "default"});
    let template_password = template_admin_password()?;
    let token = login(
        &http,
        url,
        json!({"name": "admin", "domain": default}),
        &template_password,
        json!({"project": {"name": "admin", "domain": default}}),
    )
    .await?;
    let admin = Admin {
        http,
        url: url.to_owned(),
        token,
    };
    let roles = admin.call(reqwest::Method::GET, "/roles", None).await?;
    let role = |name: &str| -> anyhow::Result<String> {
        roles["roles"]
            .as_array()
            .and_then(|all| all.iter().find(|r| r["name"] == name))
            .and_then(|r| r["id"].as_str())
            .map(str::to_owned)
            .with_context(|| format!("Keystone has no role {name}"))
    };
    let (member, admin_role, service) = (role("member")?, role("admin")?, role("service")?);
    let ims = admin.create("domain", json!({"name": "ims"})).await?;
    let mut demo = Demo::new(url, domain);
    for tenant in ["tenant-a", "tenant-b"] {
        let id = admin
            .create("project", json!({"name": tenant, "domain_id": ims}))
            .await?;
        demo.projects.insert(tenant.to_owned(), id);
    }
    for (name, tenant, role) in [
        ("alice", "tenant-a", &member),
        ("bob", "tenant-a", &member),
        ("carol", "tenant-b", &member),
        ("ada", "tenant-a", &admin_role),
        ("bea", "tenant-b", &admin_role),
    ] {
        let password = random_password();
        let id = admin
            .create(
                "user",
                json!({"name": name, "domain_id": ims, "password": password}),
            )
            .await?;
        let project_id = demo.projects[tenant].clone();
        admin.grant(&project_id, &id, role).await?;
        demo.users.push(DemoUser {
            name: name.to_owned(),
            id,
            password,
            project: tenant.to_owned(),
            project_id,
        });
    }
    let service_project = admin
        .create(
            "project",
            json!({"name": "service", "domain_id": "default"}),
        )
        .await?;
    let service_user = admin
        .create(
            "user",
            json!({"name": "ims-service", "domain_id": "default",
                   "password": demo.service_password}),
        )
        .await?;
    admin
        .grant(&service_project, &service_user, &service)
        .await?;
    let admins = admin
        .call(
            reqwest::Method::GET,
            "/users?name=admin&domain_id=default",
            None,
        )
        .await?;
    let admin_id = admins["users"][0]["id"]
        .as_str()
        .context("Keystone has no bootstrap admin")?
        .to_owned();
    admin
        .call(
            reqwest::Method::PATCH,
            &format!("/users/{admin_id}"),
            Some(json!({"user": {"password": demo.admin_password}})),
        )
        .await?;
    Ok(demo)
}

/// Writes the instance's admin credentials where `scripts/keystone/start` reads them for
/// its warm-up login at the next start (mode 0600).
pub fn write_admin_env(data: &Path, password: &str) -> anyhow::Result<()> {
    let file = data.join("keystone/instance/admin.env");
    crate::devca::write_secret(
        &file,
        &format!("ADMIN_USER=admin\nADMIN_PASSWORD={password}\nADMIN_PROJECT=admin\n"),
    )
}
