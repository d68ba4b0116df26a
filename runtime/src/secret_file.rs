//! Secret files of a node (keys, tokens): created once with mode 0600 from the moment
//! they exist, and refused when group or others may read or write them.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A secret file could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// Reading, creating or linking the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Group or others have access to the file.
    #[error(
        "{}: mode {mode:04o} lets others read or change a secret; make it 0600 (chmod 600)",
        path.display()
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SecretFileError + '_ {
    move |source| SecretFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `path` (and its directory) holding `content()` and a newline, mode 0600,
/// unless it exists; true when it was created. The content is written to a private
/// temporary file beside it, synced, then hard-linked into place: `path` never exists
/// with partial content or a looser mode, and a file another process created meanwhile
/// is kept, not replaced.
pub fn ensure(path: &Path, content: impl FnOnce() -> String) -> Result<bool, SecretFileError> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let name = path
        .file_name()
        .map_or_else(|| "secret".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    // A temporary file left by a crash of a process with our id is stale: replace it.
    let _ = std::fs::remove_file(&tmp);
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(content().as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(file = %path.display(), "generated a secret (mode 0600)");
            Ok(true)
        }
        // Another process made it first: theirs is kept.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io(path)(e)),
    }
}

/// The content of `path`, refused when its mode gives group or others any access.
pub fn read_private(path: &Path) -> Result<String, SecretFileError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().map_err(io(path))?.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(SecretFileError::TooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut &file, &mut text).map_err(io(path))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("secret-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn created_once_private_and_kept() {
        let dir = scratch("once");
        let path = dir.join("sub/key");
        assert!(ensure(&path, || "first".into()).unwrap());
        assert!(!ensure(&path, || "second".into()).unwrap());
        assert_eq!(read_private(&path).unwrap(), "first\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.join("sub")).unwrap().count(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_stale_temporary_file_does_not_stop_creation() {
        let dir = scratch("stale");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        let stale = dir.join(format!(".key.{}.tmp", std::process::id()));
        std::fs::write(&stale, "half").unwrap();
        assert!(ensure(&path, || "whole".into()).unwrap());
        assert_eq!(read_private(&path).unwrap(), "whole\n");
        assert!(!stale.exists());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn readable_by_others_is_refused() {
        let dir = scratch("open");
        let path = dir.join("key");
        ensure(&path, || "k".into()).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o606] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = read_private(&path).unwrap_err();
            assert!(matches!(err, SecretFileError::TooOpen { .. }), "{mode:o}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
            assert!(err.to_string().contains(&format!("{mode:04o}")), "{err}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(read_private(&path).unwrap(), "k\n");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let err = read_private(Path::new("/nonexistent/key")).unwrap_err();
        assert!(err.to_string().starts_with("/nonexistent/key: "), "{err}");
    }
}
