//! Server nonces that expire and cannot be replayed (RFC 2617 §3.2.1 and §4.5,
//! RFC 7616 §3.3 and §5.5).
//!
//! A nonce is base64(`prefix` ‖ issue time (8 octets, big-endian seconds) ‖ tag), where
//! the tag is the first 16 octets of HMAC-SHA256(server secret, prefix ‖ time). The
//! prefix is 16 random octets for plain Digest, or RAND ‖ AUTN for AKA (RFC 3310 §3.2:
//! the time and tag are then the "server specific data"). So, without any state:
//! * a forged or altered nonce fails the tag: [`NonceError::Forged`];
//! * a nonce older than the lifetime is [`NonceError::Stale`]: answer 401 with
//!   `stale=true` so the client retries with a fresh nonce without prompting.
//!
//! Replays are caught with bounded state: for every nonce issued, the highest `nc`
//! accepted so far. The table holds at most `capacity` nonces; issuing one more evicts
//! the oldest issued, and expired nonces are dropped first. A nonce whose entry is gone
//! (evicted, expired, or issued before a restart) is [`NonceError::Stale`], failing
//! closed: never accepted as fresh. An `nc` not above the last accepted one is
//! [`NonceError::Replay`]; without `qop` (no `nc`) a nonce is accepted once.
//!
//! Time is passed in as `now` (seconds since the Unix epoch), so expiry is tested
//! without sleeping.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

const TIME_LEN: usize = 8;
const TAG_LEN: usize = 16;
/// Octets of the random prefix of a plain Digest nonce.
pub const RANDOM_PREFIX_LEN: usize = 16;

/// Seconds since the Unix epoch now (the `now` of [`Nonces`]).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Why a nonce is refused.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum NonceError {
    /// Not base64, or too short for the expected layout.
    #[error("malformed nonce")]
    Malformed,
    /// The tag does not verify: not issued by this server, or altered.
    #[error("nonce not issued by this server")]
    Forged,
    /// Genuine but expired, or its replay state is gone: challenge again, `stale=true`.
    #[error("stale nonce")]
    Stale,
    /// `nc` not above the last accepted for this nonce (or a no-qop nonce reused).
    #[error("replayed nonce count")]
    Replay,
}

/// A nonce that passed [`Nonces::check`]: genuine and within its lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedNonce {
    /// The prefix given at issue (random octets, or RAND ‖ AUTN for AKA).
    pub prefix: Vec<u8>,
    /// Issue time, seconds since the Unix epoch.
    pub issued_at: u64,
    tag: [u8; TAG_LEN],
}

/// Issue times and last `nc` of outstanding nonces, oldest first.
#[derive(Debug, Default)]
struct Table {
    order: VecDeque<([u8; TAG_LEN], u64)>,
    last_nc: HashMap<[u8; TAG_LEN], u32>,
}

