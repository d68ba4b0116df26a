//! Whether a registration refresh must be written to a node's store (issue 12). The
//! P-CSCF and the S-CSCF write a registration before their 200 to REGISTER, so that an
//! acknowledged registration survives a restart; a refresh that changes nothing stored
//! but the expiry need not be written while the stored expiry lags the acknowledged one
//! by at most [`bound`]: `min(duration / 20, 60 s)`, the duration being what the
//! registrar granted. Its 200 then waits for no commit.
//!
//! After a crash such a registration comes back with an expiry at most [`bound`] early,
//! which still outlasts the UE's next refresh: TS 24.229 §5.1.1.4.1 has a UE refresh
//! 600 s before expiry when registered for more than 1 200 s, else at half the time, and
//! ordinary UAs refresh well before expiry too. (Kamailio's usrloc write-back mode loses
//! every refresh of up to its timer interval; this bound is per registration and small.)
//!
//! Times are in seconds (UNIX times for the expiries); every value may be hostile, and
//! nothing here overflows or panics.

/// Most seconds a stored expiry may lag the acknowledged one, whatever the duration.
pub const MAX_LAG_SECS: u64 = 60;

/// The stored expiry may lag the acknowledged one by at most this fraction (`1 / 20`)
/// of the duration granted.
pub const DURATION_DIVISOR: u64 = 20;

/// The most a stored expiry may lag the acknowledged one for a registration granted
/// `duration_secs`: `min(duration / 20, 60)` seconds.
pub fn bound(duration_secs: u64) -> u64 {
    (duration_secs / DURATION_DIVISOR).min(MAX_LAG_SECS)
}

/// Whether a refresh that leaves everything stored as it is but the expiry must be
/// written: the store holds expiry `written_at`, the 200 acknowledges `acknowledged_at`
/// for a grant of `duration_secs`. True when the stored expiry would lag by more than
/// [`bound`], and when the acknowledged expiry is earlier than the stored one (the
/// store would keep the registration longer than granted).
pub fn needs_write(written_at: u64, acknowledged_at: u64, duration_secs: u64) -> bool {
    match acknowledged_at.checked_sub(written_at) {
        Some(lag) => lag > bound(duration_secs),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_a_twentieth_of_the_duration_at_most_a_minute() {
        assert_eq!(bound(0), 0);
        assert_eq!(bound(19), 0);
        assert_eq!(bound(60), 3);
        assert_eq!(bound(600), 30);
        assert_eq!(bound(1_199), 59);
        assert_eq!(bound(1_200), 60);
        assert_eq!(bound(3_600), 60);
        assert_eq!(bound(u64::from(u32::MAX)), 60);
        assert_eq!(bound(u64::MAX), 60);
    }

    #[test]
    fn a_lag_within_the_bound_is_not_written() {
        // 3 600 s granted: up to 60 s of lag.
        assert!(!needs_write(10_000, 10_000, 3_600));
        assert!(!needs_write(10_000, 10_001, 3_600));
        assert!(!needs_write(10_000, 10_060, 3_600));
        // 600 s granted: up to 30 s.
        assert!(!needs_write(10_000, 10_030, 600));
        // Nothing changed, whatever the duration.
        assert!(!needs_write(10_000, 10_000, 0));
    }

    #[test]
    fn a_lag_beyond_the_bound_or_an_earlier_expiry_is_written() {
        assert!(needs_write(10_000, 10_061, 3_600));
        assert!(needs_write(10_000, 10_031, 600));
        // A registration under 20 s has no slack.
        assert!(needs_write(10_000, 10_001, 19));
        // Shortened: the store would outlive the grant.
        assert!(needs_write(10_000, 9_999, 3_600));
    }

    #[test]
    fn hostile_values_neither_overflow_nor_panic() {
        let extremes = [
            0,
            1,
            59,
            60,
            61,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ];
        for w in extremes {
            for a in extremes {
                for d in extremes {
                    let lag = a.checked_sub(w);
                    assert_eq!(
                        needs_write(w, a, d),
                        lag.is_none_or(|l| l > bound(d)),
                        "{w} {a} {d}"
                    );
                }
            }
        }
        assert!(needs_write(0, u64::MAX, u64::MAX));
        assert!(needs_write(u64::MAX, 0, u64::MAX));
        assert!(!needs_write(u64::MAX, u64::MAX, 0));
        assert!(!needs_write(u64::MAX - 60, u64::MAX, u64::MAX));
    }
}
