//! Secrets of the HSS itself: the AES-256-GCM key that protects AKA K and OPc at rest,
//! and the provisioning admin token. Both come from the configuration (`[security]`,
//! `[provisioning]`); a development configuration may have them generated on first start
//! into files readable by the owner only (mode 0600). A key or token file that group or
//! others may access is refused. Neither is ever logged.

use std::path::Path;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use ims_config::{ProvisioningSection, SecuritySection};
use ims_runtime::secret_file::{self, SecretFileError};
use rand::RngCore;

/// Why a secret could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key or token file could not be read or written, or others may read it.
    #[error(transparent)]
    File(#[from] SecretFileError),
    /// The key is not 64 hex digits.
    #[error("{0}: the store key must be 64 hex digits (32 octets)")]
    BadKey(String),
    /// No key is configured or present.
    #[error("no store key: {0}")]
    Missing(String),
    /// The token is too short.
    #[error("{0}: the admin token must be at least 16 characters")]
    BadToken(String),
    /// A sealed value does not decrypt under this key (wrong key, or tampered data).
    #[error("stored secret does not decrypt (wrong store key or corrupted data)")]
    Decrypt,
}

/// The AES-256-GCM key protecting AKA secrets in the store. `Debug` hides it.
#[derive(Clone)]
pub struct StoreKey(Aes256Gcm);

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

const NONCE_LEN: usize = 12;

impl StoreKey {
    /// A key from 64 hex digits; `origin` names where they came from in errors.
    pub fn from_hex(text: &str, origin: &str) -> Result<StoreKey, SecretError> {
        let bytes = hex::decode(text.trim()).map_err(|_| SecretError::BadKey(origin.into()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SecretError::BadKey(origin.into()))?;
        Ok(StoreKey(Aes256Gcm::new(&key.into())))
    }

    /// Encrypts `plaintext` with a fresh random nonce; `aad` binds the result to its
    /// place (e.g. the IMPI and column), so a value copied to another row does not open.
    /// Returns nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Decrypt)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts what [`StoreKey::seal`] produced for the same `aad`.
    pub fn open(&self, aad: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        let (nonce, ct) = sealed
            .split_at_checked(NONCE_LEN)
            .ok_or(SecretError::Decrypt)?;
        self.0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Decrypt)
    }

    /// The key configured in `[security]`: the `key_env` variable if set, else
    /// `key_file`; with `generate_missing`, a missing `key_file` is created.
    pub fn load(security: &SecuritySection) -> Result<StoreKey, SecretError> {
        if let Some(var) = &security.key_env {
            if let Ok(text) = std::env::var(var) {
                return StoreKey::from_hex(&text, &format!("environment variable {var}"));
            }
        }
        let Some(path) = &security.key_file else {
            return Err(SecretError::Missing(format!(
                "security.key_env names {} but it is not set",
                security.key_env.as_deref().unwrap_or("?")
            )));
        };
        if security.generate_missing {
            ensure_file(path, || random_hex(32))?;
        }
        let text = read(path)?;
        StoreKey::from_hex(&text, &path.display().to_string())
    }
}

/// The admin bearer token of the provisioning API: `admin_token`, or the content of
/// `admin_token_file` (created when `generate_missing` is set). `None` when neither is
/// configured: the API then answers 401 to everything.
pub fn admin_token(
    provisioning: &ProvisioningSection,
    security: &SecuritySection,
) -> Result<Option<String>, SecretError> {
    if let Some(t) = &provisioning.admin_token {
        return Ok(Some(t.trim().to_string()));
    }
    let Some(path) = &provisioning.admin_token_file else {
        return Ok(None);
    };
    if security.generate_missing {
        ensure_file(path, || random_hex(24))?;
    }
    let token = read(path)?.trim().to_string();
    if token.len() < 16 {
        return Err(SecretError::BadToken(path.display().to_string()));
    }
    Ok(Some(token))
}

fn random_hex(octets: usize) -> String {
    let mut b = vec![0u8; octets];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// A key or token file, refused when group or others may access it.
fn read(path: &Path) -> Result<String, SecretError> {
    Ok(secret_file::read_private(path)?)
}

/// Creates `path` (and its directory) with `content()` and mode 0600 unless it exists.
fn ensure_file(path: &Path, content: impl FnOnce() -> String) -> Result<(), SecretError> {
    secret_file::ensure(path, content)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StoreKey {
        StoreKey::from_hex(&"11".repeat(32), "test").unwrap()
    }

    #[test]
    fn sealed_value_opens_only_with_same_aad_and_key() {
        let k = key();
        let sealed = k.seal("impi:k", b"0123456789abcdef").unwrap();
        assert_eq!(sealed.len(), 12 + 16 + 16);
        assert!(!sealed.windows(16).any(|w| w == b"0123456789abcdef"));
        assert_eq!(k.open("impi:k", &sealed).unwrap(), b"0123456789abcdef");
        assert!(matches!(
            k.open("other:k", &sealed),
            Err(SecretError::Decrypt)
        ));
        let other = StoreKey::from_hex(&"22".repeat(32), "test").unwrap();
        assert!(matches!(
            other.open("impi:k", &sealed),
            Err(SecretError::Decrypt)
        ));
        assert!(matches!(
            k.open("impi:k", &sealed[..5]),
            Err(SecretError::Decrypt)
        ));
    }

    #[test]
    fn bad_key_text_is_refused() {
        assert!(StoreKey::from_hex("abcd", "x").is_err());
        assert!(StoreKey::from_hex(&"zz".repeat(32), "x").is_err());
    }

    #[test]
    fn generated_files_are_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let security = SecuritySection {
            key_file: Some(dir.path().join("sub/store.key")),
            key_env: None,
            generate_missing: true,
        };
        let provisioning = ProvisioningSection {
            admin_token_file: Some(dir.path().join("sub/admin.token")),
            ..ProvisioningSection::default()
        };
        StoreKey::load(&security).unwrap();
        let t1 = admin_token(&provisioning, &security).unwrap().unwrap();
        let t2 = admin_token(&provisioning, &security).unwrap().unwrap();
        assert_eq!(t1, t2, "the token file is reused, not regenerated");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in ["sub/store.key", "sub/admin.token"] {
                let mode = std::fs::metadata(dir.path().join(f))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{f}");
            }
        }
    }

    #[test]
    fn missing_key_without_generation_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let security = SecuritySection {
            key_file: Some(dir.path().join("store.key")),
            key_env: None,
            generate_missing: false,
        };
        assert!(matches!(
            StoreKey::load(&security),
            Err(SecretError::File(SecretFileError::Io { .. }))
        ));
        assert!(!dir.path().join("store.key").exists());
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.key");
        std::fs::write(&path, "11".repeat(32)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let security = SecuritySection {
            key_file: Some(path.clone()),
            key_env: None,
            generate_missing: true,
        };
        let err = StoreKey::load(&security).unwrap_err();
        assert!(
            matches!(err, SecretError::File(SecretFileError::TooOpen { .. })),
            "{err}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        StoreKey::load(&security).unwrap();
    }
}
