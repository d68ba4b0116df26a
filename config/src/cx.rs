//! `[cx]`: the Diameter Cx client of the I-CSCF and of the S-CSCF toward the HSS
//! (TS 29.228, TS 29.229 over RFC 6733).

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::Invalid;
use crate::host_port::HostPort;
use crate::load::Validate;

/// `[cx]`: the Diameter Cx client of a CSCF toward its HSS peers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CxClientSection {
    /// The HSS peers: `"host:port"` strings (addresses of the one HSS
    /// `destination_host`, tried in this order when connecting) and/or tables naming
    /// a peer, its realm and priority ([`HssEntry`]). Entries of one Diameter identity
    /// are one peer (one connection; its addresses in the order listed); each peer has
    /// its own connection and watchdog, and requests go to the open peer of their
    /// Destination-Realm with the lowest priority value. Host names are resolved at
    /// each connection attempt; TCP, or TLS when `tls_ca` is set.
    pub hss: Vec<HssEntry>,
    /// Our Origin-Host (DiameterIdentity), e.g. `scscf.ims.example.net`.
    pub origin_host: String,
    /// Our Origin-Realm.
    pub origin_realm: String,
    /// The HSS's Origin-Host: the identity of `hss` entries that name none, the only
    /// one whose CEA we accept on their connection (RFC 6733 §5.3), and the
    /// Destination-Host of our requests while it is our only peer (with several,
    /// requests carry none, so that any HSS of the realm may answer).
    pub destination_host: String,
    /// Destination-Realm of our requests, and the realm of `hss` entries that name none.
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

/// One entry of `[cx] hss`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum HssEntry {
    /// `"host:port"`: an address of the HSS `destination_host` in
    /// `destination_realm`, priority 1.
    Address(HostPort),
    /// `{ address = "host:port", origin_host = "...", realm = "...", priority = 1 }`.
    Peer(HssPeerEntry),
}

/// An `[cx] hss` entry written as a table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HssPeerEntry {
    /// Where the peer listens (`host:port`).
    pub address: HostPort,
    /// Its Origin-Host (default `destination_host`): the only identity accepted in the
    /// CEA on this connection.
    pub origin_host: Option<String>,
    /// The Destination-Realm it serves (default `destination_realm`).
    pub realm: Option<String>,
    /// Lower is preferred; equal priorities keep the order listed (default 1).
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// Name its TLS certificate must carry (default: `tls_server_name` for
    /// `destination_host`, else its `origin_host`).
    pub tls_server_name: Option<String>,
}

fn default_priority() -> u32 {
    1
}

impl HssEntry {
    /// Where this entry's peer listens.
    pub fn address(&self) -> &HostPort {
        match self {
            HssEntry::Address(a) => a,
            HssEntry::Peer(p) => &p.address,
        }
    }
}

impl From<std::net::SocketAddr> for HssEntry {
    fn from(addr: std::net::SocketAddr) -> HssEntry {
        HssEntry::Address(addr.into())
    }
}

impl std::str::FromStr for HssEntry {
    type Err = String;

    fn from_str(s: &str) -> Result<HssEntry, String> {
        s.parse().map(HssEntry::Address)
    }
}

/// One HSS peer of `[cx]`, its entries gathered ([`CxClientSection::peers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HssPeer {
    /// Its Origin-Host.
    pub host: String,
    /// The Destination-Realm it serves.
    pub realm: String,
    /// Lower is preferred.
    pub priority: u32,
    /// Its addresses, in the order tried.
    pub addresses: Vec<HostPort>,
    /// The name its TLS certificate must carry.
    pub tls_name: String,
}

impl CxClientSection {
    /// The name the HSS certificate must carry: `tls_server_name`, else `destination_host`.
    pub fn hss_tls_name(&self) -> &str {
        self.tls_server_name
            .as_deref()
            .unwrap_or(&self.destination_host)
    }

    /// The HSS peers: the `hss` entries gathered by Diameter identity, in the order
    /// each identity first appears.
    pub fn peers(&self) -> Vec<HssPeer> {
        let mut peers: Vec<HssPeer> = Vec::new();
        for entry in &self.hss {
            let peer = self.peer_of(entry);
            match peers.iter_mut().find(|p| p.host == peer.host) {
                Some(known) => known.addresses.extend(peer.addresses),
                None => peers.push(peer),
            }
        }
        peers
    }

    /// The peer of one `hss` entry, defaults applied.
    fn peer_of(&self, entry: &HssEntry) -> HssPeer {
        let (host, realm, priority, tls) = match entry {
            HssEntry::Address(_) => (None, None, default_priority(), None),
            HssEntry::Peer(p) => (
                p.origin_host.as_deref(),
                p.realm.as_deref(),
                p.priority,
                p.tls_server_name.as_deref(),
            ),
        };
        let host = host.unwrap_or(&self.destination_host).to_ascii_lowercase();
        let tls_name = match tls {
            Some(name) => name.to_string(),
            None if host.eq_ignore_ascii_case(&self.destination_host) => {
                self.hss_tls_name().to_string()
            }
            None => host.clone(),
        };
        HssPeer {
            realm: realm.unwrap_or(&self.destination_realm).to_string(),
            host,
            priority,
            addresses: vec![entry.address().clone()],
            tls_name,
        }
    }

    /// The Destination-Host of our requests: `destination_host` while it is our only
    /// peer, else none.
    pub fn request_destination_host(&self) -> Option<&str> {
        let peers = self.peers();
        let only = peers.len() == 1 && peers[0].host.eq_ignore_ascii_case(&self.destination_host);
        only.then_some(self.destination_host.as_str())
    }

