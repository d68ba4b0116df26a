//! RFC 3263 §4 over DNS: NAPTR, then SRV, then A/AAAA, with `hickory-resolver` as the
//! stub resolver (its own cache keeps each record for its TTL), and `/etc/hosts` asked
//! before DNS. Without a DNS configuration (no `/etc/resolv.conf` and no servers
//! configured) names are looked up with the system resolver, A/AAAA only.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::Query as DnsQuery;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Hosts, TokioResolver};

use super::select::{srv_name, srv_names, usable_naptrs, Naptr, SrvTarget};
use crate::transport::TransportKind;

/// Most SRV records of one name whose targets are looked up (a zone may hold more;
/// the rest are ignored, so a hostile zone cannot make one next hop cost hundreds of
/// queries).
pub const MAX_SRV_TARGETS: usize = 8;
/// Most NAPTR records of one domain tried.
pub const MAX_NAPTRS: usize = 4;
/// How long one DNS query may take (hickory's per-server timeout; one attempt each).
const QUERY_TIMEOUT: Duration = Duration::from_millis(1500);

/// A next hop without a port, as RFC 3263 §4 looks it up (one with a port is looked
/// up by its addresses only, §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopQuery<'a> {
    /// The host (a name, not an IP literal).
    pub host: &'a str,
    /// The URI's transport parameter, if any (§4.1: then no NAPTR).
    pub transport: Option<TransportKind>,
    /// A SIPS URI (only TLS, `SIPS+D2T`, `_sips._tcp`).
    pub sips: bool,
}

impl HopQuery<'_> {
    /// The transport when DNS does not choose one (§4.1: UDP for SIP, TLS for SIPS).
    pub fn default_kind(&self) -> TransportKind {
        self.transport.unwrap_or(if self.sips {
            TransportKind::Tls
        } else {
            TransportKind::Udp
        })
    }
}

/// What a next hop resolved to: its transport and the servers to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The transport (from NAPTR, the SRV name that answered, the URI or the default).
    pub kind: TransportKind,
    /// The servers: SRV targets, or one target of the A/AAAA answer.
    pub targets: Vec<SrvTarget>,
}

/// An answer and how long it may be kept.
type Answer<T> = Option<(T, Instant)>;

/// Where names are looked up.
pub enum Backend {
    /// `/etc/hosts`, then DNS through hickory: the full RFC 3263 procedure.
    Dns {
        /// The stub resolver.
        resolver: Box<TokioResolver>,
        /// The hosts file, read once.
        hosts: Arc<Hosts>,
    },
    /// The system resolver (`getaddrinfo`), A/AAAA only.
    System,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Dns { .. } => f.write_str("Backend::Dns"),
            Backend::System => f.write_str("Backend::System"),
        }
    }
}

