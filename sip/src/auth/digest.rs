//! HTTP Digest as SIP uses it (RFC 3261 §22.4): RFC 2617 §3.2 with the SHA-256
//! algorithms of RFC 7616 §3.4, and the AKAv1-MD5 algorithm name of RFC 3310 §3.
//!
//! Only `qop=auth` (with `nc` and `cnonce`, RFC 2617 §3.2.2) and the legacy no-qop form
//! (RFC 2069 compatibility, RFC 2617 §3.2.2.1) are supported; `auth-int` is refused.
//! The server stores HA1 = H(username ":" realm ":" password), never the password.

use md5::Md5;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::message::auth_params::AuthParams;
use crate::message::build::quoted_string as quote;
use crate::message::ParseError;

/// Errors reading or checking Digest credentials.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    /// The header value is not a well-formed parameter list.
    #[error("malformed credentials: {0}")]
    Malformed(#[from] ParseError),
    /// The scheme is not `Digest`.
    #[error("auth scheme is not Digest")]
    NotDigest,
    /// A parameter RFC 2617 §3.2.2 requires is absent.
    #[error("missing parameter {0}")]
    Missing(&'static str),
    /// The `algorithm` is not one this implementation knows.
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// `qop` is present but not `auth`.
    #[error("unsupported qop")]
    UnsupportedQop,
    /// `nc` is not exactly 8 hex digits (RFC 2617 §3.2.2).
    #[error("bad nonce count")]
    BadNonceCount,
    /// A `-sess` algorithm was used without `qop` (it needs a `cnonce`).
    #[error("session algorithm without cnonce")]
    SessionWithoutCnonce,
    /// The stored HA1 is not a hex digest of the algorithm's hash.
    #[error("stored HA1 does not fit the algorithm")]
    BadHa1,
    /// The `response` does not match the expected digest.
    #[error("response mismatch")]
    ResponseMismatch,
}

/// Digest algorithms (RFC 7616 §3.4.1 names; RFC 3310 §3 for AKA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5` (RFC 2617 §3.2.2.2), the default when `algorithm` is absent.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 7616 §3.4.1).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `AKAv1-MD5` (RFC 3310 §3): MD5 digest whose password is the AKA RES.
    AkaV1Md5,
}

impl Algorithm {
    /// Reads an `algorithm` token (case-insensitive).
    pub fn parse(s: &str) -> Result<Algorithm, DigestError> {
        const ALL: [Algorithm; 5] = [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
            Algorithm::AkaV1Md5,
        ];
        ALL.into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or(DigestError::UnsupportedAlgorithm)
    }

    /// The token written in challenges.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::AkaV1Md5 => "AKAv1-MD5",
        }
    }

    fn is_sha256(self) -> bool {
        matches!(self, Algorithm::Sha256 | Algorithm::Sha256Sess)
    }

    fn is_session(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Length of the hash in octets (16 for MD5, 32 for SHA-256).
    pub fn hash_len(self) -> usize {
        if self.is_sha256() {
            32
        } else {
            16
        }
    }

    /// H(parts joined by ':'), raw octets.
    fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            d.finalize().to_vec()
        }
        if self.is_sha256() {
            run::<Sha256>(parts)
        } else {
            run::<Md5>(parts)
        }
    }

    /// H(parts joined by ':') as lowercase hex (RFC 2617 §3.2.1 `H`, hex-encoded).
    fn hex_hash(self, parts: &[&[u8]]) -> String {
        hex::encode(self.hash(parts))
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// HA1 = H(username ":" realm ":" password) in lowercase hex (RFC 2617 §3.2.2.2).
///
/// What the HSS stores instead of the password. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Ha1(String);

impl std::fmt::Debug for Ha1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ha1(..)")
    }
}

impl Ha1 {
    /// Computes HA1 with `algorithm`'s hash. `password` is raw octets: for AKAv1-MD5
    /// it is the RES/XRES itself (RFC 3310 §3.4).
    pub fn compute(algorithm: Algorithm, username: &str, realm: &str, password: &[u8]) -> Ha1 {
        Ha1(algorithm.hex_hash(&[username.as_bytes(), realm.as_bytes(), password]))
    }

