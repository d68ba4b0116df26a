//! Files of the embedded SQLite stores (HSS, policy service).

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
