//! The request filter's decision cache: bounded memory, wiped by the invalidation feed.
//!
//! A decision is keyed by 128 bits of the SHA-256 of the question (the token's user,
//! project and roles, the IMS identity, the target, its tenant and the verb), so the
//! cache holds no token and no identity, and one entry costs its 16-byte key and an
//! 8-byte value in a hash table (about 30 bytes a decision; `bytes_per_decision` tells).
//! Two generations bound it: when the young one holds half the capacity, it becomes the
//! old one and the previous old one is dropped; a hit in the old generation moves back
//! into the young one. [`DecisionCache::clear`] drops both at once and advances an epoch,
//! so an answer asked for before a wipe is never stored after it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};
use tokio::time::Instant;

/// A question's key: 128 bits of a SHA-256, so a hash of it is as good as any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u64; 2]);

impl Key {
    /// The key of a question; each part is length-prefixed so no two questions share it.
    pub fn of(parts: &[&str]) -> Key {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p.as_bytes());
        }
        let d = h.finalize();
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&d[..8]);
        b.copy_from_slice(&d[8..16]);
        Key([u64::from_le_bytes(a), u64::from_le_bytes(b)])
    }
}

/// The key is already uniformly distributed: its first word is the hash.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only reached through `Hash for [u64; 2]` (length prefix, then the words).
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
    fn write_usize(&mut self, _: usize) {}
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    allow: bool,
    /// Seconds after the cache's start when the entry stops being used.
    deadline: u32,
}

type Table = HashMap<Key, Entry, BuildHasherDefault<KeyHasher>>;

#[derive(Default)]
struct Generations {
    young: Table,
    old: Table,
    epoch: u64,
}

/// Bounded decision cache; `capacity` 0 disables it (every decision is asked).
pub struct DecisionCache {
    inner: Mutex<Generations>,
    capacity: usize,
    ttl_secs: u32,
    start: Instant,
}

/// The epoch a question was asked in, to store its answer only if no wipe came between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(u64);

impl DecisionCache {
    /// At most `capacity` decisions, each used for at most `ttl_secs`.
    pub fn new(capacity: usize, ttl_secs: u32) -> DecisionCache {
        DecisionCache {
            inner: Mutex::new(Generations::default()),
            capacity,
            ttl_secs,
            start: Instant::now(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_secs(&self) -> u32 {
        u32::try_from(self.start.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    /// The cached decision (`true` = allow), if any and still fresh; with the current
    /// epoch, to pass to [`DecisionCache::insert`] after asking.
    pub fn get(&self, key: &Key) -> (Option<bool>, Epoch) {
        if self.capacity == 0 {
            return (None, Epoch(0));
        }
        let now = self.now_secs();
        let mut g = self.lock();
        let epoch = Epoch(g.epoch);
        if let Some(e) = g.young.get(key) {
            return ((e.deadline > now).then_some(e.allow), epoch);
        }
        let Some(e) = g.old.remove(key) else {
            return (None, epoch);
        };
        if e.deadline <= now {
            return (None, epoch);
        }
        self.put(&mut g, *key, e);
        (Some(e.allow), epoch)
    }

    fn put(&self, g: &mut Generations, key: Key, entry: Entry) {
        if g.young.len() >= self.capacity.div_ceil(2) {
            g.old = std::mem::take(&mut g.young);
        }
        g.young.insert(key, entry);
    }

    /// Stores a decision asked for in `epoch`, unless the cache was wiped since.
    pub fn insert(&self, key: Key, allow: bool, epoch: Epoch) {
        if self.capacity == 0 {
            return;
        }
        let deadline = self.now_secs().saturating_add(self.ttl_secs);
        let mut g = self.lock();
        if g.epoch != epoch.0 {
            return;
        }
        self.put(&mut g, key, Entry { allow, deadline });
    }

    /// Drops every decision (a policy changed).
    pub fn clear(&self) {
        let mut g = self.lock();
        g.epoch += 1;
        g.young = Table::default();
        g.old = Table::default();
    }

    /// Decisions held.
    pub fn len(&self) -> usize {
        let g = self.lock();
        g.young.len() + g.old.len()
    }

    /// Whether no decision is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes of the tables per decision held (hash-table slots and control bytes,
    /// allocated capacity included).
    pub fn bytes_per_decision(&self) -> f64 {
        let g = self.lock();
        let slot = std::mem::size_of::<(Key, Entry)>() + 1;
        let bytes = (g.young.capacity() + g.old.capacity()) * slot;
        let n = g.young.len() + g.old.len();
        if n == 0 {
            0.0
        } else {
            bytes as f64 / n as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> Key {
        Key::of(&["user", "project", &i.to_string()])
    }

    #[test]
    fn keys_do_not_collide_across_field_boundaries() {
        assert_ne!(Key::of(&["ab", "c"]), Key::of(&["a", "bc"]));
        assert_eq!(Key::of(&["a", "b"]), Key::of(&["a", "b"]));
    }

    #[test]
    fn stores_and_answers_decisions() {
        let c = DecisionCache::new(100, 60);
        let (hit, epoch) = c.get(&key(1));
        assert_eq!(hit, None);
        c.insert(key(1), true, epoch);
        c.insert(key(2), false, epoch);
        assert_eq!(c.get(&key(1)).0, Some(true));
        assert_eq!(c.get(&key(2)).0, Some(false));
    }

    #[test]
    fn a_wipe_drops_everything_and_refuses_answers_asked_before_it() {
        let c = DecisionCache::new(100, 60);
        let (_, before) = c.get(&key(1));
        c.insert(key(1), true, before);
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.get(&key(1)).0, None);
        // An answer to a question asked before the wipe is stale: not stored.
        c.insert(key(2), true, before);
        assert_eq!(c.get(&key(2)).0, None);
        let (_, after) = c.get(&key(2));
        c.insert(key(2), true, after);
        assert_eq!(c.get(&key(2)).0, Some(true));
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        let c = DecisionCache::new(1000, 60);
        for i in 0..10_000 {
            let (_, e) = c.get(&key(i));
            c.insert(key(i), true, e);
            assert!(c.len() <= 1000);
        }
        // The most recent ones are still there.
        assert_eq!(c.get(&key(9_999)).0, Some(true));
        assert!(c.bytes_per_decision() < 64.0, "{}", c.bytes_per_decision());
    }

    #[test]
    fn an_old_hit_is_kept_through_the_next_turnover() {
        let c = DecisionCache::new(4, 60);
        let e = c.get(&key(0)).1;
        c.insert(key(0), true, e);
        c.insert(key(1), true, e);
        // key(0) and key(1) move to the old generation here.
        c.insert(key(2), true, e);
        assert_eq!(c.get(&key(0)).0, Some(true)); // promoted back
        c.insert(key(3), true, e);
        c.insert(key(4), true, e);
        assert_eq!(c.get(&key(0)).0, Some(true));
        assert!(c.len() <= 4);
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let c = DecisionCache::new(0, 60);
        let (_, e) = c.get(&key(1));
        c.insert(key(1), true, e);
        assert_eq!(c.get(&key(1)).0, None);
    }

    #[tokio::test(start_paused = true)]
    async fn decisions_expire_after_their_ttl() {
        let c = DecisionCache::new(10, 2);
        let (_, e) = c.get(&key(1));
        c.insert(key(1), true, e);
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        assert_eq!(c.get(&key(1)).0, Some(true));
        tokio::time::advance(std::time::Duration::from_secs(2)).await;
        assert_eq!(c.get(&key(1)).0, None);
    }
}
