//! Persistence of the registrations and bindings, so that they survive a restart of the
//! S-CSCF: SQLite (embedded, the default) or PostgreSQL, through sqlx's `Any` driver,
//! the same choice as the HSS store. The schema is in `scscf/migrations/<backend>/` and
//! is applied on [`BindingStore::open`]. Each change of a registration rewrites that
//! registration's rows in one transaction.

use std::borrow::Cow;

use bytes::Bytes;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row};

use crate::location::{Binding, Registration};
use crate::profile::UserProfile;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The schema migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names no supported backend.
    #[error("unsupported store URL (expected sqlite: or postgres://)")]
    UnsupportedUrl,
}

const INSERT_REGISTRATION: &str =
    "INSERT INTO registration (impu, impi, profile) VALUES ($1, $2, $3)";
const DELETE_REGISTRATION: &str = "DELETE FROM registration WHERE impu = $1";
const INSERT_BINDING: &str = "INSERT INTO binding \
    (impu, key, position, contact, path, call_id, cseq, expires_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const DELETE_BINDINGS: &str = "DELETE FROM binding WHERE impu = $1";
const SELECT_REGISTRATIONS: &str = "SELECT impu, impi, profile FROM registration";
const SELECT_BINDINGS: &str = "SELECT impu, key, contact, path, call_id, cseq, expires_at \
    FROM binding ORDER BY impu, position";

