//! Reading a TOML file into a typed, validated struct.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{ConfigError, Invalid};

/// Checks that go beyond types: ranges, consistency between keys.
pub trait Validate {
    /// Returns the first invalid key, if any.
    fn validate(&self) -> Result<(), Invalid>;
}

/// Reads and validates the configuration file at `path`.
pub fn load<T: DeserializeOwned + Validate>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse_str(&text, path)
}

/// Parses and validates configuration text; `file` is used in error messages.
pub fn parse_str<T: DeserializeOwned + Validate>(
    text: &str,
    file: &Path,
) -> Result<T, ConfigError> {
    let text = crate::env::expand(text, |name| std::env::var(name).ok()).map_err(|var| {
        ConfigError::Env {
            file: file.to_path_buf(),
            var,
        }
    })?;
    let de = toml::Deserializer::new(&text);
    let value: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        ConfigError::Parse {
            file: file.to_path_buf(),
            key,
            message: first_line(&e.inner().to_string()),
        }
    })?;
    value.validate().map_err(|invalid| ConfigError::Invalid {
        file: file.to_path_buf(),
        invalid,
    })?;
    Ok(value)
}

/// toml's messages carry a multi-line source excerpt; the key path already locates it.
fn first_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('|') && !l.starts_with("-->"))
        .unwrap_or(message)
        .to_string()
}
