//! Transaction timers (RFC 3261 §17 and Table 4 of Appendix A; RFC 6026 §8.11 for
//! Timers L and M).
//!
//! Over a reliable transport the retransmission timers (A, E, G) are never set and the
//! wait timers D, I, J and K are zero, so the transaction terminates at once
//! (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2).

use std::time::Duration;

/// One of the named transaction timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE request retransmit interval, UDP only (§17.1.1.2).
    A,
    /// INVITE transaction timeout (§17.1.1.2).
    B,
    /// Proxy INVITE transaction timeout, > 3 min (§16.6 step 11, §16.8).
    C,
    /// Wait time for response retransmits in the INVITE client Completed state (§17.1.1.2).
    D,
    /// Non-INVITE request retransmit interval, UDP only (§17.1.2.2).
    E,
    /// Non-INVITE transaction timeout (§17.1.2.2).
    F,
    /// INVITE final response retransmit interval (§17.2.1).
    G,
    /// Wait time for ACK receipt (§17.2.1).
    H,
    /// Wait time for ACK retransmits (§17.2.1).
    I,
    /// Wait time for non-INVITE request retransmits (§17.2.2).
    J,
    /// Wait time for response retransmits in the non-INVITE client Completed state (§17.1.2.2).
    K,
    /// Wait time for accepted INVITE request retransmits, INVITE server (RFC 6026 §8.7).
    L,
    /// Wait time for retransmission of 2xx to INVITE, INVITE client (RFC 6026 §8.4).
    M,
}

/// The base timer values T1, T2, T4 and the proxy's Timer C (RFC 3261 Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Maximum duration a message remains in the network, 5 s.
    pub t4: Duration,
    /// Timer C for INVITE client transactions of a proxy (RFC 3261 §16.6 step 11:
    /// greater than 3 minutes); `None` for user agents, which do not run it.
    pub timer_c: Option<Duration>,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_c: Some(Duration::from_secs(181)),
        }
    }
}

impl TimerConfig {
    /// 64*T1: Timers B, F, H, J (unreliable), L and M.
    pub fn t1x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer D: at least 32 s over unreliable transports, zero over reliable ones.
    pub fn d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t1x64().max(Duration::from_secs(32))
        }
    }

    /// Timers I and K: T4 over unreliable transports, zero over reliable ones.
    pub fn t4_unless_reliable(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t4
        }
    }

    /// Timer J: 64*T1 over unreliable transports, zero over reliable ones.
    pub fn j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t1x64()
        }
    }

    /// The next non-INVITE request / INVITE response retransmit interval (Timers E
    /// and G): doubled, capped at T2.
    pub fn backoff(&self, interval: Duration) -> Duration {
        interval.saturating_mul(2).min(self.t2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_table4_defaults() {
        let c = TimerConfig::default();
        assert_eq!(c.t1x64(), Duration::from_secs(32));
        assert_eq!(c.d(false), Duration::from_secs(32));
        assert_eq!(c.d(true), Duration::ZERO);
        assert_eq!(c.t4_unless_reliable(false), Duration::from_secs(5));
        assert_eq!(c.t4_unless_reliable(true), Duration::ZERO);
        assert_eq!(c.j(false), Duration::from_secs(32));
        assert_eq!(c.j(true), Duration::ZERO);
        assert!(c.timer_c.is_some_and(|d| d > Duration::from_secs(180)));
    }

    #[test]
    fn timer_d_is_at_least_32s_with_a_small_t1() {
        let c = TimerConfig {
            t1: Duration::from_millis(100),
            ..TimerConfig::default()
        };
        assert_eq!(c.d(false), Duration::from_secs(32));
        assert_eq!(c.t1x64(), Duration::from_millis(6400));
    }

    #[test]
    fn backoff_doubles_up_to_t2() {
        let c = TimerConfig::default();
        let mut i = c.t1;
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(i.as_millis());
            i = c.backoff(i);
        }
        assert_eq!(seen, [500, 1000, 2000, 4000, 4000]);
    }
}
