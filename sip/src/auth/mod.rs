//! Authentication primitives for the CSCFs and the HSS.
//!
//! * [`digest`]: HTTP Digest for SIP (RFC 3261 §22.4, RFC 2617, RFC 7616): HA1,
//!   `response`, constant-time verification, challenges and `Authentication-Info`.
//! * [`milenage`]: the 3GPP authentication functions f1..f5* (TS 35.206).
//! * [`aka`]: IMS AKA vectors, the AKAv1-MD5 nonce, resynchronisation and a USIM model
//!   (RFC 3310, TS 33.102 §6.3, TS 33.203).
//! * [`decoy`]: challenges of the real shape for identities we do not serve.
//! * [`nonce`]: integrity-protected nonces with expiry (stale) and replay detection.
//!
//! Nothing here logs keys, passwords, HA1, RES or CK/IK; `Debug` output hides them.

pub mod aka;
pub mod decoy;
pub mod digest;
pub mod milenage;
pub mod nonce;

pub use aka::{AkaError, AuthVector, Sqn};
pub use digest::{Algorithm, Challenge, Credentials, DigestError, Ha1};
pub use milenage::Milenage;
pub use nonce::{NonceError, Nonces};

/// The Digest credentials of a request and their raw `Authorization` value, if any: a
/// UE may send several Authorization headers (Digest and an RFC 8898 Bearer token).
pub fn digest_credentials(request: &crate::SipMessage) -> (Option<Credentials>, Option<&str>) {
    let raw = request
        .headers
        .get_all(&crate::HeaderName::Authorization)
        .filter_map(|h| h.value_str())
        .find(|v| {
            v.trim_start()
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case("digest"))
        });
    (raw.and_then(|a| Credentials::parse(a).ok()), raw)
}

/// True when `creds` answer a challenge (carry a response or an AKA AUTS).
pub fn carries_response(creds: Option<&Credentials>) -> bool {
    creds.is_some_and(|c| !c.response.is_empty() || c.auts.is_some())
}
