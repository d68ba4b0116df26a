//! Sections only the S-CSCF has: `[cx]` (its Diameter Cx client toward the HSS) and
//! `[registrar]` (TS 24.229 §5.4.1).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::Invalid;
use crate::load::Validate;

/// `[cx]`: the Diameter Cx client of a CSCF (TS 29.229), one peer: the HSS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CxClientSection {
    /// The HSS Diameter address (TCP, or TLS when `tls_ca` is set).
    pub hss: SocketAddr,
    /// Our Origin-Host (DiameterIdentity), e.g. `scscf.ims.example.net`.
    pub origin_host: String,
    /// Our Origin-Realm.
    pub origin_realm: String,
    /// The HSS's Origin-Host: Destination-Host of our requests, and the only peer
    /// whose CEA we accept (RFC 6733 §5.3).
    pub destination_host: String,
    /// Destination-Realm of our requests.
    pub destination_realm: String,
    /// Watchdog interval Tw in seconds (RFC 3539 §3.4.1; at least 6).
    #[serde(default = "default_tw")]
    pub watchdog_secs: u64,
    /// Seconds a Cx request waits for its answer.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// PEM CA file: connect with TLS (RFC 6733 §13) and verify the HSS against it.
    pub tls_ca: Option<PathBuf>,
    /// Name the HSS certificate must carry (default: `destination_host`).
    pub tls_server_name: Option<String>,
}

fn default_tw() -> u64 {
    30
}

fn default_request_timeout() -> u64 {
    5
}

impl Validate for CxClientSection {
    fn validate(&self) -> Result<(), Invalid> {
        for (key, v) in [
            ("origin_host", &self.origin_host),
            ("origin_realm", &self.origin_realm),
            ("destination_host", &self.destination_host),
            ("destination_realm", &self.destination_realm),
        ] {
            if v.trim().is_empty() || v.contains(char::is_whitespace) {
                return Err(Invalid::new(key, "must be a DiameterIdentity (no spaces)"));
            }
        }
        if self.watchdog_secs < 6 {
            return Err(Invalid::new(
                "watchdog_secs",
                "must be at least 6 (RFC 3539 §3.4.1)",
            ));
        }
        if !(1..=60).contains(&self.request_timeout_secs) {
            return Err(Invalid::new(
                "request_timeout_secs",
                "must be between 1 and 60",
            ));
        }
        Ok(())
    }
}

/// `[registrar]`: the S-CSCF registrar (TS 24.229 §5.4.1, RFC 3261 §10.3).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrarSection {
    /// Our SIP URI, sent as Server-Name in MAR/SAR (TS 29.229 §6.3.9) and the base of the
    /// Service-Route, e.g. `sip:scscf.ims.example.net:5080`.
    pub server_name: String,
    /// Shortest registration accepted, seconds (shorter: 423 with Min-Expires).
    #[serde(default = "default_min_expires")]
    pub min_expires: u32,
    /// Longest registration granted, seconds (longer requests are shortened).
    #[serde(default = "default_max_expires")]
    pub max_expires: u32,
    /// Granted when the REGISTER names no expiry.
    #[serde(default = "default_expires")]
    pub default_expires: u32,
    /// Seconds a challenge nonce stays valid (then `stale=true`).
    #[serde(default = "default_nonce_lifetime")]
    pub nonce_lifetime: u64,
    /// Outstanding challenges kept in memory at most.
    #[serde(default = "default_max_pending")]
    pub max_pending_challenges: usize,
    /// Bindings store: `sqlite://path` (created on first start) or `postgres://...`.
    #[serde(default = "default_store")]
    pub store: String,
}

fn default_min_expires() -> u32 {
    60
}
fn default_max_expires() -> u32 {
    7200
}
fn default_expires() -> u32 {
    3600
}
fn default_nonce_lifetime() -> u64 {
    60
}
fn default_max_pending() -> usize {
    100_000
}
fn default_store() -> String {
    "sqlite://data/scscf/bindings.db".to_string()
}

impl Validate for RegistrarSection {
    fn validate(&self) -> Result<(), Invalid> {
        let lower = self.server_name.to_ascii_lowercase();
        if !(lower.starts_with("sip:") || lower.starts_with("sips:"))
            || self.server_name.contains(char::is_whitespace)
        {
            return Err(Invalid::new("server_name", "must be a sip: or sips: URI"));
        }
        if self.min_expires == 0 || self.min_expires > self.max_expires {
            return Err(Invalid::new(
                "min_expires",
                "must be at least 1 and at most max_expires",
            ));
        }
        if !(self.min_expires..=self.max_expires).contains(&self.default_expires) {
            return Err(Invalid::new(
                "default_expires",
                "must lie between min_expires and max_expires",
            ));
        }
        if self.nonce_lifetime == 0 {
            return Err(Invalid::new("nonce_lifetime", "must be at least 1"));
        }
        if self.max_pending_challenges == 0 {
            return Err(Invalid::new("max_pending_challenges", "must be at least 1"));
        }
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| self.store.to_ascii_lowercase().starts_with(p))
        {
            return Err(Invalid::new(
                "store",
                "must be a sqlite: or postgres:// URL",
            ));
        }
        Ok(())
    }
}
