//! PostgreSQL for the store tests (feature `test-support`, for dev-dependencies only): each
//! test gets a fresh schema in the database named by `IMS_TEST_POSTGRES_URL`, opens its store
//! with that schema as the search path, and drops the schema afterwards.

use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::Connection;

/// The environment variable naming the test database, e.g.
/// `postgres://root@127.0.0.1:5432/test`; without it the PostgreSQL variants are skipped.
pub const POSTGRES_URL_VAR: &str = "IMS_TEST_POSTGRES_URL";

/// A fresh schema in the test database.
#[derive(Debug)]
pub struct PgSchema {
    base: String,
    name: String,
    url: String,
}

impl PgSchema {
    /// Creates the schema `<prefix>_<process id>_<n>` (n counts up within the process;
    /// a leftover of that name is dropped first). `Ok(None)`, with a note on stderr, when
    /// `IMS_TEST_POSTGRES_URL` is not set.
    pub async fn create(prefix: &str) -> Result<Option<PgSchema>, sqlx::Error> {
        let Ok(base) = std::env::var(POSTGRES_URL_VAR) else {
            eprintln!("{POSTGRES_URL_VAR} not set: PostgreSQL variant skipped");
            return Ok(None);
        };
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        execute(
            &base,
            &[
                format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
                format!("CREATE SCHEMA {name}"),
            ],
        )
        .await?;
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={name}");
        Ok(Some(PgSchema { base, name, url }))
    }

    /// The database URL with this schema as the search path: what the store under test
    /// opens.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the schema and everything in it.
    pub async fn drop_schema(self) -> Result<(), sqlx::Error> {
        execute(
            &self.base,
            &[format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name)],
        )
        .await
    }
}

/// Runs `statements` on one connection to `url`.
async fn execute(url: &str, statements: &[String]) -> Result<(), sqlx::Error> {
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(url).await?;
    for s in statements {
        sqlx::query(s).execute(&mut c).await?;
    }
    c.close().await
}
