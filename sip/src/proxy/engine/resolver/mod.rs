//! Next hops to transports and addresses (RFC 3263 §4): a URI with a host name (an
//! application server's `sip:as1.example.net`, a peer network's proxy, the home
//! domain of a visited P-CSCF) is looked up in DNS — NAPTR for the transport, SRV for
//! the servers and their priority and weight, A/AAAA for their addresses — and the
//! answer kept for its TTL ([`lookup`]; the selection rules in [`select`]). A URI with
//! a port, or a name of `/etc/hosts`, is looked up by its addresses only (§4.2): static
//! routes need no DNS server and wait for none.
//!
//! The engine routes in one task and cannot wait for DNS there. So the names a
//! decision will need are looked up beforehand, in the task that asks the policy
//! ([`HostCache::prepare`]), and the routing step only reads the cache
//! ([`HostCache::targets`]), which orders the servers afresh for each request (SRV
//! weights share the load between them, RFC 2782) and lists them all, so that the
//! engine can fail over to the next one (§4.3).
//!
//! Names come from the network (Request-URIs, Route values), so everything is bounded:
//! each lookup by [`LOOKUP_TIMEOUT`], lookups under way by [`MAX_LOOKUPS`], the SRV
//! targets of a name by [`lookup::MAX_SRV_TARGETS`], the cache by its size (lapsed
//! entries go first, then arbitrary ones), TTLs between [`MIN_TTL`] and [`MAX_TTL`], and
//! a failed lookup is remembered for [`NEGATIVE_TTL`] so that a name that does not
//! resolve is not asked for again on every request.

mod lookup;
mod select;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use smallvec::{smallvec, SmallVec};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use self::lookup::{Backend, Found, HopQuery};
use crate::proxy::routing::NextHop;
use crate::transport::TransportKind;

/// How long the lookups of one name (NAPTR, SRV, A/AAAA) may take together before
/// the name counts as unresolved.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(4);
/// How long a name resolved without a TTL (hosts file, system resolver) is kept.
pub const POSITIVE_TTL: Duration = Duration::from_secs(60);
/// Shortest time an answer is kept, whatever its TTL (a TTL of 0 would send every
/// request to DNS first).
pub const MIN_TTL: Duration = Duration::from_secs(5);
/// Longest time an answer is kept, whatever its TTL.
pub const MAX_TTL: Duration = Duration::from_secs(3600);
/// How long a name that did not resolve is not asked for again.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Most names kept.
pub const MAX_ENTRIES: usize = 4096;
/// Longest name looked up (RFC 1035 §2.3.4: 255 octets).
const MAX_NAME: usize = 255;
/// Most lookups under way at once, so that a flood of names that do not resolve
/// cannot hold every query slot (or, with the system resolver, every thread of
/// tokio's blocking pool). A name beyond this is not looked up this time.
pub const MAX_LOOKUPS: usize = 16;

/// How long a server that timed out or could not be reached goes to the end of the
/// lists it is in (still tried, last): the requests after a server's failure do not
/// each wait for it first.
pub const DOWN_FOR: Duration = Duration::from_secs(30);
/// Most servers remembered as down.
const MAX_DOWN: usize = 1024;

/// The servers of a next hop in the order to try them; most next hops have one (an IP
/// address), kept inline.
pub type Servers = SmallVec<[Hop; 1]>;

/// One server to try: the transport and address a branch is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// The transport.
    pub kind: TransportKind,
    /// The address.
    pub addr: SocketAddr,
}

/// What a name resolved to.
#[derive(Debug, Clone)]
enum Answer {
    /// The host's addresses (a URI with a port).
    Addresses(Vec<IpAddr>),
    /// RFC 3263's answer for a URI without a port.
    Found(Found),
}

#[derive(Debug, Clone)]
struct Entry {
    answer: Option<Answer>,
    until: Instant,
}

/// Resolved next-hop names.
#[derive(Debug)]
pub struct HostCache {
    entries: Mutex<HashMap<String, Entry>>,
    max_entries: usize,
    lookups: Arc<Semaphore>,
    backend: Backend,
    /// Servers that failed lately, until when they go last.
    down: Mutex<HashMap<SocketAddr, Instant>>,
}

impl Default for HostCache {
    fn default() -> Self {
        HostCache::new(&[], MAX_ENTRIES)
    }
}

