//! The subscriber store: SQLite (a file, embedded) or PostgreSQL, through sqlx's `Any`
//! driver. The schema is created and upgraded by migrations on [`Store::open`]; the SQL
//! text lives in [`sql`] (shared) and `hss/migrations/<backend>/` (schema).
//!
//! AKA K and OPc are encrypted with AES-256-GCM under the [`StoreKey`] before they reach
//! the database; digest credentials are stored as HA1 only (RFC 2617 §3.2.2.2), sealed
//! the same way (`sealed_ha1`; rows from before are sealed when the store opens).
//! SQN_HE (TS 33.102 Annex C.1.1) advances by compare-and-set, so concurrent MARs never
//! get the same SQN.

mod cache;
mod model;
mod sealed_ha1;
mod sql;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use ims_runtime::migrations::{migrator, Embedded};
use ims_sip::auth::{Ha1, Sqn};
use sqlx::any::AnyRow;
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Row, Transaction};

pub use model::*;
use sealed_ha1::SealedHa1;

use crate::secrets::{SecretError, StoreKey};

/// Bits of IND in SQN (TS 33.102 Annex C.3.2 suggests 5).
pub const IND_BITS: u32 = 5;

/// Most times SQN compare-and-set is retried under contention before giving up.
const SQN_CAS_ATTEMPTS: usize = 1_000;

/// Largest page [`Store::list`] returns.
pub const MAX_PAGE: u32 = 1_000;

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
    /// An identity or id already belongs to a subscription.
    #[error("{field} {value} already exists")]
    Duplicate {
        /// `id`, `impi` or `impu`.
        field: &'static str,
        /// The duplicate value.
        value: String,
    },
    /// The subscription or identity does not exist.
    #[error("not found")]
    NotFound,
    /// The data written is inconsistent (e.g. an identity names an unknown profile).
    #[error("{field}: {reason}")]
    Invalid {
        /// The offending field.
        field: String,
        /// Why.
        reason: String,
    },
    /// A stored value cannot be read back (corrupted row).
    #[error("corrupted stored value in {0}")]
    Corrupt(&'static str),
    /// A secret did not decrypt.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The IMPI has no AKA credentials.
    #[error("no AKA credentials for this IMPI")]
    NoAka,
    /// SQN cannot advance any further (TS 33.102 Annex C.1.1).
    #[error("SQN exhausted")]
    SqnExhausted,
    /// SQN kept moving under us for too long.
    #[error("SQN update contention")]
    SqnContention,
}

impl StoreError {
    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> StoreError {
        StoreError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend a URL names.
    pub fn of_url(url: &str) -> Option<Backend> {
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    /// The migrator of this backend's schema ([`MIGRATIONS`]).
    fn migrator(self) -> Migrator {
        migrator(MIGRATIONS, matches!(self, Backend::Postgres))
    }
}

/// The schema migrations (`hss/migrations/<backend>/`), in order: version, name,
/// PostgreSQL and SQLite text. A database made by an older HSS gets the ones it lacks
/// when the store opens.
const MIGRATIONS: &[Embedded] = &[
    (
        1,
        "subscribers",
        include_str!("../../migrations/postgres/0001_subscribers.sql"),
        include_str!("../../migrations/sqlite/0001_subscribers.sql"),
    ),
    (
        2,
        "spt registration type",
        include_str!("../../migrations/postgres/0002_spt_registration_type.sql"),
        include_str!("../../migrations/sqlite/0002_spt_registration_type.sql"),
    ),
];

/// One page of [`Store::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The subscriptions, ordered by id.
    pub items: Vec<Subscription>,
    /// Id to pass as `after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// The subscriber store. Cheap to clone (a pool handle, the key, shared cache).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    key: StoreKey,
    backend: Backend,
    /// SQLite only (see [`cache`]).
    cache: Option<Arc<cache::Cache>>,
    /// SQLite only: one writer at a time here, rather than several connections
    /// contending for SQLite's write lock and sleeping in its busy handler.
    writer: Option<Arc<tokio::sync::Mutex<()>>>,
}

type Tx = Transaction<'static, Any>;

/// A subscription as read, with the sealed HA1 of its IMPIs (impi, value).
type Loaded = (Subscription, Vec<(String, SealedHa1)>);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}