/// Issues and checks nonces with one server secret; shareable between tasks.
pub struct Nonces {
    mac: Hmac<Sha256>,
    lifetime: u64,
    capacity: usize,
    table: Mutex<Table>,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces")
            .field("lifetime", &self.lifetime)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Nonces {
    /// Nonces keyed with `secret`, valid for `lifetime` seconds, tracking at most
    /// `capacity` (at least 1) outstanding nonces for replay detection.
    pub fn new(secret: [u8; 32], lifetime: u64, capacity: usize) -> Nonces {
        // HMAC pads a key shorter than the hash block with zeros (RFC 2104 §2), so the
        // 64-octet zero-padded secret is the same key, with an infallible constructor.
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(&secret);
        Nonces {
            mac: <Hmac<Sha256> as KeyInit>::new(&key.into()),
            lifetime,
            capacity: capacity.max(1),
            table: Mutex::new(Table::default()),
        }
    }

    /// Nonces with a fresh random secret (nonces do not survive a restart).
    pub fn with_random_secret(lifetime: u64, capacity: usize) -> Nonces {
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        Nonces::new(secret, lifetime, capacity)
    }

    fn tag(&self, prefix: &[u8], time: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.mac.clone();
        mac.update(prefix);
        mac.update(time);
        let full = mac.finalize().into_bytes();
        std::array::from_fn(|i| full[i])
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table stays consistent at every await-free step, so a poisoned lock is usable.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Issues a nonce over `prefix` at time `now` and starts tracking it.
    pub fn issue_with_prefix(&self, prefix: &[u8], now: u64) -> String {
        let time = now.to_be_bytes();
        let tag = self.tag(prefix, &time);
        let mut t = self.table();
        while let Some(&(old, at)) = t.order.front() {
            let expired = now.saturating_sub(at) > self.lifetime;
            if !expired && t.order.len() < self.capacity {
                break;
            }
            t.order.pop_front();
            t.last_nc.remove(&old);
        }
        t.order.push_back((tag, now));
        t.last_nc.insert(tag, 0);
        drop(t);
        let mut raw = Vec::with_capacity(prefix.len() + TIME_LEN + TAG_LEN);
        raw.extend_from_slice(prefix);
        raw.extend_from_slice(&time);
        raw.extend_from_slice(&tag);
        STANDARD.encode(raw)
    }

    /// Issues a plain Digest nonce with [`RANDOM_PREFIX_LEN`] random octets.
    pub fn issue(&self, now: u64) -> String {
        let mut prefix = [0u8; RANDOM_PREFIX_LEN];
        rand::thread_rng().fill_bytes(&mut prefix);
        self.issue_with_prefix(&prefix, now)
    }

    /// Checks integrity and lifetime of a nonce whose prefix is `prefix_len` octets
    /// long, without touching the replay state. Call [`Nonces::record_use`] once the
    /// digest response is verified.
    pub fn check(
        &self,
        nonce: &str,
        prefix_len: usize,
        now: u64,
    ) -> Result<CheckedNonce, NonceError> {
        let raw = STANDARD.decode(nonce).map_err(|_| {
            tracing::debug!("nonce is not base64");
            NonceError::Malformed
        })?;
        if raw.len() != prefix_len.saturating_add(TIME_LEN + TAG_LEN) {
            tracing::debug!(len = raw.len(), "nonce has the wrong length");
            return Err(NonceError::Malformed);
        }
        let (prefix, rest) = raw.split_at(prefix_len);
        let (time, tag) = rest.split_at(TIME_LEN);
        if !bool::from(self.tag(prefix, time).as_slice().ct_eq(tag)) {
            tracing::debug!("nonce tag does not verify: forged or altered nonce");
            return Err(NonceError::Forged);
        }
        let issued_at = u64::from_be_bytes(std::array::from_fn(|i| time[i]));
        if now.saturating_sub(issued_at) > self.lifetime || issued_at > now {
            tracing::debug!(issued_at, now, "stale nonce");
            return Err(NonceError::Stale);
        }
        Ok(CheckedNonce {
            prefix: prefix.to_vec(),
            issued_at,
            tag: std::array::from_fn(|i| tag[i]),
        })
    }

    /// Records the use of a checked nonce with nonce count `nc` (`None` without `qop`).
    /// `Stale` if its state is gone, `Replay` if `nc` is not above the last accepted.
    pub fn record_use(&self, nonce: &CheckedNonce, nc: Option<u32>) -> Result<(), NonceError> {
        let mut t = self.table();
        let Some(last) = t.last_nc.get_mut(&nonce.tag) else {
            tracing::debug!("nonce state evicted or unknown: stale");
            return Err(NonceError::Stale);
        };
        let nc = match nc {
            Some(n) => n,
            None if *last == 0 => u32::MAX,
            None => 0,
        };
        if nc <= *last {
            tracing::info!(nc, last = *last, "replayed nonce count");
            return Err(NonceError::Replay);
        }
        *last = nc;
        Ok(())
    }

    /// Number of nonces currently tracked (at most the capacity).
    pub fn tracked(&self) -> usize {
        self.table().order.len()
    }
}
