//! Configuration of a proxy engine.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::resolver::HostCache;
use crate::proxy::ProxyConfig;
use crate::transaction::{LayerLimits, TimerConfig};
use crate::transport::Face;

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
    /// Static host name to IP address map for next hops, asked before the system
    /// resolver.
    pub hosts: HashMap<String, IpAddr>,
    /// Next-hop names resolved by the system resolver ([`HostCache`]).
    pub names: Arc<HostCache>,
    /// Depth of the engine's internal queues.
    pub queue: usize,
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
            queue: 1024,
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

    /// The IP address of a next-hop host name: the host map, then what the system
    /// resolver answered when the name was prepared ([`HostCache::prepare`]).
    pub fn resolve(&self, host: &str) -> Option<IpAddr> {
        self.hosts
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(host))
            .map(|(_, ip)| *ip)
            .or_else(|| self.names.cached(host))
    }

    /// Looks up the names among `hosts` the host map does not hold.
    pub async fn prepare<'a>(&self, hosts: impl IntoIterator<Item = &'a str>) {
        let unmapped = hosts
            .into_iter()
            .filter(|h| !self.hosts.keys().any(|n| n.eq_ignore_ascii_case(h)));
        self.names.prepare(unmapped).await;
    }
}
