//! `[diameter]`: the HSS as a Diameter Cx node (RFC 6733, TS 29.229).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::Invalid;
use crate::load::Validate;

/// `[diameter]`: listeners, identity, allowed peers (and how each proves its
/// Origin-Host) and the watchdog interval.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiameterSection {
    /// Origin-Host advertised in CER/CEA and answers (a DiameterIdentity, RFC 6733 §4.3.1).
    pub origin_host: String,
    /// Origin-Realm.
    pub origin_realm: String,
    /// Plain TCP listeners (RFC 6733 §2.1; port 3868).
    #[serde(default)]
    pub tcp: Vec<SocketAddr>,
    /// TLS listeners (TLS on connect, RFC 6733 §13; port 5658); need `[diameter.tls_files]`.
    #[serde(default)]
    pub tls: Vec<SocketAddr>,
    /// Certificate, key and optional client CA for the TLS listeners.
    pub tls_files: Option<DiameterTlsSection>,
    /// `[[diameter.peer]]`: the peers allowed to connect. A CER naming any other
    /// Origin-Host, or one its connection does not prove, gets DIAMETER_UNKNOWN_PEER and
    /// is closed (RFC 6733 §5.3, §13).
    #[serde(default)]
    pub peer: Vec<DiameterPeerSection>,
    /// Refuse plain TCP Cx altogether: no `tcp` listener may be configured, and only TLS
    /// peers are accepted (default false).
    #[serde(default)]
    pub require_tls: bool,
    /// Watchdog interval Tw in milliseconds (RFC 3539 §3.4.1: 30 s by default).
    #[serde(default = "default_tw_ms")]
    pub tw_ms: u64,
    /// What the UAA/LIA carry as Server-Capabilities when no S-CSCF is assigned.
    #[serde(default)]
    pub capabilities: CapabilitiesSection,
}

fn default_tw_ms() -> u64 {
    30_000
}

/// `[diameter.tls_files]`: PEM files of the TLS listeners.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiameterTlsSection {
    /// PEM certificate chain presented to peers.
    pub cert: PathBuf,
    /// PEM private key of that certificate.
    pub key: PathBuf,
    /// PEM CA bundle: when set, peers must present a certificate it signed (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// `[[diameter.peer]]`: one Diameter peer (a CSCF) and how its Origin-Host is bound to
/// its connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiameterPeerSection {
    /// The Origin-Host the peer sends in its CER, e.g. `scscf.ims.example.net`.
    pub host: String,
    /// Source addresses (CIDR) a connection without a client certificate (plain TCP, or
    /// TLS without `client_ca`) claiming `host` may come from. Empty (the default): only
    /// a TLS client certificate naming the host is accepted.
    #[serde(default)]
    pub from: Vec<ipnet::IpNet>,
    /// The name a client certificate must carry (SAN dNSName, or CN without SAN); by
    /// default `host`.
    pub tls_name: Option<String>,
    /// The Cx requests this peer may send (TS 29.228 §6: an I-CSCF sends `UAR` and
    /// `LIR`, an S-CSCF `MAR` and `SAR`); any other gets DIAMETER_AUTHORIZATION_REJECTED.
    /// Absent: every Cx request.
    pub commands: Option<Vec<String>>,
}

/// The Cx requests a CSCF sends to the HSS, by their abbreviation (`commands`).
const CX_REQUESTS: [&str; 4] = ["UAR", "SAR", "LIR", "MAR"];

/// `[diameter.capabilities]`: Server-Capabilities (TS 29.229 §6.3.4) for S-CSCF selection.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilitiesSection {
    /// Mandatory-Capability values (operator-defined numbers).
    #[serde(default)]
    pub mandatory: Vec<u32>,
    /// Optional-Capability values.
    #[serde(default)]
    pub optional: Vec<u32>,
    /// S-CSCF names (SIP URIs) the I-CSCF may pick directly.
    #[serde(default)]
    pub server_names: Vec<String>,
}

fn identity_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

