//! The original dialog identifier (odi) the S-CSCF puts into the Route back to itself
//! when it sends a request to an application server (TS 24.229 §5.4.3.2 step 4,
//! §5.4.3.3 step 4; TS 23.218 §6.4): when the AS returns the request, the odi tells the
//! S-CSCF which served user and session case the request belongs to and where it was
//! in the served user's iFC chain ([`IfcCursor`]).
//!
//! The S-CSCF keeps no state per request: the odi carries that state itself,
//! authenticated. `odi = base64url(cursor ‖ 0x00 ‖ served user ‖ tag)` where `cursor`
//! is [`IfcCursor::encode`] (session case, registration state, last iFC executed) and
//! `tag` the first 16 bytes of HMAC-SHA256(key, `"odi" ‖ 0 ‖ cursor ‖ 0 ‖ served user ‖
//! 0 ‖ Call-ID`). The Call-ID is bound in but not carried: an odi is good only for the
//! request (dialog) it was issued for, so an AS or UE cannot replay one to skip iFCs
//! of another request. The key is random per S-CSCF process (an odi comes back to the
//! S-CSCF that issued it, within the request's lifetime).
//!
//! Everything read back is hostile input: lengths are bounded before decoding, the tag
//! is compared in constant time, and nothing here panics.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::ifc::cursor::MAX_ENCODED_LEN;
use crate::ifc::IfcCursor;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the HMAC kept in an odi.
const TAG_LEN: usize = 16;
/// Longest served user (an address-of-record) an odi is issued for.
pub const MAX_SERVED_USER: usize = 256;
/// Longest odi accepted back: base64 of the largest payload.
pub const MAX_ODI_LEN: usize = (MAX_ENCODED_LEN + 1 + MAX_SERVED_USER + TAG_LEN).div_ceil(3) * 4;

/// Why an odi from a Route is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OdiError {
    /// Too long, not base64url, or not cursor ‖ 0 ‖ served user ‖ tag.
    #[error("malformed original dialog identifier")]
    Malformed,
    /// The tag does not match: not issued by this S-CSCF for this request.
    #[error("original dialog identifier fails authentication")]
    Forged,
}

/// What an authentic odi says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Odi {
    /// Where the request is in the served user's iFC chain.
    pub cursor: IfcCursor,
    /// The served user (address-of-record).
    pub served_user: String,
}

/// Issues and checks odis with one secret key.
#[derive(Clone)]
pub struct OdiKeys {
    key: [u8; 32],
}

impl std::fmt::Debug for OdiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OdiKeys")
    }
}

impl OdiKeys {
    /// Keys with this secret.
    pub fn new(key: [u8; 32]) -> OdiKeys {
        OdiKeys { key }
    }

    /// Keys with a fresh random secret.
    pub fn random() -> OdiKeys {
        OdiKeys::new(rand::random())
    }

