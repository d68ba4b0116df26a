//! Third-party registration (TS 24.229 §5.4.1.7) through the dev core: a SIPp
//! application server that REGISTER-method iFCs name, and what its message trace shows
//! it received. Used by `tests/tests/third_party_register_types.rs`.
//!
//! These are test steps: a step that cannot be done fails the test (panics).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use serde_json::{json, Value};

use crate::chain::{addr, workdir};
use crate::sipp::{scenario, Background, SippResult};

/// A REGISTER-method iFC of `priority` naming the AS `sip:127.0.0.1:<port>`
/// (SESSION_CONTINUED), matching the registrations `registration_types` names
/// (`INITIAL_REGISTRATION`, `RE_REGISTRATION`, `DE_REGISTRATION`; all when empty).
pub fn register_ifc(priority: i64, port: u16, registration_types: &[&str]) -> Value {
    let mut ifc = crate::hss_api::register_ifc(priority, port, "SESSION_CONTINUED");
    if !registration_types.is_empty() {
        ifc["trigger_point"]["spts"][0]["registration_type"] = json!(registration_types);
    }
    ifc
}

/// A SIPp AS on `port` answering `calls` third-party REGISTERs with `scenario_file`
/// (under `sipp-scenarios/`), its messages traced.
pub fn application_server(dir: &Path, scenario_file: &str, port: u16, calls: u32) -> Background {
    Background::uas(
        &scenario(scenario_file),
        addr(port),
        calls,
        60,
        &workdir(dir),
        true,
    )
    .expect("SIPp AS starts")
}

/// The REGISTERs SIPp's trace shows received, each as its text.
pub fn registers(r: &SippResult) -> Vec<String> {
    r.messages
        .split("\n----------")
        .filter(|m| m.contains("message received"))
        .filter_map(|m| {
            let start = m.find("\nREGISTER sip:127.0.0.1:")?;
            Some(m[start + 1..].to_string())
        })
        .collect()
}

/// The value of header `name` in `msg` (first line of it, outside the body's parts).
pub fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}:");
    msg.lines()
        .find(|l| l.len() > prefix.len() && l[..prefix.len()].eq_ignore_ascii_case(&prefix))
        .map(|l| l[prefix.len()..].trim())
}

/// The Expires of each REGISTER SIPp's trace shows received, in order.
pub fn expiries(r: &SippResult) -> Vec<u64> {
    registers(r)
        .iter()
        .map(|m| {
            header(m, "Expires")
                .and_then(|e| e.parse().ok())
                .unwrap_or_else(|| panic!("REGISTER without a readable Expires: {m}"))
        })
        .collect()
}
