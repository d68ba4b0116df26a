//! Profiles of identities this S-CSCF serves in the unregistered state (TS 29.228
//! §6.1.2, TS 24.229 §5.4.3.2-3): SAR UNREGISTERED_USER makes the HSS record us as the
//! identity's S-CSCF and gives its profile; the profile is kept here for a while so
//! that the next request for the identity needs no SAR, and when it lapses the HSS is
//! told (SAR TIMEOUT_DEREGISTRATION) so that it stops sending the identity's
//! requests here.
//!
//! The store is bounded ([`UnregisteredProfiles::new`]): when full, a new profile is
//! served but not kept (the next request asks the HSS again). An entry goes when its
//! time is up ([`UnregisteredProfiles::take_lapsed`]), when the identity registers
//! here ([`UnregisteredProfiles::forget_covered_by`]: the HSS now holds it registered),
//! and on the HSS's RTR ([`UnregisteredProfiles::forget`]: the HSS already cleared it);
//! PPR replaces its profile ([`UnregisteredProfiles::push_profile`]). Entries are not
//! persisted: after a restart the first request asks the HSS again.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::location::Registration;
use crate::profile::UserProfile;

/// An unregistered identity's profile and when it lapses.
#[derive(Debug, Clone)]
struct Entry {
    registration: Registration,
    lapses_at: u64,
}

/// The unregistered identities' profiles, by identity.
#[derive(Debug)]
pub struct UnregisteredProfiles {
    entries: Mutex<HashMap<String, Entry>>,
    ttl_secs: u64,
    max_entries: usize,
}

