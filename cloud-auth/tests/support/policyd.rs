//! The real policy service in process, for the tests of cloud-auth and imsctl, next to the
//! Keystone of `support`. Kept out of `support/mod.rs`, which the ims-e2e crate compiles too
//! (without axum): a test that declares `mod support;` includes this file as well, with
//! `#[path = ".../support/policyd.rs"] mod policyd_support;`.
#![allow(dead_code)]

use cloud_auth::keystone::TokenValidator;
use cloud_auth::policyd::{self, Engine, Reference, Store};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::Keystone;

/// A tenant's root policy: members may INVITE and REGISTER.
pub fn root_rules() -> Value {
    json!({"enforcer": "default", "rules": {"INVITE": "role:member", "REGISTER": "role:member"}})
}

/// The policy service on a free port of 127.0.0.1 with a fresh SQLite store and the effective
/// policy `global:restrict` AND `tenant:root`. It runs on a runtime of its own, so dropping it
/// closes every connection (the feed too).
pub struct Policyd {
    /// `http://127.0.0.1:<port>`: the filter's `policy_url`; the API is under `/v1`.
    pub base: String,
    /// The engine behind the service.
    pub engine: Engine,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Policyd {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Policyd {
    /// Starts the service, validating tokens against `ks`.
    pub async fn start(ks: &Keystone) -> Policyd {
        Self::serve(Some(TokenValidator::new(ks.config()).unwrap())).await
    }

    /// Starts the service with no Keystone configured: it refuses every call.
    pub async fn without_keystone() -> Policyd {
        Self::serve(None).await
    }

    async fn serve(validator: Option<TokenValidator>) -> Policyd {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("policy.db").display());
        let store = Store::open(&url, 4).await.unwrap();
        let effective = vec![
            Reference::parse("global:restrict").unwrap(),
            Reference::parse("tenant:root").unwrap(),
        ];
        let engine = Engine::open(store, effective).await.unwrap();
        let app = policyd::router(engine.clone(), validator, policyd::Metrics::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                tokio::select! {
                    r = axum::serve(listener, app) => r.unwrap(),
                    _ = stopped => {}
                }
            });
            // Dropping the runtime drops every connection task.
        });
        Policyd {
            base,
            engine,
            http: reqwest::Client::new(),
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// Sends `method` to `path` (under `/v1`) with an optional `X-Auth-Token` and JSON
    /// body: the status and the JSON answer (`Null` when there is none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.request(method, path, token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A request to `path` (under `/v1`) with an optional `X-Auth-Token`, to send.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}/v1{path}", self.base));
        match token {
            Some(t) => req.header("X-Auth-Token", t),
            None => req,
        }
    }

    /// PUTs a policy document: the status.
    pub async fn put(&self, path: &str, token: &str, body: Value) -> StatusCode {
        self.call(Method::PUT, path, Some(token), Some(body))
            .await
            .0
    }

    /// GETs `path` with `token`.
    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }
}
