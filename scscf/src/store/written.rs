//! What the store holds of each registration, as this S-CSCF last wrote it (issue 12):
//! a REGISTER that changes nothing stored but its bindings' expiries (and their Call-ID
//! and CSeq, below), each stored expiry lagging the acknowledged one by at most
//! [`ims_runtime::expiry_lag::bound`] of the binding's grant, is not written
//! ([`Written::holds`]), and its 200 waits for no commit.
//!
//! * The Call-ID and CSeq of the last REGISTER are registrar bookkeeping: a stored pair
//!   behind the real one only lets a restarted S-CSCF take a REGISTER of an older
//!   Call-ID, or of the same one with a CSeq between the two, as the newer (RFC 3261
//!   §10.3 step 7; such a REGISTER is authenticated anyway), and the UE's next refresh
//!   puts them right. They may lag with the expiry (a UA that takes a new Call-ID for
//!   each refresh, as SIPp's scenarios do, is not written each time), except on a
//!   binding with temporary GRUUs: there they name the set of valid temporary GRUUs
//!   ([`crate::gruu`]: the Call-ID, and the CSeq as its upper end), so a refresh of
//!   such a binding that changes either is always written.
//! * Everything else of the registration (private identity, profile, bindings, their
//!   contacts, Path, GRUU set) must be as last written.
//!
//! Each registered identity's writes run under its lock (`crate::identity_lock`) and
//! are awaited there, so what is recorded is what the store holds: the registrar
//! records a committed [`super::Change::Save`] of a REGISTER ([`Written::saved`]) and
//! the registrations loaded at start, and forgets an identity before any other write of
//! it ([`Written::forget`]). In a pool (`[registrar] pool`) nothing is recorded and every
//! REGISTER is written: another S-CSCF may have claimed the row meanwhile (a take-over
//! on demand does not wait for our lease), and only a write claims it back.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use ims_runtime::expiry_lag::needs_write;
use ims_runtime::prometheus_client::metrics::counter::Counter;

use crate::location::{Binding, Registration};

/// A registration as written, but for its identity (the key).
#[derive(Debug)]
struct Row {
    impi: String,
    profile: Bytes,
    bindings: Vec<Binding>,
}

/// The registrations the store holds as this S-CSCF wrote them, by registered identity.
#[derive(Debug)]
pub struct Written {
    rows: Option<Mutex<HashMap<String, Row>>>,
    /// REGISTERs not written: only expiries (and CSeqs) changed, within the bound.
    pub unwritten: Counter,
}

impl Written {
    /// An empty record; `pool`: one that records nothing (every REGISTER is written).
    pub fn new(pool: bool) -> Written {
        Written {
            rows: (!pool).then(Mutex::default),
            unwritten: Counter::default(),
        }
    }

