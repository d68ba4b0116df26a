//! Persistence of the registrations and bindings, so that they survive a restart of the
//! S-CSCF: SQLite (embedded, the default) or PostgreSQL, through sqlx's `Any` driver,
//! the same choice as the HSS store. The schema is in `scscf/migrations/<backend>/` and
//! is applied on [`BindingStore::open`]. [`BindingStore::apply`] writes a batch of
//! changes in one transaction with a few multi-row statements (the registrar's writes go
//! through the group-commit [`writer`]).
//!
//! Several S-CSCFs of a pool may share one PostgreSQL database (`docs/scale-out.md`):
//! each registration row names the S-CSCF that serves it (its Server-Name, the store's
//! [`BindingStore::owner`]). A [`Change::Save`] (after a SAR that named this S-CSCF)
//! claims the row whoever held it; [`Change::Update`] and [`Change::Delete`] (expiry,
//! de-registration, RTR, PPR) change it only while this S-CSCF still owns it, so an
//! S-CSCF that lost a user to another never deletes or overwrites what the other
//! stored. The leases and the take-over of a dead owner's registrations are in
//! [`pool`].
//! The reg event subscriptions are kept in the same database ([`subscriptions`]).
//!
//! A REGISTER that only refreshes expiries (and CSeqs), each stored expiry lagging the
//! acknowledged one by at most `min(duration / 20, 60 s)`, is not written (issue 12,
//! [`written`], [`ims_runtime::expiry_lag`]): after a crash its bindings come back up to
//! that much early, still after the UE's next refresh (TS 24.229 §5.1.1.4.1).

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use ims_runtime::migrations::{migrator, Embedded};
use sqlx::{AnyPool, Row};

use crate::location::{Binding, Registration};
use crate::profile::UserProfile;

pub mod pool;
pub mod subscriptions;
pub mod writer;
pub mod written;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The schema migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The group-commit writer stopped before answering (the process is shutting down).
    #[error("the store writer stopped")]
    WriterStopped,
    /// The URL names no supported backend.
    #[error("unsupported store URL (expected sqlite: or postgres://)")]
    UnsupportedUrl,
}

/// Upserts registration rows: `INSERT ... VALUES` followed by rows of parameters, then
/// [`UPSERT_REGISTRATION_TAIL`] (SQLite ≥ 3.24 and PostgreSQL).
const UPSERT_REGISTRATION_HEAD: &str =
    "INSERT INTO registration (impu, impi, profile, owner) VALUES ";
const UPSERT_REGISTRATION_TAIL: &str = " ON CONFLICT (impu) DO UPDATE SET impi = excluded.impi, \
    profile = excluded.profile, owner = excluded.owner";
const INSERT_BINDING_HEAD: &str = "INSERT INTO binding \
    (impu, key, position, contact, path, call_id, cseq, expires_at, gruu_first_cseq) VALUES ";
const DELETE_REGISTRATIONS_IN: &str = "DELETE FROM registration WHERE impu IN ";
const DELETE_BINDINGS_IN: &str = "DELETE FROM binding WHERE impu IN ";
const DELETE_IDENTITIES_IN: &str = "DELETE FROM registration_identity WHERE impu IN ";
const INSERT_IDENTITY_HEAD: &str = "INSERT INTO registration_identity (identity, impu) VALUES ";
const SELECT_REGISTRATIONS: &str = "SELECT impu, impi, profile, owner FROM registration";
const SELECT_BINDINGS: &str = "SELECT impu, key, contact, path, call_id, cseq, expires_at, \
    gruu_first_cseq FROM binding";

/// Bind parameters in one statement at most: the lowest limit of the backends (SQLite
/// builds before 3.32 allowed 999; PostgreSQL allows 65 535). Longer lists of rows are
/// split over several statements of the same transaction.
const MAX_PARAMETERS: usize = 999;