impl Validate for DiameterSection {
    fn validate(&self) -> Result<(), Invalid> {
        if !identity_ok(&self.origin_host) {
            return Err(Invalid::new("origin_host", "must be a host name"));
        }
        if !identity_ok(&self.origin_realm) {
            return Err(Invalid::new("origin_realm", "must be a realm name"));
        }
        if self.tcp.is_empty() && self.tls.is_empty() {
            return Err(Invalid::new("tcp", "at least one tcp or tls listener"));
        }
        if !self.tls.is_empty() && self.tls_files.is_none() {
            return Err(Invalid::new("tls_files", "required by the tls listeners"));
        }
        if self.require_tls && !self.tcp.is_empty() {
            return Err(Invalid::new(
                "tcp",
                "plain TCP listeners while require_tls = true",
            ));
        }
        let mutual = self
            .tls_files
            .as_ref()
            .is_some_and(|f| f.client_ca.is_some())
            && !self.tls.is_empty();
        for (i, p) in self.peer.iter().enumerate() {
            let key = |k: &str| format!("peer[{i}].{k}");
            if !identity_ok(&p.host) {
                return Err(Invalid::new(key("host"), "must be a host name"));
            }
            if self.peer[..i]
                .iter()
                .any(|q| q.host.eq_ignore_ascii_case(&p.host))
            {
                return Err(Invalid::new(key("host"), "configured twice"));
            }
            if p.tls_name.as_deref().is_some_and(|n| !identity_ok(n)) {
                return Err(Invalid::new(key("tls_name"), "must be a host name"));
            }
            if let Some(bad) = p
                .commands
                .iter()
                .flatten()
                .find(|c| !CX_REQUESTS.contains(&c.as_str()))
            {
                return Err(Invalid::new(
                    key("commands"),
                    format!("{bad:?}: not one of UAR, SAR, LIR, MAR"),
                ));
            }
            if p.from.is_empty() && !mutual {
                return Err(Invalid::new(
                    key("from"),
                    "empty, and no TLS listener with tls_files.client_ca: the peer could never prove its Origin-Host",
                ));
            }
        }
        if !(100..=3_600_000).contains(&self.tw_ms) {
            return Err(Invalid::new("tw_ms", "must be between 100 and 3600000"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{parse_str, HssConfig};

    fn parse(diameter: &str) -> Result<HssConfig, crate::ConfigError> {
        parse_str(
            &format!(
                "[node]\nname = \"hss\"\ndomain = \"ims.example.net\"\n\
                 [http]\nlisten = \"127.0.0.1:9104\"\n\
                 [store]\nurl = \"sqlite://data/hss.db\"\n\
                 [security]\nkey_env = \"K\"\n{diameter}"
            ),
            Path::new("hss.toml"),
        )
    }

    const BASE: &str = "[diameter]\norigin_host = \"hss.ims.example.net\"\n\
                        origin_realm = \"ims.example.net\"\n";

    const PEER: &str = "[[diameter.peer]]\nhost = \"scscf.ims.example.net\"\n\
                        from = [\"127.0.0.1/32\"]\n";

    #[test]
    fn full_section_loads() {
        let c = parse(&format!(
            "{BASE}tcp = [\"127.0.0.1:3868\"]\ntls = [\"127.0.0.1:5658\"]\ntw_ms = 6000\n\
             [diameter.tls_files]\ncert = \"c.pem\"\nkey = \"k.pem\"\nclient_ca = \"ca.pem\"\n\
             [diameter.capabilities]\nmandatory = [1]\nserver_names = [\"sip:scscf\"]\n\
             {PEER}[[diameter.peer]]\nhost = \"icscf.ims.example.net\"\ntls_name = \"icscf-cx.example\"\n"
        ))
        .unwrap();
        let d = c.diameter.unwrap();
        assert_eq!(d.tw_ms, 6000);
        assert_eq!(d.capabilities.mandatory, vec![1]);
        assert!(d.tls_files.unwrap().client_ca.is_some());
        assert!(!d.require_tls);
        assert_eq!(d.peer.len(), 2);
        assert_eq!(d.peer[0].from, vec!["127.0.0.1/32".parse().unwrap()]);
        assert_eq!(d.peer[1].tls_name.as_deref(), Some("icscf-cx.example"));
    }

    #[test]
    fn errors_name_the_key() {
        let tcp = "tcp = [\"127.0.0.1:3868\"]\n";
        let tls = "tls = [\"127.0.0.1:5658\"]\n";
        let files = "[diameter.tls_files]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
        let cases = [
            (BASE.to_string(), "diameter.tcp"),
            (format!("{BASE}{tls}"), "diameter.tls_files"),
            (
                format!(
                    "{BASE}{tcp}[[diameter.peer]]\nhost = \"a b\"\nfrom = [\"127.0.0.1/32\"]\n"
                ),
                "diameter.peer[0].host",
            ),
            (format!("{BASE}{tcp}{PEER}{PEER}"), "diameter.peer[1].host"),
            (
                format!("{BASE}{tcp}[[diameter.peer]]\nhost = \"scscf.ims.example.net\"\n"),
                "diameter.peer[0].from",
            ),
            (
                format!("{BASE}{tcp}[[diameter.peer]]\nhost = \"a\"\nfrom = [\"10.0.0.300/8\"]\n"),
                "diameter.peer[0].from",
            ),
            (
                format!("{BASE}{tcp}{tls}require_tls = true\n{files}"),
                "diameter.tcp",
            ),
            (format!("{BASE}{tcp}peers = [\"a\"]\n"), "peers"),
            (format!("{BASE}{tcp}tw_ms = 5\n"), "diameter.tw_ms"),
            (
                "[diameter]\norigin_host = \"\"\norigin_realm = \"r\"\ntcp = [\"127.0.0.1:1\"]\n"
                    .to_string(),
                "diameter.origin_host",
            ),
        ];
        for (text, key) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
        // TLS required, peers proven by certificate only: valid.
        let ok = format!(
            "{BASE}{tls}require_tls = true\n{files}client_ca = \"ca.pem\"\n\
             [[diameter.peer]]\nhost = \"scscf.ims.example.net\"\n"
        );
        let d = parse(&ok).unwrap().diameter.unwrap();
        assert!(d.require_tls && d.peer[0].from.is_empty());
    }
}