    fn lock(&self) -> Option<MutexGuard<'_, HashMap<String, Row>>> {
        // Each update is one statement: the map stays consistent.
        let rows = self.rows.as_ref()?;
        Some(rows.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Records `reg` as what the store holds for its identity (a committed save, or a
    /// registration loaded from the store).
    pub fn saved(&self, reg: &Registration) {
        if let Some(mut rows) = self.lock() {
            let row = Row {
                impi: reg.impi.clone(),
                profile: reg.profile.raw.clone(),
                bindings: reg.bindings.clone(),
            };
            rows.insert(reg.impu.clone(), row);
        }
    }

    /// Forgets what the store holds for `impu` (before any write of it other than a
    /// REGISTER's save): its next REGISTER is written.
    pub fn forget(&self, impu: &str) {
        if let Some(mut rows) = self.lock() {
            rows.remove(impu);
        }
    }

    /// Whether the store holds `reg` (built by a REGISTER at `now`, Unix seconds) but
    /// for expiries lagging within the bound and the Call-IDs and CSeqs of bindings
    /// without temporary GRUUs: then it need not be written, and this is counted.
    pub fn holds(&self, reg: &Registration, now: u64) -> bool {
        let Some(rows) = self.lock() else {
            return false;
        };
        let Some(row) = rows.get(&reg.impu) else {
            return false;
        };
        let held = row.impi == reg.impi
            && row.profile == reg.profile.raw
            && row.bindings.len() == reg.bindings.len()
            && row
                .bindings
                .iter()
                .zip(&reg.bindings)
                .all(|(old, new)| refreshed_only(old, new, now));
        drop(rows);
        if held {
            self.unwritten.inc();
        }
        held
    }
}

/// Whether `new` (at `now`) is `old` refreshed: the same but for an expiry lagging
/// within the bound of its grant (`new.expires_at - now`), and a Call-ID and CSeq when
/// it has no temporary GRUUs.
fn refreshed_only(old: &Binding, new: &Binding, now: u64) -> bool {
    let Binding {
        key,
        contact,
        path,
        call_id,
        cseq,
        expires_at,
        gruu_first_cseq,
    } = old;
    *key == new.key
        && *contact == new.contact
        && *path == new.path
        && *gruu_first_cseq == new.gruu_first_cseq
        && (gruu_first_cseq.is_none() || (*cseq == new.cseq && *call_id == new.call_id))
        && !needs_write(
            *expires_at,
            new.expires_at,
            new.expires_at.saturating_sub(now),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::reg;

    const NOW: u64 = 100_000;

    /// Alice's registration with one binding expiring at `expires_at`, CSeq `cseq`.
    fn alice(expires_at: u64, cseq: u32) -> Registration {
        let mut r = reg("sip:alice@x", &[("sip:a@10.0.0.1", expires_at)]);
        r.bindings[0].cseq = cseq;
        r
    }

    #[test]
    fn a_refresh_within_the_bound_is_held_anything_else_is_not() {
        let w = Written::new(false);
        let first = alice(NOW + 3_600, 1);
        assert!(!w.holds(&first, NOW), "never written");
        w.saved(&first);
        // 60 s of lag for a 3 600 s grant, the CSeq moved on.
        assert!(w.holds(&alice(NOW + 60 + 3_600, 2), NOW + 60));
        assert!(!w.holds(&alice(NOW + 61 + 3_600, 2), NOW + 61), "61 s");
        assert!(!w.holds(&alice(NOW + 3_599, 2), NOW), "shortened");
        // 600 s granted: 30 s.
        assert!(w.holds(&alice(NOW + 3_630, 2), NOW + 3_030));
        assert!(!w.holds(&alice(NOW + 3_631, 2), NOW + 3_031));
        let mut other = alice(NOW + 3_600, 2);
        other.bindings[0].contact = "<sip:a@10.0.0.1>;audio".into();
        assert!(!w.holds(&other, NOW), "contact");
        let mut other = alice(NOW + 3_600, 2);
        other.bindings[0].path.pop();
        assert!(!w.holds(&other, NOW), "path");
        let mut other = alice(NOW + 3_600, 2);
        other.bindings[0].call_id = "call-2".into();
        assert!(w.holds(&other, NOW), "a new Call-ID lags like the CSeq");
        let mut other = alice(NOW + 3_600, 2);
        other.impi = "bob@ims.example.net".into();
        assert!(!w.holds(&other, NOW), "private identity");
        let mut other = alice(NOW + 3_600, 2);
        other
            .bindings
            .push(reg("sip:alice@x", &[("sip:b@10.0.0.2", NOW + 3_600)]).bindings[0].clone());
        assert!(!w.holds(&other, NOW), "another binding");
        let mut other = alice(NOW + 3_600, 2);
        other.profile = reg("sip:bob@x", &[]).profile;
        assert!(!w.holds(&other, NOW), "profile");
        assert_eq!(w.unwritten.get(), 3);
        w.forget("sip:alice@x");
        assert!(!w.holds(&alice(NOW + 3_600, 2), NOW), "forgotten");
    }

    #[test]
    fn a_binding_with_temporary_gruus_is_held_only_with_its_call_id_and_cseq() {
        let w = Written::new(false);
        let mut first = alice(NOW + 3_600, 1);
        first.bindings[0].gruu_first_cseq = Some(1);
        w.saved(&first);
        let mut next = alice(NOW + 3_601, 2);
        next.bindings[0].gruu_first_cseq = Some(1);
        assert!(!w.holds(&next, NOW + 1), "cseq");
        next.bindings[0].cseq = 1;
        assert!(w.holds(&next, NOW + 1));
        next.bindings[0].call_id = "call-2".into();
        assert!(!w.holds(&next, NOW + 1), "call-id");
    }

    #[test]
    fn hostile_expiries_do_not_panic() {
        let w = Written::new(false);
        w.saved(&alice(u64::MAX, u32::MAX));
        assert!(w.holds(&alice(u64::MAX, 0), 0));
        assert!(!w.holds(&alice(0, 0), u64::MAX));
        assert!(!w.holds(&alice(u64::MAX - 1, 0), u64::MAX));
    }

    #[test]
    fn a_pool_member_holds_nothing() {
        let w = Written::new(true);
        let first = alice(NOW + 3_600, 1);
        w.saved(&first);
        assert!(!w.holds(&first, NOW));
    }
}
