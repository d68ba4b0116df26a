//! One domain; SIP routes from node to node; trust zones that cover the other CSCFs.

use std::net::IpAddr;

use ims_config::{SipSection, ZonesSection};

use super::endpoint::{reaches_sip, sip_sources, sip_uri};
use super::{Configs, Finding};

/// A CSCF as the zone rule sees it: its file, SIP section, zones and certificate names.
pub struct Cscf<'a> {
    /// `pcscf.toml`, `scscf2.toml`, ...
    pub file: String,
    /// Its `[sip]`.
    pub sip: &'a SipSection,
    /// Its `[zones]`.
    pub zones: &'a ZonesSection,
    /// The names of the certificate it presents on outgoing TLS.
    pub cert_names: Vec<String>,
    /// The names and addresses of all its certificates (SIP, HTTPS, Cx): the hosts a
    /// route may name it by.
    pub hosts: Vec<String>,
}

/// The rules of this module.
pub fn check(c: &Configs, cscfs: &[Cscf<'_>], out: &mut Vec<Finding>) {
    domains(c, out);
    if let (Some(p), Some(i)) = (&c.pcscf, &c.icscf) {
        let key = |d: &str| format!("pcscf.home_networks.\"{d}\"");
        match p.pcscf.home_networks.get(&p.node.domain) {
            None => out.push(Finding::new(
                "pcscf.toml",
                "pcscf.home_networks",
                format!("no entry for the home domain {}", p.node.domain),
            )),
            Some(uri) => route(
                uri,
                &cscf(cscfs, "icscf.toml", &i.sip),
                "pcscf.toml",
                &key(&p.node.domain),
                out,
            ),
        }
    }
    if let (Some(i), Some(s)) = (&c.icscf, &c.scscf) {
        let server = &s.registrar.server_name;
        if !i.scscf.iter().any(|e| e.name.eq_ignore_ascii_case(server)) {
            // Every S-CSCF of a pool (each view's) must be in the list.
            out.push(Finding::new(
                "icscf.toml",
                "scscf",
                format!("no [[scscf]] named {server} (scscf.toml registrar.server_name)"),
            ));
        }
        for (n, e) in i.scscf.iter().enumerate() {
            let other_member = c.scscf_names.contains(&e.name.to_ascii_lowercase());
            if !e.name.eq_ignore_ascii_case(server) && other_member {
                // Another S-CSCF of the pool: checked in its own view.
            } else if !e.name.eq_ignore_ascii_case(server) {
                out.push(Finding::new(
                    "icscf.toml",
                    format!("scscf[{n}].name"),
                    format!(
                        "{} is no S-CSCF's registrar.server_name (scscf.toml has {server})",
                        e.name
                    ),
                ));
            } else {
                route(
                    &e.uri,
                    &cscf(cscfs, "scscf.toml", &s.sip),
                    "icscf.toml",
                    &format!("scscf[{n}].uri"),
                    out,
                );
            }
        }
    }
    if let (Some(s), Some(i)) = (&c.scscf, &c.icscf) {
        route(
            &s.session.icscf,
            &cscf(cscfs, "icscf.toml", &i.sip),
            "scscf.toml",
            "session.icscf",
            out,
        );
    }
    zones(cscfs, out);
}

fn domains(c: &Configs, out: &mut Vec<Finding>) {
    let nodes = [
        ("pcscf.toml", c.pcscf.as_ref().map(|x| &x.node)),
        ("icscf.toml", c.icscf.as_ref().map(|x| &x.node)),
        ("scscf.toml", c.scscf.as_ref().map(|x| &x.node)),
        ("hss.toml", c.hss.as_ref().map(|x| &x.node)),
        ("policyd.toml", c.policyd.as_ref().map(|x| &x.node)),
    ];
    let mut first: Option<(&str, &str)> = None;
    for (file, node) in nodes {
        let Some(node) = node else { continue };
        match first {
            None => first = Some((file, &node.domain)),
            Some((f, d)) if !d.eq_ignore_ascii_case(&node.domain) => out.push(Finding::new(
                file,
                "node.domain",
                format!("{} differs from {f}'s {d}", node.domain),
            )),
            Some(_) => {}
        }
    }
}

/// The target of a route: its SIP section and the hosts its certificates name.
struct Target<'a> {
    file: &'a str,
    sip: &'a SipSection,
    hosts: &'a [String],
}

fn cscf<'a>(cscfs: &'a [Cscf<'a>], file: &'a str, sip: &'a SipSection) -> Target<'a> {
    let hosts = cscfs
        .iter()
        .find(|c| c.file == file)
        .map_or(&[][..], |c| c.hosts.as_slice());
    Target { file, sip, hosts }
}

/// `uri` (at `key` of `file`) must reach a SIP listener of `target`. A host name
/// without a port is resolved by RFC 3263 (NAPTR/SRV, `docs/dns.md`): when it is no
/// name of `target`, it may be a pool's SRV name, which no file tells: a warning.
fn route(uri: &str, target: &Target<'_>, file: &str, key: &str, out: &mut Vec<Finding>) {
    match sip_uri(uri) {
        None => out.push(Finding::new(file, key, format!("{uri}: no host in it"))),
        Some(to) if srv_resolved(uri) && !target.hosts.contains(&to.host) => {
            out.push(Finding::warning(
                file,
                key,
                format!(
                    "{uri}: {} names no port, so it is looked up by NAPTR/SRV (RFC 3263, docs/dns.md), which config check does not do; make sure its SRV records point at {}'s listeners",
                    to.host, target.file
                ),
            ))
        }
        Some(to) if !reaches_sip(&to, target.sip, target.hosts) => out.push(Finding::new(
            file,
            key,
            format!(
                "{uri} is not a listener of {} ({to} is no [sip] or [sip.core] listener, nor a listener's port at its advertised host or certificate names)",
                target.file
            ),
        )),
        Some(_) => {}
    }
}

/// Whether a SIP URI's host is a name without a port: RFC 3263 §4.2 looks it up by
/// NAPTR/SRV (a pool's name) before A/AAAA.
fn srv_resolved(uri: &str) -> bool {
    let rest = uri.split_once(':').map_or(uri, |(_, r)| r);
    let rest = rest.split([';', '?']).next().unwrap_or_default();
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    !hostport.starts_with('[') && !hostport.contains(':') && hostport.parse::<IpAddr>().is_err()
}

/// Each CSCF's `[zones]` covers every other CSCF, by address or certificate name (the
/// P-CSCFs of a pool need not cover each other: they do not exchange requests).
pub fn zones(cscfs: &[Cscf<'_>], out: &mut Vec<Finding>) {
    let pcscf = |c: &Cscf<'_>| c.file.starts_with("pcscf");
    for me in cscfs {
        for other in cscfs
            .iter()
            .filter(|o| o.file != me.file && !(pcscf(me) && pcscf(o)))
        {
            let by_name = other.cert_names.iter().any(|n| {
                me.zones
                    .core_names
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(n))
            });
            if by_name {
                continue;
            }
            let uncovered: Vec<IpAddr> = sip_sources(other.sip)
                .into_iter()
                .filter(|ip| !me.zones.core.iter().any(|net| net.contains(ip)))
                .collect();
            if let Some(ip) = uncovered.first() {
                out.push(Finding::new(
                    &me.file,
                    "zones.core",
                    format!(
                        "does not cover {}'s address {ip} (nor does zones.core_names name its certificate)",
                        other.file
                    ),
                ));
            }
        }
    }
}
