//! GRUUs assigned by the registrar (RFC 5627, TS 24.229 §5.4.7A): a public GRUU and a
//! temporary GRUU for every binding registered with a `+sip.instance` by a UE that says
//! `Supported: gruu`, and the way back from either to the contacts of that instance
//! (TS 24.229 §5.4.3.3, RFC 5627 §5.4).
//!
//! * **Public GRUU** (RFC 5627 §3.1): the address-of-record with a `gr` parameter whose
//!   value is the instance id, `sip:alice@ims.example.net;gr=urn:uuid:...`. The same for
//!   every registration of that instance; it names the user, by design.
//! * **Temporary GRUU** (§3.2): `sip:tgruu.<token>@<this S-CSCF>;gr`. The token is the
//!   AES-256-GCM sealing of (identity, instance, CSeq of the REGISTER, 8 bytes of
//!   SHA-256 of its Call-ID) under the S-CSCF's GRUU key: nobody without the key learns
//!   the identity or the instance from it, nor makes one that opens. The nonce is
//!   derived from the sealed fields (HMAC-SHA256 under a second key derived from the
//!   same secret), so a REGISTER's temporary GRUU is the same whenever it is written
//!   out again (200 OK, NOTIFY) and nothing of it is stored. The host is this S-CSCF's
//!   own address, which routes the request to the S-CSCF that can open it (an I-CSCF
//!   has nothing to ask the HSS about: the token names nobody).
//! * **Validity** (§5.3): every temporary GRUU handed out under the Call-ID of the
//!   binding's current registration stays valid until the binding ends; a REGISTER
//!   with a new Call-ID starts a new set. The binding keeps only the CSeq the current
//!   set started at ([`crate::location::Binding::gruu_first_cseq`], RFC 5628
//!   `first-cseq`): a temporary GRUU opens to a binding when the instance and the
//!   Call-ID match and its CSeq is between that one and the binding's last. Bounded:
//!   one integer per binding, however many re-registrations.
//!
//! The key is a 32-byte secret in a file readable by its owner only (`[registrar]
//! gruu_key_file`, generated on first start like the P-CSCF's flow-token key), so
//! temporary GRUUs survive a restart with the bindings (which are in the store). The
//! S-CSCFs of a pool share the file. Everything read back is hostile: lengths bounded
//! before decoding, nothing here panics.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use ims_runtime::secret_file::{self, SecretFileError};
use ims_sip::message::addr::NameAddr;
use ims_sip::message::identity::public_identity;
use ims_sip::message::uri::Uri;
use ims_sip::{HeaderName, SipMessage};
use sha2::{Digest, Sha256};

use crate::location::{Binding, Registration};

type HmacSha256 = Hmac<Sha256>;

/// User part prefix of our temporary GRUUs.
pub const TEMP_PREFIX: &str = "tgruu.";
/// Longest identity or instance id a GRUU is made for.
pub const MAX_PART: usize = 256;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const CALL_ID_HASH_LEN: usize = 8;
/// Longest token accepted back: the base64 of the largest sealing.
const MAX_TOKEN_LEN: usize =
    (NONCE_LEN + 2 * MAX_PART + 2 + 4 + CALL_ID_HASH_LEN + TAG_LEN).div_ceil(3) * 4;
/// Associated data of every sealing: a token is good for nothing else.
const AAD: &[u8] = b"ims-core/scscf/temp-gruu/1";

/// The GRUU key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Not readable, or others may read it.
    #[error(transparent)]
    File(#[from] SecretFileError),
    /// Not 64 hex digits.
    #[error("{}: not a GRUU key (64 hex digits)", .0.display())]
    Malformed(PathBuf),
}

/// What a temporary GRUU says once opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempGruu {
    /// The public identity it was made for.
    pub aor: String,
    /// The instance id (`urn:...`, without angle brackets).
    pub instance: String,
    /// CSeq of the REGISTER that made it.
    pub cseq: u32,
    /// The first bytes of SHA-256 of that REGISTER's Call-ID.
    call_id: [u8; CALL_ID_HASH_LEN],
}

