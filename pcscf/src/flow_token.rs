//! Flow tokens (RFC 5626 §5.2 style): the user part of the Path URI this P-CSCF puts
//! into a REGISTER, naming the flow (connection, or UDP socket and remote address) the
//! UE registered over. A request from the core that carries the token in its Route is
//! sent over that flow (RFC 5626 §5.3, TS 24.229 §5.2.6.4).
//!
//! The token is `base64url(label || HMAC-SHA256(key, label)[..16])`, where the label
//! is the flow's text form (transport, connection id, remote address). It is stable
//! for a flow, so re-registrations keep the same Path; without the key it cannot be
//! forged, so a tampered token is told apart from a flow that has gone (403 versus
//! 430, RFC 5626 §5.3).

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use ims_runtime::secret_file::{self, SecretFileError};
use ims_sip::transport::Flow;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC kept in a token.
const MAC_LEN: usize = 16;
/// Longest label accepted back (a flow's text form is well below this).
const MAX_LABEL: usize = 96;

/// Why a token from a Route is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not base64url, too short or too long.
    #[error("malformed flow token")]
    Malformed,
    /// The MAC does not match: the token was not issued by this P-CSCF (or was
    /// altered).
    #[error("flow token fails authentication")]
    Forged,
}

/// Shortest flow-token key accepted, in bytes.
pub const MIN_KEY: usize = 16;

/// The flow-token key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// It cannot be read or created, or others may access it.
    #[error(transparent)]
    File(#[from] SecretFileError),
    /// It does not hold at least 16 bytes in hex.
    #[error("{}: not a flow-token key (at least 32 hex digits)", .0.display())]
    Malformed(PathBuf),
}

/// Issues and checks flow tokens with one secret key.
#[derive(Clone)]
pub struct FlowTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for FlowTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlowTokens")
    }
}

impl FlowTokens {
    /// Tokens authenticated with `key`.
    pub fn new(key: Vec<u8>) -> FlowTokens {
        FlowTokens { key }
    }

    /// Tokens with a fresh random 32-byte key: tokens issued before a restart are then
    /// refused as forged after it ([`FlowTokens::from_key_file`] keeps them valid).
    pub fn random() -> FlowTokens {
        FlowTokens::new(rand::random::<[u8; 32]>().to_vec())
    }

    /// Tokens with the key in `path` (hex, at least 16 bytes), so that they survive a
    /// restart. A missing file is created with a random 32-byte key and mode 0600; a
    /// file that group or others may access, or that is not such a key, is refused.
    pub fn from_key_file(path: &Path) -> Result<FlowTokens, KeyFileError> {
        secret_file::ensure(path, || hex::encode(rand::random::<[u8; 32]>()))?;
        let text = secret_file::read_private(path)?;
        match hex::decode(text.trim()) {
            Ok(key) if key.len() >= MIN_KEY => Ok(FlowTokens::new(key)),
            _ => Err(KeyFileError::Malformed(path.to_path_buf())),
        }
    }

    fn mac(&self, label: &[u8]) -> [u8; MAC_LEN] {
        let mut out = [0u8; MAC_LEN];
        // HMAC takes keys of any length: new_from_slice cannot fail.
        if let Ok(mut mac) = HmacSha256::new_from_slice(&self.key) {
            mac.update(label);
            let full = mac.finalize().into_bytes();
            out.copy_from_slice(full.get(..MAC_LEN).unwrap_or(&[0; MAC_LEN]));
        }
        out
    }

    /// The token naming `flow`.
    pub fn issue(&self, flow: &Flow) -> String {
        let label = label(flow);
        let mut raw = label.clone().into_bytes();
        raw.extend_from_slice(&self.mac(label.as_bytes()));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The flow label inside an authentic token.
    pub fn check(&self, token: &str) -> Result<String, TokenError> {
        if token.len() > (MAX_LABEL + MAC_LEN) * 4 / 3 + 4 {
            return Err(TokenError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| TokenError::Malformed)?;
        let split = raw
            .len()
            .checked_sub(MAC_LEN)
            .ok_or(TokenError::Malformed)?;
        let (label, mac) = raw.split_at(split);
        let mut verifier = HmacSha256::new_from_slice(&self.key).map_err(|_| TokenError::Forged)?;
        verifier.update(label);
        // Constant-time comparison of the truncated MAC.
        verifier
            .verify_truncated_left(mac)
            .map_err(|_| TokenError::Forged)?;
        String::from_utf8(label.to_vec()).map_err(|_| TokenError::Malformed)
    }
}

/// The text form of a flow that a token carries and the registration store indexes.
pub fn label(flow: &Flow) -> String {
    flow.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> FlowTokens {
        FlowTokens::new(vec![b; 32])
    }

    #[test]
    fn label_round_trips_through_a_token() {
        let tokens = key(7);
        let label = "TLS#42:127.0.0.1:40000";
        let mut raw = label.as_bytes().to_vec();
        raw.extend_from_slice(&tokens.mac(label.as_bytes()));
        let token = URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(tokens.check(&token).as_deref(), Ok(label));
        // Only characters allowed in a SIP URI user part (RFC 3261 §25.1 unreserved).
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn forged_or_altered_tokens_are_refused() {
        let tokens = key(7);
        let label = "UDP#0:127.0.0.1:5062";
        let mut raw = label.as_bytes().to_vec();
        raw.extend_from_slice(&tokens.mac(label.as_bytes()));
        // Another key's token.
        assert_eq!(
            key(8).check(&URL_SAFE_NO_PAD.encode(&raw)),
            Err(TokenError::Forged)
        );
        // The label changed to another flow, MAC kept.
        let mut other = b"UDP#0:127.0.0.1:5063".to_vec();
        other.extend_from_slice(raw.get(label.len()..).unwrap());
        assert_eq!(
            tokens.check(&URL_SAFE_NO_PAD.encode(other)),
            Err(TokenError::Forged)
        );
        assert_eq!(tokens.check("!!"), Err(TokenError::Malformed));
        assert_eq!(tokens.check("abc"), Err(TokenError::Malformed));
        assert_eq!(tokens.check(&"A".repeat(500)), Err(TokenError::Malformed));
    }

    mod key_file {
        use super::*;
        use std::os::unix::fs::PermissionsExt;

        fn flow() -> Flow {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(crate::testutil::flows(1))[0]
        }

        #[test]
        fn generated_once_private_and_stable_across_loads() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("pcscf/flow_token.key");
            let before = FlowTokens::from_key_file(&path).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let flow = flow();
            let token = before.issue(&flow);
            // A restart: the same file, the same key.
            let after = FlowTokens::from_key_file(&path).unwrap();
            assert_eq!(after.check(&token), Ok(label(&flow)));
            // A random key (what a restart meant before) refuses it.
            assert_eq!(FlowTokens::random().check(&token), Err(TokenError::Forged));
        }

        #[test]
        fn loose_modes_and_bad_keys_are_refused_naming_the_file() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("flow_token.key");
            FlowTokens::from_key_file(&path).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = FlowTokens::from_key_file(&path).unwrap_err();
            assert!(matches!(
                err,
                KeyFileError::File(SecretFileError::TooOpen { .. })
            ));
            assert!(err.to_string().contains("flow_token.key"), "{err}");
            for bad in ["", "not hex", "00112233", &"zz".repeat(32)] {
                std::fs::write(&path, bad).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
                let err = FlowTokens::from_key_file(&path).unwrap_err();
                assert!(matches!(err, KeyFileError::Malformed(_)), "{bad:?}: {err}");
                assert!(err.to_string().contains("flow_token.key"), "{err}");
            }
        }
    }
}
