//! The bounded validation cache: entries keyed by the SHA-256 of the token, each with its own
//! deadline, evicted oldest-inserted first when full.

use std::collections::{HashMap, VecDeque};

use sha2::{Digest, Sha256};
use tokio::time::Instant;

/// Cache key: SHA-256 of the token, so the cache never holds a token itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Key([u8; 32]);

impl Key {
    pub(super) fn of(token: &str) -> Key {
        Key(Sha256::digest(token.as_bytes()).into())
    }

    /// A short, non-reversible name for logs.
    pub(super) fn short(&self) -> String {
        self.0.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }
}

struct Slot<V> {
    value: V,
    deadline: Instant,
    generation: u64,
}

/// At most `capacity` entries. Expired entries are dropped when looked up or evicted.
pub(super) struct TokenCache<V> {
    map: HashMap<Key, Slot<V>>,
    /// Insertion order; an element whose generation no longer matches its slot is stale.
    order: VecDeque<(Key, u64)>,
    capacity: usize,
    next_generation: u64,
}

impl<V: Clone> TokenCache<V> {
    pub(super) fn new(capacity: usize) -> Self {
        TokenCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            next_generation: 0,
        }
    }

    /// The value for `key` if its deadline is after `now`.
    pub(super) fn get(&mut self, key: &Key, now: Instant) -> Option<V> {
        let slot = self.map.get(key)?;
        if slot.deadline > now {
            return Some(slot.value.clone());
        }
        self.map.remove(key);
        None
    }

    /// Stores `value` until `deadline`, evicting the oldest entries beyond the capacity.
    pub(super) fn insert(&mut self, key: Key, value: V, deadline: Instant) {
        if self.capacity == 0 {
            return;
        }
        self.next_generation += 1;
        let generation = self.next_generation;
        self.map.insert(
            key,
            Slot {
                value,
                deadline,
                generation,
            },
        );
        self.order.push_back((key, generation));
        while self.map.len() > self.capacity {
            let Some((old, g)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|s| s.generation == g) {
                self.map.remove(&old);
            }
        }
        // Re-inserted and expired keys leave stale order entries; keep the queue bounded.
        if self.order.len() > 2 * self.capacity + 16 {
            let map = &self.map;
            self.order
                .retain(|(k, g)| map.get(k).is_some_and(|s| s.generation == *g));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn entry_lives_until_its_deadline() {
        let mut c = TokenCache::new(4);
        let k = Key::of("t1");
        let now = Instant::now();
        c.insert(k, 1, now + Duration::from_secs(5));
        assert_eq!(c.get(&k, Instant::now()), Some(1));
        tokio::time::advance(Duration::from_millis(4999)).await;
        assert_eq!(c.get(&k, Instant::now()), Some(1));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(c.get(&k, Instant::now()), None);
        assert_eq!(c.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn capacity_evicts_oldest_first() {
        let mut c = TokenCache::new(2);
        let far = Instant::now() + Duration::from_secs(60);
        let (a, b, d) = (Key::of("a"), Key::of("b"), Key::of("d"));
        c.insert(a, 'a', far);
        c.insert(b, 'b', far);
        c.insert(d, 'd', far);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&a, Instant::now()), None);
        assert_eq!(c.get(&b, Instant::now()), Some('b'));
        assert_eq!(c.get(&d, Instant::now()), Some('d'));
        // Re-inserting b makes it the newest: the next eviction takes d.
        c.insert(b, 'B', far);
        c.insert(a, 'a', far);
        assert_eq!(c.get(&d, Instant::now()), None);
        assert_eq!(c.get(&b, Instant::now()), Some('B'));
    }

    #[tokio::test(start_paused = true)]
    async fn order_queue_stays_bounded_under_reinsertion() {
        let mut c = TokenCache::new(3);
        let far = Instant::now() + Duration::from_secs(60);
        let k = Key::of("same");
        for i in 0..1000 {
            c.insert(k, i, far);
        }
        assert_eq!(c.len(), 1);
        assert!(c.order.len() <= 2 * 3 + 16 + 1, "{}", c.order.len());
        assert_eq!(c.get(&k, Instant::now()), Some(999));
    }

    #[test]
    fn zero_capacity_stores_nothing() {
        let mut c = TokenCache::new(0);
        let k = Key::of("x");
        c.insert(k, 1, Instant::now() + Duration::from_secs(1));
        assert_eq!(c.get(&k, Instant::now()), None);
    }

    #[test]
    fn key_is_the_sha256_of_the_token() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(Key::of("abc").short(), "ba7816bf8f01");
    }
}
