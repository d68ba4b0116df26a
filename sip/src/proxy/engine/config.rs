//! Configuration of a proxy engine.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::resolver::{Hop, HostCache, Servers};
use crate::proxy::routing::NextHop;
use crate::proxy::ProxyConfig;
use crate::transaction::{LayerLimits, TimerConfig};
use crate::transport::{Face, TransportKind};

/// What a [`super::ProxyEngine`] needs beyond its transport configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Our names and supported option tags (§16.3 step 5, §16.4). The engine adds the
    /// bound listener addresses to `local`.
    pub proxy: ProxyConfig,
    /// Host written into our Via sent-by and Record-Route for the listeners of
    /// [`Face::Main`]; the listener's IP address when `None` (then listeners must not
    /// be bound to a wildcard address).
    pub advertise: Option<String>,
    /// The same for the listeners of [`Face::Core`].
    pub advertise_core: Option<String>,
    /// Transaction timers: T1 (Timers B and F are 64*T1) and Timer C.
    pub timers: TimerConfig,
    /// Limits of the transaction layer.
    pub limits: LayerLimits,
    /// Static host name to IP address map for next hops, asked before DNS.
    pub hosts: HashMap<String, IpAddr>,
    /// Next-hop names resolved per RFC 3263 (NAPTR, SRV, A/AAAA: [`HostCache`]).
    pub names: Arc<HostCache>,
    /// How long a branch whose next hop has another server left (DNS SRV targets,
    /// several addresses) may go without any response before that server is given up
    /// and the next one tried (RFC 3263 §4.3); `None`: only the transaction's own
    /// timeout (Timer B/F) fails over. Also bounded by the forward's
    /// [`super::Forward::no_response_timeout`].
    pub failover_after: Option<Duration>,
    /// The transports the engine has listeners for (NAPTR and SRV choose among
    /// these); filled in by [`super::ProxyEngine::start`].
    pub transports: Vec<TransportKind>,
    /// Depth of the engine's internal queues.
    pub queue: usize,
    /// How many shards (`core` tasks, each with its own UDP sockets, transactions and
    /// timers; [`super::MAX_SHARDS`] at most) the engine runs. 1, the default, is one
    /// task and one socket per listener; more need as many runtime worker threads to
    /// run in parallel.
    pub shards: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            proxy: ProxyConfig::default(),
            advertise: None,
            advertise_core: None,
            timers: TimerConfig::default(),
            limits: LayerLimits::default(),
            hosts: HashMap::new(),
            names: Arc::new(HostCache::default()),
            failover_after: None,
            transports: Vec::new(),
            queue: 1024,
            shards: 1,
        }
    }
}

impl EngineConfig {
    /// The advertised host of the listeners facing `face`, if any.
    pub fn advertised(&self, face: Face) -> Option<&str> {
        match face {
            Face::Main => self.advertise.as_deref(),
            Face::Core => self.advertise_core.as_deref(),
        }
    }

    /// The IP address of a next-hop host name: the host map, then the cache's answer
    /// for the name with a port ([`HostCache::cached`]).
    pub fn resolve(&self, host: &str) -> Option<IpAddr> {
        self.mapped(host).or_else(|| self.names.cached(host))
    }

    fn mapped(&self, host: &str) -> Option<IpAddr> {
        self.hosts
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(host))
            .map(|(_, ip)| *ip)
    }

    /// The servers to try for `hop`, in order: a host of the host map on the URI's
    /// port, else what [`HostCache::targets`] knows (empty when nothing).
    pub fn targets(&self, hop: &NextHop) -> Servers {
        if let Some(ip) = self.mapped(&hop.host) {
            return smallvec::smallvec![Hop {
                kind: hop.transport,
                addr: std::net::SocketAddr::new(ip, hop.port),
            }];
        }
        self.names.targets(hop, &mut rand::thread_rng())
    }

    /// Looks up the next hops among `hops` whose hosts the host map does not hold.
    pub async fn prepare(&self, hops: &[NextHop]) {
        let unmapped = hops.iter().filter(|h| self.mapped(&h.host).is_none());
        self.names.prepare(unmapped, &self.transports).await;
    }
}