impl UnregisteredProfiles {
    /// Keeps each profile `ttl_secs` after the SAR that fetched it, at most
    /// `max_entries` at once.
    pub fn new(ttl_secs: u64, max_entries: usize) -> UnregisteredProfiles {
        UnregisteredProfiles {
            entries: Mutex::new(HashMap::new()),
            ttl_secs,
            max_entries,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kept profile of `impu` at Unix second `now`, if it has not lapsed.
    pub fn get(&self, impu: &str, now: u64) -> Option<Registration> {
        self.entries()
            .get(impu)
            .filter(|e| e.lapses_at > now)
            .map(|e| e.registration.clone())
    }

    /// Keeps `registration` (its `impu`) from `now`; false when the store is full.
    pub fn put(&self, registration: Registration, now: u64) -> bool {
        let mut entries = self.entries();
        if entries.len() >= self.max_entries && !entries.contains_key(&registration.impu) {
            return false;
        }
        let lapses_at = now.saturating_add(self.ttl_secs);
        entries.insert(
            registration.impu.clone(),
            Entry {
                registration,
                lapses_at,
            },
        );
        true
    }

    /// Removes and returns the profiles lapsed at `now` (whose HSS assignment is to be
    /// released).
    pub fn take_lapsed(&self, now: u64) -> Vec<Registration> {
        let mut entries = self.entries();
        let lapsed: Vec<String> = entries
            .iter()
            .filter(|(_, e)| e.lapses_at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        lapsed
            .iter()
            .filter_map(|k| entries.remove(k))
            .map(|e| e.registration)
            .collect()
    }

    /// Forgets the identities `profile` covers (they registered here with it); returns
    /// how many.
    pub fn forget_covered_by(&self, profile: &UserProfile) -> usize {
        let mut entries = self.entries();
        let before = entries.len();
        entries.retain(|impu, _| !profile.contains(impu));
        before - entries.len()
    }

    /// Forgets the identities of private identity `impi` (or, when `impus` is not
    /// empty, those named); returns how many.
    pub fn forget(&self, impi: &str, impus: &[String]) -> usize {
        let mut entries = self.entries();
        let before = entries.len();
        entries.retain(|impu, e| {
            let named = if impus.is_empty() {
                e.registration.impi == impi
            } else {
                impus.iter().any(|i| i == impu)
            };
            !named
        });
        before - entries.len()
    }

    /// Replaces the profile of the identities of private identity `impi`; returns how
    /// many.
    pub fn push_profile(&self, impi: &str, profile: &UserProfile) -> usize {
        let mut entries = self.entries();
        let mut n = 0;
        for e in entries.values_mut().filter(|e| e.registration.impi == impi) {
            e.registration.profile = profile.clone();
            n += 1;
        }
        n
    }

    /// Number of profiles kept.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// True when no profile is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::tests::{registration, registration_with};

    fn carol() -> Registration {
        let mut r = registration(
            "sip:carol@ims.example.net",
            "sip:carol-barred@ims.example.net",
            &[],
        );
        r.bindings.clear();
        r.impi = "carol@ims.example.net".into();
        r
    }

    fn dave() -> Registration {
        let mut r = registration(
            "sip:dave@ims.example.net",
            "sip:dave-barred@ims.example.net",
            &[],
        );
        r.impi = "dave@ims.example.net".into();
        r
    }

    #[test]
    fn a_profile_is_kept_until_it_lapses_then_handed_back_once() {
        let kept = UnregisteredProfiles::new(60, 10);
        assert!(kept.put(carol(), 1000));
        assert_eq!(
            kept.get("sip:carol@ims.example.net", 1059).unwrap().impi,
            "carol@ims.example.net"
        );
        assert!(kept.get("sip:dave@ims.example.net", 1000).is_none());
        assert!(kept.take_lapsed(1059).is_empty());
        assert!(kept.get("sip:carol@ims.example.net", 1060).is_none());
        let lapsed = kept.take_lapsed(1060);
        assert_eq!(lapsed.len(), 1);
        assert_eq!(lapsed[0].impu, "sip:carol@ims.example.net");
        assert!(kept.take_lapsed(1061).is_empty() && kept.is_empty());
    }

    #[test]
    fn the_store_is_bounded_but_refreshes_what_it_holds() {
        let kept = UnregisteredProfiles::new(60, 1);
        assert!(kept.put(carol(), 1000));
        assert!(!kept.put(dave(), 1000), "full");
        assert!(kept.get("sip:dave@ims.example.net", 1000).is_none());
        assert!(
            kept.put(carol(), 1030),
            "an entry already held is refreshed"
        );
        assert!(kept.get("sip:carol@ims.example.net", 1080).is_some());
        assert_eq!(kept.len(), 1);
    }

    #[test]
    fn registering_rtr_and_ppr_update_what_is_kept() {
        let kept = UnregisteredProfiles::new(60, 10);
        kept.put(carol(), 1000);
        kept.put(dave(), 1000);
        // Carol registers: her entry goes, Dave's stays.
        assert_eq!(kept.forget_covered_by(&carol().profile), 1);
        assert!(kept.get("sip:carol@ims.example.net", 1000).is_none());
        assert!(kept.get("sip:dave@ims.example.net", 1000).is_some());
        // PPR for Dave's private identity: his profile is replaced.
        let voicemail = crate::session::tests::ifc(1, "INVITE", Some(2), "sip:vm.example", 0);
        let new = registration_with("sip:dave@ims.example.net", "sip:x@y", &[], &voicemail);
        assert_eq!(kept.push_profile("dave@ims.example.net", &new.profile), 1);
        assert_eq!(kept.push_profile("nobody@ims.example.net", &new.profile), 0);
        let now = kept.get("sip:dave@ims.example.net", 1000).unwrap();
        assert_eq!(now.profile.ifcs("sip:dave@ims.example.net").len(), 1);
        // RTR naming other identities leaves Dave; naming his private identity, not.
        assert_eq!(kept.forget("x", &["sip:erin@ims.example.net".into()]), 0);
        assert_eq!(kept.forget("dave@ims.example.net", &[]), 1);
        assert!(kept.is_empty());
        kept.put(dave(), 1000);
        assert_eq!(kept.forget("x", &["sip:dave@ims.example.net".into()]), 1);
    }
}