impl Store {
    /// Connects to `url` (`sqlite://file` is created if missing; for PostgreSQL
    /// `?options[search_path]=schema` selects a schema), runs the migrations, and returns
    /// the store.
    pub async fn open(url: &str, max_connections: u32, key: StoreKey) -> Result<Store, StoreError> {
        let backend = Backend::of_url(url).ok_or(StoreError::UnsupportedUrl)?;
        let pool =
            ims_runtime::sqlite::connect_pool(url, max_connections, "subscriber database").await?;
        backend.migrator().run(&pool).await?;
        sealed_ha1::seal_plain(&pool, &key).await?;
        let sqlite = backend == Backend::Sqlite;
        Ok(Store {
            pool,
            key,
            backend,
            cache: sqlite.then(Default::default),
            writer: sqlite.then(Default::default),
        })
    }

    /// Waits for our turn to write (SQLite); the guard ends it.
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.writer {
            Some(w) => Some(w.lock().await),
            None => None,
        }
    }

    /// Empties the cache after a write that may have changed any subscription.
    fn forget_all(&self) {
        if let Some(c) = &self.cache {
            c.clear();
        }
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Lookups answered from the subscription cache and lookups that read the
    /// database (SQLite only; `None` without a cache).
    pub fn cache_counts(&self) -> Option<(u64, u64)> {
        self.cache.as_ref().map(|c| {
            (
                c.hits.load(std::sync::atomic::Ordering::Relaxed),
                c.misses.load(std::sync::atomic::Ordering::Relaxed),
            )
        })
    }

    /// The connection pool (for tests and diagnostics that read raw rows).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Number of subscriptions.
    pub async fn count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(sql::COUNT_SUBSCRIPTIONS)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Creates subscription `id` with its identities. Fails with
    /// [`StoreError::Duplicate`] if the id or any IMPI/IMPU already exists.
    pub async fn create(
        &self,
        id: &str,
        data: &SubscriptionData,
    ) -> Result<Subscription, StoreError> {
        check_data(data)?;
        let turn = self.write_turn().await;
        let written = self.write_new(id, data).await;
        self.forget_all();
        drop(turn);
        written?;
        self.get(id).await?.ok_or(StoreError::NotFound)
    }

    async fn write_new(&self, id: &str, data: &SubscriptionData) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let t = now();
        // The first statement writes, so SQLite takes the write lock at once.
        let inserted = sqlx::query(sql::INSERT_SUBSCRIPTION)
            .bind(id)
            .bind(data.cloud.project_id.clone())
            .bind(data.cloud.user_id.clone())
            .bind(t)
            .execute(&mut *tx)
            .await;
        if let Err(e) = inserted {
            return Err(duplicate_or(e, "id", id));
        }
        self.write_parts(&mut tx, id, data).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces subscription `id` with `data`. Identities that stay keep their
    /// registration state and SQN; an IMPI written without credentials keeps its stored
    /// ones.
    pub async fn update(
        &self,
        id: &str,
        data: &SubscriptionData,
    ) -> Result<Subscription, StoreError> {
        check_data(data)?;
        let turn = self.write_turn().await;
        let written = self.write_update(id, data).await;
        self.forget_all();
        drop(turn);
        written?;
        self.get(id).await?.ok_or(StoreError::NotFound)
    }

    async fn write_update(&self, id: &str, data: &SubscriptionData) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(sql::UPDATE_SUBSCRIPTION)
            .bind(id)
            .bind(data.cloud.project_id.clone())
            .bind(data.cloud.user_id.clone())
            .bind(now())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.write_parts(&mut tx, id, data).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes subscription `id` and everything it holds; false if it did not exist.
    pub async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let turn = self.write_turn().await;
        let done = sqlx::query(sql::DELETE_SUBSCRIPTION)
            .bind(id)
            .execute(&self.pool)
            .await;
        self.forget_all();
        drop(turn);
        Ok(done?.rows_affected() > 0)
    }

    /// Subscription `id`.
    pub async fn get(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        Ok(self.shared(id).await?.map(Arc::unwrap_or_clone))
    }

    /// Subscription `id`, shared with the cache (no copy when it is cached).
    async fn shared(&self, id: &str) -> Result<Option<Arc<Subscription>>, StoreError> {
        let Some(cache) = &self.cache else {
            return Ok(self.load(id).await?.map(|(sub, _)| Arc::new(sub)));
        };
        if let Some(sub) = cache.get(cache::Key::Id(id)) {
            return Ok(Some(sub));
        }
        let generation = cache.generation();
        let Some((sub, ha1)) = self.load(id).await? else {
            return Ok(None);
        };
        let sub = Arc::new(sub);
        cache.insert(generation, &sub, &ha1);
        Ok(Some(sub))
    }

    /// Subscription `id` as the database holds it, and the sealed HA1 of those of its
    /// IMPIs that have one.
    async fn load(&self, id: &str) -> Result<Option<Loaded>, StoreError> {
        let Some(row) = sqlx::query(sql::SELECT_SUBSCRIPTION)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let mut sub = Subscription {
            id: row.try_get("id")?,
            cloud: CloudProfile {
                project_id: row.try_get("project_id")?,
                user_id: row.try_get("user_id")?,
            },
            private_identities: Vec::new(),
            public_identities: Vec::new(),
            service_profiles: Vec::new(),
            roaming_networks: Vec::new(),
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        };
        let mut sealed = Vec::new();
        for r in self.rows(sql::SELECT_IMPIS, id).await? {
            let impi: String = r.try_get("impi")?;
            let amf: Option<String> = r.try_get("aka_amf")?;
            let sqn: Option<i64> = r.try_get("aka_sqn")?;
            let ha1: Option<String> = r.try_get("digest_ha1")?;
            let digest = ha1.is_some();
            if let Some(h) = ha1 {
                sealed.push((impi.clone(), SealedHa1::new(h)));
            }
            sub.private_identities.push(PrivateIdentityInfo {
                impi,
                realm: r.try_get("realm")?,
                auth: AuthInfo {
                    digest,
                    aka: match (amf, sqn) {
                        (Some(amf), Some(sqn)) => Some(AkaInfo {
                            amf,
                            sqn: u64::try_from(sqn).map_err(|_| StoreError::Corrupt("aka_sqn"))?,
                        }),
                        _ => None,
                    },
                },
            });
        }
        for r in self.rows(sql::SELECT_IMPUS, id).await? {
            sub.public_identities.push(PublicIdentityInfo {
                identity: PublicIdentity {
                    impu: r.try_get("impu")?,
                    barred: r.try_get::<i64, _>("barred")? != 0,
                    implicit_set: r.try_get("implicit_set")?,
                    service_profile: r.try_get("profile")?,
                },
                registration: registration_of(&r)?,
            });
        }
        sub.service_profiles = self.profiles(id).await?;
        for r in self.rows(sql::SELECT_ROAMING, id).await? {
            sub.roaming_networks.push(r.try_get("network")?);
        }
        Ok(Some((sub, sealed)))
    }

    /// Up to `limit` (at most [`MAX_PAGE`]) subscriptions with an id after `after`,
    /// ordered by id.
    pub async fn list(&self, after: Option<&str>, limit: u32) -> Result<Page, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let rows = sqlx::query(sql::LIST_SUBSCRIPTION_IDS)
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let mut ids: Vec<String> = rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        let more = ids.len() > limit as usize;
        ids.truncate(limit as usize);
        let mut items = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(s) = self.get(id).await? {
                items.push(s);
            }
        }
        let next = if more { ids.last().cloned() } else { None };
        Ok(Page { items, next })
    }

    /// The subscription holding private identity `impi`, shared with the cache (no copy
    /// when it is cached).
    pub async fn by_impi(&self, impi: &str) -> Result<Option<Arc<Subscription>>, StoreError> {
        if let Some(sub) = self
            .cache
            .as_ref()
            .and_then(|c| c.get(cache::Key::Impi(impi)))
        {
            return Ok(Some(sub));
        }
        match self.owner(sql::OWNER_OF_IMPI, impi).await? {
            Some(id) => self.shared(&id).await,
            None => Ok(None),
        }
    }

    /// The subscription holding public identity `impu`, shared with the cache (no copy
    /// when it is cached).
    pub async fn by_impu(&self, impu: &str) -> Result<Option<Arc<Subscription>>, StoreError> {
        if let Some(sub) = self
            .cache
            .as_ref()
            .and_then(|c| c.get(cache::Key::Impu(impu)))
        {
            return Ok(Some(sub));
        }
        match self.owner(sql::OWNER_OF_IMPU, impu).await? {
            Some(id) => self.shared(&id).await,
            None => Ok(None),
        }
    }

    /// The decrypted credentials of `impi` (for MAR, TS 29.228 §6.3.3).
    pub async fn credentials(&self, impi: &str) -> Result<Option<Credentials>, StoreError> {
        let Some(r) = sqlx::query(sql::SELECT_CREDENTIALS)
            .bind(impi)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let ha1: Option<String> = r.try_get("digest_ha1")?;
        let k: Option<Vec<u8>> = r.try_get("aka_k")?;
        let opc: Option<Vec<u8>> = r.try_get("aka_opc")?;
        let amf: Option<String> = r.try_get("aka_amf")?;
        let sqn: Option<i64> = r.try_get("aka_sqn")?;
        let aka = match (k, opc, amf, sqn) {
            (Some(k), Some(opc), Some(amf), Some(sqn)) => Some(AkaCredentials {
                k: self.open_block(impi, "k", &k)?,
                opc: self.open_block(impi, "opc", &opc)?,
                amf: hex::decode(&amf)
                    .ok()
                    .and_then(|v| <[u8; 2]>::try_from(v).ok())
                    .ok_or(StoreError::Corrupt("aka_amf"))?,
                sqn: sqn_of(sqn)?,
            }),
            _ => None,
        };
        Ok(Some(Credentials {
            impi: impi.to_string(),
            subscription_id: r.try_get("subscription_id")?,
            realm: r.try_get("realm")?,
            digest_ha1: ha1
                .map(|h| sealed_ha1::open(&self.key, impi, &h))
                .transpose()?,
            aka,
        }))
    }

    /// The digest HA1 of `impi` (SIP Digest MAR, TS 29.228 §6.3.3), `None` when it has
    /// none or does not exist. Opened from the sealed copy of the subscription cache when
    /// the subscription is cached (no database round trip), else read like
    /// [`Store::credentials`].
    pub async fn digest_ha1(&self, impi: &str) -> Result<Option<Ha1>, StoreError> {
        if let Some(sealed) = self.cache.as_ref().and_then(|c| c.ha1(impi)) {
            return sealed.map(|s| s.open(&self.key, impi)).transpose();
        }
        Ok(self.credentials(impi).await?.and_then(|c| c.digest_ha1))
    }

    /// Advances SQN_HE of `impi` `count` times (TS 33.102 Annex C.1.1, [`IND_BITS`] of
    /// IND) and returns the SQNs to put in the vectors, oldest first. Atomic: concurrent
    /// callers never get the same SQN.
    pub async fn next_sqns(&self, impi: &str, count: usize) -> Result<Vec<Sqn>, StoreError> {
        let _turn = self.write_turn().await;
        for _ in 0..SQN_CAS_ATTEMPTS {
            let row = sqlx::query(sql::SELECT_SQN)
                .bind(impi)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
            let stored: i64 = row
                .try_get::<Option<i64>, _>("aka_sqn")?
                .ok_or(StoreError::NoAka)?;
            let mut sqn = sqn_of(stored)?;
            let mut out = Vec::with_capacity(count);
            for _ in 0..count {
                sqn = sqn.next(IND_BITS).map_err(|_| StoreError::SqnExhausted)?;
                out.push(sqn);
            }
            let new = i64::try_from(sqn.value()).map_err(|_| StoreError::SqnExhausted)?;
            let done = sqlx::query(sql::CAS_SQN)
                .bind(impi)
                .bind(new)
                .bind(stored)
                .execute(&self.pool)
                .await?;
            if done.rows_affected() == 1 {
                if let Some(c) = &self.cache {
                    c.set_sqn(impi, sqn.value());
                }
                return Ok(out);
            }
            tokio::task::yield_now().await;
        }
        Err(StoreError::SqnContention)
    }

    /// Advances SQN_HE once and returns it.
    pub async fn next_sqn(&self, impi: &str) -> Result<Sqn, StoreError> {
        self.next_sqns(impi, 1)
            .await?
            .pop()
            .ok_or(StoreError::SqnExhausted)
    }

    /// Sets SQN_HE (re-synchronisation: SQN_HE := SQN_MS from AUTS, TS 33.102 §6.3.5).
    pub async fn set_sqn(&self, impi: &str, sqn: Sqn) -> Result<(), StoreError> {
        let value = i64::try_from(sqn.value()).map_err(|_| StoreError::SqnExhausted)?;
        let _turn = self.write_turn().await;
        let done = sqlx::query(sql::SET_SQN)
            .bind(impi)
            .bind(value)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoAka);
        }
        if let Some(c) = &self.cache {
            c.set_sqn(impi, sqn.value());
        }
        Ok(())
    }

    /// Sets the S-CSCF assignment and state of each of `impus` in one transaction
    /// (SAR, TS 29.228 §6.1.2). Fails with [`StoreError::NotFound`], changing nothing,
    /// if one is unknown.
    pub async fn set_registration(
        &self,
        impus: &[&str],
        registration: &Registration,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        for impu in impus {
            let done = sqlx::query(sql::SET_REGISTRATION)
                .bind(*impu)
                .bind(registration.state.code())
                .bind(registration.scscf.clone())
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        }
        tx.commit().await?;
        if let Some(c) = &self.cache {
            c.set_registration(impus, registration);
        }
        Ok(())
    }

    /// The S-CSCF assignment and state of `impu`.
    pub async fn registration(&self, impu: &str) -> Result<Option<Registration>, StoreError> {
        let row = sqlx::query(sql::SELECT_REGISTRATION)
            .bind(impu)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(registration_of).transpose()
    }

    async fn rows(&self, query: &'static str, id: &str) -> Result<Vec<AnyRow>, StoreError> {
        Ok(sqlx::query(query).bind(id).fetch_all(&self.pool).await?)
    }

    async fn owner(
        &self,
        query: &'static str,
        identity: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(query)
            .bind(identity)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("subscription_id")).transpose()?)
    }

    fn open_block(&self, impi: &str, what: &str, sealed: &[u8]) -> Result<[u8; 16], StoreError> {
        let plain = self.key.open(&aad(impi, what), sealed)?;
        <[u8; 16]>::try_from(plain.as_slice()).map_err(|_| StoreError::Corrupt("aka key"))
    }

    async fn profiles(&self, id: &str) -> Result<Vec<ServiceProfile>, StoreError> {
        let mut profiles: BTreeMap<String, BTreeMap<i64, InitialFilterCriteria>> = BTreeMap::new();
        for r in self.rows(sql::SELECT_PROFILES, id).await? {
            profiles.insert(r.try_get("name")?, BTreeMap::new());
        }
        for r in self.rows(sql::SELECT_IFCS, id).await? {
            let profile: String = r.try_get("profile")?;
            let cnf: Option<i64> = r.try_get("cnf")?;
            let ppi: Option<i64> = r.try_get("profile_part_indicator")?;
            let ifc = InitialFilterCriteria {
                priority: r.try_get("priority")?,
                trigger_point: cnf.map(|c| TriggerPoint {
                    condition_type_cnf: c != 0,
                    spts: Vec::new(),
                }),
                application_server: ApplicationServer {
                    server_name: r.try_get("server_name")?,
                    default_handling: DefaultHandling::from_code(r.try_get("default_handling")?)
                        .ok_or(StoreError::Corrupt("default_handling"))?,
                    service_info: r.try_get("service_info")?,
                    include_register_request: r.try_get::<i64, _>("include_register_request")? != 0,
                    include_register_response: r.try_get::<i64, _>("include_register_response")?
                        != 0,
                },
                profile_part_indicator: ppi
                    .map(|p| {
                        ProfilePartIndicator::from_code(p)
                            .ok_or(StoreError::Corrupt("profile_part_indicator"))
                    })
                    .transpose()?,
            };
            profiles
                .entry(profile)
                .or_default()
                .insert(r.try_get("position")?, ifc);
        }
        for r in self.rows(sql::SELECT_SPTS, id).await? {
            let profile: String = r.try_get("profile")?;
            let pos: i64 = r.try_get("ifc_position")?;
            let spt = spt_of(&r)?;
            let tp = profiles
                .get_mut(&profile)
                .and_then(|p| p.get_mut(&pos))
                .and_then(|ifc| ifc.trigger_point.as_mut())
                .ok_or(StoreError::Corrupt("spt"))?;
            tp.spts.push(spt);
        }
        Ok(profiles
            .into_iter()
            .map(|(name, ifcs)| ServiceProfile {
                name,
                ifcs: ifcs.into_values().collect(),
            })
            .collect())
    }

    /// Writes everything below the subscription row: identities, profiles, roaming.
    async fn write_parts(
        &self,
        tx: &mut Tx,
        id: &str,
        data: &SubscriptionData,
    ) -> Result<(), StoreError> {
        for p in &data.private_identities {
            check_owner(tx, sql::OWNER_OF_IMPI, "impi", &p.impi, id).await?;
        }
        for p in &data.public_identities {
            check_owner(tx, sql::OWNER_OF_IMPU, "impu", &p.impu, id).await?;
        }
        self.write_impis(tx, id, &data.private_identities).await?;
        write_impus(tx, id, &data.public_identities).await?;
        write_profiles(tx, id, &data.service_profiles).await?;
        sqlx::query(sql::DELETE_ROAMING)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        for n in &data.roaming_networks {
            sqlx::query(sql::INSERT_ROAMING)
                .bind(id)
                .bind(n.as_str())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    async fn write_impis(
        &self,
        tx: &mut Tx,
        id: &str,
        impis: &[PrivateIdentityData],
    ) -> Result<(), StoreError> {
        let existing = names(tx, sql::SELECT_IMPI_NAMES, id, "impi").await?;
        let wanted: HashSet<&str> = impis.iter().map(|p| p.impi.as_str()).collect();
        for gone in existing.iter().filter(|e| !wanted.contains(e.as_str())) {
            sqlx::query(sql::DELETE_IMPI)
                .bind(gone.as_str())
                .execute(&mut **tx)
                .await?;
        }
        for (i, p) in impis.iter().enumerate() {
            let field = |f: &str| format!("private_identities[{i}].{f}");
            let sealed = match &p.aka {
                Some(a) => Some((
                    self.key.seal(&aad(&p.impi, "k"), &a.k)?,
                    self.key.seal(&aad(&p.impi, "opc"), &a.opc)?,
                    hex::encode(a.amf),
                    a.sqn.map(|s| i64::try_from(s.value()).unwrap_or(i64::MAX)),
                )),
                None => None,
            };
            if existing.contains(&p.impi) {
                sqlx::query(sql::UPDATE_IMPI_REALM)
                    .bind(p.impi.as_str())
                    .bind(p.realm.as_str())
                    .execute(&mut **tx)
                    .await?;
                if let Some(h) = &p.digest_ha1 {
                    sqlx::query(sql::UPDATE_IMPI_HA1)
                        .bind(p.impi.as_str())
                        .bind(sealed_ha1::seal(&self.key, &p.impi, h)?)
                        .execute(&mut **tx)
                        .await?;
                }
                if let Some((k, opc, amf, sqn)) = sealed {
                    sqlx::query(sql::UPDATE_IMPI_AKA)
                        .bind(p.impi.as_str())
                        .bind(k)
                        .bind(opc)
                        .bind(amf)
                        .execute(&mut **tx)
                        .await?;
                    let q = match sqn {
                        Some(v) => sqlx::query(sql::UPDATE_IMPI_SQN)
                            .bind(p.impi.as_str())
                            .bind(v),
                        None => sqlx::query(sql::INIT_IMPI_SQN).bind(p.impi.as_str()),
                    };
                    q.execute(&mut **tx).await?;
                }
            } else {
                if p.digest_ha1.is_none() && p.aka.is_none() {
                    return Err(StoreError::invalid(
                        field("auth"),
                        "a new private identity needs a password or AKA keys",
                    ));
                }
                let (k, opc, amf, sqn) = match sealed {
                    Some((k, opc, amf, sqn)) => {
                        (Some(k), Some(opc), Some(amf), Some(sqn.unwrap_or(0)))
                    }
                    None => (None, None, None, None),
                };
                let inserted = sqlx::query(sql::INSERT_IMPI)
                    .bind(p.impi.as_str())
                    .bind(id)
                    .bind(p.realm.as_str())
                    .bind(
                        p.digest_ha1
                            .as_ref()
                            .map(|h| sealed_ha1::seal(&self.key, &p.impi, h))
                            .transpose()?,
                    )
                    .bind(k)
                    .bind(opc)
                    .bind(amf)
                    .bind(sqn)
                    .execute(&mut **tx)
                    .await;
                if let Err(e) = inserted {
                    return Err(duplicate_or(e, "impi", &p.impi));
                }
            }
        }
        Ok(())
    }
}

fn aad(impi: &str, what: &str) -> String {
    format!("hss/private_identity/{impi}/{what}")
}

fn sqn_of(v: i64) -> Result<Sqn, StoreError> {
    u64::try_from(v)
        .ok()
        .and_then(Sqn::new)
        .ok_or(StoreError::Corrupt("aka_sqn"))
}

fn registration_of(r: &AnyRow) -> Result<Registration, StoreError> {
    Ok(Registration {
        state: RegistrationState::from_code(r.try_get("reg_state")?)
            .ok_or(StoreError::Corrupt("reg_state"))?,
        scscf: r.try_get("scscf_name")?,
    })
}

fn spt_of(r: &AnyRow) -> Result<Spt, StoreError> {
    let kind: String = r.try_get("kind")?;
    let value: String = r.try_get("value")?;
    let content: Option<String> = r.try_get("content")?;
    let types: i64 = r.try_get("registration_types")?;
    let registration_type =
        registration_types_of(types).ok_or(StoreError::Corrupt("spt registration types"))?;
    if kind != "method" && !registration_type.is_empty() {
        return Err(StoreError::Corrupt("spt registration types"));
    }
    let condition = match kind.as_str() {
        "request_uri" => SptCondition::RequestUri { request_uri: value },
        "method" => SptCondition::Method {
            method: value,
            registration_type,
        },
        "sip_header" => SptCondition::SipHeader {
            header: value,
            content,
        },
        "session_case" => SptCondition::SessionCase {
            session_case: value
                .parse()
                .ok()
                .and_then(SessionCase::from_code)
                .ok_or(StoreError::Corrupt("spt session case"))?,
        },
        "session_description" => SptCondition::SessionDescription {
            line: value,
            content,
        },
        _ => return Err(StoreError::Corrupt("spt kind")),
    };
    Ok(Spt {
        condition_negated: r.try_get::<i64, _>("negated")? != 0,
        group: r.try_get("grp")?,
        condition,
    })
}

/// The stored form of `RegistrationType` values: bit n set for the value n.
fn registration_types_bits(types: &[RegistrationType]) -> i64 {
    types.iter().fold(0, |bits, t| bits | (1 << t.code()))
}

/// The values of a stored bit set, in the order of their codes; `None` if it has a bit
/// no value has.
fn registration_types_of(bits: i64) -> Option<Vec<RegistrationType>> {
    let known = registration_types_bits(&RegistrationType::ALL);
    (bits & !known == 0).then(|| {
        RegistrationType::ALL
            .into_iter()
            .filter(|t| bits & (1 << t.code()) != 0)
            .collect()
    })
}

/// The stored form of an SPT condition: kind, value, content, registration types.
fn spt_columns(c: &SptCondition) -> (&'static str, String, Option<String>, i64) {
    match c {
        SptCondition::RequestUri { request_uri } => ("request_uri", request_uri.clone(), None, 0),
        SptCondition::Method {
            method,
            registration_type,
        } => (
            "method",
            method.clone(),
            None,
            registration_types_bits(registration_type),
        ),
        SptCondition::SipHeader { header, content } => {
            ("sip_header", header.clone(), content.clone(), 0)
        }
        SptCondition::SessionCase { session_case } => {
            ("session_case", session_case.code().to_string(), None, 0)
        }
        SptCondition::SessionDescription { line, content } => {
            ("session_description", line.clone(), content.clone(), 0)
        }
    }
}

/// Consistency the database cannot check by itself.
fn check_data(data: &SubscriptionData) -> Result<(), StoreError> {
    let mut seen = HashSet::new();
    for (i, p) in data.private_identities.iter().enumerate() {
        if !seen.insert(p.impi.as_str()) {
            return Err(StoreError::invalid(
                format!("private_identities[{i}].impi"),
                "listed twice",
            ));
        }
    }
    let profiles: HashSet<&str> = data
        .service_profiles
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    if profiles.len() != data.service_profiles.len() {
        return Err(StoreError::invalid(
            "service_profiles",
            "profile names must be unique",
        ));
    }
    for (i, p) in data.service_profiles.iter().enumerate() {
        check_registration_types(i, p)?;
    }
    let mut seen = HashSet::new();
    for (i, p) in data.public_identities.iter().enumerate() {
        if !seen.insert(p.impu.as_str()) {
            return Err(StoreError::invalid(
                format!("public_identities[{i}].impu"),
                "listed twice",
            ));
        }
        if !profiles.contains(p.service_profile.as_str()) {
            return Err(StoreError::invalid(
                format!("public_identities[{i}].service_profile"),
                format!("no service profile named {}", p.service_profile),
            ));
        }
    }
    Ok(())
}

/// `RegistrationType` only on an SPT testing the REGISTER method (TS 29.228 Annex B.2.2),
/// each value once, at most two of them (CxDataType.xsd `tSePoTriExtension`; all three
/// is what none means).
fn check_registration_types(i: usize, profile: &ServiceProfile) -> Result<(), StoreError> {
    for (j, ifc) in profile.ifcs.iter().enumerate() {
        let spts = ifc.trigger_point.iter().flat_map(|t| t.spts.iter());
        for (k, spt) in spts.enumerate() {
            let SptCondition::Method {
                method,
                registration_type: types,
            } = &spt.condition
            else {
                continue;
            };
            let field = || {
                format!("service_profiles[{i}].ifcs[{j}].trigger_point.spts[{k}].registration_type")
            };
            if types.is_empty() {
                continue;
            }
            if !method.eq_ignore_ascii_case("REGISTER") {
                return Err(StoreError::invalid(
                    field(),
                    format!("only an SPT on the REGISTER method has one; this one tests {method}"),
                ));
            }
            if types
                .iter()
                .enumerate()
                .any(|(n, t)| types[..n].contains(t))
            {
                return Err(StoreError::invalid(field(), "a value is listed twice"));
            }
            if types.len() >= RegistrationType::ALL.len() {
                return Err(StoreError::invalid(
                    field(),
                    "at most two values; leave it out to match every registration",
                ));
            }
        }
    }
    Ok(())
}

fn duplicate_or(e: sqlx::Error, field: &'static str, value: &str) -> StoreError {
    let unique = e
        .as_database_error()
        .is_some_and(|d| d.is_unique_violation());
    if unique {
        StoreError::Duplicate {
            field,
            value: value.to_string(),
        }
    } else {
        StoreError::Database(e)
    }
}

async fn check_owner(
    tx: &mut Tx,
    query: &'static str,
    field: &'static str,
    identity: &str,
    id: &str,
) -> Result<(), StoreError> {
    let row = sqlx::query(query)
        .bind(identity)
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(r) = row {
        let owner: String = r.try_get("subscription_id")?;
        if owner != id {
            return Err(StoreError::Duplicate {
                field,
                value: identity.to_string(),
            });
        }
    }
    Ok(())
}

async fn names(
    tx: &mut Tx,
    query: &'static str,
    id: &str,
    column: &str,
) -> Result<HashSet<String>, StoreError> {
    let rows = sqlx::query(query).bind(id).fetch_all(&mut **tx).await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get(column))
        .collect::<Result<_, _>>()?)
}

