//! HA1 at rest: sealed with the store key (AES-256-GCM, like AKA K and OPc) and kept in
//! the `digest_ha1` text column as `sealed:` and the hex of nonce ‖ ciphertext ‖ tag,
//! bound by its associated data to the IMPI (a value copied to another row does not
//! open). A database written before HA1 was sealed holds plain hex there: [`seal_plain`]
//! seals those rows when the store opens, all in one transaction. An unsealed value is
//! never read as a credential afterwards (whoever can write the database but has no key
//! cannot plant a known HA1).
//!
//! The subscription cache of a SQLite store keeps each IMPI's column value as it was
//! read ([`SealedHa1`], still sealed): a digest MAR opens it with the key the process holds
//! anyway, only to build its answer.

use std::sync::Arc;

use ims_sip::auth::Ha1;
use sqlx::{AnyPool, Row};

use super::{aad, StoreError};
use crate::secrets::StoreKey;

/// What marks a sealed value in `digest_ha1`.
const PREFIX: &str = "sealed:";

/// The associated data of an IMPI's HA1.
fn ha1_aad(impi: &str) -> String {
    aad(impi, "ha1")
}

/// The `digest_ha1` column value for `impi`'s `ha1`.
pub(super) fn seal(key: &StoreKey, impi: &str, ha1: &Ha1) -> Result<String, StoreError> {
    let sealed = key.seal(&ha1_aad(impi), ha1.as_hex().as_bytes())?;
    Ok(format!("{PREFIX}{}", hex::encode(sealed)))
}

/// A `digest_ha1` column value as stored: sealed, cheap to clone. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct SealedHa1(Arc<str>);

impl std::fmt::Debug for SealedHa1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedHa1(..)")
    }
}

impl SealedHa1 {
    /// The value read from the column.
    pub(super) fn new(stored: String) -> SealedHa1 {
        SealedHa1(stored.into())
    }

    /// The HA1 it seals for `impi`.
    pub(super) fn open(&self, key: &StoreKey, impi: &str) -> Result<Ha1, StoreError> {
        open(key, impi, &self.0)
    }
}

/// The HA1 in `impi`'s `digest_ha1` column value.
pub(super) fn open(key: &StoreKey, impi: &str, stored: &str) -> Result<Ha1, StoreError> {
    let corrupt = || StoreError::Corrupt("digest_ha1");
    let sealed = stored
        .strip_prefix(PREFIX)
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(corrupt)?;
    let plain = key.open(&ha1_aad(impi), &sealed)?;
    let text = std::str::from_utf8(&plain).map_err(|_| corrupt())?;
    Ha1::from_hex(text).map_err(|_| corrupt())
}

/// Seals every HA1 still stored in plain hex, in one transaction; returns how many.
/// Each row is updated only if it still holds the value read, so HSS instances starting
/// together on one PostgreSQL database do not seal a value twice.
pub(super) async fn seal_plain(pool: &AnyPool, key: &StoreKey) -> Result<usize, StoreError> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(
        "SELECT impi, digest_ha1 FROM private_identity \
         WHERE digest_ha1 IS NOT NULL AND digest_ha1 NOT LIKE 'sealed:%'",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut sealed = 0;
    for row in rows {
        let impi: String = row.try_get("impi")?;
        let plain: String = row.try_get("digest_ha1")?;
        let ha1 = Ha1::from_hex(plain.trim()).map_err(|_| StoreError::Corrupt("digest_ha1"))?;
        let done = sqlx::query(
            "UPDATE private_identity SET digest_ha1 = $2 WHERE impi = $1 AND digest_ha1 = $3",
        )
        .bind(impi.as_str())
        .bind(seal(key, &impi, &ha1)?)
        .bind(plain.as_str())
        .execute(&mut *tx)
        .await?;
        sealed += usize::try_from(done.rows_affected()).unwrap_or(0);
    }
    tx.commit().await?;
    if sealed > 0 {
        tracing::info!(
            rows = sealed,
            "sealed the digest HA1 values stored in plain text"
        );
    }
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ims_sip::auth::Algorithm;

    fn key(b: &str) -> StoreKey {
        StoreKey::from_hex(&b.repeat(32), "test").unwrap()
    }

    #[test]
    fn sealed_ha1_opens_only_for_its_impi_and_key() {
        let ha1 = Ha1::compute(Algorithm::Md5, "alice@x", "x", b"secret");
        let stored = seal(&key("11"), "alice@x", &ha1).unwrap();
        assert!(stored.starts_with("sealed:"));
        assert!(!stored.contains(ha1.as_hex()));
        assert_eq!(open(&key("11"), "alice@x", &stored).unwrap(), ha1);
        assert!(matches!(
            open(&key("11"), "bob@x", &stored),
            Err(StoreError::Secret(_))
        ));
        assert!(matches!(
            open(&key("22"), "alice@x", &stored),
            Err(StoreError::Secret(_))
        ));
        // Plain hex is not a credential any more.
        assert!(matches!(
            open(&key("11"), "alice@x", ha1.as_hex()),
            Err(StoreError::Corrupt(_))
        ));
    }
}
