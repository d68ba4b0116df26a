//! Transaction keys: how a request or response is matched to its transaction
//! (RFC 3261 §17.1.3 and §17.2.3).

use std::io::Write as _;

use bytes::Bytes;

use super::cseq::CSeq;
use super::via::{Via, BRANCH_MAGIC};
use super::{HeaderName, Method, ParseError, SipMessage};

/// Identifies one transaction. For RFC 3261 peers (branch starting with `z9hG4bK`) it is
/// the top Via's branch and sent-by plus the method (`ACK` matching `INVITE`, §17.2.3);
/// for RFC 2543 peers it falls back to Request-URI, tags, Call-ID, CSeq and top Via.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransactionKey {
    /// RFC 3261 key.
    Rfc3261 {
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
        /// Request-URI, From tag, Call-ID, CSeq number, top Via, method.
        parts: Bytes,
        /// Method with ACK folded into INVITE.
        method: Method,
    },
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

    /// The same transaction's key with `method` (a CANCEL's or an ACK's INVITE, §9.2,
    /// §17.2.3).
    pub fn with_method(&self, method: Method) -> TransactionKey {
        match self {
            TransactionKey::Rfc3261 {
                branch, sent_by, ..
            } => TransactionKey::Rfc3261 {
                branch: branch.clone(),
                sent_by: sent_by.clone(),
                method,
            },
            TransactionKey::Rfc2543 { parts, .. } => TransactionKey::Rfc2543 {
                parts: parts.clone(),
                method,
            },
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
                Ok(TransactionKey::Rfc3261 {
                    branch: Bytes::copy_from_slice(branch.as_bytes()),
                    sent_by: Bytes::from(sent_by),
                    method,
                })
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
                Ok(TransactionKey::Rfc2543 {
                    parts: Bytes::from(parts),
                    method,
                })
            }
        }
    }
}
