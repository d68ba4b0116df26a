//! The embedded SQLite stores (HSS, S-CSCF bindings, policy service): their files, and
//! the connection settings every SQLite connection of a store pool gets.

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

/// Whether `url` names a SQLite database.
pub fn is_sqlite_url(url: &str) -> bool {
    url.get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("sqlite:"))
}

/// Connects a pool of at most `max_connections` to a store `url`. A `sqlite:` URL gets its
/// file created first ([`prepare_sqlite_file`], `what` names it in the log) and
/// `mode=rwc`; each of its connections is switched, as the pool opens it, to WAL and
/// `synchronous = NORMAL` (<https://www.sqlite.org/wal.html>): readers do not block the
/// writer, and a commit is in the WAL file when it returns (it survives a crash or
/// restart of the process) without an fsync per transaction; the WAL is synced at each
/// checkpoint, so only a power loss or OS crash can lose the last transactions, never
/// the consistency of the file. `synchronous` is a per-connection setting, hence the
/// hook rather than one PRAGMA on the pool. Other URLs (PostgreSQL) are connected as
/// they are.
pub async fn connect_pool(
    url: &str,
    max_connections: u32,
    what: &str,
) -> Result<AnyPool, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let options = AnyPoolOptions::new().max_connections(max_connections.max(1));
    if !is_sqlite_url(url) {
        return options.connect(url).await;
    }
    let url = if url.contains("mode=") {
        url.to_string()
    } else {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    };
    prepare_sqlite_file(&url, what);
    options
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"] {
                    sqlx::query(pragma).execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await
}

/// Creates the directory of a `sqlite:` URL's file and the empty file itself with mode
/// 0600 before sqlx opens it: the stores hold credentials (HA1s are password
/// equivalents for Digest) and SQLite gives its `-wal` and `-shm` files the same mode.
/// `what` names the database in the log line. In-memory and empty paths are left alone;
/// failures are logged and left to the open that follows.
pub fn prepare_sqlite_file(url: &str, what: &str) {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or("");
    if path.is_empty() || path.starts_with(':') {
        return;
    }
    let path = std::path::Path::new(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot create the store directory");
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => tracing::info!(file = %path.display(), "created the {what}"),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot create the database file")
        }
    }
}