async fn write_impus(tx: &mut Tx, id: &str, impus: &[PublicIdentity]) -> Result<(), StoreError> {
    let existing = names(tx, sql::SELECT_IMPU_NAMES, id, "impu").await?;
    let wanted: HashSet<&str> = impus.iter().map(|p| p.impu.as_str()).collect();
    for gone in existing.iter().filter(|e| !wanted.contains(e.as_str())) {
        sqlx::query(sql::DELETE_IMPU)
            .bind(gone.as_str())
            .execute(&mut **tx)
            .await?;
    }
    for (pos, p) in impus.iter().enumerate() {
        let pos = i64::try_from(pos).unwrap_or(i64::MAX);
        if existing.contains(&p.impu) {
            sqlx::query(sql::UPDATE_IMPU)
                .bind(p.impu.as_str())
                .bind(p.service_profile.as_str())
                .bind(flag(p.barred))
                .bind(p.implicit_set)
                .bind(pos)
                .execute(&mut **tx)
                .await?;
        } else {
            let inserted = sqlx::query(sql::INSERT_IMPU)
                .bind(p.impu.as_str())
                .bind(id)
                .bind(p.service_profile.as_str())
                .bind(flag(p.barred))
                .bind(p.implicit_set)
                .bind(pos)
                .execute(&mut **tx)
                .await;
            if let Err(e) = inserted {
                return Err(duplicate_or(e, "impu", &p.impu));
            }
        }
    }
    Ok(())
}

