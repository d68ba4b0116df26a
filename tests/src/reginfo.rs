//! The reg event package in tests: the NOTIFYs a SIPp subscriber received (from its
//! `-trace_msg` log) and their bodies checked against RFC 3680's schema
//! (`scscf/schema/reginfo.xsd`) with a real validator, `xmllint` (Debian's
//! `libxml2-utils`, installed by `scripts/test`).

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::repo_root;

/// A NOTIFY as a SIPp trace shows it.
#[derive(Debug, Clone)]
pub struct Notify {
    /// The whole message as traced.
    pub text: String,
    /// Its body (the reginfo document).
    pub body: String,
}

impl Notify {
    /// The value of header `name` (first one, case-insensitive name).
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.text.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with(&prefix)
                .then(|| l[prefix.len()..].trim().to_string())
        })
    }

    /// The `version` of its reginfo document.
    pub fn version(&self) -> Option<u64> {
        let reginfo = &self.body[self.body.find("<reginfo")?..];
        let at = reginfo.find(" version=\"")? + " version=\"".len();
        reginfo[at..].split('"').next()?.parse().ok()
    }
}

/// The NOTIFYs received in a SIPp message trace (`-trace_msg`), in order.
pub fn notifies(messages: &str) -> Vec<Notify> {
    messages
        .split("\n----------")
        .filter(|m| m.contains("message received"))
        .filter_map(|m| {
            let start = m.find("\nNOTIFY ")?;
            let text = m[start + 1..].to_string();
            let (head, rest) = text
                .split_once("\r\n\r\n")
                .or_else(|| text.split_once("\n\n"))?;
            // The trace may go on with SIPp's own lines: the body is Content-Length long.
            let length = head.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                let name = name.trim();
                (name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l"))
                    .then(|| value.trim().parse::<usize>().ok())?
            })?;
            let body = rest.get(..length).unwrap_or(rest).trim().to_string();
            Some(Notify { text, body })
        })
        .collect()
}

/// Validates `xml` against RFC 3680's reginfo schema with `xmllint --schema`; `Err`
/// with what xmllint said.
pub fn validate(xml: &str) -> Result<(), String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let file = std::env::temp_dir().join(format!("reginfo-{}-{n}.xml", std::process::id()));
    std::fs::write(&file, xml).map_err(|e| e.to_string())?;
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(repo_root().join("scscf/schema/reginfo.xsd"))
        .arg(&file)
        .output();
    let _ = std::fs::remove_file(&file);
    let out = out.map_err(|e| format!("xmllint does not run (package libxml2-utils): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