/// Where a Request-URI with a `gr` parameter points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A public GRUU: the identity and instance in clear.
    Public {
        /// The address-of-record.
        aor: String,
        /// The instance id.
        instance: String,
    },
    /// One of our temporary GRUUs, opened.
    Temporary(TempGruu),
    /// A `gr` URI that is neither: a temporary GRUU that does not open under our key
    /// (never valid here: RFC 5627 §5.4 404).
    Unknown,
}

impl Target {
    /// The identity the GRUU belongs to, when known.
    pub fn aor(&self) -> Option<&str> {
        match self {
            Target::Public { aor, .. } => Some(aor),
            Target::Temporary(t) => Some(&t.aor),
            Target::Unknown => None,
        }
    }

    /// True when `binding` is a contact this GRUU reaches: the same instance, and for a
    /// temporary GRUU one of the binding's current set (same Call-ID, CSeq from the
    /// set's first to the binding's last).
    pub fn reaches(&self, binding: &Binding) -> bool {
        let Some(instance) = instance_of(&binding.contact) else {
            return false;
        };
        match self {
            Target::Public { instance: i, .. } => i.eq_ignore_ascii_case(&instance),
            Target::Temporary(t) => {
                t.instance == instance
                    && t.call_id == call_id_hash(&binding.call_id)
                    && binding
                        .gruu_first_cseq
                        .is_some_and(|first| first <= t.cseq && t.cseq <= binding.cseq)
            }
            Target::Unknown => false,
        }
    }
}

/// The GRUUs of one contact, as the 200 OK and the reg event report them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactGruus {
    /// The public GRUU.
    pub public: String,
    /// The temporary GRUU of the binding's last REGISTER.
    pub temporary: String,
    /// CSeq of the REGISTER that started the current set of temporary GRUUs (RFC 5628
    /// `first-cseq`).
    pub first_cseq: u32,
}

/// The GRUU key and the host of our temporary GRUUs. `Debug` hides the key.
#[derive(Clone)]
pub struct Gruus {
    cipher: Aes256Gcm,
    nonce_key: [u8; 32],
    host: String,
}

impl std::fmt::Debug for Gruus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gruus")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

