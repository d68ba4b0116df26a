//! One UAR per registration (issue 12): the S-CSCF chosen for a REGISTER that the
//! S-CSCF challenged (`401`) is remembered by Call-ID for `[registration]
//! scscf_memory_secs`, and the REGISTER answering the challenge goes there without a
//! second UAR, as Kamailio's I-CSCF does (it keeps the S-CSCF list per Call-ID).
//!
//! TS 24.229 §5.3.1.2 has the I-CSCF send a UAR for every REGISTER; what the second UAR
//! would tell it is already known: the HSS assigned the S-CSCF that sent the challenge
//! (its MAR, TS 29.228 §6.3), and that S-CSCF holds the authentication in progress, so
//! the answer must reach it anyway. What the UAR also checks (identities of one
//! subscription, barring, roaming from the P-Visited-Network-ID, TS 29.228 §6.1.1) was
//! checked by the first one for the same identity pair and visited network, seconds
//! earlier. So a REGISTER is sent to a remembered S-CSCF only when:
//!
//! * it carries a response to a challenge (a REGISTER without one always asks the HSS);
//! * it is a registration: de-registration (`Expires: 0`) always asks the HSS;
//! * its Call-ID is that of a REGISTER the S-CSCF answered `401` less than
//!   `scscf_memory_secs` ago, with the same private and public identity, the same
//!   visited network and from the same sender (the P-CSCF's address): a guessed or
//!   reused Call-ID from elsewhere, or for another identity, gets a UAR as before.
//!
//! A hit is used once: the REGISTER sent there is remembered afresh, and only a new
//! `401` makes it usable again (another challenge, e.g. a stale nonce). When the
//! remembered S-CSCF does not answer (silent for `scscf_silence_ms`), or answers 3xx or
//! 480, the I-CSCF asks the HSS again and selects another S-CSCF (§5.3.1.3): see
//! [`crate::policy`].
//!
//! The memory is an LRU of `scscf_memory_entries` (a new Call-ID beyond it evicts the
//! least recently used; an evicted registration just costs its UAR), counted on
//! `/metrics`: `budget_tracked{budget="icscf_scscf_memory"}` and
//! `budget_events_total{event}` with `icscf_scscf_recalled` (a UAR saved),
//! `icscf_scscf_memory_mismatch` (a Call-ID known for another sender or identity) and
//! `icscf_scscf_fallback` (a remembered S-CSCF failed).

use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use hashlink::LruCache;
use ims_config::RegistrationSection;
use ims_runtime::budget::BudgetMetrics;
use ims_sip::{HeaderName, SipMessage};
use tokio::time::Instant;

use crate::selection::Selected;

/// The `budget_tracked` label of the memory.
const TRACKED: &str = "icscf_scscf_memory";

/// Who sent a REGISTER: what must match for its S-CSCF to be recalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registrant {
    /// The private identity (the UAR's User-Name).
    pub impi: String,
    /// The public identity (the UAR's Public-Identity).
    pub impu: String,
    /// The UAR's Visited-Network-Identifier.
    pub visited: String,
    /// The address the REGISTER came from (the P-CSCF).
    pub source: IpAddr,
}

#[derive(Debug)]
struct Entry {
    who: Registrant,
    cseq: u32,
    selected: Selected,
    /// Until when a challenged REGISTER's S-CSCF may be recalled; `None` while the
    /// REGISTER has no `401` yet.
    challenged_until: Option<Instant>,
    /// When an unanswered entry is dropped (a REGISTER whose answer never came).
    until: Instant,
}

/// The S-CSCF of each challenged REGISTER, by Call-ID.
#[derive(Debug)]
pub struct ScscfMemory {
    ttl: Duration,
    silence: Duration,
    map: Mutex<LruCache<String, Entry>>,
    metrics: BudgetMetrics,
}

impl ScscfMemory {
    /// A memory per `[registration]`, counting in `metrics`.
    pub fn new(section: &RegistrationSection, metrics: BudgetMetrics) -> ScscfMemory {
        ScscfMemory {
            ttl: Duration::from_secs(section.scscf_memory_secs),
            silence: Duration::from_millis(section.scscf_silence_ms),
            map: Mutex::new(LruCache::new(section.scscf_memory_entries.max(1))),
            metrics,
        }
    }

