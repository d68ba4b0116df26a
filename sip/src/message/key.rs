//! Transaction keys: how a request or response is matched to its transaction
//! (RFC 3261 §17.1.3 and §17.2.3).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::io::Write as _;
use std::sync::OnceLock;

use bytes::Bytes;

use super::cseq::CSeq;
use super::via::{Via, BRANCH_MAGIC};
use super::{HeaderName, Method, ParseError, SipMessage};

/// Identifies one transaction. For RFC 3261 peers (branch starting with `z9hG4bK`) it is
/// the top Via's branch and sent-by plus the method (`ACK` matching `INVITE`, §17.2.3);
/// for RFC 2543 peers it falls back to Request-URI, tags, Call-ID, CSeq and top Via.
///
/// Built with [`TransactionKey::of`], [`TransactionKey::rfc3261`] or
/// [`TransactionKey::rfc2543`]: each key carries the keyed hash of its parts
/// ([`KeyHash`]), taken once, so that the several tables a message is looked up in
/// hash 8 bytes each instead of its branch and sent-by every time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionKey {
    /// RFC 3261 key.
    Rfc3261 {
        /// The hash of the parts below (first: two keys that differ are told apart
        /// by it first).
        hash: KeyHash,
        /// The branch parameter, compared exactly (it is case-sensitive in practice;
        /// RFC 3261 compares it case-sensitively as a token).
        branch: Bytes,
        /// sent-by (`host[:port]`) lowercased.
        sent_by: Bytes,
        /// Method with ACK folded into INVITE. CANCEL stays separate (§9.2).
        method: Method,
    },
    /// RFC 2543 fallback key: every element as text.
    Rfc2543 {
        /// The hash of the parts below.
        hash: KeyHash,
        /// Request-URI, From tag, Call-ID, CSeq number, top Via, method.
        parts: Bytes,
        /// Method with ACK folded into INVITE.
        method: Method,
    },
}

/// A transaction key's hash: SipHash of its parts under this process's random key,
/// so a peer that chooses branches cannot aim them at one bucket (the tables then
/// hash these 8 bytes with their own random keys). Made only by [`TransactionKey`]'s
/// constructors, so it always matches the parts it is stored with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHash(u64);

impl KeyHash {
    fn of(parts: impl Hash) -> KeyHash {
        static KEYS: OnceLock<RandomState> = OnceLock::new();
        KeyHash(KEYS.get_or_init(RandomState::new).hash_one(parts))
    }
}

impl Hash for TransactionKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (TransactionKey::Rfc3261 { hash, .. } | TransactionKey::Rfc2543 { hash, .. }) = self;
        state.write_u64(hash.0);
    }
}

fn fold_ack(m: &Method) -> Method {
    match m {
        Method::Ack => Method::Invite,
        other => other.clone(),
    }
}

impl TransactionKey {
    /// The transaction's method (ACK folded into INVITE).
    pub fn method(&self) -> &Method {
        match self {
            TransactionKey::Rfc3261 { method, .. } | TransactionKey::Rfc2543 { method, .. } => {
                method
            }
        }
    }

    /// An RFC 3261 key: `branch` (with the magic cookie), `sent_by` lowercased, `method`
    /// with ACK folded into INVITE.
    pub fn rfc3261(branch: Bytes, sent_by: Bytes, method: Method) -> TransactionKey {
        TransactionKey::Rfc3261 {
            hash: KeyHash::of((0u8, &branch, &sent_by, &method)),
            branch,
            sent_by,
            method,
        }
    }

    /// An RFC 2543 key of `parts` (Request-URI, From tag, Call-ID, CSeq number, top
    /// Via) and `method` with ACK folded into INVITE.
    pub fn rfc2543(parts: Bytes, method: Method) -> TransactionKey {
        TransactionKey::Rfc2543 {
            hash: KeyHash::of((1u8, &parts, &method)),
            parts,
            method,
        }
    }

    /// The same transaction's key with `method` (a CANCEL's or an ACK's INVITE, §9.2,
    /// §17.2.3).
    pub fn with_method(&self, method: Method) -> TransactionKey {
        match self {
            TransactionKey::Rfc3261 {
                branch, sent_by, ..
            } => TransactionKey::rfc3261(branch.clone(), sent_by.clone(), method),
            TransactionKey::Rfc2543 { parts, .. } => TransactionKey::rfc2543(parts.clone(), method),
        }
    }

