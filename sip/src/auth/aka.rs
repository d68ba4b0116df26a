//! UMTS AKA for IMS (TS 33.102 §6.3, TS 33.203 §6.1) carried in HTTP Digest as
//! AKAv1-MD5 (RFC 3310).
//!
//! * Network side: [`AuthVector::generate`] builds RAND, AUTN, XRES, CK, IK
//!   (TS 33.102 §6.3.2); [`AuthVector::nonce`] encodes base64(RAND ‖ AUTN ‖ server data)
//!   (RFC 3310 §3.1); [`AuthVector::ha1`] is the digest HA1 with XRES as the password
//!   (RFC 3310 §3.4); [`resync`] checks AUTS and recovers SQN_MS (TS 33.102 §6.3.5).
//! * UE side ([`Usim`]): checks AUTN's MAC and the SQN range (TS 33.102 §6.3.3,
//!   Annex C.2) and answers with RES or AUTS, so tests can play the UE.
//! * [`Sqn`]: 48-bit sequence numbers, SEQ ‖ IND (TS 33.102 Annex C.1).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::digest::{Algorithm, Ha1};
use super::milenage::{Block, Milenage};

/// AKA failures on input from the peer, or of sequence number arithmetic.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AkaError {
    /// The nonce is not base64 of at least RAND ‖ AUTN (32 octets).
    #[error("AKA nonce is not base64(RAND || AUTN)")]
    BadNonce,
    /// `auts` is not base64 of exactly 14 octets.
    #[error("auts is not base64 of 14 octets")]
    BadAuts,
    /// MAC-S in AUTS does not verify: the resynchronisation request is not genuine.
    #[error("AUTS MAC-S does not verify")]
    MacFailure,
    /// SEQ would pass 2^(48 - IND bits) - 1.
    #[error("sequence number space exhausted")]
    SqnExhausted,
}

const SQN_MAX: u64 = (1 << 48) - 1;

/// A 48-bit sequence number SQN = SEQ ‖ IND (TS 33.102 Annex C.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sqn(u64);

impl Sqn {
    /// An SQN from its value; `None` past 48 bits.
    pub fn new(value: u64) -> Option<Sqn> {
        (value <= SQN_MAX).then_some(Sqn(value))
    }

    /// The numeric value.
    pub fn value(self) -> u64 {
        self.0
    }

    /// From the 6 octets carried in AUTN / AUTS (big-endian).
    pub fn from_bytes(b: [u8; 6]) -> Sqn {
        Sqn(b.iter().fold(0, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// The 6 big-endian octets.
    pub fn to_bytes(self) -> [u8; 6] {
        std::array::from_fn(|i| (self.0 >> (40 - 8 * i)) as u8)
    }

    /// SEQ, the upper 48 - `ind_bits` bits.
    pub fn seq(self, ind_bits: u32) -> u64 {
        self.0 >> ind_bits.min(47)
    }

    /// IND, the low `ind_bits` bits.
    pub fn ind(self, ind_bits: u32) -> u64 {
        self.0 & ((1u64 << ind_bits.min(47)) - 1)
    }

    /// The HE's next SQN_HE (TS 33.102 Annex C.1.1, non-time-based SEQ): SEQ incremented
    /// by one, and IND allocated cyclically through 0..2^`ind_bits` for the array scheme
    /// of Annex C.1.2 / C.2.2 (`ind_bits` is clamped to 47; 5 is the usual value).
    /// Errors, never wraps, when SEQ is at its maximum.
    pub fn next(self, ind_bits: u32) -> Result<Sqn, AkaError> {
        let bits = ind_bits.min(47);
        let seq = self
            .seq(bits)
            .checked_add(1)
            .ok_or(AkaError::SqnExhausted)?;
        let ind = (self.ind(bits) + 1) & ((1u64 << bits) - 1);
        let value = seq
            .checked_shl(bits)
            .filter(|v| v >> bits == seq && *v <= SQN_MAX)
            .ok_or(AkaError::SqnExhausted)?;
        Ok(Sqn(value | ind))
    }
}

/// An authentication vector (TS 33.102 §6.3.2) for one AKA run.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthVector {
    /// The random challenge RAND.
    pub rand: Block,
    /// AUTN = (SQN ⊕ AK) ‖ AMF ‖ MAC-A.
    pub autn: Block,
    /// The expected response XRES (f2, 64 bits).
    pub xres: [u8; 8],
    /// The cipher key CK (f3).
    pub ck: Block,
    /// The integrity key IK (f4).
    pub ik: Block,
}

impl std::fmt::Debug for AuthVector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthVector")
            .field("rand", &hex::encode(self.rand))
            .field("autn", &hex::encode(self.autn))
            .finish_non_exhaustive()
    }
}