/// One change of the stored registrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Store this registration as served by this S-CSCF, replacing what was stored for
    /// its identity whoever owned it (a registration without bindings is deleted): a
    /// REGISTER or a take-over, after a SAR that named this S-CSCF.
    Save(Registration),
    /// As [`Change::Save`], but only while this S-CSCF owns the stored registration
    /// (nothing happens otherwise): an expiry, RTR or PPR changing what it serves.
    Update(Registration),
    /// Delete the registration of this identity if this S-CSCF owns it.
    Delete(String),
}

impl Change {
    /// The identity whose stored registration changes.
    pub fn impu(&self) -> &str {
        match self {
            Change::Save(reg) | Change::Update(reg) => &reg.impu,
            Change::Delete(impu) => impu,
        }
    }

    /// The registration to store, if this change leaves one.
    fn saved(&self) -> Option<&Registration> {
        match self {
            Change::Save(reg) | Change::Update(reg) if !reg.bindings.is_empty() => Some(reg),
            _ => None,
        }
    }

    /// True when the change applies only to a registration this S-CSCF owns.
    fn fenced(&self) -> bool {
        !matches!(self, Change::Save(_))
    }
}

/// How the backend's statements name their bind parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Params {
    /// `$1, $2, ...` (PostgreSQL).
    Numbered,
    /// `?` in order (SQLite: sqlx finds a named or numbered SQLite parameter by a linear
    /// scan of the statement's names, quadratic in a long multi-row statement).
    Anonymous,
}

impl Params {
    /// `rows` rows of `columns` parameters each, `(.., ..), (.., ..)`.
    fn rows(self, rows: usize, columns: usize) -> String {
        self.rows_after(0, rows, columns)
    }

    /// As [`Params::rows`], numbered after the `before` parameters the statement has
    /// ahead of them.
    fn rows_after(self, before: usize, rows: usize, columns: usize) -> String {
        let all: Vec<String> = (0..rows)
            .map(|r| {
                let row: Vec<String> = (1..=columns)
                    .map(|c| match self {
                        Params::Numbered => format!("${}", before + r * columns + c),
                        Params::Anonymous => "?".to_string(),
                    })
                    .collect();
                format!("({})", row.join(", "))
            })
            .collect();
        all.join(", ")
    }
}

/// Of `changes`, the last one of each identity, in their order: each change replaces
/// the whole stored state of its identity, so the last one is what the sequence leaves.
fn last_of_each(changes: &[Change]) -> Vec<&Change> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(changes.len());
    for (i, c) in changes.iter().enumerate() {
        last.insert(c.impu(), i);
    }
    changes
        .iter()
        .enumerate()
        .filter(|(i, c)| last.get(c.impu()) == Some(i))
        .map(|(_, c)| c)
        .collect()
}

/// The migrations of each backend: version, name, PostgreSQL and SQLite text.
const MIGRATIONS: [Embedded; 4] = [
    (
        1,
        "bindings",
        include_str!("../migrations/postgres/0001_bindings.sql"),
        include_str!("../migrations/sqlite/0001_bindings.sql"),
    ),
    (
        2,
        "reg_subscriptions",
        include_str!("../migrations/postgres/0002_reg_subscriptions.sql"),
        include_str!("../migrations/sqlite/0002_reg_subscriptions.sql"),
    ),
    (
        3,
        "pool",
        include_str!("../migrations/postgres/0003_pool.sql"),
        include_str!("../migrations/sqlite/0003_pool.sql"),
    ),
    (
        4,
        "gruu",
        include_str!("../migrations/postgres/0004_gruu.sql"),
        include_str!("../migrations/sqlite/0004_gruu.sql"),
    ),
];

/// The bindings database, as one S-CSCF (its [`BindingStore::owner`]) sees it. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct BindingStore {
    pool: AnyPool,
    params: Params,
    owner: String,
}

