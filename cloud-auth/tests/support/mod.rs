//! A real Keystone on 127.0.0.1 for the integration tests, with fixtures: domain `ims`,
//! projects `tenant-a`/`tenant-b`, users alice and carol (member of tenant-a) and bob
//! (member of tenant-b), tenant admins ada (admin of tenant-a) and bea (admin of
//! tenant-b), and a service user `ims-service` with role `service`. The bootstrap `admin`
//! holds role admin on the system: the cloud admin.
//!
//! Runs `scripts/keystone/setup` (idempotent, cached) then `scripts/keystone/start`. A
//! machine without `python3` skips (printing why) unless `IMS_TEST_KEYSTONE=1` demands
//! Keystone; a failing setup or start fails the test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use cloud_auth::keystone::{DomainRef, KeystoneConfig, Secret, ServiceCredentials};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub const SERVICE_USER: &str = "ims-service";
pub const SERVICE_PASSWORD: &str = "ims-service-pw";
pub const USER_PASSWORD: &str = "user-pw";

pub struct Keystone {
    pub url: String,
    dir: PathBuf,
    http: reqwest::Client,
    admin_token: String,
    admin_password: String,
    pub domain_id: String,
    pub tenant_a: String,
    pub tenant_b: String,
    pub service_user_id: String,
}

/// A user token with the expiry Keystone announced when issuing it.
pub struct UserToken {
    pub token: String,
    pub expires_at: SystemTime,
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/keystone")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Keystone {
    /// Starts a fresh instance (token lifetime `expiration_s`), or `None` where Keystone
    /// cannot run here (printed).
    pub async fn start(expiration_s: u64) -> Option<Keystone> {
        let demanded = std::env::var("IMS_TEST_KEYSTONE").is_ok_and(|v| v == "1");
        let python = Command::new("python3").arg("--version").output();
        if !python.is_ok_and(|o| o.status.success()) {
            assert!(!demanded, "IMS_TEST_KEYSTONE=1 but no python3");
            eprintln!("SKIPPED: no python3 on this machine, so no real Keystone");
            return None;
        }
        run(&mut Command::new(scripts().join("setup")));
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("keystone-{}-{port}", std::process::id()));
            let out = Command::new(scripts().join("start"))
                .arg(port.to_string())
                .arg(&dir)
                .env("IMS_KEYSTONE_TOKEN_EXPIRATION", expiration_s.to_string())
                .output()
                .unwrap();
            if out.status.success() {
                let mut ks = Keystone {
                    url: format!("http://127.0.0.1:{port}/v3"),
                    dir,
                    http: reqwest::Client::new(),
                    admin_token: String::new(),
                    admin_password: String::new(),
                    domain_id: String::new(),
                    tenant_a: String::new(),
                    tenant_b: String::new(),
                    service_user_id: String::new(),
                };
                ks.fixtures().await;
                return Some(ks);
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        panic!("Keystone did not start:\n{last}");
    }

    /// Stops the server (idempotent).
    pub fn stop(&self) {
        run(Command::new(scripts().join("stop")).arg(&self.dir));
    }

    /// The validator configuration for the fixture service user.
    pub fn config(&self) -> KeystoneConfig {
        let service = ServiceCredentials {
            user_name: SERVICE_USER.into(),
            user_domain: DomainRef::Id("default".into()),
            password: Secret::new(SERVICE_PASSWORD),
            project_name: "service".into(),
            project_domain: DomainRef::Name("Default".into()),
        };
        KeystoneConfig::new(&self.url, service)
    }

    /// `POST /v3/auth/tokens` with `body`. Keystone answers a first burst of logins
    /// with an occasional 500 while it initialises lazily (seen in CI): a login is tried
    /// at most three times.
    async fn post_auth(&self, body: &Value) -> reqwest::Response {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let resp = self
                .http
                .post(format!("{}/auth/tokens?nocatalog", self.url))
                .json(body)
                .send()
                .await
                .unwrap();
            if !resp.status().is_server_error() || attempts == 3 {
                return resp;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    async fn login(
        &self,
        user: &str,
        domain: Value,
        password: &str,
        project: &str,
        project_domain: Value,
    ) -> UserToken {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": domain, "password": password}}},
            "scope": {"project": {"name": project, "domain": project_domain}}}});
        let resp = self.post_auth(&body).await;
        assert_eq!(resp.status(), 201, "login of {user}");
        let token = resp.headers()["X-Subject-Token"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = resp.json().await.unwrap();
        let expires = body["token"]["expires_at"].as_str().unwrap();
        UserToken {
            token,
            expires_at: OffsetDateTime::parse(expires, &Rfc3339).unwrap().into(),
        }
    }