/// The cache key of a next hop: its host alone when it has a port (its addresses),
/// else the host with what steers NAPTR/SRV (transport parameter, SIPS).
fn key(hop: &NextHop) -> String {
    let host = hop.host.to_ascii_lowercase();
    if hop.explicit_port {
        return host;
    }
    let transport = if hop.explicit_transport {
        hop.transport.uri_param()
    } else {
        "-"
    };
    let sips = if sips(hop) { "s" } else { "" };
    format!("{host} {transport}{sips}")
}

/// A SIPS next hop: TLS not asked for by a transport parameter.
fn sips(hop: &NextHop) -> bool {
    hop.transport == TransportKind::Tls && !hop.explicit_transport
}

impl HostCache {
    /// A cache of at most `max_entries` names, asking the DNS servers of `servers`
    /// (`ip:port` each), or the system's (`/etc/resolv.conf`) when empty.
    pub fn new(servers: &[SocketAddr], max_entries: usize) -> HostCache {
        HostCache::with_backend(Backend::new(servers, None), max_entries)
    }

    /// [`HostCache::new`] with the hosts file at `hosts` instead of `/etc/hosts`.
    pub fn with_hosts_file(servers: &[SocketAddr], max_entries: usize, hosts: &Path) -> HostCache {
        HostCache::with_backend(Backend::new(servers, Some(hosts)), max_entries)
    }

