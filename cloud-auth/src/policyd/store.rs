//! The policy store: every version of every policy, in SQLite (a file, embedded) or
//! PostgreSQL (several policy-service nodes), through sqlx's `Any` driver, as the HSS
//! store does. The schema (`cloud-auth/migrations/0001_policies.sql`, one text for both
//! backends) is created on [`Store::open`].
//!
//! Each change appends a row with the next store-wide `revision` and the policy's next
//! `version`; nothing is ever updated or removed (the audit trail). Concurrent writers on
//! several nodes that pick the same numbers collide on the keys and retry.

use std::borrow::Cow;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row};

use super::model::{EnforcerKind, PolicyVersion, Scope, Spec};

/// Most attempts at appending a version when other writers keep taking the numbers.
const WRITE_ATTEMPTS: usize = 20;

const SELECT: &str = "SELECT revision, owner, name, version, enforcer, rules, created_by, \
    created_at FROM policy_version";
const NEXT_NUMBERS: &str = "SELECT \
    (SELECT COALESCE(MAX(revision), 0) FROM policy_version) AS revision, \
    (SELECT COALESCE(MAX(version), 0) FROM policy_version WHERE owner = $1 AND name = $2) AS version";
const INSERT: &str = "INSERT INTO policy_version \
    (revision, owner, name, version, enforcer, rules, created_by, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or refused the statement.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names no backend this store has.
    #[error("unsupported store URL (expected sqlite: or postgres://)")]
    UnsupportedUrl,
    /// A stored row cannot be read back.
    #[error("corrupted stored value in {0}")]
    Corrupt(&'static str),
    /// Other writers kept taking the revision numbers.
    #[error("too much write contention")]
    Contention,
}

/// The policy store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    sqlite: bool,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn migrator() -> Migrator {
    // As in the HSS store: embedded by hand, sqlx's `migrate!` would need its macros.
    Migrator {
        migrations: Cow::Owned(vec![Migration::new(
            1,
            Cow::Borrowed("policies"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/0001_policies.sql")),
            false,
        )]),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

impl Store {
    /// Connects to `url` (`sqlite://file`, created if missing, or `postgres://...`; for
    /// PostgreSQL `?options[search_path]=schema` selects a schema) and creates the schema.
    pub async fn open(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let lower = url.to_ascii_lowercase();
        let sqlite = lower.starts_with("sqlite:");
        let url = if sqlite {
            ims_runtime::sqlite::prepare_sqlite_file(url, "policy database");
            if url.contains("mode=") {
                Cow::Borrowed(url)
            } else {
                let sep = if url.contains('?') { '&' } else { '?' };
                Cow::Owned(format!("{url}{sep}mode=rwc"))
            }
        } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Cow::Borrowed(url)
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect(&url)
            .await?;
        migrator().run(&pool).await?;
        if sqlite {
            // Readers do not block the writer.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        Ok(Store { pool, sqlite })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Appends a version of `name` in `scope`: its content, or a deletion (`None`).
    pub async fn append(
        &self,
        scope: &Scope,
        name: &str,
        spec: Option<&Spec>,
        created_by: &str,
    ) -> Result<PolicyVersion, StoreError> {
        let (enforcer, rules) = match spec {
            Some(s) => (
                Some(s.enforcer.as_str().to_owned()),
                Some(serde_json::to_string(&s.rules).map_err(|_| StoreError::Corrupt("rules"))?),
            ),
            None => (None, None),
        };
        for _ in 0..WRITE_ATTEMPTS {
            // SQLite: take the write lock at once (a read lock upgraded later fails with
            // "database is locked" instead of waiting for the other writer).
            let mut tx = if self.sqlite {
                self.pool.begin_with("BEGIN IMMEDIATE").await?
            } else {
                self.pool.begin().await?
            };
            let row = sqlx::query(NEXT_NUMBERS)
                .bind(scope.owner())
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
            let revision = row.try_get::<i64, _>("revision")? + 1;
            let version = row.try_get::<i64, _>("version")? + 1;
            let created_at = now();
            let inserted = sqlx::query(INSERT)
                .bind(revision)
                .bind(scope.owner())
                .bind(name)
                .bind(version)
                .bind(enforcer.clone())
                .bind(rules.clone())
                .bind(created_by)
                .bind(created_at)
                .execute(&mut *tx)
                .await;
            match inserted {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    tracing::debug!(revision, "revision taken by another writer; retrying");
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            match tx.commit().await {
                Ok(()) => {}
                // Another node took the numbers first (deferred constraint check): again.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
            return Ok(PolicyVersion {
                name: name.to_owned(),
                kind: scope.kind(),
                tenant: scope.tenant().map(str::to_owned),
                version,
                revision,
                spec: spec.cloned(),
                deleted: spec.is_none(),
                created_by: created_by.to_owned(),
                created_at,
            });
        }
        Err(StoreError::Contention)
    }

    /// Every version after `revision`, oldest first, at most `limit`.
    pub async fn since(&self, revision: i64, limit: i64) -> Result<Vec<PolicyVersion>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT} WHERE revision > $1 ORDER BY revision LIMIT $2"
        ))
        .bind(revision)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_of).collect()
    }

    /// The history of one policy, oldest first.
    pub async fn history(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Vec<PolicyVersion>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT} WHERE owner = $1 AND name = $2 ORDER BY version"
        ))
        .bind(scope.owner())
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_of).collect()
    }
}

fn version_of(r: &AnyRow) -> Result<PolicyVersion, StoreError> {
    let scope = Scope::from_owner(r.try_get("owner")?);
    let enforcer: Option<String> = r.try_get("enforcer")?;
    let rules: Option<String> = r.try_get("rules")?;
    let spec = match (enforcer, rules) {
        (Some(e), Some(text)) => Some(Spec {
            enforcer: EnforcerKind::parse(&e).ok_or(StoreError::Corrupt("enforcer"))?,
            rules: serde_json::from_str(&text).map_err(|_| StoreError::Corrupt("rules"))?,
        }),
        (None, None) => None,
        _ => return Err(StoreError::Corrupt("enforcer")),
    };
    Ok(PolicyVersion {
        name: r.try_get("name")?,
        kind: scope.kind(),
        tenant: scope.tenant().map(str::to_owned),
        version: r.try_get("version")?,
        revision: r.try_get("revision")?,
        deleted: spec.is_none(),
        spec,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}
