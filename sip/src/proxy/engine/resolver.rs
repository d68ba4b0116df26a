//! Host names of next hops to IP addresses (RFC 3263 §4.2, the A/AAAA step): a URI
//! with a host name (an application server's `sip:as1.example.net`, a peer network's
//! proxy) is looked up with the system resolver (`getaddrinfo`: `/etc/hosts`, then DNS)
//! and the answer kept for a while.
//!
//! The engine routes in one task and cannot wait for DNS there. So the names a
//! decision will need are looked up beforehand, in the task that asks the policy
//! ([`HostCache::prepare`]), and the routing step only reads the cache
//! ([`HostCache::cached`]). An IPv4 address is preferred when a name has both (the dev
//! core and most deployments listen on IPv4).
//!
//! Names come from the network (Request-URIs, Route values), so everything is bounded:
//! each lookup by [`LOOKUP_TIMEOUT`], lookups under way by [`MAX_LOOKUPS`], the cache by
//! its size (lapsed entries go first, then arbitrary ones), and a failed lookup is
//! remembered for [`NEGATIVE_TTL`] so that a name that does not resolve is not asked for
//! again on every request. NAPTR and SRV
//! (RFC 3263 §4.1, §4.2 without a port) are not done: the port is the URI's or the
//! transport's default.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How long a lookup may take before the name counts as unresolved.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a resolved name is kept (the system resolver gives no TTL).
pub const POSITIVE_TTL: Duration = Duration::from_secs(60);
/// How long a name that did not resolve is not asked for again.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Most names kept.
pub const MAX_ENTRIES: usize = 4096;
/// Longest name looked up (RFC 1035 §2.3.4: 255 octets).
const MAX_NAME: usize = 255;
/// Most lookups under way at once: each holds a thread of tokio's blocking pool
/// (`getaddrinfo`) until the system resolver gives up, so a flood of names that do not
/// resolve must not take them all. A name beyond this is not looked up this time.
pub const MAX_LOOKUPS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Entry {
    ip: Option<IpAddr>,
    until: Instant,
}

/// Resolved next-hop names.
#[derive(Debug)]
pub struct HostCache {
    entries: Mutex<HashMap<String, Entry>>,
    max_entries: usize,
    lookups: Arc<Semaphore>,
}

impl Default for HostCache {
    fn default() -> Self {
        HostCache::new(MAX_ENTRIES)
    }
}

impl HostCache {
    /// A cache of at most `max_entries` names.
    pub fn new(max_entries: usize) -> HostCache {
        HostCache {
            entries: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(1),
            lookups: Arc::new(Semaphore::new(MAX_LOOKUPS)),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The address `host` resolved to, if it was looked up and has not lapsed.
    pub fn cached(&self, host: &str) -> Option<IpAddr> {
        let key = host.to_ascii_lowercase();
        self.entries()
            .get(&key)
            .filter(|e| e.until > Instant::now())
            .and_then(|e| e.ip)
    }

    /// Looks up each name of `hosts` that is not an IP literal and not known (or has
    /// lapsed), concurrently, each bounded by [`LOOKUP_TIMEOUT`].
    pub async fn prepare<'a>(&self, hosts: impl IntoIterator<Item = &'a str>) {
        // Most next hops are IP literals: no allocation or lock for them.
        let mut names: Vec<&str> = Vec::new();
        for host in hosts {
            if !host.is_empty() && host.len() <= MAX_NAME && !is_ip_literal(host) {
                names.push(host);
            }
        }
        if names.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut wanted: Vec<String> = Vec::new();
        {
            let entries = self.entries();
            for host in names {
                let name = host.to_ascii_lowercase();
                if wanted.contains(&name) || entries.get(&name).is_some_and(|e| e.until > now) {
                    continue;
                }
                wanted.push(name);
            }
        }
        if wanted.is_empty() {
            return;
        }
        let mut lookups = tokio::task::JoinSet::new();
        for name in wanted {
            let Ok(permit) = self.lookups.clone().try_acquire_owned() else {
                tracing::warn!(host = %name, "too many name lookups under way: not looked up");
                continue;
            };
            lookups.spawn(async move {
                let _permit = permit;
                let ip = lookup(&name).await;
                (name, ip)
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = lookups.join_next().await {
            if let Ok(result) = joined {
                results.push(result);
            }
        }
        let now = Instant::now();
        let mut entries = self.entries();
        for (name, ip) in results {
            match ip {
                Some(ip) => tracing::debug!(host = %name, %ip, "next-hop name resolved"),
                None => tracing::info!(host = %name, "next-hop name does not resolve"),
            }
            let ttl = if ip.is_some() {
                POSITIVE_TTL
            } else {
                NEGATIVE_TTL
            };
            self.make_room(&mut entries, now, &name);
            entries.insert(
                name,
                Entry {
                    ip,
                    until: now + ttl,
                },
            );
        }
    }

    /// Makes room for `name` when the cache is full: lapsed entries go, then (still
    /// full) an arbitrary one.
    fn make_room(&self, entries: &mut HashMap<String, Entry>, now: Instant, name: &str) {
        if entries.len() < self.max_entries || entries.contains_key(name) {
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

/// True for an IPv4 literal or a bracketed (or bare) IPv6 literal.
fn is_ip_literal(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>().is_ok()
}

/// The system resolver's first IPv4 address for `name`, else its first IPv6 one.
async fn lookup(name: &str) -> Option<IpAddr> {
    let query = tokio::net::lookup_host((name, 0));
    let addrs: Vec<IpAddr> = match tokio::time::timeout(LOOKUP_TIMEOUT, query).await {
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
    addrs
        .iter()
        .find(|ip| ip.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[tokio::test]
    async fn localhost_resolves_through_the_system_resolver_and_is_kept() {
        let cache = HostCache::new(8);
        assert_eq!(cache.cached("localhost"), None, "not looked up yet");
        cache.prepare(["LOCALHOST", "127.0.0.1", "[::1]"]).await;
        assert_eq!(
            cache.cached("localhost"),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(cache.len(), 1, "IP literals are not looked up");
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_remembered_as_such() {
        let cache = HostCache::new(8);
        // RFC 6761 §6.4: `.invalid` never resolves.
        let name = "no-such-host.invalid";
        cache.prepare([name]).await;
        assert_eq!(cache.cached(name), None);
        assert_eq!(cache.len(), 1, "negative entry kept");
        let long = "a".repeat(MAX_NAME + 1);
        cache.prepare([long.as_str(), ""]).await;
        assert_eq!(cache.len(), 1, "overlong and empty names are not looked up");
    }

    #[tokio::test]
    async fn lookups_under_way_are_bounded() {
        let cache = HostCache::new(8);
        let held: Vec<_> = (0..MAX_LOOKUPS)
            .map(|_| cache.lookups.clone().try_acquire_owned().unwrap())
            .collect();
        cache.prepare(["localhost"]).await;
        assert_eq!(cache.cached("localhost"), None, "no permit: not looked up");
        assert!(cache.is_empty());
        drop(held);
        cache.prepare(["localhost"]).await;
        assert!(cache.cached("localhost").is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn entries_lapse_and_the_cache_stays_bounded() {
        let cache = HostCache::new(2);
        {
            let mut entries = cache.entries();
            let until = Instant::now() + Duration::from_secs(1);
            for name in ["a.test", "b.test"] {
                let ip = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
                entries.insert(name.into(), Entry { ip, until });
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
            entries.insert(name.into(), Entry { ip: None, until });
        }
        cache.make_room(&mut entries, Instant::now(), "c.test");
        assert_eq!(entries.len(), 1);
    }
}