    /// A stored HA1: hex digits of a 16- or 32-octet hash (either case).
    pub fn from_hex(hex_digest: &str) -> Result<Ha1, DigestError> {
        let ok = matches!(hex_digest.len(), 32 | 64)
            && hex_digest.bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(Ha1(hex_digest.to_ascii_lowercase()))
        } else {
            Err(DigestError::BadHa1)
        }
    }

    /// The hex digest, for storage.
    pub fn as_hex(&self) -> &str {
        &self.0
    }

    /// The HA1 actually used for `algorithm`: for `-sess` algorithms
    /// H(HA1 ":" nonce ":" cnonce) (RFC 7616 §3.4.2), else HA1 itself.
    fn effective(
        &self,
        algorithm: Algorithm,
        nonce: &str,
        qop: Option<QopAuth<'_>>,
    ) -> Result<Ha1, DigestError> {
        if self.0.len() != algorithm.hash_len() * 2 {
            return Err(DigestError::BadHa1);
        }
        if !algorithm.is_session() {
            return Ok(self.clone());
        }
        let q = qop.ok_or(DigestError::SessionWithoutCnonce)?;
        Ok(Ha1(algorithm.hex_hash(&[
            self.0.as_bytes(),
            nonce.as_bytes(),
            q.cnonce.as_bytes(),
        ])))
    }
}

/// The `qop=auth` parameters of one request (RFC 2617 §3.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QopAuth<'a> {
    /// `nc`, exactly as sent (8 hex digits).
    pub nc: &'a str,
    /// `cnonce`, unquoted.
    pub cnonce: &'a str,
}

/// KD(HA1, nonce [":" nc ":" cnonce ":" "auth"] ":" H(A2)) as raw octets, with
/// A2 = `a2_method` ":" digest-uri (RFC 2617 §3.2.2.1 and §3.2.3).
fn kd(
    algorithm: Algorithm,
    ha1: &Ha1,
    a2_method: &str,
    digest_uri: &str,
    nonce: &str,
    qop: Option<QopAuth<'_>>,
) -> Result<Vec<u8>, DigestError> {
    let ha1 = ha1.effective(algorithm, nonce, qop)?;
    let ha2 = algorithm.hex_hash(&[a2_method.as_bytes(), digest_uri.as_bytes()]);
    Ok(match qop {
        Some(q) => algorithm.hash(&[
            ha1.0.as_bytes(),
            nonce.as_bytes(),
            q.nc.as_bytes(),
            q.cnonce.as_bytes(),
            b"auth",
            ha2.as_bytes(),
        ]),
        None => algorithm.hash(&[ha1.0.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
    })
}

/// The `response` a client sends (RFC 2617 §3.2.2.1), lowercase hex.
pub fn response(
    algorithm: Algorithm,
    ha1: &Ha1,
    method: &str,
    digest_uri: &str,
    nonce: &str,
    qop: Option<QopAuth<'_>>,
) -> Result<String, DigestError> {
    kd(algorithm, ha1, method, digest_uri, nonce, qop).map(hex::encode)
}

/// The `rspauth` of `Authentication-Info` (RFC 2617 §3.2.3: A2 has an empty method).
pub fn rspauth(
    algorithm: Algorithm,
    ha1: &Ha1,
    digest_uri: &str,
    nonce: &str,
    qop: Option<QopAuth<'_>>,
) -> Result<String, DigestError> {
    kd(algorithm, ha1, "", digest_uri, nonce, qop).map(hex::encode)
}

/// Digest credentials from an `Authorization` / `Proxy-Authorization` value
/// (RFC 3261 §22.4, RFC 2617 §3.2.2, RFC 3310 §3.2 for `auts`), values unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `username`.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `uri` (the digest-uri).
    pub uri: String,
    /// `response`, as sent.
    pub response: String,
    /// `algorithm` (MD5 when absent).
    pub algorithm: Algorithm,
    /// `qop=auth` with its `nc` and `cnonce`; `None` for the legacy form.
    pub qop: Option<QopParams>,
    /// `opaque`, if sent.
    pub opaque: Option<String>,
    /// `auts` (RFC 3310 §3.4), present on an AKA synchronisation failure.
    pub auts: Option<String>,
}

/// Owned `qop=auth` parameters of [`Credentials`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QopParams {
    /// `nc` as sent (8 hex digits).
    pub nc: String,
    /// `nc` as a number.
    pub nc_value: u32,
    /// `cnonce`.
    pub cnonce: String,
}

impl QopParams {
    /// A borrowed view for [`response`] / [`rspauth`].
    pub fn as_auth(&self) -> QopAuth<'_> {
        QopAuth {
            nc: &self.nc,
            cnonce: &self.cnonce,
        }
    }
}

