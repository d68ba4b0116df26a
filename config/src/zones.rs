//! `[zones]`: where a CSCF's peers are, by source address (the trust zones of the
//! design brief §7, `ims-node`'s `zones` module applies them).

use ipnet::IpNet;
use serde::Deserialize;

use crate::error::Invalid;
use crate::load::Validate;

/// `[zones]` of a CSCF: the source networks (CIDR) of each trust zone. What no list
/// covers is unclassified and trusted with nothing (at the P-CSCF: the access side).
/// When lists overlap, the longest prefix decides. The defaults are empty: nothing is
/// core until configured.
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
}

impl ZonesSection {
    /// The lists with their keys, in the order they are written.
    pub fn lists(&self) -> [(&'static str, &[IpNet]); 3] {
        [
            ("core", &self.core),
            ("application_servers", &self.application_servers),
            ("interconnect", &self.interconnect),
        ]
    }
}

impl Validate for ZonesSection {
    /// The same network in two zones is ambiguous: refused, naming the second key.
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
        };
        let err = z.validate().unwrap_err();
        assert_eq!(err.key, "interconnect[0]");
        assert!(err.reason.contains("core"), "{err}");
        assert!(ZonesSection::default().validate().is_ok());
    }
}