    /// The client certificate and key files, when both are set.
    pub fn client_identity(&self) -> Option<(&std::path::Path, &std::path::Path)> {
        Some((self.tls_cert.as_deref()?, self.tls_key.as_deref()?))
    }
}

impl CxClientSection {
    /// Names are DiameterIdentities; entries of one identity agree on realm,
    /// priority and TLS name.
    fn validate_peers(&self) -> Result<(), Invalid> {
        for (n, entry) in self.hss.iter().enumerate() {
            let HssEntry::Peer(p) = entry else { continue };
            for (key, v) in [("origin_host", &p.origin_host), ("realm", &p.realm)] {
                if v.as_ref()
                    .is_some_and(|v| v.trim().is_empty() || v.contains(char::is_whitespace))
                {
                    return Err(Invalid::new(
                        format!("hss[{n}].{key}"),
                        "must be a DiameterIdentity (no spaces)",
                    ));
                }
            }
        }
        let mut seen: Vec<HssPeer> = Vec::new();
        for (n, entry) in self.hss.iter().enumerate() {
            let peer = self.peer_of(entry);
            match seen.iter().find(|p| p.host == peer.host) {
                Some(p)
                    if !p.realm.eq_ignore_ascii_case(&peer.realm)
                        || p.priority != peer.priority
                        || p.tls_name != peer.tls_name =>
                {
                    return Err(Invalid::new(
                        format!("hss[{n}]"),
                        format!(
                            "{} is listed before with another realm, priority or TLS name",
                            peer.host
                        ),
                    ));
                }
                Some(_) => {}
                None => seen.push(peer),
            }
        }
        Ok(())
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
        self.validate_peers()?;
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

    /// A `[cx]` with `hss_line` in place of the usual `hss`.
    fn parse_hss(hss_line: &str) -> Result<IcscfConfig, crate::ConfigError> {
        parse_str(
            &format!(
                "[node]\nname = \"icscf\"\ndomain = \"ims.example.net\"\n\
                 [http]\nlisten = \"127.0.0.1:9102\"\n[sip]\nudp = [\"127.0.0.1:5070\"]\n\
                 [cx]\ndestination_host = \"hss.ims.example.net\"\n\
                 destination_realm = \"ims.example.net\"\norigin_host = \"icscf.ims.example.net\"\n\
                 origin_realm = \"ims.example.net\"\n{hss_line}"
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

    /// `hss` mixes the address form (the HSS `destination_host`) and tables naming
    /// other peers; entries of one identity are one peer.
    #[test]
    fn hss_entries_become_peers_by_identity() {
        let c = parse_hss(
            "hss = [\"10.0.0.1:3868\", \"10.0.0.2:3868\",\n             { address = \"10.0.0.3:3868\", origin_host = \"HSS-B.ims.example.net\", priority = 2 },\n             { address = \"10.0.0.4:3868\", origin_host = \"hss-c.other.net\", realm = \"other.net\", priority = 1, tls_server_name = \"c.tls\" }]\n             tls_server_name = \"hss.tls\"\n",
        )
        .unwrap();
        let peers = c.cx.peers();
        let view: Vec<(&str, &str, u32, usize, &str)> = peers
            .iter()
            .map(|p| {
                let (h, r, t) = (p.host.as_str(), p.realm.as_str(), p.tls_name.as_str());
                (h, r, p.priority, p.addresses.len(), t)
            })
            .collect();
        assert_eq!(
            view,
            [
                ("hss.ims.example.net", "ims.example.net", 1, 2, "hss.tls"),
                (
                    "hss-b.ims.example.net",
                    "ims.example.net",
                    2,
                    1,
                    "hss-b.ims.example.net"
                ),
                ("hss-c.other.net", "other.net", 1, 1, "c.tls"),
            ]
        );
        assert_eq!(c.cx.request_destination_host(), None, "several peers");
        let one =
            parse_hss("hss = [\"10.0.0.1:3868\", { address = \"10.0.0.2:3868\" }]\n").unwrap();
        assert_eq!(one.cx.peers().len(), 1);
        assert_eq!(
            one.cx.request_destination_host(),
            Some("hss.ims.example.net"),
            "one peer: requests name it, as before"
        );
    }

    #[test]
    fn hss_entries_that_disagree_or_are_no_identity_are_refused() {
        for (hss, key) in [
            (
                "[\"10.0.0.1:3868\", { address = \"10.0.0.2:3868\", priority = 5 }]",
                "cx.hss[1]",
            ),
            (
                "[{ address = \"10.0.0.2:3868\", origin_host = \"b\" }, { address = \"10.0.0.3:3868\", origin_host = \"B\", realm = \"x\" }]",
                "cx.hss[1]",
            ),
            (
                "[{ address = \"10.0.0.2:3868\", origin_host = \"a b\" }]",
                "cx.hss[0].origin_host",
            ),
            ("[{ address = \"10.0.0.2:3868\", realm = \"\" }]", "cx.hss[0].realm"),
            ("[{ address = \"10.0.0.2:3868\", weight = 1 }]", "cx.hss"),
        ] {
            let err = parse_hss(&format!("hss = {hss}\n")).unwrap_err();
            assert!(
                err.key().is_some_and(|k| k.starts_with(key)),
                "{hss}: {err} ({:?})",
                err.key()
            );
        }
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
