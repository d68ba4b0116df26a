//! The original dialog identifier (odi) the S-CSCF puts into the Route back to itself
//! when it sends a request to an application server (TS 24.229 §5.4.3.2 step 4,
//! §5.4.3.3 step 4; TS 23.218 §6.4): when the AS returns the request, the odi tells the
//! S-CSCF which served user and session case the request belongs to and where it was
//! in the served user's iFC chain ([`IfcCursor`]).
//!
//! The S-CSCF keeps no state per request: the odi carries that state itself,
//! authenticated. `odi = base64url(cursor ‖ 0x00 ‖ served user ‖ expiry ‖ tag)` where
//! `cursor` is [`IfcCursor::encode`] (session case, registration state, last iFC
//! executed), `expiry` the Unix second after which the odi is refused (8 bytes, big
//! endian; [`ODI_LIFETIME_SECS`] after issue) and `tag` the first 16 bytes of
//! HMAC-SHA256(key, `"odi" ‖ 0 ‖ cursor ‖ 0 ‖ served user ‖ 0 ‖ expiry`).
//!
//! The odi is not bound to the request's Call-ID: an AS acting as a routing B2BUA
//! (TS 23.218 §9.1.4, TS 24.229 §5.7.5) sends the request back in a new dialog with a
//! new Call-ID, and the odi is what lets the S-CSCF recognise it (TS 24.229 §5.4.3.2
//! step 4: "the original dialog identifier ... to identify the original dialog"). The
//! expiry bounds how long a copied odi can be replayed: it travels only in the Route
//! between this S-CSCF and its application servers, inside the trust domain. The key is
//! random per S-CSCF process (an odi comes back to the S-CSCF that issued it).
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
/// Bytes of the expiry (Unix seconds, big endian).
const EXPIRY_LEN: usize = 8;
/// How long an odi is good for after it is issued: five minutes, longer than an INVITE
/// transaction lives at a proxy that sees provisional responses (RFC 3261 §16.6 Timer C,
/// over three minutes) plus an AS's own handling.
pub const ODI_LIFETIME_SECS: u64 = 300;
/// Longest served user (an address-of-record) an odi is issued for.
pub const MAX_SERVED_USER: usize = 256;
/// Longest odi accepted back: base64 of the largest payload.
pub const MAX_ODI_LEN: usize =
    (MAX_ENCODED_LEN + 1 + MAX_SERVED_USER + EXPIRY_LEN + TAG_LEN).div_ceil(3) * 4;

