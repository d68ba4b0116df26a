//! `[cx]`: the Diameter Cx client of the I-CSCF and of the S-CSCF toward the HSS
//! (TS 29.228, TS 29.229 over RFC 6733).

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::Invalid;
use crate::host_port::HostPort;
use crate::load::Validate;

/// `[cx]`: the Diameter Cx client of a CSCF, one peer: the HSS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CxClientSection {
    /// Addresses of the HSS (`host:port`, host names resolved at each connection
    /// attempt), tried in this order when connecting (TCP, or TLS when `tls_ca` is
    /// set); each must be the same Diameter peer, `destination_host`.
    pub hss: Vec<HostPort>,
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
    /// PEM certificate chain presented to the HSS (mutual TLS, RFC 6733 §13); it must
    /// name our `origin_host` (SAN dNSName), which the HSS checks. Needs `tls_ca` and
    /// `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Refuse to start unless Cx runs over TLS (`tls_ca` set); default false.
    #[serde(default)]
    pub require_tls: bool,
}

impl CxClientSection {
    /// The name the HSS certificate must carry: `tls_server_name`, else `destination_host`.
    pub fn hss_tls_name(&self) -> &str {
        self.tls_server_name
            .as_deref()
            .unwrap_or(&self.destination_host)
    }

    /// The client certificate and key files, when both are set.
    pub fn client_identity(&self) -> Option<(&std::path::Path, &std::path::Path)> {
        Some((self.tls_cert.as_deref()?, self.tls_key.as_deref()?))
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
        if self.hss.is_empty() {
            return Err(Invalid::new("hss", "must list at least one host:port"));
        }
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
        if self.require_tls && self.tls_ca.is_none() {
            return Err(Invalid::new(
                "require_tls",
                "set, but no tls_ca: Cx would run over plain TCP",
            ));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err(Invalid::new("tls_key", "required by tls_cert")),
            (None, Some(_)) => return Err(Invalid::new("tls_cert", "required by tls_key")),
            (Some(_), Some(_)) if self.tls_ca.is_none() => {
                return Err(Invalid::new(
                    "tls_ca",
                    "required by tls_cert (a client certificate is only sent over TLS)",
                ))
            }
            _ => {}
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{parse_str, IcscfConfig};

    fn parse(cx_extra: &str) -> Result<IcscfConfig, crate::ConfigError> {
        parse_str(
            &format!(
                "[node]\nname = \"icscf\"\ndomain = \"ims.example.net\"\n\
                 [http]\nlisten = \"127.0.0.1:9102\"\n[sip]\nudp = [\"127.0.0.1:5070\"]\n\
                 [cx]\nhss = [\"127.0.0.1:5658\"]\ndestination_host = \"hss.ims.example.net\"\n\
                 destination_realm = \"ims.example.net\"\norigin_host = \"icscf.ims.example.net\"\n\
                 origin_realm = \"ims.example.net\"\n{cx_extra}"
            ),
            Path::new("icscf.toml"),
        )
    }

    #[test]
    fn a_client_certificate_and_required_tls_load() {
        let c = parse(
            "tls_ca = \"ca.crt\"\ntls_cert = \"icscf.crt\"\ntls_key = \"icscf.key\"\nrequire_tls = true\n",
        )
        .unwrap();
        assert!(c.cx.require_tls);
        let (cert, key) = c.cx.client_identity().unwrap();
        assert_eq!(
            (cert, key),
            (Path::new("icscf.crt"), Path::new("icscf.key"))
        );
        assert!(!parse("").unwrap().cx.require_tls, "off by default");
    }

    #[test]
    fn tls_errors_name_the_key() {
        for (extra, key) in [
            ("require_tls = true\n", "cx.require_tls"),
            ("tls_ca = \"ca\"\ntls_cert = \"c\"\n", "cx.tls_key"),
            ("tls_ca = \"ca\"\ntls_key = \"k\"\n", "cx.tls_cert"),
            ("tls_cert = \"c\"\ntls_key = \"k\"\n", "cx.tls_ca"),
        ] {
            let err = parse(extra).unwrap_err();
            assert_eq!(err.key(), Some(key), "{extra}: {err}");
        }
    }
}