    /// A project-scoped token of a fixture user (`alice`, `bob`, `carol`, `ada`, `bea`).
    pub async fn user_token(&self, user: &str) -> UserToken {
        let project = if user == "bob" || user == "bea" {
            "tenant-b"
        } else {
            "tenant-a"
        };
        self.login(
            user,
            json!({"name": "ims"}),
            USER_PASSWORD,
            project,
            json!({"name": "ims"}),
        )
        .await
    }

    /// A system-scoped token of the bootstrap admin: the cloud admin.
    pub async fn system_admin_token(&self) -> String {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": self.admin_password}}},
            "scope": {"system": {"all": true}}}});
        let resp = self.post_auth(&body).await;
        assert_eq!(resp.status(), 201, "system-scoped admin login");
        resp.headers()["X-Subject-Token"]
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// A token of the service user (role `service` on project `service`).
    pub async fn service_token(&self) -> String {
        self.login(
            SERVICE_USER,
            json!({"id": "default"}),
            SERVICE_PASSWORD,
            "service",
            json!({"name": "Default"}),
        )
        .await
        .token
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .header("X-Auth-Token", &self.admin_token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        assert!(status.is_success(), "{method} {path}: {status}");
        if status == 204 {
            return Value::Null;
        }
        resp.json().await.unwrap_or(Value::Null)
    }

    /// Revokes a token (`DELETE /v3/auth/tokens`).
    pub async fn revoke(&self, token: &str) {
        let resp = self
            .http
            .delete(format!("{}/auth/tokens", self.url))
            .header("X-Auth-Token", &self.admin_token)
            .header("X-Subject-Token", token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
    }

    /// Enables or disables the service user (disabling revokes its tokens).
    pub async fn set_service_user_enabled(&self, enabled: bool) {
        let path = format!("/users/{}", self.service_user_id);
        self.admin(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"user": {"enabled": enabled}})),
        )
        .await;
    }

    async fn fixtures(&mut self) {
        let admin_password = std::fs::read_to_string(
            std::env::var_os("IMS_KEYSTONE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    Path::new(&std::env::var("HOME").unwrap()).join(".cache/ims-core/keystone")
                })
                .join("template/admin.env"),
        )
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("ADMIN_PASSWORD=").map(str::to_owned))
        .unwrap();
        self.admin_password = admin_password.clone();
        let default = json!({"id": "default"});
        self.admin_token = self
            .login(
                "admin",
                default.clone(),
                &admin_password,
                "admin",
                default.clone(),
            )
            .await
            .token;
        use reqwest::Method as M;
        let roles = self.admin(M::GET, "/roles", None).await;
        let role = |name: &str| {
            roles["roles"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == name)
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let (member, service, admin) = (role("member"), role("service"), role("admin"));
        let id = |v: &Value, kind: &str| v[kind]["id"].as_str().unwrap().to_owned();
        let d = self
            .admin(
                M::POST,
                "/domains",
                Some(json!({"domain": {"name": "ims"}})),
            )
            .await;
        self.domain_id = id(&d, "domain");
        let project =
            |name: &str, domain: &str| json!({"project": {"name": name, "domain_id": domain}});
        let a = self
            .admin(
                M::POST,
                "/projects",
                Some(project("tenant-a", &self.domain_id)),
            )
            .await;
        self.tenant_a = id(&a, "project");
        let b = self
            .admin(
                M::POST,
                "/projects",
                Some(project("tenant-b", &self.domain_id)),
            )
            .await;
        self.tenant_b = id(&b, "project");
        let svc = self
            .admin(M::POST, "/projects", Some(project("service", "default")))
            .await;
        let svc_project = id(&svc, "project");
        for (user, tenant, role) in [
            ("alice", &self.tenant_a, &member),
            ("bob", &self.tenant_b, &member),
            ("carol", &self.tenant_a, &member),
            ("ada", &self.tenant_a, &admin),
            ("bea", &self.tenant_b, &admin),
        ] {
            let u = self
                .admin(
                    M::POST,
                    "/users",
                    Some(json!({"user": {
                    "name": user, "domain_id": self.domain_id, "password": USER_PASSWORD}})),
                )
                .await;
            let path = format!("/projects/{tenant}/users/{}/roles/{role}", id(&u, "user"));
            self.admin(M::PUT, &path, None).await;
        }
        let s = self
            .admin(
                M::POST,
                "/users",
                Some(json!({"user": {
                "name": SERVICE_USER, "domain_id": "default", "password": SERVICE_PASSWORD}})),
            )
            .await;
        self.service_user_id = id(&s, "user");
        let path = format!(
            "/projects/{svc_project}/users/{}/roles/{service}",
            self.service_user_id
        );
        self.admin(M::PUT, &path, None).await;
    }
}

impl Drop for Keystone {
    fn drop(&mut self) {
        let _ = Command::new(scripts().join("stop")).arg(&self.dir).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