    fn with_backend(backend: Backend, max_entries: usize) -> HostCache {
        HostCache {
            entries: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(1),
            lookups: Arc::new(Semaphore::new(MAX_LOOKUPS)),
            backend,
            down: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first address `host` resolved to (its A/AAAA answer, looked up for a URI
    /// with a port), if it was looked up and has not lapsed.
    pub fn cached(&self, host: &str) -> Option<IpAddr> {
        let key = host.to_ascii_lowercase();
        match self.live(&key)? {
            Answer::Addresses(addrs) => addrs.first().copied(),
            Answer::Found(_) => None,
        }
    }

    fn live(&self, key: &str) -> Option<Answer> {
        self.entries()
            .get(key)
            .filter(|e| e.until > Instant::now())
            .and_then(|e| e.answer.clone())
    }

    /// The servers to try for `hop`, in order (RFC 3263 §4.3: the first, then on
    /// failure the next), as far as the cache knows them: an IP literal as it is; a
    /// name that was prepared and has not lapsed by its answer, SRV targets ordered by
    /// priority and a fresh weighted draw from `rng`, servers marked down
    /// ([`HostCache::mark_down`]) moved last. Empty when nothing is known.
    pub fn targets(&self, hop: &NextHop, rng: &mut impl Rng) -> Servers {
        let mut servers = self.ordered(hop, rng);
        if servers.len() > 1 {
            self.demote_down(&mut servers);
        }
        servers
    }

    fn ordered(&self, hop: &NextHop, rng: &mut impl Rng) -> Servers {
        if let Some(ip) = crate::proxy::ip_of(&hop.host) {
            return smallvec![Hop {
                kind: hop.transport,
                addr: SocketAddr::new(ip, hop.port),
            }];
        }
        match self.live(&key(hop)) {
            Some(Answer::Addresses(addrs)) => addrs
                .iter()
                .map(|ip| Hop {
                    kind: hop.transport,
                    addr: SocketAddr::new(*ip, hop.port),
                })
                .collect(),
            Some(Answer::Found(found)) => select::order_targets(&found.targets, rng)
                .into_iter()
                .map(|addr| Hop {
                    kind: found.kind,
                    addr,
                })
                .collect(),
            None => Servers::new(),
        }
    }

    /// Remembers that the server at `addr` timed out or could not be reached: for
    /// [`DOWN_FOR`] it comes last among the servers of any next hop.
    pub fn mark_down(&self, addr: SocketAddr) {
        let now = Instant::now();
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        if down.len() >= MAX_DOWN && !down.contains_key(&addr) {
            down.retain(|_, until| *until > now);
            if down.len() >= MAX_DOWN {
                if let Some(victim) = down.keys().next().copied() {
                    down.remove(&victim);
                }
            }
        }
        down.insert(addr, now + DOWN_FOR);
    }

    /// Moves the servers marked down (and not lapsed) after the others, each group
    /// in its order.
    fn demote_down(&self, servers: &mut Servers) {
        let down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        if down.is_empty() {
            return;
        }
        let now = Instant::now();
        let is_down = |hop: &Hop| down.get(&hop.addr).is_some_and(|until| *until > now);
        if !servers.iter().any(is_down) {
            return;
        }
        let (mut up, gone): (Servers, Servers) = servers.drain(..).partition(|hop| !is_down(hop));
        up.extend(gone);
        *servers = up;
    }

    /// Looks up each next hop of `hops` whose host is a name not known (or lapsed),
    /// concurrently, each bounded by [`LOOKUP_TIMEOUT`]; NAPTR keeps the transports of
    /// `supported` only.
    pub async fn prepare<'a>(
        &self,
        hops: impl IntoIterator<Item = &'a NextHop>,
        supported: &[TransportKind],
    ) {
        // Most next hops are IP literals: no allocation or lock for them.
        let mut names: Vec<&NextHop> = Vec::new();
        for hop in hops {
            let host = hop.host.as_str();
            if !host.is_empty() && host.len() <= MAX_NAME && crate::proxy::ip_of(host).is_none() {
                names.push(hop);
            }
        }
        if names.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut wanted: Vec<(String, &NextHop)> = Vec::new();
        {
            let entries = self.entries();
            for hop in names {
                let key = key(hop);
                if wanted.iter().any(|(k, _)| *k == key)
                    || entries.get(&key).is_some_and(|e| e.until > now)
                {
                    continue;
                }
                wanted.push((key, hop));
            }
        }
        if wanted.is_empty() {
            return;
        }
        let mut lookups = Vec::new();
        for (key, hop) in wanted {
            let Ok(permit) = self.lookups.clone().try_acquire_owned() else {
                tracing::warn!(host = %hop.host, "too many name lookups under way: not looked up");
                continue;
            };
            lookups.push(async move {
                let _permit = permit;
                let answer = tokio::time::timeout(LOOKUP_TIMEOUT, self.look_up(hop, supported));
                (key, answer.await.ok().flatten())
            });
        }
        let results = futures_util::future::join_all(lookups).await;
        let now = Instant::now();
        let mut entries = self.entries();
        for (key, answer) in results {
            let (answer, until) = match answer {
                Some((answer, ttl)) => {
                    tracing::debug!(name = %key, ?answer, "next hop resolved");
                    (Some(answer), now + ttl.clamp(MIN_TTL, MAX_TTL))
                }
                None => {
                    tracing::info!(name = %key, "next hop does not resolve");
                    (None, now + NEGATIVE_TTL)
                }
            };
            self.make_room(&mut entries, now, &key);
            entries.insert(key, Entry { answer, until });
        }
    }

    /// One next hop's answer and its TTL.
    async fn look_up(
        &self,
        hop: &NextHop,
        supported: &[TransportKind],
    ) -> Option<(Answer, Duration)> {
        let ttl =
            |until: std::time::Instant| until.saturating_duration_since(std::time::Instant::now());
        if hop.explicit_port {
            let (addrs, until) = self.backend.addresses(&hop.host).await?;
            return Some((Answer::Addresses(addrs), ttl(until)));
        }
        let query = HopQuery {
            host: &hop.host,
            transport: hop.explicit_transport.then_some(hop.transport),
            sips: sips(hop),
        };
        let (found, until) = self.backend.resolve(&query, supported).await?;
        Some((Answer::Found(found), ttl(until)))
    }

    /// Makes room for `key` when the cache is full: lapsed entries go, then (still
    /// full) an arbitrary one.
    fn make_room(&self, entries: &mut HashMap<String, Entry>, now: Instant, key: &str) {
        if entries.len() < self.max_entries || entries.contains_key(key) {
            return;
        }
        entries.retain(|_, e| e.until > now);
        if entries.len() >= self.max_entries {
            if let Some(victim) = entries.keys().next().cloned() {
                entries.remove(&victim);
            }
        }
    }

    /// Number of names kept.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// True when no name is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::Ipv4Addr;

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::message::uri::Uri;

    fn hop(uri: &str) -> NextHop {
        NextHop::of_uri(&Uri::parse(uri).unwrap()).unwrap()
    }

    /// A DNS server address where nothing listens: every query fails at once.
    fn no_dns() -> SocketAddr {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap()
    }

    const UDP: [TransportKind; 1] = [TransportKind::Udp];

    #[tokio::test]
    async fn a_hosts_file_name_resolves_without_dns_and_is_kept() {
        let cache = HostCache::new(&[no_dns()], 8);
        let name = hop("sip:LOCALHOST:5070");
        let mut rng = StdRng::seed_from_u64(1);
        assert!(
            cache.targets(&name, &mut rng).is_empty(),
            "not looked up yet"
        );
        cache
            .prepare([&name, &hop("sip:127.0.0.1"), &hop("sip:[::1]")], &UDP)
            .await;
        let first = cache.targets(&name, &mut rng).first().copied();
        assert_eq!(
            first,
            Some(Hop {
                kind: TransportKind::Udp,
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 5070)),
            })
        );
        assert_eq!(
            cache.cached("localhost"),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(cache.len(), 1, "IP literals are not looked up");
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_remembered_as_such() {
        let cache = HostCache::new(&[no_dns()], 8);
        // RFC 6761 §6.4: `.invalid` never resolves.
        let name = hop("sip:no-such-host.invalid");
        cache.prepare([&name], &UDP).await;
        assert!(cache
            .targets(&name, &mut StdRng::seed_from_u64(1))
            .is_empty());
        assert_eq!(cache.len(), 1, "negative entry kept");
        let long = hop(&format!("sip:{}.test", "a".repeat(MAX_NAME)));
        cache.prepare([&long], &UDP).await;
        assert_eq!(cache.len(), 1, "overlong names are not looked up");
    }

    #[tokio::test]
    async fn lookups_under_way_are_bounded() {
        let cache = HostCache::new(&[no_dns()], 8);
        let held: Vec<_> = (0..MAX_LOOKUPS)
            .map(|_| cache.lookups.clone().try_acquire_owned().unwrap())
            .collect();
        let name = hop("sip:localhost:5060");
        cache.prepare([&name], &UDP).await;
        assert_eq!(cache.cached("localhost"), None, "no permit: not looked up");
        assert!(cache.is_empty());
        drop(held);
        cache.prepare([&name], &UDP).await;
        assert!(cache.cached("localhost").is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_marked_down_goes_last_for_a_while() {
        let cache = HostCache::new(&[no_dns()], 8);
        let server = |port| Hop {
            kind: TransportKind::Udp,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        };
        let mut servers: Servers = smallvec![server(1), server(2), server(3)];
        cache.demote_down(&mut servers);
        assert_eq!(servers.as_slice(), [server(1), server(2), server(3)]);
        cache.mark_down(server(1).addr);
        cache.demote_down(&mut servers);
        assert_eq!(servers.as_slice(), [server(2), server(3), server(1)]);
        tokio::time::advance(DOWN_FOR + Duration::from_secs(1)).await;
        let mut servers: Servers = smallvec![server(1), server(2)];
        cache.demote_down(&mut servers);
        assert_eq!(servers.as_slice(), [server(1), server(2)], "lapsed");
    }

    #[test]
    fn the_key_tells_what_rfc_3263_looks_up() {
        assert_eq!(key(&hop("sip:Pool.Test:5080")), "pool.test");
        assert_eq!(key(&hop("sip:pool.test")), "pool.test -");
        assert_eq!(key(&hop("sip:pool.test;transport=tcp")), "pool.test tcp");
        assert_eq!(key(&hop("sips:pool.test")), "pool.test -s");
    }

    #[tokio::test(start_paused = true)]
    async fn entries_lapse_and_the_cache_stays_bounded() {
        let cache = HostCache::new(&[no_dns()], 2);
        {
            let mut entries = cache.entries();
            let until = Instant::now() + Duration::from_secs(1);
            for name in ["a.test", "b.test"] {
                let answer = Some(Answer::Addresses(vec![IpAddr::V4(Ipv4Addr::new(
                    192, 0, 2, 1,
                ))]));
                entries.insert(name.into(), Entry { answer, until });
            }
        }
        assert!(cache.cached("a.test").is_some());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(cache.cached("a.test"), None, "lapsed");
        // Full of lapsed entries: they make room.
        let mut entries = cache.entries();
        cache.make_room(&mut entries, Instant::now(), "c.test");
        assert!(entries.is_empty());
        // Full of live entries: one goes.
        let until = Instant::now() + Duration::from_secs(60);
        for name in ["a.test", "b.test"] {
            entries.insert(
                name.into(),
                Entry {
                    answer: None,
                    until,
                },
            );
        }
        cache.make_room(&mut entries, Instant::now(), "c.test");
        assert_eq!(entries.len(), 1);
    }
}
