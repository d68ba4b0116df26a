//! `[registration]` of the I-CSCF.

use serde::Deserialize;

use crate::error::Invalid;
use crate::load::Validate;

/// `[registration]`: the I-CSCF remembers the S-CSCF it chose for a challenged REGISTER
/// (per Call-ID, identity pair and sender), so that the REGISTER answering the
/// challenge goes there without a second UAR (one UAR per registration, as Kamailio's
/// I-CSCF does).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationSection {
    /// Seconds the S-CSCF of a challenged REGISTER is remembered; 0 turns the memory
    /// off (every REGISTER causes a UAR).
    #[serde(default = "default_memory_secs")]
    pub scscf_memory_secs: u64,
    /// Most REGISTERs remembered at once (least recently used evicted beyond).
    #[serde(default = "default_memory_entries")]
    pub scscf_memory_entries: usize,
    /// Milliseconds a remembered S-CSCF may stay silent (not even `100 Trying`) before
    /// the I-CSCF gives up on it and asks the HSS again (TS 24.229 §5.3.1.3).
    #[serde(default = "default_silence_ms")]
    pub scscf_silence_ms: u64,
}

fn default_memory_secs() -> u64 {
    30
}
fn default_memory_entries() -> usize {
    65_536
}
fn default_silence_ms() -> u64 {
    4_000
}

impl Default for RegistrationSection {
    fn default() -> Self {
        RegistrationSection {
            scscf_memory_secs: default_memory_secs(),
            scscf_memory_entries: default_memory_entries(),
            scscf_silence_ms: default_silence_ms(),
        }
    }
}

impl Validate for RegistrationSection {
    fn validate(&self) -> Result<(), Invalid> {
        if self.scscf_memory_entries == 0 {
            return Err(Invalid::new("scscf_memory_entries", "must be at least 1"));
        }
        if self.scscf_silence_ms == 0 {
            return Err(Invalid::new("scscf_silence_ms", "must be at least 1"));
        }
        Ok(())
    }
}