impl AuthVector {
    /// Builds the vector for `sqn`, `amf` and the (random) `rand`.
    pub fn generate(m: &Milenage, amf: [u8; 2], sqn: Sqn, rand: Block) -> AuthVector {
        let out = m.f2345(&rand);
        let sqn = sqn.to_bytes();
        let mac = m.f1(&rand, &sqn, &amf);
        let mut autn = [0u8; 16];
        for (i, (s, a)) in sqn.iter().zip(out.ak).enumerate() {
            autn[i] = s ^ a;
        }
        autn[6..8].copy_from_slice(&amf);
        autn[8..].copy_from_slice(&mac);
        AuthVector {
            rand,
            autn,
            xres: out.res,
            ck: out.ck,
            ik: out.ik,
        }
    }

    /// RAND ‖ AUTN, the octets the SIP nonce starts with (RFC 3310 §3.2).
    pub fn rand_autn(&self) -> [u8; 32] {
        std::array::from_fn(|i| {
            if i < 16 {
                self.rand[i]
            } else {
                self.autn[i - 16]
            }
        })
    }

    /// The nonce: base64(RAND ‖ AUTN ‖ `server_data`) (RFC 3310 §3.2).
    pub fn nonce(&self, server_data: &[u8]) -> String {
        let mut raw = self.rand_autn().to_vec();
        raw.extend_from_slice(server_data);
        STANDARD.encode(raw)
    }

    /// The digest HA1 for this run: MD5(username ":" realm ":" XRES), XRES as raw octets
    /// (RFC 3310 §3.4, as SIPp computes it).
    pub fn ha1(&self, username: &str, realm: &str) -> Ha1 {
        Ha1::compute(Algorithm::AkaV1Md5, username, realm, &self.xres)
    }
}

/// RAND, AUTN and the server data read back from an AKA nonce (RFC 3310 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AkaNonce {
    /// RAND.
    pub rand: Block,
    /// AUTN.
    pub autn: Block,
    /// Whatever the server appended.
    pub server_data: Vec<u8>,
}

impl AkaNonce {
    /// Decodes base64(RAND ‖ AUTN ‖ server data).
    pub fn parse(nonce: &str) -> Result<AkaNonce, AkaError> {
        let raw = STANDARD.decode(nonce).map_err(|_| {
            tracing::debug!("AKA nonce is not base64");
            AkaError::BadNonce
        })?;
        let (Some(rand), Some(autn), Some(rest)) = (raw.get(..16), raw.get(16..32), raw.get(32..))
        else {
            tracing::debug!(len = raw.len(), "AKA nonce shorter than RAND || AUTN");
            return Err(AkaError::BadNonce);
        };
        Ok(AkaNonce {
            rand: block(rand),
            autn: block(autn),
            server_data: rest.to_vec(),
        })
    }
}

fn block(s: &[u8]) -> Block {
    std::array::from_fn(|i| s.get(i).copied().unwrap_or(0))
}

/// The AMF used in MAC-S: the dummy value 0000 (TS 33.102 §6.3.3).
const RESYNC_AMF: [u8; 2] = [0, 0];

/// Handles a synchronisation failure (TS 33.102 §6.3.5): decodes the `auts` parameter
/// (RFC 3310 §3.4, base64 of SQN_MS ⊕ AK* ‖ MAC-S), recovers SQN_MS with f5*(RAND) and
/// verifies MAC-S = f1*(SQN_MS, RAND, AMF 0000) in constant time. `rand` is the RAND of
/// the challenge the UE rejected. The HE then continues from the returned SQN_MS.
pub fn resync(m: &Milenage, rand: &Block, auts_b64: &str) -> Result<Sqn, AkaError> {
    let raw = STANDARD.decode(auts_b64).map_err(|_| {
        tracing::debug!("auts is not base64");
        AkaError::BadAuts
    })?;
    let Ok(auts) = <[u8; 14]>::try_from(raw.as_slice()) else {
        tracing::debug!(len = raw.len(), "auts is not 14 octets");
        return Err(AkaError::BadAuts);
    };
    let ak_star = m.f5_star(rand);
    let sqn_ms: [u8; 6] = std::array::from_fn(|i| auts[i] ^ ak_star[i]);
    let mac_s = m.f1_star(rand, &sqn_ms, &RESYNC_AMF);
    if bool::from(mac_s.ct_eq(&auts[6..])) {
        Ok(Sqn::from_bytes(sqn_ms))
    } else {
        tracing::debug!("auts MAC-S does not verify");
        Err(AkaError::MacFailure)
    }
}