fn derive(secret: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // HMAC takes keys of any length: new_from_slice cannot fail.
    if let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(secret) {
        mac.update(label);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

fn call_id_hash(call_id: &str) -> [u8; CALL_ID_HASH_LEN] {
    let digest = Sha256::digest(call_id.as_bytes());
    let mut out = [0u8; CALL_ID_HASH_LEN];
    out.copy_from_slice(&digest[..CALL_ID_HASH_LEN]);
    out
}

/// True for an instance id we put in a URI parameter as it is (RFC 3261 §25.1
/// `paramchar`, without `;`, `=`, `?`, quotes or angle brackets).
fn is_safe_instance(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_PART
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()[]/:&+$%".contains(&b))
}

/// The instance id of a stored contact (`+sip.instance` without quotes and angle
/// brackets), when it is one a GRUU can carry.
pub fn instance_of(contact: &str) -> Option<String> {
    let addr = NameAddr::parse(contact).ok()?;
    let raw = addr.param("+sip.instance").flatten()?.trim();
    let raw = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    let id = raw
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .unwrap_or(raw);
    is_safe_instance(id).then(|| id.to_string())
}

/// True when `req` says `Supported: gruu` (RFC 5627 §4.1).
pub fn supports_gruu(req: &SipMessage) -> bool {
    req.headers.get_all(&HeaderName::Supported).any(|h| {
        h.values()
            .any(|v| v.as_ref().trim_ascii().eq_ignore_ascii_case(b"gruu"))
    })
}

/// The public GRUU of `aor` and `instance` (RFC 5627 §3.1).
pub fn public_gruu(aor: &str, instance: &str) -> String {
    format!("{aor};gr={instance}")
}

impl Gruus {
    /// GRUUs under `secret`, temporary ones at `host` (`host[:port]` of this S-CSCF).
    pub fn new(secret: [u8; 32], host: &str) -> Gruus {
        let enc = derive(&secret, b"temp-gruu encryption");
        Gruus {
            cipher: Aes256Gcm::new(&enc.into()),
            nonce_key: derive(&secret, b"temp-gruu nonce"),
            host: host.to_string(),
        }
    }

    /// GRUUs under a fresh random secret: temporary GRUUs do not survive a restart.
    pub fn random(host: &str) -> Gruus {
        Gruus::new(rand::random(), host)
    }

    /// GRUUs under the secret in `path` (64 hex digits), generated there if missing
    /// (mode 0600); refused if group or others may access the file.
    pub fn from_key_file(path: &Path, host: &str) -> Result<Gruus, KeyFileError> {
        secret_file::ensure(path, || hex::encode(rand::random::<[u8; 32]>()))?;
        let text = secret_file::read_private(path)?;
        let secret: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| KeyFileError::Malformed(path.to_path_buf()))?;
        Ok(Gruus::new(secret, host))
    }

    /// The temporary GRUU of `aor`'s `instance` for the REGISTER with `call_id` and
    /// `cseq`; `None` for an identity or instance too long or holding a NUL byte.
    pub fn temporary(&self, aor: &str, instance: &str, call_id: &str, cseq: u32) -> Option<String> {
        if aor.len() > MAX_PART
            || instance.len() > MAX_PART
            || aor.contains('\0')
            || instance.contains('\0')
        {
            return None;
        }
        let mut plain = Vec::with_capacity(aor.len() + instance.len() + 14);
        plain.extend_from_slice(aor.as_bytes());
        plain.push(0);
        plain.extend_from_slice(instance.as_bytes());
        plain.push(0);
        plain.extend_from_slice(&cseq.to_be_bytes());
        plain.extend_from_slice(&call_id_hash(call_id));
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.nonce_key).ok()?;
        mac.update(&plain);
        let digest = mac.finalize().into_bytes();
        let nonce = digest.get(..NONCE_LEN)?;
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: &plain,
                    aad: AAD,
                },
            )
            .ok()?;
        let mut raw = Vec::with_capacity(NONCE_LEN + sealed.len());
        raw.extend_from_slice(nonce);
        raw.extend_from_slice(&sealed);
        Some(format!(
            "sip:{TEMP_PREFIX}{}@{};gr",
            URL_SAFE_NO_PAD.encode(raw),
            self.host
        ))
    }

    /// Opens the token of a temporary GRUU; `None` unless these keys sealed it.
    fn open(&self, token: &str) -> Option<TempGruu> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: AAD,
                },
            )
            .ok()?;
        let tail = plain.len().checked_sub(4 + CALL_ID_HASH_LEN)?;
        let (names, numbers) = plain.split_at(tail);
        let names = names.strip_suffix(&[0])?;
        let nul = names.iter().position(|&b| b == 0)?;
        let (aor, instance) = (names.get(..nul)?, names.get(nul + 1..)?);
        let (cseq, call_id) = numbers.split_at(4);
        Some(TempGruu {
            aor: String::from_utf8(aor.to_vec()).ok()?,
            instance: String::from_utf8(instance.to_vec()).ok()?,
            cseq: u32::from_be_bytes(cseq.try_into().ok()?),
            call_id: call_id.try_into().ok()?,
        })
    }

    /// Where `uri` points when it is a GRUU (carries a `gr` parameter); `None` for any
    /// other URI.
    pub fn target(&self, uri: &str) -> Option<Target> {
        let parsed = Uri::parse(uri).ok()?;
        match parsed.param("gr")? {
            Some(instance) => Some(Target::Public {
                aor: public_identity(uri)?,
                instance: instance.to_string(),
            }),
            None => Some(
                parsed
                    .user
                    .and_then(|u| u.strip_prefix(TEMP_PREFIX))
                    .and_then(|token| self.open(token))
                    .map_or(Target::Unknown, Target::Temporary),
            ),
        }
    }

    /// The GRUUs of `binding` for identity `aor` of `reg` (a tel URI has none of its
    /// own: it gets those of the registered SIP identity, TS 24.229 §5.4.7A.2), when the
    /// UE asked for GRUUs and the binding has an instance.
    pub fn of(&self, reg: &Registration, aor: &str, binding: &Binding) -> Option<ContactGruus> {
        let first_cseq = binding.gruu_first_cseq?;
        let instance = instance_of(&binding.contact)?;
        let aor = if aor.starts_with("tel:") {
            reg.impu.as_str()
        } else {
            aor
        };
        if aor.starts_with("tel:") {
            return None;
        }
        Some(ContactGruus {
            public: public_gruu(aor, &instance),
            temporary: self.temporary(aor, &instance, &binding.call_id, binding.cseq)?,
            first_cseq,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const AOR: &str = "sip:alice@ims.example.net";
    const INSTANCE: &str = "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6";

    fn gruus() -> Gruus {
        Gruus::new([9; 32], "127.0.0.1:5080")
    }

    fn binding(call_id: &str, cseq: u32, first: Option<u32>) -> Binding {
        Binding {
            key: format!("instance:<{INSTANCE}>"),
            contact: format!("<sip:alice@10.0.0.1:5060>;+sip.instance=\"<{INSTANCE}>\""),
            path: Vec::new(),
            call_id: call_id.into(),
            cseq,
            expires_at: u64::MAX,
            gruu_first_cseq: first,
        }
    }

    fn token_of(uri: &str) -> &str {
        let user = uri.strip_prefix("sip:").unwrap().split('@').next().unwrap();
        user.strip_prefix(TEMP_PREFIX).unwrap()
    }

    #[test]
    fn the_public_gruu_is_the_aor_with_the_instance() {
        let b = binding("c1", 5, Some(5));
        assert_eq!(instance_of(&b.contact).as_deref(), Some(INSTANCE));
        let reg = crate::store::tests::reg(AOR, &[]);
        let g = gruus().of(&reg, AOR, &b).unwrap();
        assert_eq!(g.public, format!("{AOR};gr={INSTANCE}"));
        assert_eq!(g.first_cseq, 5);
        // Deterministic: the same for every registration of the instance.
        assert_eq!(
            g,
            gruus().of(&reg, AOR, &binding("c1", 5, Some(5))).unwrap()
        );
        // A tel identity of the set gets the registered SIP identity's GRUUs.
        assert_eq!(gruus().of(&reg, "tel:+1555", &b).unwrap(), g);
        // None for a binding whose UE asked for none.
        assert!(gruus().of(&reg, AOR, &binding("c1", 5, None)).is_none());
    }

    #[test]
    fn the_temporary_gruu_reveals_neither_the_aor_nor_the_instance() {
        let g = gruus();
        let t = g.temporary(AOR, INSTANCE, "call-1", 7).unwrap();
        assert!(
            t.starts_with("sip:tgruu.") && t.ends_with("@127.0.0.1:5080;gr"),
            "{t}"
        );
        for secret in ["alice", "ims.example.net", "f81d4fae", "urn:uuid", "call-1"] {
            assert!(!t.contains(secret), "{t} shows {secret}");
        }
        let raw = URL_SAFE_NO_PAD.decode(token_of(&t)).unwrap();
        for secret in [b"alice".as_slice(), b"f81d4fae", b"example"] {
            assert!(!raw.windows(secret.len()).any(|w| w == secret));
        }
        // The same REGISTER gives the same one; another CSeq another.
        assert_eq!(g.temporary(AOR, INSTANCE, "call-1", 7).unwrap(), t);
        assert_ne!(g.temporary(AOR, INSTANCE, "call-1", 8).unwrap(), t);
        // Another key does not open it: never valid here.
        let other = Gruus::new([8; 32], "127.0.0.1:5080");
        assert_eq!(other.target(&t), Some(Target::Unknown));
    }

    #[test]
    fn a_temporary_gruu_reaches_its_binding_while_its_set_lasts() {
        let g = gruus();
        let first = g.temporary(AOR, INSTANCE, "call-1", 5).unwrap();
        let second = g.temporary(AOR, INSTANCE, "call-1", 6).unwrap();
        let target = |uri: &str| g.target(uri).unwrap();
        assert_eq!(target(&first).aor(), Some(AOR));
        // Refreshed with CSeq 6 under the same Call-ID: both reach it.
        let b = binding("call-1", 6, Some(5));
        assert!(target(&first).reaches(&b));
        assert!(target(&second).reaches(&b));
        // A new Call-ID (a rebooted UE) starts a new set: the old ones are gone.
        assert!(!target(&first).reaches(&binding("call-2", 1, Some(1))));
        // Re-registered later under the same Call-ID with a new set: gone too.
        assert!(!target(&first).reaches(&binding("call-1", 9, Some(9))));
        // Not an instance of this binding, or a binding without GRUUs.
        let mut other = binding("call-1", 6, Some(5));
        other.contact = "<sip:a@10.0.0.2>;+sip.instance=\"<urn:uuid:other>\"".into();
        assert!(!target(&first).reaches(&other));
        assert!(!target(&first).reaches(&binding("call-1", 6, None)));
    }

    #[test]
    fn request_uris_are_read_as_gruus() {
        let g = gruus();
        assert_eq!(
            g.target(&format!("sip:alice@ims.example.net;gr={INSTANCE}")),
            Some(Target::Public {
                aor: AOR.into(),
                instance: INSTANCE.into()
            })
        );
        assert!(g
            .target(&format!(
                "sip:alice@ims.example.net;gr={}",
                INSTANCE.to_uppercase()
            ))
            .unwrap()
            .reaches(&binding("c", 1, None)));
        assert_eq!(g.target(AOR), None);
        assert_eq!(
            g.target("sip:tgruu.AAAA@127.0.0.1:5080;gr"),
            Some(Target::Unknown)
        );
        assert_eq!(g.target("sip:bob@127.0.0.1:5080;gr"), Some(Target::Unknown));
        // A tampered token does not open.
        let t = g.temporary(AOR, INSTANCE, "c", 1).unwrap();
        let token = token_of(&t);
        let mut bytes = URL_SAFE_NO_PAD.decode(token).unwrap();
        bytes[20] ^= 1;
        let forged = t.replace(token, &URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(g.target(&forged), Some(Target::Unknown));
    }

    #[test]
    fn unsafe_instances_get_no_gruu() {
        for bad in [
            "<urn:uuid:a;b>",
            "<urn:uuid:a>b>",
            "\"<>\"",
            "<urn:uuid:a=b>",
        ] {
            let contact = format!("<sip:a@x>;+sip.instance={bad}");
            assert_eq!(instance_of(&contact), None, "{bad}");
        }
        let long = format!("<sip:a@x>;+sip.instance=\"<urn:{}>\"", "a".repeat(300));
        assert_eq!(instance_of(&long), None);
    }

    #[test]
    fn the_key_file_is_made_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scscf/gruu.key");
        let before = Gruus::from_key_file(&path, "h").unwrap();
        let t = before.temporary(AOR, INSTANCE, "c", 1).unwrap();
        let after = Gruus::from_key_file(&path, "h").unwrap();
        assert!(matches!(after.target(&t), Some(Target::Temporary(_))));
        std::fs::write(&path, "not hex").unwrap();
        let err = Gruus::from_key_file(&path, "h").unwrap_err();
        assert!(err.to_string().contains("gruu.key"), "{err}");
    }

    proptest! {
        #[test]
        fn hostile_request_uris_never_panic(user in "[ -~]{0,900}") {
            let g = gruus();
            let _ = g.target(&format!("sip:{TEMP_PREFIX}{user}@h;gr"));
            let _ = g.target(&format!("sip:{user}@h;gr={user}"));
        }
    }
}
