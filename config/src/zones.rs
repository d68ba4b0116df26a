//! `[zones]`: where a CSCF's peers are, by source address and by TLS client-certificate
//! name (the trust zones of the design brief §7, `ims-node`'s `classify` module applies
//! them).

use ipnet::IpNet;
use serde::Deserialize;

use crate::error::Invalid;
use crate::load::Validate;
use crate::sections::SipSection;

/// `[zones]` of a CSCF: the source networks (CIDR) and the TLS client-certificate names
/// of each trust zone. What no list covers is unclassified and trusted with nothing (at
/// the P-CSCF: the access side). When address lists overlap, the longest prefix
/// decides. The defaults are empty: nothing is core until configured.
///
/// A message over a TLS connection whose client certificate (verified against
/// `[sip.tls_files] client_ca`) names one of the `*_names` gets that zone, whatever its
/// address; any other message is classified by its source address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZonesSection {
    /// Our own CSCFs (P-, I-, S-CSCF), e.g. `["10.0.1.0/24"]`.
    #[serde(default)]
    pub core: Vec<IpNet>,
    /// Application servers named in iFCs.
    #[serde(default)]
    pub application_servers: Vec<IpNet>,
    /// Peer networks (their I-CSCFs, IBCFs, visited networks' P-CSCFs).
    #[serde(default)]
    pub interconnect: Vec<IpNet>,
    /// Our own CSCFs by the DNS name their TLS client certificate carries (SAN dNSName,
    /// else subject CN), e.g. `["pcscf.ims.example.net"]`. Exact names, compared
    /// case-insensitively; no wildcards.
    #[serde(default)]
    pub core_names: Vec<String>,
    /// Application servers by client-certificate name.
    #[serde(default)]
    pub application_server_names: Vec<String>,
    /// Peer networks' nodes by client-certificate name.
    #[serde(default)]
    pub interconnect_names: Vec<String>,
}

impl ZonesSection {
    /// The address lists with their keys, in the order they are written.
    pub fn lists(&self) -> [(&'static str, &[IpNet]); 3] {
        [
            ("core", &self.core),
            ("application_servers", &self.application_servers),
            ("interconnect", &self.interconnect),
        ]
    }

    /// The certificate-name lists with their keys, in the order of [`ZonesSection::lists`].
    pub fn name_lists(&self) -> [(&'static str, &[String]); 3] {
        [
            ("core_names", &self.core_names),
            ("application_server_names", &self.application_server_names),
            ("interconnect_names", &self.interconnect_names),
        ]
    }

    /// Names are only worth listing when some TLS listener asks for client
    /// certificates: otherwise no message ever carries one.
    pub fn validate_names_with(&self, sip: &SipSection) -> Result<(), Invalid> {
        let verifies = !sip.tls.is_empty()
            && sip
                .tls_files
                .as_ref()
                .is_some_and(|t| t.client_ca.is_some());
        match self.name_lists().into_iter().find(|(_, n)| !n.is_empty()) {
            Some((key, _)) if !verifies => Err(Invalid::new(
                key,
                "certificate names need a TLS listener that verifies client certificates \
                 ([sip] tls and [sip.tls_files] client_ca)",
            )),
            _ => Ok(()),
        }
    }
}

/// A DNS name as a certificate's dNSName carries it: letters, digits, `-`, `_`, `.`.
fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

impl Validate for ZonesSection {
    /// The same network, or the same name, in two zones is ambiguous: refused, naming
    /// the second key. A name that is no plain DNS name (a wildcard) is refused.
    fn validate(&self) -> Result<(), Invalid> {
        let lists = self.lists();
        for (i, (key, nets)) in lists.iter().enumerate() {
            for (j, net) in nets.iter().enumerate() {
                let twice = lists
                    .iter()
                    .take(i)
                    .find(|(_, earlier)| earlier.iter().any(|e| e.trunc() == net.trunc()));
                if let Some((earlier, _)) = twice {
                    return Err(Invalid::new(
                        format!("{key}[{j}]"),
                        format!("{net} is already listed in {earlier}"),
                    ));
                }
            }
        }
        let names = self.name_lists();
        for (i, (key, list)) in names.iter().enumerate() {
            for (j, name) in list.iter().enumerate() {
                if !name_ok(name) {
                    return Err(Invalid::new(
                        format!("{key}[{j}]"),
                        "must be a DNS name (letters, digits, '-', '_', '.'; no wildcards)",
                    ));
                }
                let twice = names.iter().take(i + 1).find(|(k, earlier)| {
                    let before = if k == key { j } else { earlier.len() };
                    earlier[..before]
                        .iter()
                        .any(|e| e.eq_ignore_ascii_case(name))
                });
                if let Some((earlier, _)) = twice {
                    return Err(Invalid::new(
                        format!("{key}[{j}]"),
                        format!("{name} is already listed in {earlier}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_network_in_two_zones_is_refused() {
        let z = ZonesSection {
            core: vec!["10.0.0.0/24".parse().unwrap()],
            application_servers: vec!["10.0.1.0/24".parse().unwrap()],
            interconnect: vec!["10.0.0.7/24".parse().unwrap()],
            ..ZonesSection::default()
        };
        let err = z.validate().unwrap_err();
        assert_eq!(err.key, "interconnect[0]");
        assert!(err.reason.contains("core"), "{err}");
        assert!(ZonesSection::default().validate().is_ok());
    }

    #[test]
    fn the_same_name_twice_or_a_wildcard_is_refused() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let z = ZonesSection {
            core_names: names(&["pcscf.ims.example.net", "scscf.ims.example.net"]),
            interconnect_names: names(&["ibcf.peer.example", "PCSCF.ims.example.net"]),
            ..ZonesSection::default()
        };
        let err = z.validate().unwrap_err();
        assert_eq!(err.key, "interconnect_names[1]");
        assert!(err.reason.contains("core_names"), "{err}");
        let z = ZonesSection {
            core_names: names(&["a.example", "A.example"]),
            ..ZonesSection::default()
        };
        assert_eq!(z.validate().unwrap_err().key, "core_names[1]");
        let z = ZonesSection {
            application_server_names: names(&["*.as.example"]),
            ..ZonesSection::default()
        };
        assert_eq!(z.validate().unwrap_err().key, "application_server_names[0]");
        let z = ZonesSection {
            core_names: names(&["pcscf.ims.example.net"]),
            interconnect_names: names(&["ibcf.peer.example"]),
            ..ZonesSection::default()
        };
        assert!(z.validate().is_ok());
    }

    fn sip(toml: &str) -> SipSection {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn names_need_a_listener_that_verifies_client_certificates() {
        let z = ZonesSection {
            application_server_names: vec!["as.example".into()],
            ..ZonesSection::default()
        };
        let files = "[tls_files]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
        for (text, ok) in [
            ("udp = [\"127.0.0.1:5060\"]\n".to_string(), false),
            (format!("tls = [\"127.0.0.1:5061\"]\n{files}"), false),
            (
                format!("tls = [\"127.0.0.1:5061\"]\n{files}client_ca = \"ca.pem\"\n"),
                true,
            ),
        ] {
            let r = z.validate_names_with(&sip(&text));
            assert_eq!(r.is_ok(), ok, "{text}: {r:?}");
            if let Err(e) = r {
                assert_eq!(e.key, "application_server_names");
            }
        }
        let no_names = ZonesSection::default();
        assert!(no_names
            .validate_names_with(&sip("udp = [\"127.0.0.1:5060\"]\n"))
            .is_ok());
    }
}
