//! No user enumeration, and a bounded Diameter cost for REGISTERs of identities we do
//! not serve (issue 11, "Why" 3 and 5).
//!
//! A UAA saying the identity is unknown (DIAMETER_ERROR_USER_UNKNOWN), belongs to
//! another subscription (DIAMETER_ERROR_IDENTITIES_DONT_MATCH) or is barred
//! (DIAMETER_AUTHORIZATION_REJECTED) is not answered `403` at once, which would tell a
//! scanner (`svwar`) who exists: the REGISTER gets a decoy `401` of the S-CSCF's shape
//! ([`ims_sip::auth::decoy`]) and the answer to it the S-CSCF's `403` for a wrong
//! response, after a delay drawn from the real path's recent ones (see
//! [`PathDelay`]). The identity pair is then remembered for `unknown_user_cache_secs`
//! (no UAR for it meanwhile), and REGISTERs without credentials may cause at most
//! `uar_per_second` UARs (beyond: `503` with Retry-After).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hashlink::LruCache;
use ims_config::BudgetSection;
use ims_diameter::cx::{CxResult, Uaa};
use ims_diameter::dict::{experimental, result, VENDOR_3GPP};
use ims_runtime::budget::{BudgetMetrics, Rate, RecentSet, Refusals, TokenBuckets};
use ims_sip::auth::decoy::{DecoyAnswer, Decoys};
use ims_sip::auth::nonce::unix_now;
use ims_sip::auth::{digest_credentials, Algorithm};
use ims_sip::message::build::{reason_phrase, response_with};
use ims_sip::{HeaderName, SipMessage};
use rand::Rng;
use tokio::time::Instant;

/// Seconds a decoy nonce lives (the S-CSCF's default `nonce_lifetime`).
const DECOY_LIFETIME: u64 = 60;
/// Decoy nonces remembered (each answer is refused once).
const DECOYS_HELD: usize = 65_536;
/// Real REGISTER transactions whose start is remembered to time their answer.
const TIMED: usize = 4096;
/// The delay of a decoy before any real challenge was timed.
const FIRST_GUESS: Duration = Duration::from_millis(20);

/// True when a UAA says the identity cannot register here in a way that must not be
/// told apart from a wrong password.
pub fn hides_identity(uaa: &Uaa) -> bool {
    match uaa.header.result {
        CxResult::Experimental { vendor_id, code } if vendor_id == VENDOR_3GPP => matches!(
            code,
            experimental::DIAMETER_ERROR_USER_UNKNOWN
                | experimental::DIAMETER_ERROR_IDENTITIES_DONT_MATCH
        ),
        CxResult::Base(code) => code == result::DIAMETER_AUTHORIZATION_REJECTED,
        CxResult::Experimental { .. } => false,
    }
}

/// How long the real path took to answer a REGISTER with `401` and with `403` (from our
/// decision to the S-CSCF's answer): the latest [`SAMPLES`] of each, learnt from the
/// responses passing through us. A decoy waits as long as one of them, drawn at random:
/// the decoys' delays follow the real path's recent distribution, a slow start (first
/// connection, cold caches) drops out after [`SAMPLES`] answers.
#[derive(Debug)]
pub struct PathDelay {
    started: Mutex<LruCache<(String, String), Instant>>,
    samples: Mutex<[VecDeque<Duration>; 2]>,
}

/// Real delays kept per answer.
pub const SAMPLES: usize = 32;

fn slot(status: u16) -> Option<usize> {
    match status {
        401 => Some(0),
        403 => Some(1),
        _ => None,
    }
}

fn transaction_key(request: &SipMessage) -> Option<(String, String)> {
    Some((
        request.headers.get_str(&HeaderName::CallId)?.to_string(),
        request.headers.get_str(&HeaderName::CSeq)?.to_string(),
    ))
}

impl Default for PathDelay {
    fn default() -> Self {
        PathDelay {
            started: Mutex::new(LruCache::new(TIMED)),
            samples: Mutex::new([VecDeque::new(), VecDeque::new()]),
        }
    }
}

impl PathDelay {
    /// A REGISTER decided at `started` goes to an S-CSCF.
    pub fn forwarded(&self, request: &SipMessage, started: Instant) {
        if let Some(key) = transaction_key(request) {
            let mut m = self.started.lock().unwrap_or_else(|e| e.into_inner());
            m.insert(key, started);
        }
    }

    /// The final `response` to a forwarded REGISTER came back at `now`.
    pub fn answered(&self, request: &SipMessage, response: &SipMessage, now: Instant) {
        let Some(i) = response.status().and_then(slot) else {
            return;
        };
        let Some(key) = transaction_key(request) else {
            return;
        };
        let started = {
            let mut m = self.started.lock().unwrap_or_else(|e| e.into_inner());
            m.remove(&key)
        };
        let Some(started) = started else {
            return;
        };
        let sample = now.saturating_duration_since(started);
        let mut all = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(recent) = all.get_mut(i) {
            if recent.len() == SAMPLES {
                recent.pop_front();
            }
            recent.push_back(sample);
        }
    }

    /// How long a decoy answered with `status` should take from its start: one of the
    /// real path's recent delays for that answer, drawn at random (before any: 20 ms
    /// ±25 %).
    pub fn target(&self, status: u16) -> Duration {
        let mut rng = rand::thread_rng();
        let all = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let recent = slot(status)
            .and_then(|i| all.get(i))
            .filter(|r| !r.is_empty());
        match recent {
            Some(r) => r
                .get(rng.gen_range(0..r.len()))
                .copied()
                .unwrap_or(FIRST_GUESS),
            None => FIRST_GUESS.mul_f64(rng.gen_range(0.75..1.25)),
        }
    }
}

