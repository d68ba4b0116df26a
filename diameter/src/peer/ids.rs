//! Hop-by-Hop and End-to-End identifiers (RFC 6733 §3).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Generates the identifiers of the requests a node sends.
#[derive(Debug)]
pub struct IdGenerator {
    hop_by_hop: AtomicU32,
    end_to_end: AtomicU32,
}

impl IdGenerator {
    /// Hop-by-Hop starts at a random value; End-to-End has its high 12 bits from the
    /// low 12 bits of the current time in seconds and its low 20 bits random, then both
    /// increment (RFC 6733 §3).
    pub fn new() -> IdGenerator {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let high = ((secs & 0xfff) as u32) << 20;
        let low = rand::random::<u32>() & 0x000f_ffff;
        IdGenerator {
            hop_by_hop: AtomicU32::new(rand::random()),
            end_to_end: AtomicU32::new(high | low),
        }
    }

    /// The next Hop-by-Hop Identifier.
    pub fn next_hop_by_hop(&self) -> u32 {
        self.hop_by_hop.fetch_add(1, Ordering::Relaxed)
    }

    /// The next End-to-End Identifier.
    pub fn next_end_to_end(&self) -> u32 {
        self.end_to_end.fetch_add(1, Ordering::Relaxed)
    }
}

impl Default for IdGenerator {
    fn default() -> Self {
        IdGenerator::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_to_end_has_time_in_high_bits_and_increments() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let g = IdGenerator::new();
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let a = g.next_end_to_end();
        let b = g.next_end_to_end();
        assert_eq!(b, a.wrapping_add(1));
        let high = u64::from(a >> 20);
        assert!(high == before & 0xfff || high == after & 0xfff);
        let h = g.next_hop_by_hop();
        assert_eq!(g.next_hop_by_hop(), h.wrapping_add(1));
    }
}
