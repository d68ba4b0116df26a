//! A sender's zone, as `[zones]` lists the networks and the certificate names.
//!
//! Two inputs, both established by the transport and never by anything the message
//! says about itself (Via, From, Contact, P-Asserted-Identity):
//!
//! 1. The names of the TLS client certificate the peer presented, when the listener
//!    verified it against `[sip.tls_files] client_ca` ([`PeerNames`]): a certificate
//!    that names one of `core_names`, `application_server_names` or
//!    `interconnect_names` puts the sender in that zone, whatever its address. Names
//!    are matched exactly, ASCII case-insensitively, without wildcards. Should a
//!    certificate name entries of two zones (a configuration can list a name in one
//!    zone only, but a certificate can carry several names), the first zone in the
//!    order core, application servers, interconnect wins.
//! 2. Otherwise (UDP, TCP, TLS without a client certificate, a certificate that names
//!    nothing configured, a connection this node opened) the address the message came
//!    from: the UDP source, or the peer of the TCP/TLS connection. The longest matching
//!    prefix decides; an address no list covers is [`Zone::Unclassified`].
//!    IPv4-mapped IPv6 addresses are classified as the IPv4 address they carry.
//!
//! An authenticated name thus wins over the address: a core node can move between
//! addresses (several VMs, changing IPs) and keep its zone, and a sender on a core
//! address whose certificate names an application server is an application server. A
//! certificate changes nothing unless it names a configured zone.

use std::net::IpAddr;

use ims_config::ZonesSection;
use ims_sip::transport::PeerNames;
use ipnet::IpNet;

use crate::zone::Zone;

/// Address ranges and certificate names to zones.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    /// Longest prefix first, so the first match is the most specific.
    nets: Vec<(IpNet, Zone)>,
    /// Certificate names, in the order core, application servers, interconnect.
    names: Vec<(Box<str>, Zone)>,
}

/// The zone of a `[zones]` list, by the position of its key in `lists()` or
/// `name_lists()` (core, application servers, interconnect).
const ZONES: [Zone; 3] = [Zone::Core, Zone::ApplicationServer, Zone::Interconnect];

impl Classifier {
    /// The classifier `[zones]` describes.
    pub fn from_section(zones: &ZonesSection) -> Classifier {
        let mut nets: Vec<(IpNet, Zone)> = zones
            .lists()
            .into_iter()
            .zip(ZONES)
            .flat_map(|((_, list), zone)| list.iter().map(move |net| (net.trunc(), zone)))
            .collect();
        nets.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        let names = zones
            .name_lists()
            .into_iter()
            .zip(ZONES)
            .flat_map(|((_, list), zone)| list.iter().map(move |n| (n.as_str().into(), zone)))
            .collect();
        Classifier { nets, names }
    }

    /// The zone of a sender at `ip` whose verified client certificate carries
    /// `certificate` (`None`: no certificate, or not over TLS).
    pub fn classify(&self, ip: IpAddr, certificate: Option<&PeerNames>) -> Zone {
        certificate
            .and_then(|names| self.by_name(names))
            .unwrap_or_else(|| self.by_address(ip))
    }

    /// The zone of the first configured name the certificate carries.
    fn by_name(&self, certificate: &PeerNames) -> Option<Zone> {
        self.names
            .iter()
            .find(|(name, _)| certificate.contains(name))
            .map(|(_, zone)| *zone)
    }