fn migrator(postgres: bool) -> Migrator {
    let sql = if postgres {
        include_str!("../migrations/postgres/0001_bindings.sql")
    } else {
        include_str!("../migrations/sqlite/0001_bindings.sql")
    };
    Migrator {
        migrations: Cow::Owned(vec![Migration::new(
            1,
            Cow::Borrowed("bindings"),
            MigrationType::Simple,
            Cow::Borrowed(sql),
            false,
        )]),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

/// The bindings database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BindingStore {
    pool: AnyPool,
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl BindingStore {
    /// Connects to `url` (a SQLite file is created if missing), applies the schema.
    pub async fn open(url: &str) -> Result<BindingStore, StoreError> {
        let lower = url.to_ascii_lowercase();
        let postgres = lower.starts_with("postgres://") || lower.starts_with("postgresql://");
        let sqlite = ims_runtime::sqlite::is_sqlite_url(url);
        if !postgres && !sqlite {
            return Err(StoreError::UnsupportedUrl);
        }
        // One SQLite connection: the writes are serialised by the registrar anyway.
        let connections = if sqlite { 1 } else { 4 };
        let pool = ims_runtime::sqlite::connect_pool(url, connections, "bindings database").await?;
        migrator(postgres).run(&pool).await?;
        Ok(BindingStore { pool })
    }

    /// Writes `reg` (replacing what was stored for its identity); a registration without
    /// bindings is deleted.
    pub async fn save(&self, reg: &Registration) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(DELETE_BINDINGS)
            .bind(reg.impu.clone())
            .execute(&mut *tx)
            .await?;
        sqlx::query(DELETE_REGISTRATION)
            .bind(reg.impu.clone())
            .execute(&mut *tx)
            .await?;
        if !reg.bindings.is_empty() {
            sqlx::query(INSERT_REGISTRATION)
                .bind(reg.impu.clone())
                .bind(reg.impi.clone())
                .bind(String::from_utf8_lossy(&reg.profile.raw).into_owned())
                .execute(&mut *tx)
                .await?;
            for (i, b) in reg.bindings.iter().enumerate() {
                sqlx::query(INSERT_BINDING)
                    .bind(reg.impu.clone())
                    .bind(b.key.clone())
                    .bind(i64::try_from(i).unwrap_or(i64::MAX))
                    .bind(b.contact.clone())
                    .bind(b.path.join("\n"))
                    .bind(b.call_id.clone())
                    .bind(i64::from(b.cseq))
                    .bind(i64_of(b.expires_at))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the registration of `impu`.
    pub async fn delete(&self, impu: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for q in [DELETE_BINDINGS, DELETE_REGISTRATION] {
            sqlx::query(q)
                .bind(impu.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every stored registration with its bindings. A stored profile that no longer
    /// parses is skipped with a warning.
    pub async fn load_all(&self) -> Result<Vec<Registration>, StoreError> {
        let mut regs = Vec::new();
        for row in sqlx::query(SELECT_REGISTRATIONS)
            .fetch_all(&self.pool)
            .await?
        {
            let impu: String = row.try_get("impu")?;
            let profile: String = row.try_get("profile")?;
            match UserProfile::parse(Bytes::from(profile)) {
                Ok(profile) => regs.push(Registration {
                    impu,
                    impi: row.try_get("impi")?,
                    profile,
                    bindings: Vec::new(),
                }),
                Err(e) => {
                    tracing::warn!(%impu, error = %e, "stored profile unreadable; registration dropped")
                }
            }
        }
        for row in sqlx::query(SELECT_BINDINGS).fetch_all(&self.pool).await? {
            let impu: String = row.try_get("impu")?;
            let Some(reg) = regs.iter_mut().find(|r| r.impu == impu) else {
                continue;
            };
            let path: String = row.try_get("path")?;
            let cseq: i64 = row.try_get("cseq")?;
            let expires_at: i64 = row.try_get("expires_at")?;
            reg.bindings.push(Binding {
                key: row.try_get("key")?,
                contact: row.try_get("contact")?,
                path: path
                    .split('\n')
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect(),
                call_id: row.try_get("call_id")?,
                cseq: u32::try_from(cseq).unwrap_or(0),
                expires_at: u64::try_from(expires_at).unwrap_or(0),
            });
        }
        regs.retain(|r| !r.bindings.is_empty());
        Ok(regs)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ims_runtime::test_db::PgSchema;

    fn reg(impu: &str, contacts: &[(&str, u64)]) -> Registration {
        let xml = format!(
            "<IMSSubscription><ServiceProfile><PublicIdentity><Identity>{impu}</Identity>\
             </PublicIdentity><PublicIdentity><Identity>tel:+1555</Identity></PublicIdentity>\
             </ServiceProfile></IMSSubscription>"
        );
        Registration {
            impu: impu.into(),
            impi: "alice@ims.example.net".into(),
            profile: UserProfile::parse(Bytes::from(xml)).unwrap(),
            bindings: contacts
                .iter()
                .map(|(c, exp)| Binding {
                    key: format!("uri:{c}"),
                    contact: format!("<{c}>;+sip.instance=\"<urn:uuid:1>\""),
                    path: vec!["<sip:p1;lr>".into(), "<sip:p2;lr>".into()],
                    call_id: "call-1".into(),
                    cseq: 7,
                    expires_at: *exp,
                })
                .collect(),
        }
    }

    async fn round_trip(url: &str) {
        let store = BindingStore::open(url).await.unwrap();
        let a = reg(
            "sip:alice@x",
            &[("sip:a@10.0.0.1", 5000), ("sip:b@10.0.0.2", 6000)],
        );
        let b = reg("sip:bob@x", &[("sip:b@10.0.0.3", 7000)]);
        store.save(&a).await.unwrap();
        store.save(&b).await.unwrap();
        let mut a2 = a.clone();
        a2.bindings.truncate(1);
        store.save(&a2).await.unwrap();
        store.close().await;
        // Reopen: what a restarted S-CSCF sees.
        let store = BindingStore::open(url).await.unwrap();
        let mut all = store.load_all().await.unwrap();
        all.sort_by(|x, y| x.impu.cmp(&y.impu));
        assert_eq!(all, vec![a2, b.clone()]);
        store.delete("sip:alice@x").await.unwrap();
        let mut none = b.clone();
        none.bindings.clear();
        store.save(&none).await.unwrap();
        assert!(store.load_all().await.unwrap().is_empty());
        store.close().await;
    }

    #[tokio::test]
    async fn sqlite_round_trip_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}",
            dir.path().join("scscf/bindings.db").display()
        );
        round_trip(&url).await;
    }

    /// Runs against PostgreSQL when `IMS_TEST_POSTGRES_URL` is set, in a fresh schema.
    #[tokio::test]
    async fn postgres_round_trip_survives_reopen() {
        let Some(pg) = PgSchema::create("scscf_test").await.unwrap() else {
            return;
        };
        round_trip(pg.url()).await;
        pg.drop_schema().await.unwrap();
    }
}
