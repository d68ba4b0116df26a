//! In-memory copies of the subscriptions read through a SQLite store, so that the Cx
//! requests of a registration (two UARs, a MAR and a SAR, each needing the whole
//! subscription) do not read the same eight tables four times. SQLite is embedded: this
//! process is the only writer of its file, and every write of the store goes through
//! [`Store`](super::Store), which keeps the copies right:
//!
//! * a registration or SQN change updates the cached copy in place after its commit;
//! * any other write (create, update, delete of a subscription) empties the cache;
//! * a subscription read from the database is cached only if no write that could have
//!   raced with the read (a generation counter moved) and no other reader cached it in the
//!   meantime, so a stale read never replaces a newer copy.
//!
//! With each subscription it keeps the digest HA1 of its IMPIs as they are stored,
//! sealed ([`SealedHa1`]), read by the same query, so that a SIP Digest MAR needs no
//! database round trip either. They follow the subscription: cached with it, forgotten
//! with it (any provisioning write empties the cache, so a changed password or a deleted
//! IMPI is never answered from an old copy).
//!
//! The cache is bounded ([`CAPACITY`] subscriptions; emptied when full). PostgreSQL
//! stores have none: several HSS front ends may share one database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::model::{Registration, Subscription};
use super::sealed_ha1::SealedHa1;

/// Most subscriptions kept.
pub const CAPACITY: usize = 50_000;

#[derive(Debug, Default)]
struct Inner {
    /// Moves whenever a write could not be applied to a cached copy.
    generation: u64,
    by_id: HashMap<String, Arc<Subscription>>,
    /// Owner subscription of each cached IMPU and IMPI.
    by_impu: HashMap<String, String>,
    by_impi: HashMap<String, String>,
    /// Sealed HA1 of each cached IMPI that has one.
    ha1: HashMap<String, SealedHa1>,
}

