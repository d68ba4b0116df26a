//! The registrations' durable copy, so that a restart of the P-CSCF does not make every
//! UE register again (issue 15): SQLite in the node's data directory by default, or
//! PostgreSQL (`[pcscf] store`), through sqlx's `Any` driver like the S-CSCF's and the
//! HSS's stores. Rows are keyed by the P-CSCF's name (`[node] name`) and the flow's label:
//! several P-CSCFs may share one PostgreSQL database, and a stand-by that takes over a
//! P-CSCF's addresses (a floating IP) starts under its name and serves its UEs.
//!
//! What is kept is what [`crate::registrations::Registration`] holds: the flow (its
//! label, which is also what the flow token names), the public identity, the contacts,
//! the expiry (as a UNIX time), the Service-Route and the P-Associated-URI values.
//! Only registrations over UDP are written: a TCP or TLS connection ends with the
//! process, so its registration cannot be used after a restart (the UE notices the
//! closed flow and registers again, RFC 5626 §4.4), and requests toward it are answered
//! `430 Flow Failed` (RFC 5626 §5.3) like those toward any flow no longer registered.
//!
//! Beside each registration the dialog of the P-CSCF's reg event subscription for it is
//! kept ([`StoredSubscription`], [`crate::regsub`]): Call-ID, tags, CSeq, target, route
//! set, expiry and refresh time, so that after a restart the S-CSCF's NOTIFYs are still
//! matched (not answered 481) and the network's de-registrations still reach the
//! P-CSCF. Deleting a registration deletes its subscription; the periodic purge drops
//! lapsed subscriptions and those whose registration has gone. The schema is applied by
//! migrations (`pcscf/migrations/<backend>/`) at [`RegistrationStore::open`].
//!
//! Writes go through one group-commit writer task ([`ims_runtime::group_commit`]),
//! never from the proxy engine's task: the engine holds the 200 to a REGISTER until its
//! write has committed ([`ims_sip::proxy::engine::Policy::hold_response`]), so a
//! registration a UE was told of survives a crash of the process (SQLite in WAL mode
//! with `synchronous = NORMAL`: a commit survives the process, not a power loss; see
//! `ims_runtime::sqlite`). Each change is one statement of the batch's transaction; the
//! batches grow with the load. Subscription writes are queued from tasks of their own
//! and no SIP message waits for them.
//!
//! A refresh is not written when all it changes is the expiry and the stored one lags
//! the acknowledged one by at most `min(duration / 20, 60 s)` (issue 12,
//! [`ims_runtime::expiry_lag`], [`written`]); its 200 then goes at once. After a crash
//! such a registration comes back up to that much early, still after the UE's next
//! refresh (TS 24.229 §5.1.1.4.1). Anything else (a new registration or flow, another
//! contact, Service-Route or P-Associated-URI, a de-registration, a lag beyond the
//! bound, a shortened expiry) is written as before, its 200 waiting for the commit.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ims_runtime::group_commit::{Batch, GroupCommit, MAX_BATCH};
use ims_runtime::migrations::{migrator, Embedded};
use ims_runtime::prometheus_client::metrics::counter::Counter;
use ims_sip::transport::{Flow, TransportKind};
use sqlx::{AnyPool, Row};
use tokio::time::Instant;

use crate::flow_token::label;
use crate::registrations::Registration;

pub mod written;

use written::Written;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The group-commit writer stopped before answering (the process is shutting down).
    #[error("the store writer stopped")]
    WriterStopped,
    /// The schema migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names no supported backend.
    #[error("unsupported store URL (expected sqlite: or postgres://)")]
    UnsupportedUrl,
}

/// The migrations of each backend (`pcscf/migrations/<backend>/`): version, name,
/// PostgreSQL and SQLite text. Version 1 creates the registrations' table only when
/// missing: databases of releases before migrations hold it already.
const MIGRATIONS: [Embedded; 2] = [
    (
        1,
        "registrations",
        include_str!("../migrations/postgres/0001_registrations.sql"),
        include_str!("../migrations/sqlite/0001_registrations.sql"),
    ),
    (
        2,
        "reg_subscriptions",
        include_str!("../migrations/postgres/0002_reg_subscriptions.sql"),
        include_str!("../migrations/sqlite/0002_reg_subscriptions.sql"),
    ),
];