    /// False when `scscf_memory_secs` is 0: every REGISTER asks the HSS.
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// How long a remembered S-CSCF may stay silent before the HSS is asked again.
    pub fn silence(&self) -> Duration {
        self.silence
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<String, Entry>> {
        // Every update is a few await-free steps: a poisoned lock holds usable state.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, map: &LruCache<String, Entry>) {
        self.metrics.track(TRACKED, map.len());
    }

    /// Registrations remembered (answered or not).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A REGISTER (a registration, not a de-registration) of `who` with `call_id` and
    /// CSeq number `cseq` goes to `selected` at `now`. A Call-ID still remembered for
    /// another registrant's challenge is left to it.
    pub fn forwarded(
        &self,
        call_id: &str,
        cseq: u32,
        who: Registrant,
        selected: Selected,
        now: Instant,
    ) {
        if !self.enabled() {
            return;
        }
        let mut map = self.lock();
        if let Some(e) = map.get(call_id) {
            let live = e.challenged_until.is_some_and(|t| t > now);
            if live && e.who != who {
                return;
            }
        }
        map.insert(
            call_id.to_string(),
            Entry {
                who,
                cseq,
                selected,
                challenged_until: None,
                until: now + self.ttl,
            },
        );
        self.count(&map);
    }

    /// The final response `status` to the REGISTER `call_id`/`cseq` came back at `now`:
    /// a `401` makes its S-CSCF recallable for `scscf_memory_secs`; any other final
    /// response forgets it.
    pub fn answered(&self, call_id: &str, cseq: u32, status: u16, now: Instant) {
        if !self.enabled() || status < 200 {
            return;
        }
        let mut map = self.lock();
        let Some(e) = map.get_mut(call_id) else {
            return;
        };
        if e.cseq != cseq {
            return;
        }
        if status == 401 {
            e.challenged_until = Some(now + self.ttl);
            e.until = now + self.ttl;
        } else {
            map.remove(call_id);
        }
        self.count(&map);
    }

    /// The S-CSCF the REGISTER `call_id` of `who` was challenged by, if that was less
    /// than `scscf_memory_secs` before `now` and `who` is the same registrant.
    pub fn recall(&self, call_id: &str, who: &Registrant, now: Instant) -> Option<Selected> {
        if !self.enabled() {
            return None;
        }
        let mut map = self.lock();
        let e = map.get(call_id)?;
        if e.until <= now {
            map.remove(call_id);
            self.count(&map);
            return None;
        }
        if e.challenged_until.is_none_or(|t| t <= now) {
            return None;
        }
        if e.who != *who {
            self.metrics.event("icscf_scscf_memory_mismatch");
            return None;
        }
        self.metrics.event("icscf_scscf_recalled");
        Some(e.selected.clone())
    }

    /// The S-CSCF a REGISTER of `call_id` was last sent to, which failed: forgotten,
    /// and returned so that another one is selected.
    pub fn failed(&self, call_id: &str) -> Option<Selected> {
        let mut map = self.lock();
        let gone = map.remove(call_id);
        self.count(&map);
        drop(map);
        if gone.is_some() {
            self.metrics.event("icscf_scscf_fallback");
        }
        gone.map(|e| e.selected)
    }
}

/// The Call-ID and CSeq number of `request`.
pub fn transaction_of(request: &SipMessage) -> Option<(&str, u32)> {
    let call_id = request.headers.get_str(&HeaderName::CallId)?;
    let cseq = request
        .headers
        .get_str(&HeaderName::CSeq)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((call_id, cseq))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn memory(secs: u64, entries: usize) -> ScscfMemory {
        ScscfMemory::new(
            &RegistrationSection {
                scscf_memory_secs: secs,
                scscf_memory_entries: entries,
                scscf_silence_ms: 1000,
            },
            BudgetMetrics::default(),
        )
    }

    fn alice() -> Registrant {
        Registrant {
            impi: "alice@ims.example.net".into(),
            impu: "sip:alice@ims.example.net".into(),
            visited: "ims.example.net".into(),
            source: "127.0.0.1".parse().unwrap(),
        }
    }

    fn scscf(n: u32) -> Selected {
        Selected {
            name: format!("sip:scscf{n}.ims.example.net"),
            route: format!("<sip:127.0.0.1:{};lr>", 5080 + n),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_challenged_register_is_recalled_once_by_the_same_registrant() {
        let m = memory(30, 16);
        let now = Instant::now();
        m.forwarded("c1", 1, alice(), scscf(1), now);
        // Not yet challenged: nothing to recall.
        assert_eq!(m.recall("c1", &alice(), now), None);
        m.answered("c1", 1, 401, now);
        assert_eq!(m.recall("c1", &alice(), now), Some(scscf(1)));
        assert_eq!(m.metrics.events("icscf_scscf_recalled"), 1);
        // Sent there: recallable again only after another 401.
        m.forwarded("c1", 2, alice(), scscf(1), now);
        assert_eq!(m.recall("c1", &alice(), now), None);
        m.answered("c1", 2, 200, now);
        assert!(m.is_empty(), "a 200 forgets the Call-ID");
        // Another Call-ID never hits.
        m.forwarded("c2", 1, alice(), scscf(1), now);
        m.answered("c2", 1, 401, now);
        assert_eq!(m.recall("c3", &alice(), now), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_answer_to_an_older_cseq_changes_nothing() {
        let m = memory(30, 16);
        let now = Instant::now();
        m.forwarded("c1", 1, alice(), scscf(1), now);
        m.forwarded("c1", 2, alice(), scscf(1), now);
        m.answered("c1", 1, 401, now);
        assert_eq!(m.recall("c1", &alice(), now), None);
        m.answered("c1", 1, 403, now);
        assert_eq!(m.len(), 1);
        // The failed S-CSCF is handed back once, and forgotten.
        assert_eq!(m.failed("c1"), Some(scscf(1)));
        assert_eq!(m.failed("c1"), None);
        assert!(m.is_empty());
        assert_eq!(m.metrics.events("icscf_scscf_fallback"), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_memory_expires() {
        let m = memory(30, 16);
        let start = Instant::now();
        m.forwarded("c1", 1, alice(), scscf(1), start);
        m.answered("c1", 1, 401, start);
        let later = start + Duration::from_secs(29);
        assert_eq!(m.recall("c1", &alice(), later), Some(scscf(1)));
        let expired = start + Duration::from_secs(30);
        assert_eq!(m.recall("c1", &alice(), expired), None);
        assert!(m.is_empty(), "an expired entry is dropped");
        // An unanswered REGISTER is dropped after the same time.
        m.forwarded("c2", 1, alice(), scscf(1), start);
        assert_eq!(m.recall("c2", &alice(), expired), None);
        assert!(m.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_memory_is_bounded() {
        let m = memory(30, 4);
        let now = Instant::now();
        for i in 0..10u32 {
            let call = format!("c{i}");
            m.forwarded(&call, 1, alice(), scscf(1), now);
            m.answered(&call, 1, 401, now);
        }
        assert_eq!(m.len(), 4);
        assert_eq!(m.recall("c0", &alice(), now), None, "evicted");
        assert_eq!(m.recall("c9", &alice(), now), Some(scscf(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_id_from_another_source_or_identity_does_not_hit() {
        let m = memory(30, 16);
        let now = Instant::now();
        m.forwarded("c1", 1, alice(), scscf(1), now);
        m.answered("c1", 1, 401, now);
        let others = [
            Registrant {
                source: "127.0.0.9".parse().unwrap(),
                ..alice()
            },
            Registrant {
                impi: "mallory@ims.example.net".into(),
                ..alice()
            },
            Registrant {
                impu: "sip:mallory@ims.example.net".into(),
                ..alice()
            },
            Registrant {
                visited: "visited.example.net".into(),
                ..alice()
            },
        ];
        for other in &others {
            assert_eq!(m.recall("c1", other, now), None, "{other:?}");
            // Its own REGISTER with that Call-ID does not take the entry over.
            m.forwarded("c1", 1, other.clone(), scscf(2), now);
        }
        assert_eq!(m.metrics.events("icscf_scscf_memory_mismatch"), 4);
        assert_eq!(m.recall("c1", &alice(), now), Some(scscf(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn off_remembers_nothing() {
        let m = memory(0, 16);
        let now = Instant::now();
        m.forwarded("c1", 1, alice(), scscf(1), now);
        m.answered("c1", 1, 401, now);
        assert_eq!(m.recall("c1", &alice(), now), None);
        assert!(m.is_empty());
    }
}