    /// The key of a message (request or response) from its top Via and CSeq.
    ///
    /// For a response the method comes from CSeq; a response always matches by
    /// branch (a client transaction only ever sends RFC 3261 branches).
    pub fn of(msg: &SipMessage) -> Result<TransactionKey, ParseError> {
        let top = msg
            .headers
            .first_value(&HeaderName::Via)
            .ok_or(ParseError::MissingHeader("Via"))?;
        let top_str = std::str::from_utf8(&top).map_err(|_| ParseError::HeaderValue {
            header: "Via",
            reason: "not UTF-8",
        })?;
        let via = Via::parse(top_str)?;
        let cseq_value = msg
            .headers
            .get_value(&HeaderName::CSeq)
            .ok_or(ParseError::MissingHeader("CSeq"))?;
        let cseq = CSeq::parse(cseq_value)?;
        let method = fold_ack(msg.method().unwrap_or(&cseq.method));
        match via.branch() {
            Some(branch) if branch.starts_with(BRANCH_MAGIC) => {
                // One allocation: the host lowercased, then ":port" (at most 6 bytes).
                let mut sent_by = Vec::with_capacity(via.host.len() + 6);
                sent_by.extend(via.host.bytes().map(|b| b.to_ascii_lowercase()));
                if let Some(p) = via.port {
                    let _ = write!(sent_by, ":{p}");
                }
                Ok(TransactionKey::rfc3261(
                    Bytes::copy_from_slice(branch.as_bytes()),
                    Bytes::from(sent_by),
                    method,
                ))
            }
            _ => {
                let from_tag = msg
                    .headers
                    .get_str(&HeaderName::From)
                    .and_then(|f| super::addr::NameAddr::parse(f).ok())
                    .and_then(|a| a.tag().map(str::to_string))
                    .unwrap_or_default();
                let call_id = msg.headers.get_str(&HeaderName::CallId).unwrap_or("");
                let uri = msg
                    .request()
                    .map(|r| String::from_utf8_lossy(&r.uri).into_owned())
                    .unwrap_or_default();
                let parts = format!("{uri}\n{from_tag}\n{call_id}\n{}\n{top_str}", cseq.seq);
                Ok(TransactionKey::rfc2543(Bytes::from(parts), method))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn request(branch: &str, method: &str) -> SipMessage {
        SipMessage::parse(format!(
            "{method} sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP UA.example.com:5070;branch={branch}\r\n\
             From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c\r\n\
             CSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_key_hashes_its_parts_and_finds_its_transaction_from_another_message() {
        let invite = TransactionKey::of(&request("z9hG4bKab", "INVITE")).unwrap();
        let mut table = HashMap::new();
        table.insert(invite.clone(), "invite");
        // The ACK of the same branch (folded into INVITE), parsed apart: the same key.
        let ack = TransactionKey::of(&request("z9hG4bKab", "ACK")).unwrap();
        assert_eq!(ack, invite);
        assert_eq!(table.get(&ack), Some(&"invite"));
        // The same parts built directly: equal, so one entry.
        let built = TransactionKey::rfc3261(
            Bytes::from_static(b"z9hG4bKab"),
            Bytes::from_static(b"ua.example.com:5070"),
            Method::Invite,
        );
        assert_eq!(built, invite);
        // Another method, branch (case counts) or sent-by: another transaction.
        let cancel = invite.with_method(Method::Cancel);
        let other_branch = TransactionKey::of(&request("z9hG4bKAB", "INVITE")).unwrap();
        let other_host = TransactionKey::rfc3261(
            Bytes::from_static(b"z9hG4bKab"),
            Bytes::from_static(b"ua.example.com:5071"),
            Method::Invite,
        );
        let hasher = RandomState::new();
        for other in [&cancel, &other_branch, &other_host] {
            assert_ne!(other, &invite);
            assert_eq!(table.get(other), None);
            // Each part is in the hash: these land in the same bucket only by chance.
            assert_ne!(
                hasher.hash_one(other),
                hasher.hash_one(&invite),
                "{other:?}"
            );
        }
        assert_eq!(hasher.hash_one(&built), hasher.hash_one(&invite));
        assert_eq!(cancel.with_method(Method::Invite), invite);
        // RFC 2543 keys are hashed with their parts too.
        let old = TransactionKey::of(&request("1", "INVITE")).unwrap();
        assert!(matches!(old, TransactionKey::Rfc2543 { .. }));
        assert_eq!(old.with_method(Method::Invite), old);
        assert_ne!(old.with_method(Method::Cancel), old);
    }
}
