//! `[cx]`: the Diameter Cx client of the I-CSCF and of the S-CSCF toward the HSS
//! (TS 29.228, TS 29.229 over RFC 6733).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::Invalid;
use crate::load::Validate;

/// `[cx]`: the Diameter Cx client of a CSCF, one peer: the HSS.
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

impl CxClientSection {
    /// The name the HSS certificate must carry: `tls_server_name`, else `destination_host`.
    pub fn hss_tls_name(&self) -> &str {
        self.tls_server_name
            .as_deref()
            .unwrap_or(&self.destination_host)
    }
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
        if !(6..=3600).contains(&self.watchdog_secs) {
            return Err(Invalid::new(
                "watchdog_secs",
                "must be between 6 (RFC 3539 §3.4.1) and 3600",
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