    /// The MAC over an odi's fields (`None` never happens: HMAC takes keys of any
    /// length).
    fn mac(&self, cursor: &[u8], served_user: &[u8], call_id: &[u8]) -> Option<HmacSha256> {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key).ok()?;
        for part in [b"odi".as_slice(), cursor, served_user] {
            mac.update(part);
            mac.update(&[0]);
        }
        mac.update(call_id);
        Some(mac)
    }

    /// The odi for `cursor` and `served_user` on the request with this Call-ID; `None`
    /// for a served user longer than [`MAX_SERVED_USER`] or holding a NUL byte.
    pub fn issue(&self, odi: &Odi, call_id: &[u8]) -> Option<String> {
        let user = odi.served_user.as_bytes();
        if user.len() > MAX_SERVED_USER || user.contains(&0) {
            return None;
        }
        let cursor = odi.cursor.encode();
        let tag = self.mac(cursor.as_bytes(), user, call_id)?.finalize();
        let mut raw = Vec::with_capacity(cursor.len() + 1 + user.len() + TAG_LEN);
        raw.extend_from_slice(cursor.as_bytes());
        raw.push(0);
        raw.extend_from_slice(user);
        raw.extend_from_slice(tag.into_bytes().get(..TAG_LEN)?);
        Some(URL_SAFE_NO_PAD.encode(raw))
    }

    /// What an odi issued by these keys for the request with this Call-ID says.
    pub fn check(&self, token: &str, call_id: &[u8]) -> Result<Odi, OdiError> {
        if token.len() > MAX_ODI_LEN {
            return Err(OdiError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| OdiError::Malformed)?;
        let body_len = raw.len().checked_sub(TAG_LEN).ok_or(OdiError::Malformed)?;
        let (body, tag) = raw.split_at(body_len);
        let nul = body
            .iter()
            .position(|&b| b == 0)
            .ok_or(OdiError::Malformed)?;
        let (cursor, user) = (&body[..nul], &body[nul + 1..]);
        self.mac(cursor, user, call_id)
            .ok_or(OdiError::Forged)?
            .verify_truncated_left(tag)
            .map_err(|_| OdiError::Forged)?;
        let cursor = std::str::from_utf8(cursor).map_err(|_| OdiError::Malformed)?;
        let served_user = String::from_utf8(user.to_vec()).map_err(|_| OdiError::Malformed)?;
        Ok(Odi {
            cursor: IfcCursor::decode(cursor).map_err(|_| OdiError::Malformed)?,
            served_user,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ifc::{IfcPosition, RegistrationState, SessionCase};

    fn odi() -> Odi {
        Odi {
            cursor: IfcCursor {
                session_case: SessionCase::TerminatingUnregistered,
                registration: RegistrationState::Unregistered,
                last: Some(IfcPosition {
                    priority: -20,
                    ordinal: 1,
                }),
            },
            served_user: "sip:bob@ims.example.net".into(),
        }
    }

    #[test]
    fn an_odi_round_trips_for_its_own_call_only() {
        let keys = OdiKeys::new([7; 32]);
        let token = keys.issue(&odi(), b"call-1@x").unwrap();
        // Safe as a SIP URI parameter value (RFC 3261 §25.1 unreserved characters).
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(keys.check(&token, b"call-1@x"), Ok(odi()));
        assert_eq!(keys.check(&token, b"call-2@x"), Err(OdiError::Forged));
        assert_eq!(
            OdiKeys::new([8; 32]).check(&token, b"call-1@x"),
            Err(OdiError::Forged)
        );
    }

    #[test]
    fn a_changed_cursor_or_user_is_forged() {
        let keys = OdiKeys::new([7; 32]);
        let token = keys.issue(&odi(), b"c").unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        // Skip one more iFC: "21.-20.1" -> "21.-20.2".
        let text = String::from_utf8_lossy(&raw).replace("21.-20.1", "21.-20.2");
        let mut skipped = text.as_bytes()[..raw.len() - TAG_LEN].to_vec();
        skipped.extend_from_slice(&raw[raw.len() - TAG_LEN..]);
        assert_eq!(
            keys.check(&URL_SAFE_NO_PAD.encode(&skipped), b"c"),
            Err(OdiError::Forged)
        );
        let mut other_user = raw.clone();
        other_user[10] ^= 1;
        assert_eq!(
            keys.check(&URL_SAFE_NO_PAD.encode(&other_user), b"c"),
            Err(OdiError::Forged)
        );
    }

    #[test]
    fn hostile_odis_are_refused() {
        let keys = OdiKeys::new([7; 32]);
        for bad in ["", "a", "!!!!", "AAAA", &"A".repeat(MAX_ODI_LEN + 1)] {
            assert_eq!(keys.check(bad, b"c"), Err(OdiError::Malformed), "{bad:?}");
        }
        // An authentic tag over a body that is not a cursor.
        let mut raw = b"xx\0sip:a@b".to_vec();
        let tag = keys.mac(b"xx", b"sip:a@b", b"c").unwrap().finalize();
        raw.extend_from_slice(&tag.into_bytes()[..TAG_LEN]);
        assert_eq!(
            keys.check(&URL_SAFE_NO_PAD.encode(&raw), b"c"),
            Err(OdiError::Malformed)
        );
        let long = Odi {
            served_user: format!("sip:{}@x", "a".repeat(MAX_SERVED_USER)),
            ..odi()
        };
        assert_eq!(keys.issue(&long, b"c"), None);
        let mut longest = odi();
        longest.served_user = "u".repeat(MAX_SERVED_USER);
        longest.cursor.last = Some(IfcPosition {
            priority: i64::MIN,
            ordinal: u16::MAX,
        });
        let token = keys.issue(&longest, b"c").unwrap();
        assert!(token.len() <= MAX_ODI_LEN);
        assert_eq!(keys.check(&token, b"c"), Ok(longest));
    }

    proptest! {
        #[test]
        fn check_never_panics(token in ".{0,600}", call_id in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = OdiKeys::new([1; 32]).check(&token, &call_id);
        }
    }
}