/// Why a USIM rejects a challenge (TS 33.102 §6.3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsimFailure {
    /// XMAC ≠ MAC: the network is not authentic (RFC 3310 §3.3: empty `response`).
    MacFailure,
    /// SQN out of range: AUTS for resynchronisation (RFC 3310 §3.4).
    SyncFailure {
        /// AUTS = (SQN_MS ⊕ AK*) ‖ MAC-S.
        auts: [u8; 14],
    },
}

/// What a USIM returns for an accepted challenge.
#[derive(Clone, PartialEq, Eq)]
pub struct UsimAnswer {
    /// RES (f2).
    pub res: [u8; 8],
    /// CK (f3).
    pub ck: Block,
    /// IK (f4).
    pub ik: Block,
}

impl std::fmt::Debug for UsimAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UsimAnswer { .. }")
    }
}

/// A USIM's AKA state (TS 33.102 §6.3.3): the highest accepted SQN and the window Δ
/// of Annex C.2.1. Simplified for tests: whole SQN values are compared against a single
/// SQN_MS, not the per-IND array of Annex C.2.2.
#[derive(Debug, Clone)]
pub struct Usim {
    milenage: Milenage,
    sqn_ms: Sqn,
    delta: u64,
}

impl Usim {
    /// A USIM that has accepted up to `sqn_ms` and accepts SQN in
    /// (SQN_MS, SQN_MS + `delta`] (e.g. Δ = 2^28).
    pub fn new(milenage: Milenage, sqn_ms: Sqn, delta: u64) -> Usim {
        Usim {
            milenage,
            sqn_ms,
            delta,
        }
    }

    /// The highest SQN accepted so far.
    pub fn sqn_ms(&self) -> Sqn {
        self.sqn_ms
    }

    /// Runs AKA on RAND and AUTN: MAC check first, then the SQN range; on success
    /// SQN_MS advances and RES, CK, IK are returned.
    pub fn authenticate(&mut self, rand: &Block, autn: &Block) -> Result<UsimAnswer, UsimFailure> {
        let out = self.milenage.f2345(rand);
        let sqn: [u8; 6] = std::array::from_fn(|i| autn[i] ^ out.ak[i]);
        let amf = [autn[6], autn[7]];
        let xmac = self.milenage.f1(rand, &sqn, &amf);
        if !bool::from(xmac.ct_eq(&autn[8..])) {
            return Err(UsimFailure::MacFailure);
        }
        let sqn = Sqn::from_bytes(sqn);
        let in_range = sqn > self.sqn_ms && sqn.0 - self.sqn_ms.0 <= self.delta;
        if !in_range {
            return Err(UsimFailure::SyncFailure {
                auts: self.auts(rand),
            });
        }
        self.sqn_ms = sqn;
        Ok(UsimAnswer {
            res: out.res,
            ck: out.ck,
            ik: out.ik,
        })
    }

    /// AUTS = (SQN_MS ⊕ f5*(RAND)) ‖ f1*(SQN_MS, RAND, AMF 0000) (TS 33.102 §6.3.3).
    pub fn auts(&self, rand: &Block) -> [u8; 14] {
        let sqn = self.sqn_ms.to_bytes();
        let ak_star = self.milenage.f5_star(rand);
        let mac_s = self.milenage.f1_star(rand, &sqn, &RESYNC_AMF);
        std::array::from_fn(|i| {
            if i < 6 {
                sqn[i] ^ ak_star[i]
            } else {
                mac_s[i - 6]
            }
        })
    }
}

/// base64 of AUTS, the `auts` parameter value (RFC 3310 §3.4).
pub fn encode_auts(auts: &[u8; 14]) -> String {
    STANDARD.encode(auts)
}
