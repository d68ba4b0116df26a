//! A sender's zone from its source address, as `[zones]` lists the networks.
//!
//! Classification is by the address the message came from (UDP source, or the peer of
//! the TCP/TLS connection), never by anything the message says about itself (Via,
//! From, Contact). The longest matching prefix decides; an address no list covers is
//! [`Zone::Unclassified`]. IPv4-mapped IPv6 addresses are classified as the IPv4
//! address they carry.
//!
//! TLS client-certificate names are not a classification input: the SIP transport
//! does not ask UEs or peers for client certificates, so a connection carries no
//! authenticated name to classify by.

use std::net::IpAddr;

use ims_config::ZonesSection;
use ipnet::IpNet;

use crate::zone::Zone;

/// Address ranges to zones.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    /// Longest prefix first, so the first match is the most specific.
    nets: Vec<(IpNet, Zone)>,
}

impl Classifier {
    /// The classifier `[zones]` describes.
    pub fn from_section(zones: &ZonesSection) -> Classifier {
        let mut nets: Vec<(IpNet, Zone)> = zones
            .lists()
            .into_iter()
            .flat_map(|(key, list)| {
                let zone = match key {
                    "core" => Zone::Core,
                    "application_servers" => Zone::ApplicationServer,
                    _ => Zone::Interconnect,
                };
                list.iter().map(move |net| (net.trunc(), zone))
            })
            .collect();
        nets.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        Classifier { nets }
    }

    /// The zone of a sender at `ip`.
    pub fn classify(&self, ip: IpAddr) -> Zone {
        let ip = ip.to_canonical();
        self.nets
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map_or(Zone::Unclassified, |(_, zone)| *zone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn nothing_is_core_by_default() {
        let c = Classifier::from_section(&ZonesSection::default());
        for a in ["127.0.0.1", "::1", "10.0.0.1"] {
            assert_eq!(c.classify(ip(a)), Zone::Unclassified, "{a}");
        }
    }

    #[test]
    fn loopback_core_leaves_other_loopback_addresses_out() {
        let c = Classifier::from_section(&ZonesSection {
            core: nets(&["127.0.0.1/32", "::1/128"]),
            ..ZonesSection::default()
        });
        assert_eq!(c.classify(ip("127.0.0.1")), Zone::Core);
        assert_eq!(c.classify(ip("::1")), Zone::Core);
        assert_eq!(c.classify(ip("::ffff:127.0.0.1")), Zone::Core);
        assert_eq!(c.classify(ip("127.0.0.9")), Zone::Unclassified);
        assert_eq!(c.classify(ip("::ffff:127.0.0.9")), Zone::Unclassified);
    }

    #[test]
    fn the_longest_prefix_decides() {
        let c = Classifier::from_section(&ZonesSection {
            core: nets(&["10.0.0.0/8"]),
            application_servers: nets(&["10.0.5.0/24"]),
            interconnect: nets(&["10.0.5.9/32", "2001:db8::/32"]),
        });
        assert_eq!(c.classify(ip("10.1.2.3")), Zone::Core);
        assert_eq!(c.classify(ip("10.0.5.3")), Zone::ApplicationServer);
        assert_eq!(c.classify(ip("10.0.5.9")), Zone::Interconnect);
        assert_eq!(c.classify(ip("2001:db8::1")), Zone::Interconnect);
        assert_eq!(c.classify(ip("192.0.2.1")), Zone::Unclassified);
    }
}
