//! Configuration of the local Diameter node and its peers.

use std::net::IpAddr;
use std::time::Duration;

use super::binding::PeerBinding;
use crate::codec::DEFAULT_MAX_MESSAGE;
use crate::dict::{CX_APPLICATION_ID, VENDOR_3GPP};

/// The local node as advertised in CER/CEA (RFC 6733 §5.3) and the peer timers.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Origin-Host (our DiameterIdentity).
    pub origin_host: String,
    /// Origin-Realm.
    pub origin_realm: String,
    /// Host-IP-Address values advertised.
    pub host_ip_addresses: Vec<IpAddr>,
    /// Vendor-Id of this implementation (0: none).
    pub vendor_id: u32,
    /// Product-Name.
    pub product_name: String,
    /// Firmware-Revision.
    pub firmware_revision: Option<u32>,
    /// Origin-State-Id (changes at each restart).
    pub origin_state_id: u32,
    /// Auth applications supported, advertised as Vendor-Specific-Application-Id with
    /// Vendor-Id 10415 (Cx: 16777216).
    pub applications: Vec<u32>,
    /// Initiator: the Origin-Host values accepted in a CEA (RFC 6733 §5.3).
    pub allowed_peers: Vec<String>,
    /// Responder: the peers allowed to connect and how each one's Origin-Host is bound
    /// to its connection (certificate name or source address; [`super::binding`]). A CER
    /// from anyone else, or not proven by its connection, gets DIAMETER_UNKNOWN_PEER.
    pub bindings: Vec<PeerBinding>,
    /// Responder: refuse plain TCP connections whatever they claim.
    pub require_tls: bool,
    /// Watchdog interval Tw (RFC 3539 §3.4.1; 30 s by default).
    pub watchdog_interval: Duration,
    /// Jitter applied to Tw, ± this value (RFC 3539 suggests 2 s).
    pub watchdog_jitter: Duration,
    /// How long a request waits for its answer.
    pub request_timeout: Duration,
    /// How long CER/CEA and DPR/DPA may take.
    pub exchange_timeout: Duration,
    /// First reconnect delay; doubles at each failure up to `reconnect_max`.
    pub reconnect_min: Duration,
    /// Largest reconnect delay.
    pub reconnect_max: Duration,
    /// Requests remembered, with their answers, for duplicate detection.
    pub duplicate_window: usize,
    /// Requests from the peer being handled at once; beyond, DIAMETER_TOO_BUSY.
    pub max_inflight_requests: usize,
    /// Largest message accepted.
    pub max_message_size: usize,
    /// Where requests and answers are counted (shared by every connection made with
    /// this configuration).
    pub metrics: super::DiameterMetrics,
}

impl PeerConfig {
    /// A Cx node with the defaults of RFC 3539 (Tw 30 s ± 2 s).
    pub fn cx(origin_host: &str, origin_realm: &str) -> PeerConfig {
        PeerConfig {
            origin_host: origin_host.to_owned(),
            origin_realm: origin_realm.to_owned(),
            host_ip_addresses: vec![IpAddr::from([127, 0, 0, 1])],
            vendor_id: 0,
            product_name: "ims-core".to_owned(),
            firmware_revision: None,
            origin_state_id: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as u32)
                .unwrap_or(1),
            applications: vec![CX_APPLICATION_ID],
            allowed_peers: Vec::new(),
            bindings: Vec::new(),
            require_tls: false,
            watchdog_interval: Duration::from_secs(30),
            watchdog_jitter: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            exchange_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            duplicate_window: 1024,
            max_inflight_requests: 1024,
            max_message_size: DEFAULT_MAX_MESSAGE,
            metrics: super::DiameterMetrics::default(),
        }
    }

    /// The vendor of the advertised applications.
    pub(crate) fn application_vendor(&self) -> u32 {
        VENDOR_3GPP
    }

    /// Tw with a random jitter of ± `watchdog_jitter`, never below 1/2 Tw. Both are
    /// taken at most [`MAX_TW_MS`], so the sum cannot overflow whatever they are set to.
    pub(crate) fn jittered_tw(&self) -> Duration {
        let millis =
            |d: Duration| i64::try_from(d.as_millis()).map_or(MAX_TW_MS, |m| m.min(MAX_TW_MS));
        let j = millis(self.watchdog_jitter);
        let delta = if j > 0 {
            rand::random::<i64>().rem_euclid(2 * j + 1) - j
        } else {
            0
        };
        let tw = millis(self.watchdog_interval);
        Duration::from_millis(u64::try_from((tw + delta).max(tw / 2).max(1)).unwrap_or(1))
    }
}

/// The longest watchdog interval (and jitter) used: one day.
pub(crate) const MAX_TW_MS: i64 = 86_400_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jittered_tw_stays_near_tw() {
        let c = PeerConfig::cx("a", "r");
        for _ in 0..100 {
            let tw = c.jittered_tw();
            assert!(
                tw >= Duration::from_secs(28) && tw <= Duration::from_secs(32),
                "{tw:?}"
            );
        }
    }

    /// `as i64` of a huge Tw or jitter once wrapped (Duration::MAX gave a 1 ms
    /// watchdog) or overflowed `2 * j + 1` and `tw + delta` (a panic).
    #[test]
    fn a_huge_tw_or_jitter_is_capped_not_overflowing() {
        let mut c = PeerConfig::cx("a", "r");
        let huge = Duration::from_millis(u64::try_from(i64::MAX).unwrap());
        for (tw, jitter) in [(Duration::MAX, Duration::MAX), (huge, huge)] {
            c.watchdog_interval = tw;
            c.watchdog_jitter = jitter;
            for _ in 0..100 {
                let tw = c.jittered_tw();
                assert!(tw >= Duration::from_millis(43_200_000), "{tw:?}");
                assert!(tw <= Duration::from_millis(172_800_000), "{tw:?}");
                // Usable as a deadline.
                assert!(tokio::time::Instant::now().checked_add(tw).is_some());
            }
        }
    }
}