impl Backend {
    /// The DNS servers of `servers` (each `ip:port`), or the system's
    /// (`/etc/resolv.conf`) when empty, after the hosts file `hosts` (`/etc/hosts` when
    /// `None`); the system resolver alone when there is no DNS configuration.
    pub fn new(servers: &[SocketAddr], hosts: Option<&Path>) -> Backend {
        let hosts = Arc::new(read_hosts(hosts));
        let builder = if servers.is_empty() {
            match TokioResolver::builder_tokio() {
                Ok(builder) => builder,
                Err(error) => {
                    tracing::warn!(%error, "no DNS configuration: next hops by A/AAAA through the system resolver only");
                    return Backend::System;
                }
            }
        } else {
            let name_servers = servers
                .iter()
                .map(|addr| {
                    let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                    for connection in &mut server.connections {
                        connection.port = addr.port();
                    }
                    server
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(name_servers),
                TokioRuntimeProvider::default(),
            )
        };
        let mut builder = builder;
        let options: &mut ResolverOpts = builder.options_mut();
        options.timeout = QUERY_TIMEOUT;
        options.attempts = 1;
        // The hosts file is asked here first, for every name (a static route).
        options.use_hosts_file = ResolveHosts::Never;
        match builder.build() {
            Ok(resolver) => Backend::Dns {
                resolver: Box::new(resolver),
                hosts,
            },
            Err(error) => {
                tracing::warn!(%error, "DNS resolver not built: next hops by A/AAAA through the system resolver only");
                Backend::System
            }
        }
    }

    /// The addresses `host` has in the hosts file, if any: such a name is a static
    /// route and is not looked up in DNS at all.
    pub fn static_host(&self, host: &str) -> Option<Vec<IpAddr>> {
        let Backend::Dns { hosts, .. } = self else {
            return None;
        };
        let name = Name::from_ascii(host).ok()?;
        let mut addrs = Vec::new();
        for kind in [RecordType::A, RecordType::AAAA] {
            if let Some(lookup) = hosts.lookup_static_host(&DnsQuery::query(name.clone(), kind)) {
                addrs.extend(lookup.answers().iter().filter_map(|r| r.data.ip_addr()));
            }
        }
        (!addrs.is_empty()).then_some(addrs)
    }

    /// RFC 3263 §4.1-§4.2 for `query` (a URI without a port), by a proxy with
    /// listeners of `supported`: a name of the hosts file by its addresses; with a
    /// transport parameter the SRV records of that transport; else NAPTR, then (no
    /// usable NAPTR) the SRV names of the supported transports; else the host's own
    /// addresses on the default port.
    pub async fn resolve(
        &self,
        query: &HopQuery<'_>,
        supported: &[TransportKind],
    ) -> Answer<Found> {
        let kind = query.default_kind();
        let Backend::Dns { resolver, .. } = self else {
            return address_target(kind, system_addresses(query.host).await);
        };
        if self.static_host(query.host).is_some() {
            return address_target(kind, self.addresses(query.host).await);
        }
        let (candidates, naptr_until) = if query.transport.is_some() {
            (
                srv_name(query.host, kind)
                    .map(|n| (kind, n))
                    .into_iter()
                    .collect(),
                None,
            )
        } else {
            let naptrs = naptr(resolver, query.host).await;
            let usable = naptrs
                .as_ref()
                .map(|(records, _)| usable_naptrs(records, query.sips, supported))
                .unwrap_or_default();
            let until = naptrs.map(|(_, until)| until);
            if usable.is_empty() {
                (srv_names(query.host, query.sips, supported), until)
            } else {
                (usable, until)
            }
        };
        let sooner = |at: Instant| naptr_until.map_or(at, |u| u.min(at));
        for (kind, name) in candidates.into_iter().take(MAX_NAPTRS) {
            if let Some((found, until)) = self.srv(kind, &name).await {
                return Some((found, sooner(until)));
            }
        }
        let (found, until) = address_target(kind, self.addresses(query.host).await)?;
        Some((found, sooner(until)))
    }

    /// The SRV records of `name` with their targets' addresses; `None` when there are
    /// none (or none with an address).
    async fn srv(&self, kind: TransportKind, name: &str) -> Answer<Found> {
        let Backend::Dns { resolver, .. } = self else {
            return None;
        };
        let lookup = resolver.lookup(fqdn(name)?, RecordType::SRV).await.ok()?;
        let mut until = lookup.valid_until();
        let records: Vec<_> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                // RFC 2782: a target of "." means the service is not available there.
                RData::SRV(srv) if !srv.target.is_root() => Some(srv.clone()),
                _ => None,
            })
            .take(MAX_SRV_TARGETS)
            .collect();
        let answers = join_all(records.iter().map(|srv| self.addresses_of(&srv.target))).await;
        let mut targets = Vec::new();
        for (srv, answer) in records.iter().zip(answers) {
            let Some((addrs, at)) = answer else {
                tracing::debug!(target = %srv.target, "SRV target has no address");
                continue;
            };
            until = until.min(at);
            targets.push(SrvTarget {
                priority: srv.priority,
                weight: srv.weight,
                port: srv.port,
                addrs,
            });
        }
        (!targets.is_empty()).then_some((Found { kind, targets }, until))
    }

    async fn addresses_of(&self, name: &Name) -> Answer<Vec<IpAddr>> {
        self.addresses(name.to_ascii().trim_end_matches('.')).await
    }

    /// The addresses of `host`: the hosts file, else DNS A/AAAA (IPv4 first).
    pub async fn addresses(&self, host: &str) -> Answer<Vec<IpAddr>> {
        if let Some(addrs) = self.static_host(host) {
            return Some((addrs, Instant::now() + super::POSITIVE_TTL));
        }
        let Backend::Dns { resolver, .. } = self else {
            return system_addresses(host).await;
        };
        let lookup = resolver.lookup_ip(fqdn(host)?).await.ok()?;
        let mut addrs: Vec<IpAddr> = lookup.iter().collect();
        addrs.sort_by_key(|ip| ip.is_ipv6());
        (!addrs.is_empty()).then_some((addrs, lookup.valid_until()))
    }
}