/// What identifies the subscription to look up.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    /// Subscription id.
    Id(&'a str),
    /// A public identity of it.
    Impu(&'a str),
    /// A private identity of it.
    Impi(&'a str),
}

/// The subscription cache of a SQLite store.
#[derive(Debug, Default)]
pub struct Cache {
    inner: Mutex<Inner>,
    /// Lookups answered from the cache.
    pub hits: AtomicU64,
    /// Lookups that had to read the database.
    pub misses: AtomicU64,
}

impl Cache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached subscription for `key`, shared (a later write replaces the copy the
    /// cache holds, never the one handed out).
    pub fn get(&self, key: Key<'_>) -> Option<Arc<Subscription>> {
        let inner = self.lock();
        let id = match key {
            Key::Id(id) => Some(id),
            Key::Impu(impu) => inner.by_impu.get(impu).map(String::as_str),
            Key::Impi(impi) => inner.by_impi.get(impi).map(String::as_str),
        };
        let found = id.and_then(|id| inner.by_id.get(id).cloned());
        self.count(found.is_some());
        found
    }

    fn count(&self, hit: bool) {
        let c = if hit { &self.hits } else { &self.misses };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The sealed HA1 of `impi` when its subscription is cached: `Some(None)` when the
    /// IMPI has none, `None` when it is not cached.
    pub fn ha1(&self, impi: &str) -> Option<Option<SealedHa1>> {
        let inner = self.lock();
        let found = inner
            .by_impi
            .contains_key(impi)
            .then(|| inner.ha1.get(impi).cloned());
        self.count(found.is_some());
        found
    }

    /// The generation to pass to [`Cache::insert`] after reading from the database.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Caches `sub` and the sealed HA1 of its IMPIs (`ha1`), read from the database after
    /// [`Cache::generation`] returned `generation`, unless a write moved the generation
    /// since or a copy is cached.
    pub fn insert(&self, generation: u64, sub: &Arc<Subscription>, ha1: &[(String, SealedHa1)]) {
        let mut inner = self.lock();
        if inner.generation != generation || inner.by_id.contains_key(&sub.id) {
            return;
        }
        if inner.by_id.len() >= CAPACITY {
            inner.clear();
        }
        for p in &sub.public_identities {
            inner
                .by_impu
                .insert(p.identity.impu.clone(), sub.id.clone());
        }
        for p in &sub.private_identities {
            inner.by_impi.insert(p.impi.clone(), sub.id.clone());
        }
        for p in &sub.private_identities {
            match ha1.iter().find(|(impi, _)| *impi == p.impi) {
                Some((_, sealed)) => inner.ha1.insert(p.impi.clone(), sealed.clone()),
                None => inner.ha1.remove(&p.impi),
            };
        }
        inner.by_id.insert(sub.id.clone(), Arc::clone(sub));
    }

    /// Forgets everything (after a write that changed subscriptions wholesale).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Records, after its commit, that each of `impus` now has `registration`.
    pub fn set_registration(&self, impus: &[&str], registration: &Registration) {
        let mut inner = self.lock();
        for impu in impus {
            let updated = inner.modify(Key::Impu(impu), |sub| {
                sub.public_identities
                    .iter_mut()
                    .filter(|p| p.identity.impu == *impu)
                    .for_each(|p| p.registration = registration.clone());
            });
            if !updated {
                inner.generation += 1;
            }
        }
    }

    /// Records, after its commit, that SQN_HE of `impi` is now `sqn`.
    pub fn set_sqn(&self, impi: &str, sqn: u64) {
        let mut inner = self.lock();
        let updated = inner.modify(Key::Impi(impi), |sub| {
            sub.private_identities
                .iter_mut()
                .filter(|p| p.impi == impi)
                .filter_map(|p| p.auth.aka.as_mut())
                .for_each(|a| a.sqn = sqn);
        });
        if !updated {
            inner.generation += 1;
        }
    }
}

impl Inner {
    fn clear(&mut self) {
        self.generation += 1;
        self.by_id.clear();
        self.by_impu.clear();
        self.by_impi.clear();
        self.ha1.clear();
    }

    /// Applies `f` to the cached subscription of `key`; false if none is cached.
    fn modify(&mut self, key: Key<'_>, f: impl FnOnce(&mut Subscription)) -> bool {
        let id = match key {
            Key::Id(id) => Some(id.to_string()),
            Key::Impu(impu) => self.by_impu.get(impu).cloned(),
            Key::Impi(impi) => self.by_impi.get(impi).cloned(),
        };
        match id.and_then(|id| self.by_id.get_mut(&id)) {
            Some(sub) => {
                f(Arc::make_mut(sub));
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::{
        AkaInfo, AuthInfo, CloudProfile, PrivateIdentityInfo, PublicIdentity, PublicIdentityInfo,
        RegistrationState,
    };

    fn sub(id: &str) -> Subscription {
        Subscription {
            id: id.into(),
            cloud: CloudProfile::default(),
            private_identities: vec![PrivateIdentityInfo {
                impi: format!("{id}@x"),
                realm: "x".into(),
                auth: AuthInfo {
                    digest: false,
                    aka: Some(AkaInfo {
                        amf: "8000".into(),
                        sqn: 32,
                    }),
                },
            }],
            public_identities: vec![PublicIdentityInfo {
                identity: PublicIdentity {
                    impu: format!("sip:{id}@x"),
                    barred: false,
                    implicit_set: None,
                    service_profile: "p".into(),
                },
                registration: Registration::default(),
            }],
            service_profiles: Vec::new(),
            roaming_networks: Vec::new(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn cached_copies_follow_registration_and_sqn_writes() {
        let c = Cache::default();
        let g = c.generation();
        c.insert(g, &Arc::new(sub("a")), &[]);
        assert_eq!(c.get(Key::Impu("sip:a@x")).unwrap().id, "a");
        assert_eq!(c.get(Key::Impi("a@x")).unwrap().id, "a");
        let reg = Registration {
            state: RegistrationState::Registered,
            scscf: Some("sip:s".into()),
        };
        c.set_registration(&["sip:a@x"], &reg);
        c.set_sqn("a@x", 64);
        let got = c.get(Key::Id("a")).unwrap();
        assert_eq!(got.public_identities[0].registration, reg);
        assert_eq!(got.private_identities[0].auth.aka.as_ref().unwrap().sqn, 64);
        // A write to a subscription not cached moves the generation.
        assert_eq!(c.generation(), g);
        c.set_registration(&["sip:b@x"], &reg);
        assert_ne!(c.generation(), g);
    }

    #[test]
    fn sealed_ha1_is_cached_and_forgotten_with_its_subscription() {
        let c = Cache::default();
        let sealed = SealedHa1::new("sealed:00".into());
        assert_eq!(c.ha1("a@x"), None, "not cached");
        c.insert(
            c.generation(),
            &Arc::new(sub("a")),
            &[("a@x".into(), sealed.clone())],
        );
        assert_eq!(c.ha1("a@x"), Some(Some(sealed)));
        c.insert(c.generation(), &Arc::new(sub("b")), &[]);
        assert_eq!(c.ha1("b@x"), Some(None), "cached, no HA1");
        c.clear();
        assert_eq!(c.ha1("a@x"), None);
        assert_eq!(c.ha1("b@x"), None);
    }

    #[test]
    fn a_read_that_raced_with_a_write_is_not_cached() {
        let c = Cache::default();
        // Read of "b" starts; a write to the (uncached) "b" commits meanwhile.
        let g = c.generation();
        c.set_registration(
            &["sip:b@x"],
            &Registration {
                state: RegistrationState::Registered,
                scscf: None,
            },
        );
        c.insert(g, &Arc::new(sub("b")), &[]);
        assert!(c.get(Key::Id("b")).is_none());
        // Two readers: the later insert never replaces the copy already updated in place.
        let g = c.generation();
        c.insert(g, &Arc::new(sub("b")), &[]);
        c.set_sqn("b@x", 99);
        c.insert(g, &Arc::new(sub("b")), &[]);
        let got = c.get(Key::Id("b")).unwrap();
        assert_eq!(got.private_identities[0].auth.aka.as_ref().unwrap().sqn, 99);
        c.clear();
        assert!(c.get(Key::Impu("sip:b@x")).is_none());
    }
}