    /// The zone of the longest prefix covering `ip`.
    fn by_address(&self, ip: IpAddr) -> Zone {
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
            assert_eq!(c.classify(ip(a), None), Zone::Unclassified, "{a}");
        }
    }

    #[test]
    fn loopback_core_leaves_other_loopback_addresses_out() {
        let c = Classifier::from_section(&ZonesSection {
            core: nets(&["127.0.0.1/32", "::1/128"]),
            ..ZonesSection::default()
        });
        assert_eq!(c.classify(ip("127.0.0.1"), None), Zone::Core);
        assert_eq!(c.classify(ip("::1"), None), Zone::Core);
        assert_eq!(c.classify(ip("::ffff:127.0.0.1"), None), Zone::Core);
        assert_eq!(c.classify(ip("127.0.0.9"), None), Zone::Unclassified);
        assert_eq!(c.classify(ip("::ffff:127.0.0.9"), None), Zone::Unclassified);
    }

    #[test]
    fn the_longest_prefix_decides() {
        let c = Classifier::from_section(&ZonesSection {
            core: nets(&["10.0.0.0/8"]),
            application_servers: nets(&["10.0.5.0/24"]),
            interconnect: nets(&["10.0.5.9/32", "2001:db8::/32"]),
            ..ZonesSection::default()
        });
        assert_eq!(c.classify(ip("10.1.2.3"), None), Zone::Core);
        assert_eq!(c.classify(ip("10.0.5.3"), None), Zone::ApplicationServer);
        assert_eq!(c.classify(ip("10.0.5.9"), None), Zone::Interconnect);
        assert_eq!(c.classify(ip("2001:db8::1"), None), Zone::Interconnect);
        assert_eq!(c.classify(ip("192.0.2.1"), None), Zone::Unclassified);
    }

    fn certificate(names: &[&str]) -> Option<PeerNames> {
        Some(PeerNames::new(names.iter().copied()))
    }

    fn named_zones() -> ZonesSection {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ZonesSection {
            core: nets(&["10.0.1.0/24"]),
            application_servers: nets(&["10.0.2.0/24"]),
            core_names: names(&["pcscf.ims.example.net", "icscf.ims.example.net"]),
            application_server_names: names(&["as.ims.example.net"]),
            interconnect_names: names(&["ibcf.peer.example"]),
            ..ZonesSection::default()
        }
    }

    #[test]
    fn a_configured_certificate_name_decides_the_zone_whatever_the_address() {
        let c = Classifier::from_section(&named_zones());
        let pcscf = certificate(&["PCSCF.ims.example.net"]);
        for a in ["192.0.2.7", "10.0.2.5", "::1"] {
            assert_eq!(c.classify(ip(a), pcscf.as_ref()), Zone::Core, "{a}");
        }
        let as_ = certificate(&["as.ims.example.net"]);
        assert_eq!(
            c.classify(ip("10.0.1.9"), as_.as_ref()),
            Zone::ApplicationServer,
            "the name wins over a core address"
        );
        let peer = certificate(&["ibcf.peer.example"]);
        assert_eq!(
            c.classify(ip("192.0.2.7"), peer.as_ref()),
            Zone::Interconnect
        );
    }

    #[test]
    fn a_certificate_naming_nothing_configured_falls_back_to_the_address() {
        let c = Classifier::from_section(&named_zones());
        let other = certificate(&["scscf.other.example", "localhost"]);
        assert_eq!(c.classify(ip("10.0.1.9"), other.as_ref()), Zone::Core);
        assert_eq!(
            c.classify(ip("10.0.2.9"), other.as_ref()),
            Zone::ApplicationServer
        );
        assert_eq!(
            c.classify(ip("192.0.2.7"), other.as_ref()),
            Zone::Unclassified
        );
        assert_eq!(c.classify(ip("192.0.2.7"), None), Zone::Unclassified);
        let near = certificate(&["pcscf.ims.example.net.evil.example", "*.ims.example.net"]);
        assert_eq!(
            c.classify(ip("192.0.2.7"), near.as_ref()),
            Zone::Unclassified,
            "exact names only"
        );
    }

    #[test]
    fn a_certificate_naming_two_zones_gets_the_first_in_list_order() {
        let c = Classifier::from_section(&named_zones());
        let both = certificate(&[
            "ibcf.peer.example",
            "as.ims.example.net",
            "icscf.ims.example.net",
        ]);
        assert_eq!(c.classify(ip("192.0.2.7"), both.as_ref()), Zone::Core);
        let two = certificate(&["ibcf.peer.example", "as.ims.example.net"]);
        assert_eq!(
            c.classify(ip("192.0.2.7"), two.as_ref()),
            Zone::ApplicationServer
        );
    }
}