/// The hosts file at `path`, or the system's; empty when it cannot be read.
fn read_hosts(path: Option<&Path>) -> Hosts {
    let Some(path) = path else {
        return Hosts::from_system().unwrap_or_default();
    };
    let mut hosts = Hosts::default();
    match std::fs::File::open(path).and_then(|file| hosts.read_hosts_conf(file)) {
        Ok(()) => hosts,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "hosts file not read");
            Hosts::default()
        }
    }
}

/// The NAPTR records of `domain`.
async fn naptr(resolver: &TokioResolver, domain: &str) -> Answer<Vec<Naptr>> {
    let lookup = resolver
        .lookup(fqdn(domain)?, RecordType::NAPTR)
        .await
        .ok()?;
    let records = lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::NAPTR(n) => Some(Naptr {
                order: n.order,
                preference: n.preference,
                flags: String::from_utf8_lossy(&n.flags).into_owned(),
                services: String::from_utf8_lossy(&n.services).into_owned(),
                replacement: n.replacement.to_ascii().trim_end_matches('.').to_string(),
            }),
            _ => None,
        })
        .collect();
    Some((records, lookup.valid_until()))
}

/// One target of a host's own addresses, on the transport's default port (§4.2).
fn address_target(kind: TransportKind, answer: Answer<Vec<IpAddr>>) -> Answer<Found> {
    let (addrs, until) = answer?;
    let target = SrvTarget {
        priority: 0,
        weight: 0,
        port: kind.default_port(),
        addrs,
    };
    Some((
        Found {
            kind,
            targets: vec![target],
        },
        until,
    ))
}

/// `name` as an absolute DNS name (SIP host names are fully qualified: no search list).
fn fqdn(name: &str) -> Option<Name> {
    let mut name = Name::from_ascii(name).ok()?;
    name.set_fqdn(true);
    Some(name)
}

/// The system resolver's addresses for `name` (IPv4 first), kept for
/// [`super::POSITIVE_TTL`] (`getaddrinfo` gives no TTL).
async fn system_addresses(name: &str) -> Answer<Vec<IpAddr>> {
    let query = tokio::net::lookup_host((name, 0));
    let mut addrs: Vec<IpAddr> = match tokio::time::timeout(super::LOOKUP_TIMEOUT, query).await {
        Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
        Ok(Err(error)) => {
            tracing::debug!(host = %name, %error, "lookup failed");
            return None;
        }
        Err(_) => {
            tracing::info!(host = %name, "lookup timed out");
            return None;
        }
    };
    addrs.sort_by_key(|ip| ip.is_ipv6());
    addrs.dedup();
    (!addrs.is_empty()).then(|| (addrs, Instant::now() + super::POSITIVE_TTL))
}