async fn write_profiles(
    tx: &mut Tx,
    id: &str,
    profiles: &[ServiceProfile],
) -> Result<(), StoreError> {
    for q in [sql::DELETE_SPTS, sql::DELETE_IFCS, sql::DELETE_PROFILES] {
        sqlx::query(q).bind(id).execute(&mut **tx).await?;
    }
    for p in profiles {
        sqlx::query(sql::INSERT_PROFILE)
            .bind(id)
            .bind(p.name.as_str())
            .execute(&mut **tx)
            .await?;
        for (pos, ifc) in p.ifcs.iter().enumerate() {
            let pos = i64::try_from(pos).unwrap_or(i64::MAX);
            let a = &ifc.application_server;
            sqlx::query(sql::INSERT_IFC)
                .bind(id)
                .bind(p.name.as_str())
                .bind(pos)
                .bind(ifc.priority)
                .bind(
                    ifc.trigger_point
                        .as_ref()
                        .map(|t| flag(t.condition_type_cnf)),
                )
                .bind(a.server_name.as_str())
                .bind(a.default_handling.code())
                .bind(a.service_info.clone())
                .bind(flag(a.include_register_request))
                .bind(flag(a.include_register_response))
                .bind(ifc.profile_part_indicator.map(|p| p.code()))
                .execute(&mut **tx)
                .await?;
            for (spos, spt) in ifc
                .trigger_point
                .iter()
                .flat_map(|t| t.spts.iter())
                .enumerate()
            {
                let (kind, value, content, types) = spt_columns(&spt.condition);
                sqlx::query(sql::INSERT_SPT)
                    .bind(id)
                    .bind(p.name.as_str())
                    .bind(pos)
                    .bind(i64::try_from(spos).unwrap_or(i64::MAX))
                    .bind(spt.group)
                    .bind(flag(spt.condition_negated))
                    .bind(kind)
                    .bind(value)
                    .bind(content)
                    .bind(types)
                    .execute(&mut **tx)
                    .await?;
            }
        }
    }
    Ok(())
}