const UPSERT: &str = "INSERT INTO pcscf_registration \
    (pcscf, flow, public_identity, contacts, expires_at, service_route, associated) \
    VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (pcscf, flow) DO UPDATE SET \
    public_identity = excluded.public_identity, contacts = excluded.contacts, \
    expires_at = excluded.expires_at, service_route = excluded.service_route, \
    associated = excluded.associated";
const DELETE: &str = "DELETE FROM pcscf_registration WHERE pcscf = ? AND flow = ?";
const DELETE_EXPIRED: &str = "DELETE FROM pcscf_registration WHERE pcscf = ? AND expires_at <= ?";
const SELECT: &str = "SELECT flow, public_identity, contacts, expires_at, service_route, \
    associated FROM pcscf_registration WHERE pcscf = ? ORDER BY flow";
const UPSERT_SUBSCRIPTION: &str = "INSERT INTO pcscf_reg_subscription \
    (pcscf, flow, call_id, local_tag, remote_tag, resource, identity, contact, target, \
    route_set, cseq, expires_at, refresh_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
    ON CONFLICT (pcscf, flow) DO UPDATE SET call_id = excluded.call_id, \
    local_tag = excluded.local_tag, remote_tag = excluded.remote_tag, \
    resource = excluded.resource, identity = excluded.identity, contact = excluded.contact, \
    target = excluded.target, route_set = excluded.route_set, cseq = excluded.cseq, \
    expires_at = excluded.expires_at, refresh_at = excluded.refresh_at";
const DELETE_SUBSCRIPTION: &str = "DELETE FROM pcscf_reg_subscription WHERE pcscf = ? AND flow = ?";
/// A subscription goes when its grant lapses or its registration's row has gone.
const DELETE_EXPIRED_SUBSCRIPTIONS: &str = "DELETE FROM pcscf_reg_subscription \
    WHERE pcscf = ? AND (expires_at <= ? OR flow NOT IN \
    (SELECT flow FROM pcscf_registration WHERE pcscf = ?))";
const SELECT_SUBSCRIPTIONS: &str = "SELECT flow, call_id, local_tag, remote_tag, resource, \
    identity, contact, target, route_set, cseq, expires_at, refresh_at \
    FROM pcscf_reg_subscription WHERE pcscf = ? ORDER BY flow";

/// A registration as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRegistration {
    /// The flow's label ([`crate::flow_token::label`]).
    pub flow: String,
    /// The registered public identity.
    pub public_identity: String,
    /// The UE's contact URIs.
    pub contacts: Vec<String>,
    /// When the last contact expires, in seconds since the UNIX epoch.
    pub expires_at: u64,
    /// Service-Route values, topmost first.
    pub service_route: Vec<String>,
    /// P-Associated-URI URIs.
    pub associated: Vec<String>,
}