/// The I-CSCF's budget state: decoys, the negative cache, the UAR cap, counters.
#[derive(Debug)]
pub struct UnknownUsers {
    enabled: bool,
    realm: String,
    decoys: Decoys,
    recent: RecentSet<(String, String)>,
    uars: TokenBuckets<()>,
    /// How long the real path takes.
    pub delay: PathDelay,
    /// Counters on `/metrics`.
    pub metrics: BudgetMetrics,
    /// Summaries of refused REGISTERs.
    pub refusals: Arc<Refusals>,
}

impl UnknownUsers {
    /// From `[budget]`, with `realm` (the home domain) in Digest decoys.
    pub fn new(section: &BudgetSection, realm: &str, metrics: BudgetMetrics) -> UnknownUsers {
        let rate = Rate {
            per_second: section.uar_per_second,
            burst: section.uar_per_second.max(1.0),
        };
        UnknownUsers {
            enabled: section.enabled,
            realm: realm.to_string(),
            decoys: Decoys::new(DECOY_LIFETIME, DECOYS_HELD),
            recent: RecentSet::new(
                "icscf_unknown_users",
                Duration::from_secs(section.unknown_user_cache_secs),
                section.max_keys,
                metrics.clone(),
            ),
            uars: TokenBuckets::new("icscf_uar_rate", rate, 1, metrics.clone()),
            delay: PathDelay::default(),
            refusals: Refusals::new("icscf", metrics.clone()),
            metrics,
        }
    }

    /// True when the pair got a hiding UAA recently (answer with a decoy, no UAR).
    pub fn known_unknown(&self, pair: &(String, String)) -> bool {
        self.enabled && self.recent.contains(pair, Instant::now())
    }

    /// Remembers a pair the HSS does not let register.
    pub fn remember(&self, pair: (String, String)) {
        if self.enabled {
            self.recent.insert(pair, Instant::now());
        }
    }

    /// May a REGISTER without a response to a challenge cause a UAR now?
    pub fn uar_allowed(&self, answers_challenge: bool) -> bool {
        !self.enabled || answers_challenge || self.uars.take((), Instant::now()).is_ok()
    }

    /// The answer to a REGISTER for an identity that may not register, decided at
    /// `started`: a decoy `401`, or `403` for an answer to one, after the real path's
    /// delay.
    pub async fn answer(
        &self,
        request: &SipMessage,
        source: IpAddr,
        started: Instant,
    ) -> SipMessage {
        let (creds, raw) = digest_credentials(request);
        let verdict = creds.as_ref().map_or(DecoyAnswer::Challenge, |c| {
            self.decoys.answer(c, unix_now())
        });
        let aka = creds
            .as_ref()
            .is_some_and(|c| c.algorithm == Algorithm::AkaV1Md5)
            || raw.is_some_and(|a| a.contains("AKAv1-MD5"));
        let (algorithm, realm) = if aka {
            let realm = creds
                .as_ref()
                .map_or(self.realm.as_str(), |c| c.realm.as_str());
            (Algorithm::AkaV1Md5, realm)
        } else {
            (Algorithm::Md5, self.realm.as_str())
        };
        let response = match verdict {
            DecoyAnswer::Wrong => {
                self.refusals.refused(source, "unknown user answered");
                response_with(request, 403, reason_phrase(403), None, &[])
            }
            DecoyAnswer::Challenge | DecoyAnswer::Stale => {
                self.metrics.event("icscf_decoy_challenge");
                self.refusals.refused(source, "unknown user challenged");
                let stale = verdict == DecoyAnswer::Stale;
                let h = self.decoys.challenge(realm, algorithm, stale, unix_now());
                response_with(
                    request,
                    401,
                    reason_phrase(401),
                    None,
                    &[(HeaderName::WwwAuthenticate, &h)],
                )
            }
        };
        let status = response.status().unwrap_or(0);
        let wait = self.delay.target(status).saturating_sub(started.elapsed());
        tokio::time::sleep(wait).await;
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(call: &str) -> SipMessage {
        SipMessage::parse(format!(
            "REGISTER sip:ims.example.net SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK{call}\r\n\
             From: <sip:a@ims.example.net>;tag=1\r\nTo: <sip:a@ims.example.net>\r\n\
             Call-ID: {call}\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
        ))
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn decoys_wait_as_long_as_recent_real_answers() {
        let d = PathDelay::default();
        let first = d.target(401);
        assert!(first >= Duration::from_millis(15) && first <= Duration::from_millis(25));
        // 40 real 401s: the first 8 slow (cold start), then 32 of 5 ms.
        for i in 0..40u64 {
            let req = register(&format!("c{i}"));
            let ms = if i < 8 { 200 } else { 5 };
            let start = Instant::now();
            d.forwarded(&req, start);
            let resp = response_with(&req, 401, "Unauthorized", None, &[]);
            d.answered(&req, &resp, start + Duration::from_millis(ms));
        }
        for _ in 0..100 {
            assert_eq!(d.target(401), Duration::from_millis(5));
        }
        // No 403 seen yet: the first guess.
        assert!(d.target(403) <= Duration::from_millis(25));
    }
}
