//! Configuration of a proxy engine.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use crate::proxy::ProxyConfig;
use crate::transaction::{LayerLimits, TimerConfig};

/// What a [`super::ProxyEngine`] needs beyond its transport configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Our names and supported option tags (§16.3 step 5, §16.4). The engine adds the
    /// bound listener addresses to `local`.
    pub proxy: ProxyConfig,
    /// Host written into our Via sent-by and Record-Route; the listener's IP address
    /// when `None` (then listeners must not be bound to a wildcard address).
    pub advertise: Option<String>,
    /// Transaction timers: T1 (Timers B and F are 64*T1) and Timer C.
    pub timers: TimerConfig,
    /// Limits of the transaction layer.
    pub limits: LayerLimits,
    /// Static host name to IP address map for next hops (no DNS); `localhost` resolves
    /// to 127.0.0.1 unless mapped here.
    pub hosts: HashMap<String, IpAddr>,
    /// Depth of the engine's internal queues.
    pub queue: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            proxy: ProxyConfig::default(),
            advertise: None,
            timers: TimerConfig::default(),
            limits: LayerLimits::default(),
            hosts: HashMap::new(),
            queue: 1024,
        }
    }
}

impl EngineConfig {
    /// The IP address of a next-hop host name: the host map, then `localhost`.
    pub fn resolve(&self, host: &str) -> Option<IpAddr> {
        self.hosts
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(host))
            .map(|(_, ip)| *ip)
            .or_else(|| {
                host.eq_ignore_ascii_case("localhost")
                    .then_some(IpAddr::V4(Ipv4Addr::LOCALHOST))
            })
    }
}