/// Seconds since the UNIX epoch now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl StoredRegistration {
    /// Whether `other` is this row but for its expiry.
    pub fn same_but_expiry(&self, other: &StoredRegistration) -> bool {
        let StoredRegistration {
            flow,
            public_identity,
            contacts,
            expires_at: _,
            service_route,
            associated,
        } = self;
        *flow == other.flow
            && *public_identity == other.public_identity
            && *contacts == other.contacts
            && *service_route == other.service_route
            && *associated == other.associated
    }

    /// `reg` as stored, its expiry (at `now`, which is `unix` seconds since the epoch)
    /// rounded up to the second.
    pub fn of(reg: &Registration, now: Instant, unix: u64) -> StoredRegistration {
        let left = reg.expires.saturating_duration_since(now);
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        StoredRegistration {
            flow: label(&reg.flow),
            public_identity: reg.public_identity.clone(),
            contacts: reg.contacts.clone(),
            expires_at: unix.saturating_add(secs),
            service_route: reg.service_route.clone(),
            associated: reg.associated.clone(),
        }
    }

    /// The registration to restore at `now` (`unix` seconds since the epoch): none when
    /// it has expired, or when its flow is not a UDP flow (a connection does not
    /// survive the process that accepted it) or cannot be read.
    pub fn restore(self, now: Instant, unix: u64) -> Option<Registration> {
        let flow: Flow = self.flow.parse().ok()?;
        if flow.kind() != TransportKind::Udp || self.contacts.is_empty() {
            return None;
        }
        let left = self.expires_at.checked_sub(unix).filter(|s| *s > 0)?;
        Some(Registration {
            flow,
            public_identity: self.public_identity,
            contacts: self.contacts,
            expires: now.checked_add(Duration::from_secs(left))?,
            // The grant is not stored: what is left of it bounds the lag as tightly.
            granted: u32::try_from(left).unwrap_or(u32::MAX),
            service_route: self.service_route,
            associated: self.associated,
        })
    }
}

/// The dialog of a reg event subscription as stored ([`crate::regsub`]): what the
/// P-CSCF needs to match the notifier's NOTIFYs and to refresh it after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    /// The label of the flow whose registration it watches.
    pub flow: String,
    /// The dialog's Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The notifier's tag.
    pub remote_tag: String,
    /// The public identity subscribed to.
    pub resource: String,
    /// Our node identity (From and P-Asserted-Identity).
    pub identity: String,
    /// Our Contact URI.
    pub contact: String,
    /// Request-URI of the next SUBSCRIBE (the notifier's Contact).
    pub target: String,
    /// Route values of the next SUBSCRIBE (the dialog's route set).
    pub route: Vec<String>,
    /// CSeq of the last SUBSCRIBE answered with a 2xx.
    pub cseq: u32,
    /// When the notifier's grant lapses, in seconds since the UNIX epoch.
    pub expires_at: u64,
    /// When to refresh it, in seconds since the UNIX epoch.
    pub refresh_at: u64,
}

