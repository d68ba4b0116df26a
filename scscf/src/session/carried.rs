//! The caller's Bearer token across an application server (design brief §5-§6).
//!
//! The Keystone token never leaves our own nodes: the S-CSCF removes it from every
//! request it sends to an application server ([`super::as_routing::next_hop`]). The
//! request that comes back still needs it: the next AS hop is a policy question
//! (`as:<name>`) and, after an originating AS, the callee's S-CSCF asks whether the
//! caller's token may reach the callee's tenant. So the S-CSCF keeps the token here
//! under a fresh random key (128 bits) for as long as the odi it travels with is good
//! ([`super::odi::ODI_LIFETIME_SECS`]), writes the key beside the odi in its Route value
//! (`;bkey=KEY`, [`CARRY_PARAM`]) and puts the token back when the request returns with
//! that Route ([`super::resume`]).
//!
//! An application server sees the key, never the token. A key only helps a request
//! that also carries a valid odi of this S-CSCF for the same hop (the AS the served
//! user's iFC named, which may originate and return requests for that user anyway), and
//! only for the lifetime of the odi. The table is bounded ([`CAPACITY`] entries, the
//! oldest dropped first): a request whose token was dropped, or that never had one,
//! goes on without a token and is decided as such downstream (refused where a
//! decision needs a token: fail closed).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cloud_auth::filter::bearer::Bearer;
use cloud_auth::filter::sip::{bearer_of, strip_bearer};
use ims_sip::{HeaderName, SipMessage};
use rand::RngCore;

use super::odi::ODI_LIFETIME_SECS;

/// URI parameter of our Route value (under the AS's) naming the kept token.
pub const CARRY_PARAM: &str = "bkey";

/// Tokens kept at most (about 300 bytes each: a Fernet token and its key).
pub const CAPACITY: usize = 65_536;

/// The tokens of requests visiting application servers, by key.
pub struct CarriedTokens {
    inner: Mutex<Inner>,
    capacity: usize,
    lifetime: Duration,
}

#[derive(Default)]
struct Inner {
    tokens: HashMap<String, (String, Instant)>,
    /// Keys by insertion (and so expiry) order.
    order: VecDeque<String>,
}

impl std::fmt::Debug for CarriedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens.
        f.debug_struct("CarriedTokens")
            .field("held", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Default for CarriedTokens {
    fn default() -> Self {
        CarriedTokens::new(CAPACITY, Duration::from_secs(ODI_LIFETIME_SECS))
    }
}

impl CarriedTokens {
    /// A table of at most `capacity` tokens, each kept for `lifetime`.
    pub fn new(capacity: usize, lifetime: Duration) -> CarriedTokens {
        CarriedTokens {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            lifetime,
        }
    }

    /// Keeps the Bearer token of `request`, if it has one; its key.
    pub fn keep(&self, request: &SipMessage) -> Option<String> {
        let Bearer::Token(token) = bearer_of(request) else {
            return None;
        };
        let mut raw = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut raw);
        let key = hex::encode(raw);
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.expire(now);
        while inner.tokens.len() >= self.capacity {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.tokens.remove(&oldest);
        }
        inner
            .tokens
            .insert(key.clone(), (token.to_owned(), now + self.lifetime));
        inner.order.push_back(key.clone());
        Some(key)
    }

    /// The token kept under `key`, while it lives.
    pub fn get(&self, key: &str) -> Option<String> {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.expire(now);
        inner.tokens.get(key).map(|(t, _)| t.clone())
    }

    /// Tokens held.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tokens
            .len()
    }

    /// True when no token is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `request` with the token kept under `key` as its only Bearer credential, or
    /// `None` when there is no such token (the request goes on as it is).
    pub fn restore(&self, request: &SipMessage, key: Option<&str>) -> Option<SipMessage> {
        let token = self.get(key?)?;
        let mut restored = request.clone();
        strip_bearer(&mut restored);
        restored
            .headers
            .push(HeaderName::Authorization, format!("Bearer {token}"));
        Some(restored)
    }
}

impl Inner {
    fn expire(&mut self, now: Instant) {
        while let Some(key) = self.order.front() {
            match self.tokens.get(key) {
                Some((_, until)) if *until > now => break,
                _ => {
                    if let Some(key) = self.order.pop_front() {
                        self.tokens.remove(&key);
                    }
                }
            }
        }
    }
}

/// The kept token's key in the Route value §16.4 removed (ours), if any.
pub fn key_of(popped_route: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(popped_route).ok()?;
    let addr = ims_sip::message::addr::NameAddr::parse(text).ok()?;
    let uri = ims_sip::message::uri::Uri::parse(addr.uri).ok()?;
    uri.param(CARRY_PARAM).flatten().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(auth: &str) -> SipMessage {
        SipMessage::parse(format!(
            "INVITE sip:bob@ims.example.net SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\n\
             From: <sip:alice@ims.example.net>;tag=1\r\nTo: <sip:bob@ims.example.net>\r\n\
             Call-ID: c\r\nCSeq: 1 INVITE\r\n{auth}Content-Length: 0\r\n\r\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_kept_token_is_restored_under_its_key_only() {
        let table = CarriedTokens::default();
        assert_eq!(table.keep(&request("")), None, "nothing to keep");
        let key = table
            .keep(&request("Authorization: Bearer gAAAA-tok\r\n"))
            .unwrap();
        assert_eq!(key.len(), 32);
        // Back from the AS with no token, or with one the AS put there: ours replaces it.
        let back = request("Authorization: Bearer as-own-token\r\n");
        let restored = table.restore(&back, Some(&key)).unwrap();
        assert_eq!(bearer_of(&restored), Bearer::Token("gAAAA-tok"));
        assert!(table.restore(&back, Some("0000")).is_none());
        assert!(table.restore(&back, None).is_none());
    }

    #[test]
    fn the_table_is_bounded_and_tokens_expire() {
        let table = CarriedTokens::new(2, Duration::from_secs(60));
        let keys: Vec<_> = (0..3)
            .map(|i| {
                table
                    .keep(&request(&format!("Authorization: Bearer t{i}\r\n")))
                    .unwrap()
            })
            .collect();
        assert_eq!(table.len(), 2);
        assert_eq!(table.get(&keys[0]), None, "the oldest was dropped");
        assert_eq!(table.get(&keys[2]).as_deref(), Some("t2"));
        let short = CarriedTokens::new(2, Duration::ZERO);
        let key = short.keep(&request("Authorization: Bearer t\r\n")).unwrap();
        assert_eq!(short.get(&key), None);
        assert!(short.is_empty());
    }

    #[test]
    fn the_key_is_read_from_our_route_value() {
        assert_eq!(
            key_of(b"<sip:127.0.0.1:5080;lr;orig;odi=AbC;bkey=00ff>").as_deref(),
            Some("00ff")
        );
        assert_eq!(key_of(b"<sip:127.0.0.1:5080;lr;odi=AbC>"), None);
        assert_eq!(key_of(b"\xff<"), None);
    }
}
