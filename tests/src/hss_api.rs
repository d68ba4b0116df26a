//! Service profiles through the HSS provisioning API: the iFCs that send a subscriber's
//! requests to application servers (TS 29.228 Annex B/C), patched as JSON in one step
//! (`imsctl subscriber add-ifc` adds them one at a time for operators).
//! Shared by `tests/tests/as_chain.rs`, `tests/tests/cloud_auth_chain.rs` and the
//! third-party registration tests.
//!
//! These are test steps: a step that cannot be done fails the test (panics) with what
//! went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

/// The HSS's HTTPS (provisioning API) port in the dev configs.
pub const HSS_HTTP: u16 = 9104;

/// Sends `method path` with a JSON body to the HSS provisioning API, authenticated with
/// the admin token the HSS wrote into the data directory `data`; the status and JSON
/// answer.
pub fn hss_api(
    data: &Path,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let token = std::fs::read_to_string(data.join("hss/admin.token")).unwrap();
    // HTTPS, the HSS's certificate checked against the core's dev CA.
    let client = crate::https_client(&data.join("tls/ca.crt")).expect("the dev CA");
    let url = format!("https://127.0.0.1:{HSS_HTTP}{path}");
    crate::block_on(async move {
        let mut req = client
            .request(method, url)
            .bearer_auth(token.trim())
            .timeout(Duration::from_secs(10));
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    })
    .expect("a tokio runtime")
}

/// Gives `impu`'s subscription one service profile, `default` (the one its identities
/// use), holding `ifcs` (the provisioning API's JSON shape, e.g. from [`ifc`]).
pub fn set_ifcs(data: &Path, impu: &str, ifcs: Value) {
    let (status, found) = hss_api(
        data,
        reqwest::Method::GET,
        &format!("/api/v1/subscribers?impu={}", impu.replace(':', "%3A")),
        None,
    );
    assert_eq!(status, 200, "{found}");
    let id = found["items"][0]["id"].as_str().unwrap().to_string();
    let patch = json!({"service_profiles": [{"name": "default", "ifcs": ifcs}]});
    let (status, answer) = hss_api(
        data,
        reqwest::Method::PATCH,
        &format!("/api/v1/subscribers/{id}"),
        Some(&patch),
    );
    assert_eq!(status, 200, "PATCH {impu}: {answer}");
}

/// An iFC of `priority`: INVITEs of `session_case` (`ORIGINATING`,
/// `TERMINATING_REGISTERED`, ...) to the AS `sip:127.0.0.1:<port>` with
/// `default_handling` (`SESSION_CONTINUED` or `SESSION_TERMINATED`).
pub fn ifc(priority: i64, session_case: &str, port: u16, default_handling: &str) -> Value {
    json!({
        "priority": priority,
        "trigger_point": {"condition_type_cnf": true, "spts": [
            {"group": 0, "type": "method", "method": "INVITE"},
            {"group": 1, "type": "session_case", "session_case": session_case}]},
        "application_server": {"server_name": format!("sip:127.0.0.1:{port}"),
                               "default_handling": default_handling}
    })
}

/// An iFC of `priority` asking for third-party REGISTERs of every kind (TS 24.229
/// §5.4.1.7: initial, re- and de-registration) to the AS `sip:127.0.0.1:<port>` with
/// `default_handling`, no body.
pub fn register_ifc(priority: i64, port: u16, default_handling: &str) -> Value {
    json!({
        "priority": priority,
        "trigger_point": {"condition_type_cnf": true, "spts": [
            {"group": 0, "type": "method", "method": "REGISTER"}]},
        "application_server": {"server_name": format!("sip:127.0.0.1:{port}"),
                               "default_handling": default_handling}
    })
}