/// Why an odi from a Route is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OdiError {
    /// Too long, not base64url, or not cursor ‖ 0 ‖ served user ‖ expiry ‖ tag.
    #[error("malformed original dialog identifier")]
    Malformed,
    /// The tag does not match: not issued by this S-CSCF.
    #[error("original dialog identifier fails authentication")]
    Forged,
    /// Authentic, but past its expiry.
    #[error("original dialog identifier expired")]
    Expired,
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
    fn mac(&self, cursor: &[u8], served_user: &[u8], expiry: &[u8]) -> Option<HmacSha256> {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key).ok()?;
        for part in [b"odi".as_slice(), cursor, served_user] {
            mac.update(part);
            mac.update(&[0]);
        }
        mac.update(expiry);
        Some(mac)
    }

    /// The odi for `cursor` and `served_user`, issued at Unix second `now`; `None` for
    /// a served user longer than [`MAX_SERVED_USER`] or holding a NUL byte.
    pub fn issue(&self, odi: &Odi, now: u64) -> Option<String> {
        let user = odi.served_user.as_bytes();
        if user.len() > MAX_SERVED_USER || user.contains(&0) {
            return None;
        }
        let cursor = odi.cursor.encode();
        let expiry = now.saturating_add(ODI_LIFETIME_SECS).to_be_bytes();
        let tag = self.mac(cursor.as_bytes(), user, &expiry)?.finalize();
        let mut raw = Vec::with_capacity(cursor.len() + 1 + user.len() + EXPIRY_LEN + TAG_LEN);
        raw.extend_from_slice(cursor.as_bytes());
        raw.push(0);
        raw.extend_from_slice(user);
        raw.extend_from_slice(&expiry);
        raw.extend_from_slice(tag.into_bytes().get(..TAG_LEN)?);
        Some(URL_SAFE_NO_PAD.encode(raw))
    }

    /// What an odi issued by these keys says, checked at Unix second `now`.
    pub fn check(&self, token: &str, now: u64) -> Result<Odi, OdiError> {
        if token.len() > MAX_ODI_LEN {
            return Err(OdiError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| OdiError::Malformed)?;
        let signed_len = raw.len().checked_sub(TAG_LEN).ok_or(OdiError::Malformed)?;
        let (signed, tag) = raw.split_at(signed_len);
        let body_len = signed
            .len()
            .checked_sub(EXPIRY_LEN)
            .ok_or(OdiError::Malformed)?;
        let (body, expiry) = signed.split_at(body_len);
        let nul = body
            .iter()
            .position(|&b| b == 0)
            .ok_or(OdiError::Malformed)?;
        let (cursor, user) = (&body[..nul], &body[nul + 1..]);
        self.mac(cursor, user, expiry)
            .ok_or(OdiError::Forged)?
            .verify_truncated_left(tag)
            .map_err(|_| OdiError::Forged)?;
        let expiry = <[u8; EXPIRY_LEN]>::try_from(expiry).map_err(|_| OdiError::Malformed)?;
        if now > u64::from_be_bytes(expiry) {
            return Err(OdiError::Expired);
        }
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

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn an_odi_round_trips_until_it_expires() {
        let keys = OdiKeys::new([7; 32]);
        let token = keys.issue(&odi(), NOW).unwrap();
        // Safe as a SIP URI parameter value (RFC 3261 §25.1 unreserved characters).
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(keys.check(&token, NOW), Ok(odi()));
        // Good for any request (a B2BUA AS returns it with a new Call-ID) until expiry.
        assert_eq!(keys.check(&token, NOW + ODI_LIFETIME_SECS), Ok(odi()));
        assert_eq!(
            keys.check(&token, NOW + ODI_LIFETIME_SECS + 1),
            Err(OdiError::Expired)
        );
        assert_eq!(
            OdiKeys::new([8; 32]).check(&token, NOW),
            Err(OdiError::Forged)
        );
    }

    #[test]
    fn a_changed_cursor_user_or_expiry_is_forged() {
        let keys = OdiKeys::new([7; 32]);
        let token = keys.issue(&odi(), NOW).unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let forged = |raw: &[u8]| keys.check(&URL_SAFE_NO_PAD.encode(raw), NOW);
        // Skip one more iFC: "21.-20.1" -> "21.-20.2".
        let mut skipped = raw.clone();
        let at = raw.windows(8).position(|w| w == b"21.-20.1").unwrap();
        skipped[at + 7] = b'2';
        assert_eq!(forged(&skipped), Err(OdiError::Forged));
        let mut other_user = raw.clone();
        other_user[10] ^= 1;
        assert_eq!(forged(&other_user), Err(OdiError::Forged));
        // A later expiry: the last expiry byte sits just before the tag.
        let mut extended = raw.clone();
        extended[raw.len() - TAG_LEN - 1] ^= 0x80;
        assert_eq!(forged(&extended), Err(OdiError::Forged));
    }

    #[test]
    fn hostile_odis_are_refused() {
        let keys = OdiKeys::new([7; 32]);
        for bad in [
            "",
            "a",
            "!!!!",
            "AAAA",
            &"A".repeat(40),
            &"A".repeat(MAX_ODI_LEN + 1),
        ] {
            assert!(
                matches!(
                    keys.check(bad, NOW),
                    Err(OdiError::Malformed | OdiError::Forged)
                ),
                "{bad:?}"
            );
        }
        assert_eq!(keys.check("AAAA", NOW), Err(OdiError::Malformed));
        // An authentic tag over a body that is not a cursor.
        let expiry = (NOW + 1).to_be_bytes();
        let mut raw = b"xx\0sip:a@b".to_vec();
        raw.extend_from_slice(&expiry);
        let tag = keys.mac(b"xx", b"sip:a@b", &expiry).unwrap().finalize();
        raw.extend_from_slice(&tag.into_bytes()[..TAG_LEN]);
        assert_eq!(
            keys.check(&URL_SAFE_NO_PAD.encode(&raw), NOW),
            Err(OdiError::Malformed)
        );
        let long = Odi {
            served_user: format!("sip:{}@x", "a".repeat(MAX_SERVED_USER)),
            ..odi()
        };
        assert_eq!(keys.issue(&long, NOW), None);
        let mut longest = odi();
        longest.served_user = "u".repeat(MAX_SERVED_USER);
        longest.cursor.last = Some(IfcPosition {
            priority: i64::MIN,
            ordinal: u16::MAX,
        });
        let token = keys.issue(&longest, NOW).unwrap();
        assert!(token.len() <= MAX_ODI_LEN);
        assert_eq!(keys.check(&token, NOW), Ok(longest));
        // Issued at the end of time: saturates instead of wrapping into the past.
        let token = keys.issue(&odi(), u64::MAX).unwrap();
        assert_eq!(keys.check(&token, u64::MAX), Ok(odi()));
    }

    proptest! {
        #[test]
        fn check_never_panics(token in ".{0,600}", now in any::<u64>()) {
            let _ = OdiKeys::new([1; 32]).check(&token, now);
        }
    }
}
