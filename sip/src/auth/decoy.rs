//! Decoy challenges for identities we do not serve (no user enumeration): an unknown
//! identity gets a `401` whose `WWW-Authenticate` has the shape of a real one, built by
//! the same [`Challenge`] formatting the registrar uses, with a nonce of the same
//! layout, length and encoding (base64 of prefix ‖ time ‖ HMAC tag, [`Nonces`]): 16
//! random octets for Digest, 32 for AKAv1-MD5 where a real nonce carries RAND ‖ AUTN.
//! Only the holder of the secret can tell a decoy nonce from a real one.
//!
//! The answer to a decoy can never be right: it is refused like a wrong password
//! ([`DecoyAnswer::Wrong`], a `403`), once; the same nonce again is challenged afresh
//! (as the registrar does after a wrong answer consumed its challenge), and a lapsed
//! one gets `stale=true`.

use rand::RngCore;

use super::digest::{Algorithm, Challenge, Credentials};
use super::nonce::{NonceError, Nonces, RANDOM_PREFIX_LEN};

/// Octets of RAND ‖ AUTN, the prefix of an AKAv1-MD5 nonce (RFC 3310 §3.2).
pub const AKA_PREFIX_LEN: usize = 32;

/// The `WWW-Authenticate` value of a challenge: the one formatting of the registrar's
/// challenges and of decoys.
pub fn www_authenticate(realm: &str, nonce: &str, algorithm: Algorithm, stale: bool) -> String {
    Challenge {
        realm,
        nonce,
        algorithm,
        opaque: None,
        stale,
    }
    .to_string()
}

/// What to answer to credentials given for a decoy challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoyAnswer {
    /// Not an answer to a live decoy (no response, a nonce not ours or used): a new
    /// decoy challenge.
    Challenge,
    /// The decoy nonce lapsed: a new decoy challenge with `stale=true`.
    Stale,
    /// An answer to a live decoy: refused as a wrong response (`403`).
    Wrong,
}

/// Issues decoy challenges and recognises the answers to them.
#[derive(Debug)]
pub struct Decoys {
    nonces: Nonces,
}

impl Decoys {
    /// Decoys whose nonces live `lifetime` seconds, remembering at most `capacity`
    /// issued nonces (to refuse each answer once).
    pub fn new(lifetime: u64, capacity: usize) -> Decoys {
        Decoys {
            nonces: Nonces::with_random_secret(lifetime, capacity),
        }
    }

    /// A decoy `WWW-Authenticate` value for `realm` with `algorithm` at `now`.
    pub fn challenge(&self, realm: &str, algorithm: Algorithm, stale: bool, now: u64) -> String {
        let nonce = if algorithm == Algorithm::AkaV1Md5 {
            let mut rand_autn = [0u8; AKA_PREFIX_LEN];
            rand::thread_rng().fill_bytes(&mut rand_autn);
            self.nonces.issue_with_prefix(&rand_autn, now)
        } else {
            self.nonces.issue(now)
        };
        www_authenticate(realm, &nonce, algorithm, stale)
    }

    /// What `creds` (answering a decoy, or not) get at `now`.
    pub fn answer(&self, creds: &Credentials, now: u64) -> DecoyAnswer {
        if creds.nonce.is_empty() || creds.response.is_empty() && creds.auts.is_none() {
            return DecoyAnswer::Challenge;
        }
        for prefix in [RANDOM_PREFIX_LEN, AKA_PREFIX_LEN] {
            match self.nonces.check(&creds.nonce, prefix, now) {
                Ok(checked) => {
                    return match self.nonces.record_use(&checked, Some(u32::MAX)) {
                        Ok(()) => DecoyAnswer::Wrong,
                        Err(NonceError::Stale) => DecoyAnswer::Stale,
                        Err(_) => DecoyAnswer::Challenge,
                    }
                }
                Err(NonceError::Stale) => return DecoyAnswer::Stale,
                Err(_) => {}
            }
        }
        DecoyAnswer::Challenge
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::digest::{response, Ha1, QopAuth};
    use crate::message::auth_params::AuthParams;

    fn params(h: &str) -> Vec<(String, usize)> {
        // Parameter names in order, with the length of their values.
        let body = h.split_once(' ').map_or("", |(_, b)| b);
        body.split(", ")
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_string(), v.len())
            })
            .collect()
    }

    fn creds_for(h: &str, pw: &str) -> Credentials {
        let nonce = AuthParams::parse(h).unwrap().get("nonce").unwrap();
        let ha1 = Ha1::compute(Algorithm::Md5, "x@r", "r", pw.as_bytes());
        let q = QopAuth {
            nc: "00000001",
            cnonce: "c",
        };
        let rsp = response(Algorithm::Md5, &ha1, "REGISTER", "sip:r", &nonce, Some(q)).unwrap();
        Credentials::parse(&format!(
            "Digest username=\"x@r\", realm=\"r\", nonce=\"{nonce}\", uri=\"sip:r\", \
             response=\"{rsp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c\""
        ))
        .unwrap()
    }

    #[test]
    fn a_decoy_has_the_shape_of_a_real_challenge() {
        let real_nonces = Nonces::with_random_secret(60, 16);
        let real = www_authenticate("r", &real_nonces.issue(1000), Algorithm::Md5, false);
        let d = Decoys::new(60, 16);
        let decoy = d.challenge("r", Algorithm::Md5, false, 1000);
        assert_eq!(params(&real), params(&decoy));
        assert!(decoy.starts_with("Digest realm=\"r\", nonce=\""), "{decoy}");
        let real_aka = www_authenticate(
            "r",
            &real_nonces.issue_with_prefix(&[7u8; 32], 1000),
            Algorithm::AkaV1Md5,
            true,
        );
        let decoy_aka = d.challenge("r", Algorithm::AkaV1Md5, true, 1000);
        assert_eq!(params(&real_aka), params(&decoy_aka));
    }

    #[test]
    fn an_answer_to_a_decoy_is_wrong_once_then_challenged() {
        let d = Decoys::new(60, 16);
        let h = d.challenge("r", Algorithm::Md5, false, 1000);
        let c = creds_for(&h, "any");
        assert_eq!(d.answer(&c, 1001), DecoyAnswer::Wrong);
        assert_eq!(d.answer(&c, 1002), DecoyAnswer::Challenge);
        let h = d.challenge("r", Algorithm::Md5, false, 1000);
        assert_eq!(d.answer(&creds_for(&h, "x"), 1061), DecoyAnswer::Stale);
        // A nonce from elsewhere.
        let other = Decoys::new(60, 16).challenge("r", Algorithm::Md5, false, 1000);
        assert_eq!(
            d.answer(&creds_for(&other, "x"), 1001),
            DecoyAnswer::Challenge
        );
    }
}
