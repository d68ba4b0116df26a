//! `[budget]` of the CSCFs: what unauthenticated traffic may cost (per source, per
//! identity), read by `ims_runtime::budget`. Each node reads the keys it applies and
//! ignores the others.

use serde::Deserialize;

use crate::error::Invalid;
use crate::load::Validate;

/// `[budget]`: per-source and per-identity budgets of the CSCFs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSection {
    /// Budgets on (default). Off: nothing is throttled (for measurements only).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Most sources or identities one budget tracks (LRU beyond).
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
    /// Seconds between two summary lines of refused requests.
    #[serde(default = "default_summary_secs")]
    pub summary_secs: u64,
    /// P-CSCF: requests per second a source address may send that are not yet
    /// authenticated (REGISTER, and every request from an address with no registration).
    #[serde(default = "default_rate")]
    pub unauthenticated_per_second: f64,
    /// P-CSCF: the burst of that bucket.
    #[serde(default = "default_burst")]
    pub unauthenticated_burst: u32,
    /// P-CSCF (per source) and S-CSCF (per private identity): failed authentications in
    /// a row before backing off.
    #[serde(default = "default_failures")]
    pub failures_before_backoff: u32,
    /// The first back-off, seconds; it doubles with each further failure.
    #[serde(default = "default_backoff_base")]
    pub backoff_base_secs: u64,
    /// The longest back-off, seconds.
    #[serde(default = "default_backoff_max")]
    pub backoff_max_secs: u64,
    /// I-CSCF: seconds a user-unknown UAA is remembered per identity pair (no UAR for
    /// it meanwhile); 0 turns the cache off.
    #[serde(default = "default_unknown_cache")]
    pub unknown_user_cache_secs: u64,
    /// I-CSCF: UARs per second at most for REGISTERs without credentials (beyond: 503
    /// with Retry-After).
    #[serde(default = "default_uar_rate")]
    pub uar_per_second: f64,
}

fn yes() -> bool {
    true
}
fn default_max_keys() -> usize {
    65_536
}
fn default_summary_secs() -> u64 {
    10
}
fn default_rate() -> f64 {
    20.0
}
fn default_burst() -> u32 {
    50
}
fn default_failures() -> u32 {
    5
}
fn default_backoff_base() -> u64 {
    1
}
fn default_backoff_max() -> u64 {
    300
}
fn default_unknown_cache() -> u64 {
    30
}
fn default_uar_rate() -> f64 {
    200.0
}

impl Default for BudgetSection {
    fn default() -> Self {
        BudgetSection {
            enabled: yes(),
            max_keys: default_max_keys(),
            summary_secs: default_summary_secs(),
            unauthenticated_per_second: default_rate(),
            unauthenticated_burst: default_burst(),
            failures_before_backoff: default_failures(),
            backoff_base_secs: default_backoff_base(),
            backoff_max_secs: default_backoff_max(),
            unknown_user_cache_secs: default_unknown_cache(),
            uar_per_second: default_uar_rate(),
        }
    }
}

impl Validate for BudgetSection {
    fn validate(&self) -> Result<(), Invalid> {
        if self.max_keys == 0 {
            return Err(Invalid::new("max_keys", "must be at least 1"));
        }
        if self.summary_secs == 0 {
            return Err(Invalid::new("summary_secs", "must be at least 1"));
        }
        for (key, v) in [
            (
                "unauthenticated_per_second",
                self.unauthenticated_per_second,
            ),
            ("uar_per_second", self.uar_per_second),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return Err(Invalid::new(key, "must be a positive number"));
            }
        }
        if self.unauthenticated_burst == 0 {
            return Err(Invalid::new("unauthenticated_burst", "must be at least 1"));
        }
        if self.failures_before_backoff == 0 {
            return Err(Invalid::new(
                "failures_before_backoff",
                "must be at least 1",
            ));
        }
        if self.backoff_base_secs == 0 || self.backoff_max_secs < self.backoff_base_secs {
            return Err(Invalid::new(
                "backoff_max_secs",
                "backoff_base_secs must be at least 1 and at most backoff_max_secs",
            ));
        }
        Ok(())
    }
}
