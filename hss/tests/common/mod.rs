//! Test stores: a SQLite file in a temporary directory always; PostgreSQL in a fresh
//! schema (dropped afterwards) when `IMS_TEST_POSTGRES_URL` is set.

#![allow(dead_code)]

use hss::secrets::StoreKey;
use hss::store::Store;
use ims_runtime::test_db::PgSchema;

pub fn key() -> StoreKey {
    StoreKey::from_hex(&"a5".repeat(32), "test").unwrap()
}

/// A store and what to remove when the test ends.
pub struct TestDb {
    pub store: Store,
    /// URL that reopens the same database.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<PgSchema>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("sub/hss.db").display());
        let store = Store::open(&url, 4, key()).await.unwrap();
        TestDb {
            store,
            url,
            _dir: Some(dir),
            pg: None,
        }
    }

    /// `None` (and a note on stderr) when PostgreSQL is not configured.
    pub async fn postgres() -> Option<TestDb> {
        let pg = PgSchema::create("hss_test").await.unwrap()?;
        let url = pg.url().to_owned();
        let store = Store::open(&url, 4, key()).await.unwrap();
        Some(TestDb {
            store,
            url,
            _dir: None,
            pg: Some(pg),
        })
    }

    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some(pg) = self.pg {
            pg.drop_schema().await.unwrap();
        }
    }
}

/// Runs `body` on `db`, drops the PostgreSQL schema even if it panics, then re-raises.
pub async fn run<F, Fut>(db: TestDb, body: F)
where
    F: FnOnce(Store, String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let fut = body(db.store.clone(), db.url.clone());
    let result = tokio::spawn(fut).await;
    db.cleanup().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// One `#[tokio::test]` per backend for each scenario `async fn(Store, String)`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = $crate::common::TestDb::sqlite().await;
                    $crate::common::run(db, super::$name).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(db) = $crate::common::TestDb::postgres().await {
                        $crate::common::run(db, super::$name).await;
                    }
                }
            }
        )*
    };
}
