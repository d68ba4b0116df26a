//! The order of the registrar's changes per identity: a change of a registration (read
//! its bindings, apply a REGISTER, an expiry, an RTR or a PPR, persist, update the
//! memory) runs under the lock of the identities it touches, so two changes of one
//! identity apply one after the other, while changes of other identities run at the same
//! time and share the store's transactions ([`crate::store::writer`]).
//!
//! The locks are a fixed number of shards (bounded memory whatever the number of
//! identities), an identity's shard chosen by a hash keyed at random per process. Two
//! identities of one shard wait for each other, which costs time, never order. A holder
//! of several identities takes their shards in ascending order, so that holders cannot
//! wait for each other in a cycle.

use std::hash::BuildHasher;

use tokio::sync::{Mutex, MutexGuard};

/// Shards of [`IdentityLocks::new`] in the registrar.
pub const SHARDS: usize = 1024;

/// The per-identity locks.
#[derive(Debug)]
pub struct IdentityLocks {
    shards: Box<[Mutex<()>]>,
    hasher: std::collections::hash_map::RandomState,
}

/// The locks of some identities, released when dropped.
#[derive(Debug)]
#[must_use = "the identities are unlocked when the guard is dropped"]
pub struct IdentityGuard<'a> {
    _held: Vec<MutexGuard<'a, ()>>,
}

impl IdentityLocks {
    /// `shards` locks (at least one).
    pub fn new(shards: usize) -> IdentityLocks {
        IdentityLocks {
            shards: (0..shards.max(1)).map(|_| Mutex::new(())).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn shard_of(&self, identity: &str) -> usize {
        // The remainder is below the number of shards, a usize.
        usize::try_from(self.hasher.hash_one(identity) % self.shards.len() as u64).unwrap_or(0)
    }

    /// Waits for the locks of `identities` (repeated ones taken once). The caller must
    /// not hold another [`IdentityGuard`] of these locks.
    pub async fn lock<'i>(
        &self,
        identities: impl IntoIterator<Item = &'i str>,
    ) -> IdentityGuard<'_> {
        let mut shards: Vec<usize> = identities.into_iter().map(|i| self.shard_of(i)).collect();
        shards.sort_unstable();
        shards.dedup();
        let mut held = Vec::with_capacity(shards.len());
        for shard in shards {
            if let Some(lock) = self.shards.get(shard) {
                held.push(lock.lock().await);
            }
        }
        IdentityGuard { _held: held }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_identity_waits_others_do_not() {
        let locks = Arc::new(IdentityLocks::new(SHARDS));
        let alice = locks.lock(["sip:alice@x"]).await;
        // Find an identity of another shard (the hash is random per process).
        let other = (0..)
            .map(|i| format!("sip:user{i}@x"))
            .find(|u| locks.shard_of(u) != locks.shard_of("sip:alice@x"))
            .unwrap();
        let other = tokio::time::timeout(Duration::from_secs(5), locks.lock([other.as_str()]))
            .await
            .expect("another shard is free");
        drop(other);
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move {
                let _g = locks
                    .lock(["sip:bob@x", "sip:alice@x", "sip:alice@x"])
                    .await;
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "alice is held");
        drop(alice);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("alice released")
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn holders_of_several_identities_do_not_deadlock() {
        let locks = Arc::new(IdentityLocks::new(4));
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let locks = locks.clone();
                tokio::spawn(async move {
                    let (a, b) = (format!("sip:{}@x", i % 7), format!("sip:{}@x", (i * 3) % 5));
                    // Either order of the arguments: the shards are taken ascending.
                    let ids = if i % 2 == 0 { [a, b] } else { [b, a] };
                    let _g = locks.lock(ids.iter().map(String::as_str)).await;
                    tokio::task::yield_now().await;
                })
            })
            .collect();
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("no deadlock")
                .unwrap();
        }
    }
}
