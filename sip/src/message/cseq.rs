//! The CSeq header (RFC 3261 §20.16).

use super::scan;
use super::{Method, ParseError};

/// `CSeq: <number> <method>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (32-bit, RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses a CSeq value.
    pub fn parse(value: &[u8]) -> Result<CSeq, ParseError> {
        const BAD: ParseError = ParseError::HeaderValue {
            header: "CSeq",
            reason: "expected <32-bit number> <method>",
        };
        let value = scan::trim(value);
        let mut parts = value
            .split(|c| *c == b' ' || *c == b'\t')
            .filter(|p| !p.is_empty());
        let num = parts.next().ok_or(BAD)?;
        let method = parts.next().ok_or(BAD)?;
        if parts.next().is_some() || num.len() > 10 || !num.iter().all(u8::is_ascii_digit) {
            return Err(BAD);
        }
        let seq = num
            .iter()
            .try_fold(0u64, |acc, d| Some(acc * 10 + u64::from(d - b'0')))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(BAD)?;
        if !scan::is_token(method) {
            return Err(BAD);
        }
        Ok(CSeq {
            seq,
            method: Method::from_token(method),
        })
    }
}

impl std::fmt::Display for CSeq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}
