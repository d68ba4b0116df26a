//! Sections of the P-CSCF (`[pcscf]`) and the I-CSCF (`[[scscf]]`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::Invalid;
use crate::load::Validate;

fn check_sip_uri(key: &str, uri: &str) -> Result<(), Invalid> {
    let lower = uri.to_ascii_lowercase();
    if !(lower.starts_with("sip:") || lower.starts_with("sips:"))
        || uri.len() < 5
        || uri.contains(char::is_whitespace)
    {
        return Err(Invalid::new(key, "must be a sip: or sips: URI"));
    }
    Ok(())
}

/// `[pcscf]`: the edge proxy's IMS settings (TS 24.229 §5.2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcscfSection {
    /// Home network domain -> SIP URI of its I-CSCF (the entry point a REGISTER is
    /// forwarded to, TS 24.229 §5.2.2.1; a static table instead of DNS), e.g.
    /// `"ims.example.net" = "sip:127.0.0.1:5070;lr"`. A REGISTER for a domain not
    /// listed is answered 403.
    #[serde(default)]
    pub home_networks: BTreeMap<String, String>,
    /// The P-Visited-Network-ID this P-CSCF inserts (TS 24.229 §5.2.2.1); defaults to
    /// `[node] domain`.
    pub visited_network_id: Option<String>,
    /// Most registrations kept in memory; a REGISTER beyond it is answered 503.
    #[serde(default = "default_max_registrations")]
    pub max_registrations: usize,
    /// Hex key (at least 16 bytes) authenticating flow tokens (RFC 5626 §5.2). With
    /// neither this nor `flow_token_key_file`, a random key at each start: the tokens in
    /// the core's Paths and Record-Routes are refused after a restart.
    pub flow_token_key: Option<String>,
    /// File holding the flow-token key (hex), created with a random key and mode 0600
    /// on first start, refused if group or others may access it or if malformed; keeps
    /// the tokens valid across restarts. Not with `flow_token_key`.
    pub flow_token_key_file: Option<PathBuf>,
    /// Where the registrations are kept so that they survive a restart:
    /// `sqlite://path` (created on first start, mode 0600) or `postgres://...` (a pool of
    /// P-CSCFs, rows under each one's `[node] name`). `memory` keeps them in memory
    /// only (every UE must register again after a restart).
    #[serde(default = "default_store")]
    pub store: String,
    /// Subscribe to the reg event package of each UE after its first registration and
    /// drop registrations the S-CSCF's NOTIFY ends (TS 24.229 §5.2.3). On by default;
    /// off only toward a core without a reg event notifier.
    #[serde(default = "default_reg_event")]
    pub reg_event: bool,
}

fn default_reg_event() -> bool {
    true
}

fn default_max_registrations() -> usize {
    100_000
}

fn default_store() -> String {
    "sqlite://data/pcscf/registrations.db".to_string()
}

/// The `[pcscf] store` value that keeps registrations in memory only.
pub const MEMORY_STORE: &str = "memory";

impl Default for PcscfSection {
    fn default() -> Self {
        PcscfSection {
            home_networks: BTreeMap::new(),
            visited_network_id: None,
            max_registrations: default_max_registrations(),
            flow_token_key: None,
            flow_token_key_file: None,
            store: default_store(),
            reg_event: default_reg_event(),
        }
    }
}

impl Validate for PcscfSection {
    fn validate(&self) -> Result<(), Invalid> {
        for (domain, uri) in &self.home_networks {
            check_sip_uri(&format!("home_networks.{domain}"), uri)?;
        }
        if let Some(v) = &self.visited_network_id {
            if v.trim().is_empty() || v.contains(['"', '\r', '\n']) {
                return Err(Invalid::new("visited_network_id", "must be a name"));
            }
        }
        if self.max_registrations == 0 {
            return Err(Invalid::new("max_registrations", "must be at least 1"));
        }
        if self.flow_token_key.is_some() && self.flow_token_key_file.is_some() {
            return Err(Invalid::new(
                "flow_token_key_file",
                "set flow_token_key or flow_token_key_file, not both",
            ));
        }
        if self.store != MEMORY_STORE
            && !["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|p| self.store.to_ascii_lowercase().starts_with(p))
        {
            return Err(Invalid::new(
                "store",
                "must be a sqlite: or postgres:// URL, or \"memory\"",
            ));
        }
        if let Some(key) = &self.flow_token_key {
            let ok = hex_len(key).is_some_and(|n| n >= 16);
            if !ok {
                return Err(Invalid::new(
                    "flow_token_key",
                    "must be at least 16 bytes in hex",
                ));
            }
        }
        Ok(())
    }
}

/// The number of bytes a hex string encodes, if it is hex.
fn hex_len(s: &str) -> Option<usize> {
    (s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s.len() / 2)
}

/// `[[scscf]]`: one S-CSCF the I-CSCF may select (TS 29.228 §6.1.1, Server-Capabilities
/// matching).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScscfEntry {
    /// Its Server-Name as the HSS knows it, e.g. `sip:scscf.ims.example.net:5080`.
    pub name: String,
    /// Where to send requests for it (no DNS), e.g. `sip:127.0.0.1:5080;lr`.
    pub uri: String,
    /// Capabilities it has (matched against Mandatory- and Optional-Capability).
    #[serde(default)]
    pub capabilities: Vec<u32>,
}

impl Validate for ScscfEntry {
    fn validate(&self) -> Result<(), Invalid> {
        check_sip_uri("name", &self.name)?;
        check_sip_uri("uri", &self.uri)
    }
}
