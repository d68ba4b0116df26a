//! Loop detection through the branch parameter (RFC 3261 §16.3 step 4, §16.6 step 8).
//!
//! Our branch ids have two parts: `z9hG4bK<random>` (unique per client transaction,
//! §8.1.1.7) and, after a `.`, a [`LoopHash`] over the fields of the *received*
//! request that affect how it is proxied. When a request arrives carrying one of our
//! own Vias whose loop part equals the hash of the request as it arrives now, nothing
//! that affects routing has changed since we forwarded it: it looped (482). If the
//! hashes differ (a changed Request-URI or Route, as when an S-CSCF sends a request to
//! an application server and gets it back), it is a legitimate spiral.
//!
//! §16.6 step 8 suggests hashing the To tag, From tag, Call-ID, Request-URI, topmost
//! Via, CSeq number, Proxy-Require and Proxy-Authorization. The topmost Via is left out
//! here: in a loop A→B→A it is B's Via on the second pass and our client's on the first,
//! so including it would make every loop look like a spiral. Route is included, as the
//! same step asks ("including any Route, Proxy-Require and Proxy-Authorization").

use md5::{Digest, Md5};

use crate::message::addr::NameAddr;
use crate::message::build::push_random_hex;
use crate::message::via::{Via, BRANCH_MAGIC};
use crate::{HeaderName, SipMessage};

use super::ProxyConfig;

/// Separates the random part of our branch ids from the loop-detection part.
const SEPARATOR: char = '.';

/// Length of a branch id with a loop hash: magic cookie, 16 random hex digits, the
/// separator, 16 hex digits of hash.
const BRANCH_LEN: usize = BRANCH_MAGIC.len() + 16 + 1 + 16;

/// The loop-detection part of a branch: 16 hex digits of an MD5 over the routing
/// fields of a received request (§16.6 step 8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LoopHash(String);

impl LoopHash {
    /// The hash of `req` as received (before §16.4 route preprocessing).
    pub fn of(req: &SipMessage) -> LoopHash {
        let mut h = Md5::new();
        let mut field = |label: &[u8], value: &[u8]| {
            h.update(label);
            h.update(value);
            h.update(b"\n");
        };
        if let Some(r) = req.request() {
            field(b"ruri", &r.uri);
        }
        for name in [HeaderName::From, HeaderName::To] {
            let tag = req
                .headers
                .get_str(&name)
                .and_then(|v| NameAddr::parse(v).ok())
                .and_then(|a| a.tag().map(str::to_string))
                .unwrap_or_default();
            field(b"tag", tag.as_bytes());
        }
        for name in [HeaderName::CallId, HeaderName::CSeq] {
            field(
                name.as_str().as_bytes(),
                req.headers.get_value(&name).map_or(&[][..], |v| &v[..]),
            );
        }
        for name in [
            HeaderName::Route,
            HeaderName::ProxyRequire,
            HeaderName::ProxyAuthorization,
        ] {
            for v in req.headers.values(&name) {
                field(name.as_str().as_bytes(), &v);
            }
        }
        let digest = h.finalize();
        LoopHash(hex::encode(digest.get(..8).unwrap_or_default()))
    }

    /// The hash as written in a branch.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A fresh branch id carrying this hash: `z9hG4bK<random>.<hash>`.
    pub fn branch(&self) -> String {
        let mut out = String::with_capacity(BRANCH_LEN);
        self.push_branch(&mut out);
        out
    }

    /// Appends a fresh branch id carrying this hash ([`LoopHash::branch`]) to `out`.
    pub fn push_branch(&self, out: &mut String) {
        out.push_str(BRANCH_MAGIC);
        self.push_after_magic(out);
    }

    /// Appends what follows the magic cookie in [`LoopHash::branch`] (the random part,
    /// the separator and the hash) to `out`, for a caller that writes the magic cookie
    /// and something of its own first (a sharded engine's tag).
    pub fn push_after_magic(&self, out: &mut String) {
        push_random_hex(out, 16);
        out.push(SEPARATOR);
        out.push_str(&self.0);
    }
}