impl Credentials {
    /// Parses a credentials header value. Only `Digest` with `qop` absent or `auth`.
    pub fn parse(value: &str) -> Result<Credentials, DigestError> {
        let p = AuthParams::parse(value).inspect_err(|e| {
            tracing::debug!(error = %e, "malformed Digest credentials");
        })?;
        if !p.scheme.eq_ignore_ascii_case("Digest") {
            tracing::debug!("credentials scheme is not Digest");
            return Err(DigestError::NotDigest);
        }
        let need = |name: &'static str| {
            p.get(name).ok_or_else(|| {
                tracing::debug!(param = name, "Digest credentials lack a parameter");
                DigestError::Missing(name)
            })
        };
        let algorithm = match p.get("algorithm") {
            Some(a) => Algorithm::parse(&a).inspect_err(|_| {
                tracing::debug!("Digest credentials with an unsupported algorithm");
            })?,
            None => Algorithm::Md5,
        };
        let qop = match p.get("qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let nc = need("nc")?;
                let nc_value = p.nonce_count().ok_or_else(|| {
                    tracing::debug!("Digest credentials with a malformed nc");
                    DigestError::BadNonceCount
                })?;
                Some(QopParams {
                    nc,
                    nc_value,
                    cnonce: need("cnonce")?,
                })
            }
            Some(_) => {
                tracing::debug!("Digest credentials with an unsupported qop");
                return Err(DigestError::UnsupportedQop);
            }
        };
        Ok(Credentials {
            username: need("username")?,
            realm: need("realm")?,
            nonce: need("nonce")?,
            uri: need("uri")?,
            response: need("response")?,
            algorithm,
            qop,
            opaque: p.get("opaque"),
            auts: p.get("auts"),
        })
    }

    fn qop_auth(&self) -> Option<QopAuth<'_>> {
        self.qop.as_ref().map(QopParams::as_auth)
    }

    /// Checks `response` against HA1 for a request of `method`, comparing in
    /// constant time (RFC 2617 §3.2.2.1, §4.13 on the stored HA1).
    pub fn verify(&self, ha1: &Ha1, method: &str) -> Result<(), DigestError> {
        let expected = kd(
            self.algorithm,
            ha1,
            method,
            &self.uri,
            &self.nonce,
            self.qop_auth(),
        )?;
        let given = hex::decode(&self.response).unwrap_or_default();
        if bool::from(given.as_slice().ct_eq(&expected)) {
            Ok(())
        } else {
            tracing::debug!("Digest response mismatch");
            Err(DigestError::ResponseMismatch)
        }
    }

    /// The `Authentication-Info` value answering these credentials (RFC 2617 §3.2.3),
    /// with an optional `nextnonce`.
    pub fn authentication_info(
        &self,
        ha1: &Ha1,
        nextnonce: Option<&str>,
    ) -> Result<String, DigestError> {
        let rsp = rspauth(self.algorithm, ha1, &self.uri, &self.nonce, self.qop_auth())?;
        let mut out = String::new();
        if let Some(n) = nextnonce {
            out.push_str(&format!("nextnonce={}, ", quote(n)));
        }
        if let Some(q) = &self.qop {
            out.push_str(&format!(
                "qop=auth, rspauth=\"{rsp}\", cnonce={}, nc={}",
                quote(&q.cnonce),
                q.nc
            ));
        } else {
            out.push_str(&format!("rspauth=\"{rsp}\""));
        }
        Ok(out)
    }
}

/// A `WWW-Authenticate` / `Proxy-Authenticate` Digest challenge
/// (RFC 2617 §3.2.1, RFC 3261 §22.4, RFC 3310 §3.1), always offering `qop="auth"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// `realm`.
    pub realm: &'a str,
    /// `nonce`.
    pub nonce: &'a str,
    /// `algorithm`.
    pub algorithm: Algorithm,
    /// `opaque`, echoed back by the client.
    pub opaque: Option<&'a str>,
    /// `stale=true`: the previous nonce was valid but expired (RFC 2617 §3.2.1).
    pub stale: bool,
}

impl std::fmt::Display for Challenge<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Digest realm={}, nonce={}, algorithm={}, qop=\"auth\"",
            quote(self.realm),
            quote(self.nonce),
            self.algorithm
        )?;
        if let Some(o) = self.opaque {
            write!(f, ", opaque={}", quote(o))?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}
