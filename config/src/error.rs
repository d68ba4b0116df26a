//! Configuration errors that name the file and the key.

use std::path::PathBuf;

/// A validation failure inside one configuration value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct Invalid {
    /// Dotted path of the offending key, e.g. `sip.limits.max_message_size`.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Invalid {
    /// A failure at `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Invalid {
        Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The same failure, nested under `prefix` (`sip` + `tls` -> `sip.tls`).
    pub fn under(self, prefix: &str) -> Invalid {
        Invalid {
            key: format!("{prefix}.{}", self.key),
            reason: self.reason,
        }
    }
}

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A `${NAME}` in the file is unset and has no `:-default`, or is malformed.
    #[error("{}: environment variable {var} is not set (use ${{{var}:-default}})", file.display())]
    Env {
        /// The file.
        file: PathBuf,
        /// The variable (or the malformed reference).
        var: String,
    },
    /// The file is not valid TOML, or a key has the wrong type or is unknown.
    #[error("{}: {key}: {message}", file.display())]
    Parse {
        /// The file.
        file: PathBuf,
        /// Dotted path of the key where parsing failed (`.` for the document).
        key: String,
        /// The parser's message.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("{}: {invalid}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The failing key and reason.
        invalid: Invalid,
    },
}

impl ConfigError {
    /// The dotted key the error is about.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. } | ConfigError::Env { .. } => None,
            ConfigError::Parse { key, .. } => Some(key),
            ConfigError::Invalid { invalid, .. } => Some(&invalid.key),
        }
    }
}