/// The loop-detection part of a branch id we generated, if it has one.
pub fn loop_part(branch: &str) -> Option<&str> {
    branch
        .rsplit_once(SEPARATOR)
        .map(|(_, h)| h)
        .filter(|h| h.len() == 16 && h.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// True when `req` has looped back to us (§16.3 step 4): some Via carries one of our
/// own sent-by addresses and a branch whose loop part equals `hash`, the hash of `req`
/// as received now. Unparsable Vias are ignored here (the transaction layer already
/// rejects a bad top Via).
pub fn is_loop(req: &SipMessage, hash: &LoopHash, config: &ProxyConfig) -> bool {
    req.headers.values(&HeaderName::Via).any(|value| {
        let Ok(text) = std::str::from_utf8(&value) else {
            return false;
        };
        let Ok(via) = Via::parse(text) else {
            return false;
        };
        let default_port = super::TransportKind::from_token(via.transport)
            .map_or(5060, super::TransportKind::default_port);
        config.is_local(via.host, via.port, default_port)
            && via
                .branch()
                .and_then(loop_part)
                .is_some_and(|p| p == hash.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::LocalAddr;
    use bytes::Bytes;

    fn req(ruri: &str, route: Option<&str>, top_via: &str) -> SipMessage {
        let route = route.map(|r| format!("Route: {r}\r\n")).unwrap_or_default();
        SipMessage::parse(Bytes::from(format!(
            "INVITE {ruri} SIP/2.0\r\nVia: {top_via}\r\n{route}From: <sip:a@x>;tag=1\r\n\
             To: <sip:b@y>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        )))
        .unwrap()
    }

    #[test]
    fn hash_ignores_top_via_but_not_routing_fields() {
        let a = req("sip:b@y", None, "SIP/2.0/UDP a;branch=z9hG4bK1");
        let b = req("sip:b@y", None, "SIP/2.0/UDP b;branch=z9hG4bK2");
        assert_eq!(LoopHash::of(&a), LoopHash::of(&b));
        let c = req("sip:b@z", None, "SIP/2.0/UDP a;branch=z9hG4bK1");
        assert_ne!(LoopHash::of(&a), LoopHash::of(&c));
        let d = req(
            "sip:b@y",
            Some("<sip:as;lr>"),
            "SIP/2.0/UDP a;branch=z9hG4bK1",
        );
        assert_ne!(LoopHash::of(&a), LoopHash::of(&d));
    }

    #[test]
    fn branch_carries_the_hash() {
        let h = LoopHash::of(&req("sip:b@y", None, "SIP/2.0/UDP a;branch=z9hG4bK1"));
        let b1 = h.branch();
        assert!(b1.starts_with("z9hG4bK"));
        assert_eq!(loop_part(&b1), Some(h.as_str()));
        assert_ne!(b1, h.branch());
        assert_eq!(loop_part("z9hG4bKabc"), None);
        assert_eq!(loop_part("z9hG4bK.nothex-nothex-x"), None);
    }

    #[test]
    fn detects_our_via_with_same_hash_only() {
        let config = ProxyConfig {
            local: vec![LocalAddr::new("proxy.example.com", None)],
            supported: vec![],
        };
        let first = req("sip:b@y", None, "SIP/2.0/UDP ua;branch=z9hG4bK1");
        let hash = LoopHash::of(&first);
        let ours = format!("SIP/2.0/UDP proxy.example.com;branch={}", hash.branch());
        let mut back = req("sip:b@y", None, "SIP/2.0/UDP other;branch=z9hG4bK9");
        back.headers.push(HeaderName::Via, ours.clone());
        assert!(is_loop(&back, &LoopHash::of(&back), &config));
        // Same Via but the Request-URI changed: a spiral.
        let mut spiral = req("sip:b@elsewhere", None, "SIP/2.0/UDP other;branch=z9hG4bK9");
        spiral.headers.push(HeaderName::Via, ours);
        assert!(!is_loop(&spiral, &LoopHash::of(&spiral), &config));
        // Same hash in someone else's Via: not ours.
        let mut foreign = req("sip:b@y", None, "SIP/2.0/UDP other;branch=z9hG4bK9");
        foreign.headers.push(
            HeaderName::Via,
            format!("SIP/2.0/UDP elsewhere.example.com;branch={}", hash.branch()),
        );
        assert!(!is_loop(&foreign, &LoopHash::of(&foreign), &config));
    }
}