/// A stored registration and the S-CSCF that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// The registration with its bindings.
    pub registration: Registration,
    /// The Server-Name of its owner (`''`: stored before owners were).
    pub owner: String,
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `DELETE ... WHERE impu IN (...)` (`head` ends with `IN `) for `impus`, in statements
/// of at most [`MAX_PARAMETERS`] identities.
async fn delete_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    params: Params,
    head: &str,
    impus: &[&str],
) -> Result<(), StoreError> {
    for chunk in impus.chunks(MAX_PARAMETERS) {
        let sql = format!("{head}{}", params.rows(1, chunk.len()));
        let mut q = sqlx::query(&sql);
        for impu in chunk {
            q = q.bind(*impu);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

impl BindingStore {
    /// Connects to `url` (a SQLite file is created if missing), applies the schema. The
    /// store's owner is `''` until [`BindingStore::owned_by`] names it.
    pub async fn open(url: &str) -> Result<BindingStore, StoreError> {
        let lower = url.to_ascii_lowercase();
        let postgres = lower.starts_with("postgres://") || lower.starts_with("postgresql://");
        let sqlite = ims_runtime::sqlite::is_sqlite_url(url);
        if !postgres && !sqlite {
            return Err(StoreError::UnsupportedUrl);
        }
        // One SQLite connection: SQLite has one writer at a time, and the registrar's
        // writes go through one group-commit writer anyway.
        let connections = if sqlite { 1 } else { 4 };
        let pool = ims_runtime::sqlite::connect_pool(url, connections, "bindings database").await?;
        migrator(&MIGRATIONS, postgres).run(&pool).await?;
        let params = if postgres {
            Params::Numbered
        } else {
            Params::Anonymous
        };
        Ok(BindingStore {
            pool,
            params,
            owner: String::new(),
        })
    }

    /// The same store as seen by the S-CSCF whose Server-Name is `owner`: what it saves
    /// is owned by it, and only what it owns it updates or deletes.
    pub fn owned_by(mut self, owner: &str) -> BindingStore {
        self.owner = owner.to_string();
        self
    }

    /// The Server-Name this store writes as owner.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// True on PostgreSQL (row locks for the take-over).
    fn postgres(&self) -> bool {
        self.params == Params::Numbered
    }

    /// Of `impus`, those whose stored registration this S-CSCF owns, their rows locked
    /// until the end of `tx` on PostgreSQL (SQLite has one writer at a time).
    async fn owned_among(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        impus: &[&str],
    ) -> Result<HashSet<String>, StoreError> {
        let mut owned = HashSet::new();
        let lock = if self.postgres() { " FOR UPDATE" } else { "" };
        for chunk in impus.chunks(MAX_PARAMETERS - 1) {
            let sql = format!(
                "SELECT impu FROM registration WHERE owner = {} AND impu IN {}{lock}",
                self.params.rows(1, 1),
                self.params.rows_after(1, 1, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(self.owner.as_str());
            for impu in chunk {
                q = q.bind(*impu);
            }
            for row in q.fetch_all(&mut **tx).await? {
                owned.insert(row.try_get("impu")?);
            }
        }
        Ok(owned)
    }

    /// Applies `changes` in one transaction: every row of the identities changed is
    /// replaced by what the last change of each leaves (bindings and identities deleted
    /// then inserted again, registration rows upserted, or deleted when none is left),
    /// with a few multi-row statements whatever the number of changes. A
    /// [`Change::Update`] or [`Change::Delete`] of a registration another S-CSCF owns (or
    /// nobody stores) changes nothing. All or nothing: on error nothing of the batch is
    /// stored.
    pub async fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        let changes = last_of_each(changes);
        if changes.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let fenced: Vec<&str> = changes
            .iter()
            .filter(|c| c.fenced())
            .map(|c| c.impu())
            .collect();
        let owned = self.owned_among(&mut tx, &fenced).await?;
        let changes: Vec<&Change> = changes
            .into_iter()
            .filter(|c| !c.fenced() || owned.contains(c.impu()))
            .collect();
        let touched: Vec<&str> = changes.iter().map(|c| c.impu()).collect();
        delete_in(&mut tx, self.params, DELETE_BINDINGS_IN, &touched).await?;
        delete_in(&mut tx, self.params, DELETE_IDENTITIES_IN, &touched).await?;
        let gone: Vec<&str> = changes
            .iter()
            .filter(|c| c.saved().is_none())
            .map(|c| c.impu())
            .collect();
        delete_in(&mut tx, self.params, DELETE_REGISTRATIONS_IN, &gone).await?;
        let saved: Vec<&Registration> = changes.iter().filter_map(|c| c.saved()).collect();
        for chunk in saved.chunks(MAX_PARAMETERS / 4) {
            let sql = format!(
                "{UPSERT_REGISTRATION_HEAD}{}{UPSERT_REGISTRATION_TAIL}",
                self.params.rows(chunk.len(), 4)
            );
            let mut q = sqlx::query(&sql);
            for reg in chunk {
                q = q
                    .bind(reg.impu.as_str())
                    .bind(reg.impi.as_str())
                    .bind(String::from_utf8_lossy(&reg.profile.raw).into_owned())
                    .bind(self.owner.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        let bindings: Vec<(&str, usize, &Binding)> = saved
            .iter()
            .flat_map(|reg| {
                reg.bindings
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (reg.impu.as_str(), i, b))
            })
            .collect();
        for chunk in bindings.chunks(MAX_PARAMETERS / 9) {
            let sql = format!("{INSERT_BINDING_HEAD}{}", self.params.rows(chunk.len(), 9));
            let mut q = sqlx::query(&sql);
            for (impu, position, b) in chunk {
                q = q
                    .bind(*impu)
                    .bind(b.key.as_str())
                    .bind(i64::try_from(*position).unwrap_or(i64::MAX))
                    .bind(b.contact.as_str())
                    .bind(b.path.join("\n"))
                    .bind(b.call_id.as_str())
                    .bind(i64::from(b.cseq))
                    .bind(i64_of(b.expires_at))
                    .bind(b.gruu_first_cseq.map_or(-1, i64::from));
            }
            q.execute(&mut *tx).await?;
        }
        let identities: Vec<(&str, &str)> = saved
            .iter()
            .flat_map(|reg| {
                identities_of(reg)
                    .into_iter()
                    .map(|id| (id, reg.impu.as_str()))
            })
            .collect();
        for chunk in identities.chunks(MAX_PARAMETERS / 2) {
            let sql = format!("{INSERT_IDENTITY_HEAD}{}", self.params.rows(chunk.len(), 2));
            let mut q = sqlx::query(&sql);
            for (identity, impu) in chunk {
                q = q.bind(*identity).bind(*impu);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every stored registration with its bindings. A stored profile that no longer
    /// parses is skipped with a warning.
    pub async fn load_all(&self) -> Result<Vec<Registration>, StoreError> {
        let all = self.load_where("", &[]).await?;
        Ok(all.into_iter().map(|o| o.registration).collect())
    }

    /// The stored registrations this S-CSCF owns (what it serves after a restart).
    pub async fn load_owned(&self) -> Result<Vec<Registration>, StoreError> {
        let filter = format!(" WHERE owner = {}", self.params.rows(1, 1));
        let owned = self.load_where(&filter, &[&self.owner]).await?;
        Ok(owned.into_iter().map(|o| o.registration).collect())
    }

    /// The stored registration covering `identity` (registered itself, or in the
    /// implicit set of a registered identity), whoever owns it.
    pub async fn load_covering(&self, identity: &str) -> Result<Option<Owned>, StoreError> {
        let (a, b) = match self.params {
            Params::Numbered => ("$1", "$2"),
            Params::Anonymous => ("?", "?"),
        };
        let filter = format!(
            " WHERE impu = {a} OR impu IN \
             (SELECT impu FROM registration_identity WHERE identity = {b})"
        );
        let mut found = self.load_where(&filter, &[identity, identity]).await?;
        // The identity's own registration first, else the first covering it.
        found.sort_by_key(|o| o.registration.impu != identity);
        Ok(found.into_iter().next())
    }

    /// The registrations `SELECT_REGISTRATIONS` + `filter` (with `binds`) selects, with
    /// their bindings and owners; those left without bindings are dropped.
    async fn load_where(&self, filter: &str, binds: &[&str]) -> Result<Vec<Owned>, StoreError> {
        let sql = format!("{SELECT_REGISTRATIONS}{filter}");
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(*b);
        }
        let mut regs: Vec<Owned> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for row in q.fetch_all(&self.pool).await? {
            let impu: String = row.try_get("impu")?;
            let profile: String = row.try_get("profile")?;
            match UserProfile::parse(Bytes::from(profile)) {
                Ok(profile) => {
                    index.insert(impu.clone(), regs.len());
                    regs.push(Owned {
                        registration: Registration {
                            impu,
                            impi: row.try_get("impi")?,
                            profile,
                            bindings: Vec::new(),
                        },
                        owner: row.try_get("owner")?,
                    });
                }
                Err(e) => {
                    tracing::warn!(%impu, error = %e, "stored profile unreadable; registration dropped")
                }
            }
        }
        let sql = format!(
            "{SELECT_BINDINGS} WHERE impu IN (SELECT impu FROM registration{filter}) \
             ORDER BY impu, position"
        );
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(*b);
        }
        for row in q.fetch_all(&self.pool).await? {
            let impu: String = row.try_get("impu")?;
            let Some(reg) = index.get(&impu).and_then(|i| regs.get_mut(*i)) else {
                continue;
            };
            let path: String = row.try_get("path")?;
            let cseq: i64 = row.try_get("cseq")?;
            let expires_at: i64 = row.try_get("expires_at")?;
            let gruu_first_cseq: i64 = row.try_get("gruu_first_cseq")?;
            reg.registration.bindings.push(Binding {
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
                gruu_first_cseq: u32::try_from(gruu_first_cseq).ok(),
            });
        }
        regs.retain(|r| !r.registration.bindings.is_empty());
        Ok(regs)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The identities of `reg`'s implicit set, its own first, each once.
fn identities_of(reg: &Registration) -> Vec<&str> {
    let mut out: Vec<&str> = vec![reg.impu.as_str()];
    let profile = &reg.profile;
    for id in profile.associated.iter().chain(&profile.barred) {
        if !out.contains(&id.as_str()) {
            out.push(id);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A registration of `impu` with one binding per `(contact, expires_at)`.
    pub(crate) fn reg(impu: &str, contacts: &[(&str, u64)]) -> Registration {
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
                    gruu_first_cseq: None,
                })
                .collect(),
        }
    }

    /// What `store` holds, by identity.
    pub(crate) async fn stored(store: &BindingStore) -> Vec<Registration> {
        let mut all = store.load_all().await.unwrap();
        all.sort_by(|x, y| x.impu.cmp(&y.impu));
        all
    }

    /// A SQLite store URL in `dir`.
    pub(crate) fn sqlite_url(dir: &std::path::Path) -> String {
        format!("sqlite://{}", dir.join("scscf/bindings.db").display())
    }

    /// Two tests running `$check(url)`: on SQLite in a temporary directory, and on
    /// PostgreSQL in a fresh schema when `IMS_TEST_POSTGRES_URL` is set.
    macro_rules! on_both_backends {
        ($check:path, $sqlite:ident, $postgres:ident) => {
            #[tokio::test]
            async fn $sqlite() {
                let dir = tempfile::tempdir().unwrap();
                $check(&crate::store::tests::sqlite_url(dir.path())).await;
            }

            #[tokio::test]
            async fn $postgres() {
                if let Some(pg) = ims_runtime::test_db::PgSchema::create("scscf")
                    .await
                    .unwrap()
                {
                    $check(pg.url()).await;
                    pg.drop_schema().await.unwrap();
                }
            }
        };
    }
    pub(crate) use on_both_backends;

    #[test]
    fn parameters_of_each_backend() {
        assert_eq!(Params::Numbered.rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(Params::Anonymous.rows(2, 2), "(?, ?), (?, ?)");
        assert_eq!(Params::Numbered.rows(1, 1), "($1)");
    }

    async fn round_trip(url: &str) {
        let store = BindingStore::open(url).await.unwrap();
        let a = reg(
            "sip:alice@x",
            &[("sip:a@10.0.0.1", 5000), ("sip:b@10.0.0.2", 6000)],
        );
        let mut b = reg("sip:bob@x", &[("sip:b@10.0.0.3", 7000)]);
        // Where the binding's set of temporary GRUUs started (migration 0004).
        b.bindings[0].gruu_first_cseq = Some(4);
        store.apply(&[Change::Save(a.clone())]).await.unwrap();
        store.apply(&[Change::Save(b.clone())]).await.unwrap();
        let mut a2 = a.clone();
        a2.bindings.truncate(1);
        store.apply(&[Change::Save(a2.clone())]).await.unwrap();
        store.close().await;
        // Reopen: what a restarted S-CSCF sees.
        let store = BindingStore::open(url).await.unwrap();
        assert_eq!(stored(&store).await, vec![a2, b.clone()]);
        let mut none = b.clone();
        none.bindings.clear();
        let changes = [Change::Delete("sip:alice@x".into()), Change::Save(none)];
        store.apply(&changes).await.unwrap();
        assert!(store.load_all().await.unwrap().is_empty());
        store.close().await;
    }

    on_both_backends!(
        round_trip,
        sqlite_round_trip_survives_reopen,
        postgres_round_trip_survives_reopen
    );

    /// One batch: many identities (more rows than one statement takes), several changes
    /// of one identity (the last one stays), a save then a delete of another.
    async fn batch(url: &str) {
        let store = BindingStore::open(url).await.unwrap();
        let old = reg("sip:carol@x", &[("sip:c@10.0.0.9", 1000)]);
        store.apply(&[Change::Save(old)]).await.unwrap();
        let mut changes: Vec<Change> = (0..400)
            .map(|i| {
                let contacts = [("sip:u@10.0.0.1", 5000), ("sip:u@10.0.0.2", 6000)];
                Change::Save(reg(&format!("sip:user{i:03}@x"), &contacts))
            })
            .collect();
        let a1 = reg("sip:alice@x", &[("sip:a@10.0.0.1", 5000)]);
        let a2 = reg("sip:alice@x", &[("sip:a@10.0.0.2", 5000)]);
        let bob = reg("sip:bob@x", &[("sip:b@10.0.0.3", 7000)]);
        changes.extend([
            Change::Save(a1.clone()),
            Change::Save(bob),
            Change::Delete("sip:alice@x".into()),
            Change::Save(a2.clone()),
            Change::Delete("sip:bob@x".into()),
            Change::Delete("sip:carol@x".into()),
            Change::Save(a1.clone()),
        ]);
        // The batch needs several statements of each kind.
        const { assert!(800 * 8 > MAX_PARAMETERS && 400 * 3 > MAX_PARAMETERS) };
        store.apply(&changes).await.unwrap();
        let all = stored(&store).await;
        assert_eq!(all.len(), 401, "400 users and alice; bob and carol deleted");
        assert_eq!(all[0], a1, "the last change of alice");
        assert!(all[1..].iter().all(|r| r.bindings.len() == 2));
        store.close().await;
    }

    on_both_backends!(
        batch,
        sqlite_batch_keeps_the_last_change_of_each_identity,
        postgres_batch_keeps_the_last_change_of_each_identity
    );

    /// A registration the database refuses: two bindings with the same key (the
    /// primary key of `binding`); the registrar never builds one.
    pub(crate) fn refused(impu: &str) -> Registration {
        reg(
            impu,
            &[("sip:same@10.0.0.1", 5000), ("sip:same@10.0.0.1", 6000)],
        )
    }

    async fn all_or_nothing(url: &str) {
        let store = BindingStore::open(url).await.unwrap();
        let a = reg("sip:alice@x", &[("sip:a@10.0.0.1", 5000)]);
        store.apply(&[Change::Save(a.clone())]).await.unwrap();
        let changes = [
            Change::Delete("sip:alice@x".into()),
            Change::Save(reg("sip:bob@x", &[("sip:b@10.0.0.3", 7000)])),
            Change::Save(refused("sip:carol@x")),
        ];
        assert!(store.apply(&changes).await.is_err());
        assert_eq!(stored(&store).await, vec![a], "nothing of the batch stored");
        store.close().await;
    }

    on_both_backends!(
        all_or_nothing,
        sqlite_a_failed_batch_stores_nothing,
        postgres_a_failed_batch_stores_nothing
    );
}