/// One change of the stored registrations and subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Store this registration, replacing what was stored for its flow.
    Save(StoredRegistration),
    /// Delete the registration of the flow with this label, and its subscription.
    Delete(String),
    /// Delete every registration that expired at or before this UNIX time, and the
    /// subscriptions that lapsed or whose registration is gone.
    DeleteExpired(u64),
    /// Store this subscription dialog, replacing what was stored for its flow.
    SaveSubscription(StoredSubscription),
    /// Delete the subscription of the flow with this label.
    DeleteSubscription(String),
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Lines of a stored list (values never hold a line break: header values are
/// unfolded, URIs have none).
fn lines(text: &str) -> Vec<String> {
    text.split('\n')
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// `?` parameters numbered `$1, $2, ...` (PostgreSQL).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// The statements in the backend's parameter style.
#[derive(Debug)]
struct Statements {
    upsert: String,
    delete: String,
    delete_expired: String,
    select: String,
    upsert_subscription: String,
    delete_subscription: String,
    delete_expired_subscriptions: String,
    select_subscriptions: String,
}

/// The registrations database of one P-CSCF. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RegistrationStore {
    pool: AnyPool,
    pcscf: String,
    sql: std::sync::Arc<Statements>,
}

impl RegistrationStore {
    /// Connects to `url` (a SQLite file is created if missing, mode 0600), applies the
    /// migrations; the rows are those of P-CSCF `pcscf`.
    pub async fn open(url: &str, pcscf: &str) -> Result<RegistrationStore, StoreError> {
        let lower = url.to_ascii_lowercase();
        let postgres = lower.starts_with("postgres://") || lower.starts_with("postgresql://");
        let sqlite = ims_runtime::sqlite::is_sqlite_url(url);
        if !postgres && !sqlite {
            return Err(StoreError::UnsupportedUrl);
        }
        // One SQLite connection: one writer task writes, and SQLite has one writer.
        let connections = if sqlite { 1 } else { 2 };
        let pool =
            ims_runtime::sqlite::connect_pool(url, connections, "registrations database").await?;
        migrator(&MIGRATIONS, postgres).run(&pool).await?;
        let style = |s: &str| if postgres { numbered(s) } else { s.to_string() };
        Ok(RegistrationStore {
            pool,
            pcscf: pcscf.to_string(),
            sql: std::sync::Arc::new(Statements {
                upsert: style(UPSERT),
                delete: style(DELETE),
                delete_expired: style(DELETE_EXPIRED),
                select: style(SELECT),
                upsert_subscription: style(UPSERT_SUBSCRIPTION),
                delete_subscription: style(DELETE_SUBSCRIPTION),
                delete_expired_subscriptions: style(DELETE_EXPIRED_SUBSCRIPTIONS),
                select_subscriptions: style(SELECT_SUBSCRIPTIONS),
            }),
        })
    }

    /// Applies `changes` in their order in one transaction: all or nothing.
    pub async fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for change in changes {
            let pcscf = self.pcscf.as_str();
            match change {
                Change::Save(r) => {
                    sqlx::query(&self.sql.upsert)
                        .bind(pcscf)
                        .bind(r.flow.as_str())
                        .bind(r.public_identity.as_str())
                        .bind(r.contacts.join("\n"))
                        .bind(i64_of(r.expires_at))
                        .bind(r.service_route.join("\n"))
                        .bind(r.associated.join("\n"))
                        .execute(&mut *tx)
                        .await?;
                }
                Change::Delete(flow) => {
                    for sql in [&self.sql.delete, &self.sql.delete_subscription] {
                        sqlx::query(sql)
                            .bind(pcscf)
                            .bind(flow.as_str())
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                Change::DeleteExpired(unix) => {
                    sqlx::query(&self.sql.delete_expired)
                        .bind(pcscf)
                        .bind(i64_of(*unix))
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(&self.sql.delete_expired_subscriptions)
                        .bind(pcscf)
                        .bind(i64_of(*unix))
                        .bind(pcscf)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::SaveSubscription(s) => {
                    sqlx::query(&self.sql.upsert_subscription)
                        .bind(pcscf)
                        .bind(s.flow.as_str())
                        .bind(s.call_id.as_str())
                        .bind(s.local_tag.as_str())
                        .bind(s.remote_tag.as_str())
                        .bind(s.resource.as_str())
                        .bind(s.identity.as_str())
                        .bind(s.contact.as_str())
                        .bind(s.target.as_str())
                        .bind(s.route.join("\n"))
                        .bind(i64::from(s.cseq))
                        .bind(i64_of(s.expires_at))
                        .bind(i64_of(s.refresh_at))
                        .execute(&mut *tx)
                        .await?;
                }
                Change::DeleteSubscription(flow) => {
                    sqlx::query(&self.sql.delete_subscription)
                        .bind(pcscf)
                        .bind(flow.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes what expired at or before `unix` (seconds since the epoch), then returns
    /// the rest, ordered by flow label.
    pub async fn load(&self, unix: u64) -> Result<Vec<StoredRegistration>, StoreError> {
        self.apply(&[Change::DeleteExpired(unix)]).await?;
        let rows = sqlx::query(&self.sql.select)
            .bind(self.pcscf.as_str())
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let expires_at: i64 = row.try_get("expires_at")?;
            out.push(StoredRegistration {
                flow: row.try_get("flow")?,
                public_identity: row.try_get("public_identity")?,
                contacts: lines(&row.try_get::<String, _>("contacts")?),
                expires_at: u64::try_from(expires_at).unwrap_or(0),
                service_route: lines(&row.try_get::<String, _>("service_route")?),
                associated: lines(&row.try_get::<String, _>("associated")?),
            });
        }
        Ok(out)
    }

    /// The stored subscription dialogs, ordered by flow label (after [`Self::load`],
    /// which drops those that lapsed or lost their registration).
    pub async fn subscriptions(&self) -> Result<Vec<StoredSubscription>, StoreError> {
        let rows = sqlx::query(&self.sql.select_subscriptions)
            .bind(self.pcscf.as_str())
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let number = |name: &str| -> Result<u64, sqlx::Error> {
                Ok(u64::try_from(row.try_get::<i64, _>(name)?).unwrap_or(0))
            };
            out.push(StoredSubscription {
                flow: row.try_get("flow")?,
                call_id: row.try_get("call_id")?,
                local_tag: row.try_get("local_tag")?,
                remote_tag: row.try_get("remote_tag")?,
                resource: row.try_get("resource")?,
                identity: row.try_get("identity")?,
                contact: row.try_get("contact")?,
                target: row.try_get("target")?,
                route: lines(&row.try_get::<String, _>("route_set")?),
                cseq: u32::try_from(number("cseq")?).unwrap_or(u32::MAX),
                expires_at: number("expires_at")?,
                refresh_at: number("refresh_at")?,
            });
        }
        Ok(out)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl Batch for RegistrationStore {
    type Change = Change;
    type Error = StoreError;

    async fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        RegistrationStore::apply(self, changes).await
    }

    fn stopped() -> StoreError {
        StoreError::WriterStopped
    }
}

/// Writes the registrations through a group-commit writer. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Persistence {
    writer: GroupCommit<RegistrationStore>,
    /// What the store holds of each registration, as written ([`written`]).
    written: std::sync::Arc<Written>,
    /// Writes that failed (the registration then lives in memory only).
    pub failures: Counter,
    /// Refreshes not written: only their expiry changed, within the bound.
    pub unwritten: Counter,
}

impl Persistence {
    /// Starts the writer over `store`.
    pub fn spawn(store: RegistrationStore) -> Persistence {
        Persistence {
            writer: GroupCommit::spawn(store, MAX_BATCH),
            written: Default::default(),
            failures: Counter::default(),
            unwritten: Counter::default(),
        }
    }

    /// Writes `change`; resolves once it is committed, or has failed (logged and
    /// counted: the registration keeps working from memory, and only a restart loses
    /// it).
    pub fn write(&self, change: Change) -> impl std::future::Future<Output = ()> + Send + 'static {
        let commit = self.commit(change);
        async move {
            commit.await;
        }
    }

    /// [`Persistence::write`], resolving to whether the change was committed.
    fn commit(&self, change: Change) -> impl std::future::Future<Output = bool> + Send + 'static {
        let (writer, failures) = (self.writer.clone(), self.failures.clone());
        async move {
            match writer.write(change).await {
                Ok(()) => true,
                Err(error) => {
                    failures.inc();
                    tracing::warn!(%error, "registration not written to the store");
                    false
                }
            }
        }
    }

    /// Writes the registration over the flow labelled `flow` as it now is: `Some((row,
    /// granted_secs))` (the registrar's grant), or `None` when it is gone. `None` back
    /// (counted in [`Persistence::unwritten`]) when the store holds the row already but
    /// for an expiry lagging within the bound ([`written`]); else a future that resolves
    /// once the write is committed or has failed ([`Persistence::write`]).
    pub fn registration(
        &self,
        flow: String,
        now: Option<(StoredRegistration, u32)>,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let (row, granted) = now.map_or((None, 0), |(row, granted)| (Some(row), granted));
        let Some(change) = self.written.plan(&flow, row, u64::from(granted)) else {
            self.unwritten.inc();
            return None;
        };
        let mut answer = written::Answer::new(self.written.clone(), flow);
        let commit = self.commit(change);
        Some(async move {
            answer.commit(commit.await);
        })
    }

    /// Records `rows` as what the store holds (the registrations restored at start).
    pub fn restored(&self, rows: impl IntoIterator<Item = StoredRegistration>) {
        self.written.restored(rows);
    }

    /// Forgets what was written of the registrations expired at `unix` (the store's
    /// purge, [`Change::DeleteExpired`], deletes their rows).
    pub fn forget_expired(&self, unix: u64) {
        self.written.purge(unix);
    }

    /// The writer's counters.
    pub fn stats(&self) -> ims_runtime::group_commit::WriterStats {
        self.writer.stats()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn stored(flow: &str, user: &str, expires_at: u64) -> StoredRegistration {
        StoredRegistration {
            flow: flow.into(),
            public_identity: format!("sip:{user}@ims.example.net"),
            contacts: vec![format!("sip:{user}@127.0.0.1:5062")],
            expires_at,
            service_route: vec!["<sip:orig@scscf.ims.example.net:5080;lr>".into()],
            associated: vec![
                format!("sip:{user}@ims.example.net"),
                "tel:+15551230001".into(),
            ],
        }
    }

    /// A SQLite store URL in `dir`.
    pub(crate) fn sqlite_url(dir: &std::path::Path) -> String {
        format!("sqlite://{}", dir.join("pcscf/registrations.db").display())
    }

    /// Runs `$check(url)` on SQLite in a temporary directory, and on PostgreSQL in a
    /// fresh schema when `IMS_TEST_POSTGRES_URL` is set.
    macro_rules! on_both_backends {
        ($check:path, $sqlite:ident, $postgres:ident) => {
            #[tokio::test]
            async fn $sqlite() {
                let dir = tempfile::tempdir().unwrap();
                $check(&crate::store::tests::sqlite_url(dir.path())).await;
            }

            #[tokio::test]
            async fn $postgres() {
                if let Some(pg) = ims_runtime::test_db::PgSchema::create("pcscf")
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

    /// Saved, replaced, deleted; what a reopened store (a restarted P-CSCF) loads; rows
    /// of another P-CSCF in the same database are not ours.
    async fn round_trip(url: &str) {
        let store = RegistrationStore::open(url, "pcscf-1").await.unwrap();
        let bob = stored("UDP#0:127.0.0.1:5062", "bob", 2_000);
        let mut carol = stored("UDP#0:127.0.0.1:5064", "carol", 3_000);
        let dave = stored("UDP#0:127.0.0.1:5066", "dave", 4_000);
        store
            .apply(&[
                Change::Save(bob.clone()),
                Change::Save(carol.clone()),
                Change::Save(dave.clone()),
            ])
            .await
            .unwrap();
        carol.contacts.push("sip:carol@127.0.0.1:5065".into());
        carol.expires_at = 3_600;
        store
            .apply(&[
                Change::Save(carol.clone()),
                Change::Delete(dave.flow.clone()),
            ])
            .await
            .unwrap();
        let other = RegistrationStore::open(url, "pcscf-2").await.unwrap();
        other.apply(&[Change::Save(dave.clone())]).await.unwrap();
        store.close().await;
        let store = RegistrationStore::open(url, "pcscf-1").await.unwrap();
        assert_eq!(store.load(1_000).await.unwrap(), vec![bob, carol.clone()]);
        // Loading drops what has expired, from the store too.
        assert_eq!(store.load(2_000).await.unwrap(), vec![carol.clone()]);
        assert_eq!(store.load(1_000).await.unwrap(), vec![carol]);
        assert_eq!(other.load(1_000).await.unwrap(), vec![dave]);
        store.apply(&[Change::DeleteExpired(3_600)]).await.unwrap();
        assert!(store.load(0).await.unwrap().is_empty());
        store.close().await;
        other.close().await;
    }

    on_both_backends!(
        round_trip,
        sqlite_registrations_survive_reopen,
        postgres_registrations_survive_reopen
    );

    fn subscription(flow: &str, user: &str, expires_at: u64) -> StoredSubscription {
        StoredSubscription {
            flow: flow.into(),
            call_id: format!("call-{user}"),
            local_tag: "ours".into(),
            remote_tag: "theirs".into(),
            resource: format!("sip:{user}@ims.example.net"),
            identity: "sip:127.0.0.1".into(),
            contact: "sip:reg-event@127.0.0.1:5060".into(),
            target: "sip:scscf@127.0.0.1:5080".into(),
            route: vec!["<sip:a.example;lr>".into(), "<sip:b.example;lr>".into()],
            cseq: 3,
            expires_at,
            refresh_at: expires_at - 100,
        }
    }

    /// Subscription dialogs are saved and replaced, reloaded by a reopened store, and go
    /// with their registration, when they lapse, or when their registration lapsed;
    /// another P-CSCF's are not ours.
    async fn subscriptions_round_trip(url: &str) {
        let store = RegistrationStore::open(url, "pcscf-1").await.unwrap();
        let regs = [
            stored("UDP#0:127.0.0.1:5062", "bob", 2_000),
            stored("UDP#0:127.0.0.1:5064", "carol", 3_000),
            stored("UDP#0:127.0.0.1:5066", "dave", 9_000),
            stored("UDP#0:127.0.0.1:5068", "eve", 9_000),
        ];
        let [bob, carol, dave, eve] = regs.clone();
        store.apply(&regs.map(Change::Save)).await.unwrap();
        let mut sub_bob = subscription(&bob.flow, "bob", 1_500);
        // Outlives its registration; lapses before its registration; outlives nothing.
        let sub_carol = subscription(&carol.flow, "carol", 9_000);
        let sub_dave = subscription(&dave.flow, "dave", 1_200);
        let sub_eve = subscription(&eve.flow, "eve", 9_000);
        store
            .apply(
                &[&sub_bob, &sub_carol, &sub_dave, &sub_eve]
                    .map(|s| Change::SaveSubscription(s.clone())),
            )
            .await
            .unwrap();
        sub_bob.cseq = 4;
        sub_bob.expires_at = 1_800;
        store
            .apply(&[Change::SaveSubscription(sub_bob.clone())])
            .await
            .unwrap();
        let other = RegistrationStore::open(url, "pcscf-2").await.unwrap();
        other
            .apply(&[
                Change::Save(eve.clone()),
                Change::SaveSubscription(sub_eve.clone()),
            ])
            .await
            .unwrap();
        store.close().await;
        let store = RegistrationStore::open(url, "pcscf-1").await.unwrap();
        store.load(1_000).await.unwrap();
        let all = vec![
            sub_bob.clone(),
            sub_carol.clone(),
            sub_dave.clone(),
            sub_eve.clone(),
        ];
        assert_eq!(store.subscriptions().await.unwrap(), all);
        // Deleting a registration deletes its subscription.
        store.apply(&[Change::Delete(bob.flow)]).await.unwrap();
        assert_eq!(store.subscriptions().await.unwrap(), all[1..].to_vec());
        // Carol's registration lapsed, dave's subscription did: eve's is left.
        store.load(3_000).await.unwrap();
        assert_eq!(store.subscriptions().await.unwrap(), vec![sub_eve.clone()]);
        store
            .apply(&[Change::DeleteSubscription(eve.flow.clone())])
            .await
            .unwrap();
        assert!(store.subscriptions().await.unwrap().is_empty());
        assert_eq!(store.load(3_000).await.unwrap(), vec![dave, eve]);
        assert_eq!(other.subscriptions().await.unwrap(), vec![sub_eve]);
        store.close().await;
        other.close().await;
    }

    on_both_backends!(
        subscriptions_round_trip,
        sqlite_subscriptions_survive_reopen,
        postgres_subscriptions_survive_reopen
    );

    /// A database of a release before migrations (the registrations' table, no
    /// migration history) opens with its rows and gains the subscriptions' table.
    async fn database_before_migrations(url: &str) {
        let bob = stored("UDP#0:127.0.0.1:5062", "bob", 2_000);
        {
            let pool = ims_runtime::sqlite::connect_pool(url, 1, "test")
                .await
                .unwrap();
            let (_, _, pg, lite) = MIGRATIONS[0];
            let postgres = url.starts_with("postgres");
            let old = if postgres { pg } else { lite }.replace("IF NOT EXISTS ", "");
            sqlx::query(&old).execute(&pool).await.unwrap();
            let upsert = if postgres {
                numbered(UPSERT)
            } else {
                UPSERT.to_string()
            };
            sqlx::query(&upsert)
                .bind("pcscf")
                .bind(bob.flow.as_str())
                .bind(bob.public_identity.as_str())
                .bind(bob.contacts.join("\n"))
                .bind(i64_of(bob.expires_at))
                .bind(bob.service_route.join("\n"))
                .bind(bob.associated.join("\n"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        let store = RegistrationStore::open(url, "pcscf").await.unwrap();
        assert_eq!(store.load(1_000).await.unwrap(), vec![bob.clone()]);
        assert!(store.subscriptions().await.unwrap().is_empty());
        let sub = subscription(&bob.flow, "bob", 1_900);
        store
            .apply(&[Change::SaveSubscription(sub.clone())])
            .await
            .unwrap();
        assert_eq!(store.subscriptions().await.unwrap(), vec![sub]);
        store.close().await;
    }

    on_both_backends!(
        database_before_migrations,
        sqlite_database_before_migrations_opens,
        postgres_database_before_migrations_opens
    );

    /// Changes queued together share a transaction, in their order.
    async fn group_commit(url: &str) {
        let store = RegistrationStore::open(url, "pcscf").await.unwrap();
        let p = Persistence::spawn(store.clone());
        let writes: Vec<_> = (0..100)
            .map(|i| {
                p.write(Change::Save(stored(
                    &format!("UDP#0:10.0.0.{i}:5060"),
                    "u",
                    9_000,
                )))
            })
            .chain([p.write(Change::Delete("UDP#0:10.0.0.7:5060".into()))])
            .collect();
        futures_join(writes).await;
        let stats = p.stats();
        assert_eq!(stats.changes, 101);
        assert!(stats.transactions < 101, "{stats:?}");
        assert_eq!(store.load(0).await.unwrap().len(), 99);
        assert_eq!(p.failures.get(), 0);
        store.close().await;
    }

    /// Polls every future from this task until all are done.
    async fn futures_join(futures: Vec<impl std::future::Future<Output = ()>>) {
        let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
        std::future::poll_fn(|cx| {
            futures.retain_mut(|f| f.as_mut().poll(cx).is_pending());
            if futures.is_empty() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
    }

    on_both_backends!(
        group_commit,
        sqlite_writes_share_transactions,
        postgres_writes_share_transactions
    );

    #[tokio::test]
    async fn a_closed_store_counts_failed_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = RegistrationStore::open(&sqlite_url(dir.path()), "pcscf")
            .await
            .unwrap();
        let p = Persistence::spawn(store.clone());
        store.close().await;
        p.write(Change::Delete("UDP#0:10.0.0.1:5060".into())).await;
        assert_eq!(p.failures.get(), 1);
    }

    #[tokio::test]
    async fn unsupported_urls_are_refused() {
        assert!(matches!(
            RegistrationStore::open("mysql://x", "p").await,
            Err(StoreError::UnsupportedUrl)
        ));
    }

    #[test]
    fn postgres_parameters_are_numbered() {
        assert_eq!(
            numbered(DELETE),
            "DELETE FROM pcscf_registration WHERE pcscf = $1 AND flow = $2"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn only_live_udp_registrations_are_restored() {
        let now = Instant::now();
        let udp = stored("UDP#0:127.0.0.1:5062", "bob", 1_600);
        let reg = udp.clone().restore(now, 1_000).unwrap();
        assert_eq!(reg.expires, now + Duration::from_secs(600));
        assert_eq!(reg.flow.to_string(), udp.flow);
        assert_eq!(reg.public_identity, udp.public_identity);
        // Back to what was stored.
        assert_eq!(StoredRegistration::of(&reg, now, 1_000), udp);
        // Expired, or expiring now.
        assert_eq!(udp.clone().restore(now, 1_600), None);
        assert_eq!(udp.clone().restore(now, 5_000), None);
        // A connection of the previous run, or a label that is no flow.
        for flow in [
            "TCP#77:127.0.0.1:40000",
            "TLS#9:127.0.0.1:40001",
            "nonsense",
        ] {
            assert_eq!(
                stored(flow, "carol", 9_000).restore(now, 1_000),
                None,
                "{flow}"
            );
        }
    }
}
