//! Where a node can be reached: the host and port of a SIP URI or URL, and the
//! endpoints a node's listeners and advertised address offer.

use std::net::{IpAddr, SocketAddr};

use ims_config::SipSection;

/// A host (IP address or name, lower case) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host, without brackets.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `host[:port]` (IPv6 in brackets) with `default_port`.
pub fn host_port(s: &str, default_port: u16) -> Option<Endpoint> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        (h, port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (s, default_port),
        }
    };
    (!host.is_empty()).then(|| Endpoint {
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// The host and port a `sip:`/`sips:` URI sends to (5060, or 5061 for sips).
pub fn sip_uri(uri: &str) -> Option<Endpoint> {
    let lower = uri.to_ascii_lowercase();
    let (rest, port) = if let Some(r) = lower.strip_prefix("sips:") {
        (r, 5061)
    } else {
        (lower.strip_prefix("sip:")?, 5060)
    };
    let rest = rest.split([';', '?']).next()?;
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    host_port(hostport, port)
}

/// The host and port of an `http(s)://host[:port]/...` URL.
pub fn url(u: &str) -> Option<Endpoint> {
    let lower = u.to_ascii_lowercase();
    let (rest, port) = if let Some(r) = lower.strip_prefix("https://") {
        (r, 443)
    } else {
        (lower.strip_prefix("http://")?, 80)
    };
    host_port(rest.split('/').next()?, port)
}

/// Whether `to` reaches one of `listeners`: a listener's address and port, or, when
/// `to` names the node by one of `own` (its advertised host, certificate names and
/// addresses), a listener on that port bound to one of the node's addresses or to the
/// unspecified address.
pub fn reaches(to: &Endpoint, listeners: &[SocketAddr], own: &[String]) -> bool {
    listeners.iter().any(|l| {
        let ip = l.ip().to_string();
        l.port() == to.port
            && (ip == to.host
                || (own.contains(&to.host) && (l.ip().is_unspecified() || own.contains(&ip))))
    })
}

/// Every SIP listener of a node, `[sip.core]`'s included.
pub fn sip_listeners(sip: &SipSection) -> Vec<SocketAddr> {
    let mut all: Vec<SocketAddr> = sip
        .udp
        .iter()
        .chain(&sip.tcp)
        .chain(&sip.tls)
        .copied()
        .collect();
    if let Some(core) = &sip.core {
        all.extend(core.udp.iter().chain(&core.tcp).chain(&core.tls));
    }
    all
}

/// The host of an `advertise` value (`host` or `host:port`).
fn advertised(advertise: Option<&str>) -> Option<String> {
    advertise.and_then(|a| host_port(a, 5060)).map(|e| e.host)
}

/// The hosts a SIP node is known by besides its certificates: its advertised hosts and
/// listener addresses.
pub fn sip_hosts(sip: &SipSection) -> Vec<String> {
    let mut hosts: Vec<String> = advertised(sip.advertise.as_deref()).into_iter().collect();
    hosts.extend(advertised(
        sip.core.as_ref().and_then(|c| c.advertise.as_deref()),
    ));
    hosts.extend(
        sip_listeners(sip)
            .iter()
            .filter(|l| !l.ip().is_unspecified())
            .map(|l| l.ip().to_string()),
    );
    hosts.sort();
    hosts.dedup();
    hosts
}

/// Whether `to` reaches a SIP listener of the node with `sip`, known also by `names`
/// (its certificates' names and addresses): a listener itself, or a listener's port at
/// one of the node's hosts (advertised hosts write no port of their own).
pub fn reaches_sip(to: &Endpoint, sip: &SipSection, names: &[String]) -> bool {
    let mut own = sip_hosts(sip);
    own.extend(names.iter().cloned());
    reaches(to, &sip_listeners(sip), &own)
}

/// The addresses a SIP node's requests to its core peers come from: the listener
/// addresses of `[sip.core]` when it has one, else of `[sip]`; the advertised host when
/// they bind the unspecified address.
pub fn sip_sources(sip: &SipSection) -> Vec<IpAddr> {
    let (listeners, advertise): (Vec<SocketAddr>, Option<&str>) = match &sip.core {
        Some(c) => (
            c.udp.iter().chain(&c.tcp).chain(&c.tls).copied().collect(),
            c.advertise.as_deref(),
        ),
        None => (
            sip.udp
                .iter()
                .chain(&sip.tcp)
                .chain(&sip.tls)
                .copied()
                .collect(),
            sip.advertise.as_deref(),
        ),
    };
    let mut ips: Vec<IpAddr> = listeners
        .iter()
        .map(|l| l.ip())
        .filter(|ip| !ip.is_unspecified())
        .collect();
    if ips.is_empty() {
        ips.extend(advertised(advertise).and_then(|h| h.parse::<IpAddr>().ok()));
    }
    ips.sort();
    ips.dedup();
    ips
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_and_urls_give_host_and_port() {
        let e = |h: &str, p| {
            Some(Endpoint {
                host: h.into(),
                port: p,
            })
        };
        assert_eq!(sip_uri("sip:10.0.0.6:5070;lr"), e("10.0.0.6", 5070));
        assert_eq!(
            sip_uri("sips:icscf.example.net"),
            e("icscf.example.net", 5061)
        );
        assert_eq!(sip_uri("sip:a@[::1]:5080;lr"), e("::1", 5080));
        assert_eq!(sip_uri("tel:+1"), None);
        assert_eq!(url("https://10.0.0.9:9105"), e("10.0.0.9", 9105));
        assert_eq!(url("http://p/v1"), e("p", 80));
    }
}
