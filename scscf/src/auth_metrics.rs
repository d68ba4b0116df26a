//! The registrar's authentication outcomes on `/metrics`:
//! `scscf_authentications_total{scheme="digest|aka",result}`, where `result` is
//! `challenged` (no answer yet, or a replayed one: a 401 with a fresh challenge),
//! `stale` (a 401 with `stale=true`), `resync` (AKA re-synchronisation, a new
//! challenge), `success` or `failure` (a wrong answer: 403). Backed-off identities
//! are in `budget_refused_total{budget="scscf_auth_failures"}` instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ims_runtime::prometheus_client::collector::Collector;
use ims_runtime::prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use ims_runtime::prometheus_client::metrics::counter::ConstCounter;
use ims_runtime::prometheus_client::metrics::MetricType;
use ims_runtime::prometheus_client::registry::Registry;

use crate::auth::scheme;

/// What became of a REGISTER's authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Challenged (401): no answer, or one already used.
    Challenged,
    /// Challenged again with `stale=true`.
    Stale,
    /// AKA re-synchronisation: a new challenge after the USIM's AUTS.
    Resync,
    /// The answer was right.
    Success,
    /// The answer was wrong (403).
    Failure,
}

const RESULTS: [&str; 5] = ["challenged", "stale", "resync", "success", "failure"];
const SCHEMES: [&str; 2] = ["digest", "aka"];

/// Counters by scheme and [`Outcome`] (cheap to clone: shared).
#[derive(Debug, Clone, Default)]
pub struct AuthOutcomes(Arc<[[AtomicU64; 5]; 2]>);

impl AuthOutcomes {
    /// Counts `outcome` for the authentication `scheme` (AKA, else digest).
    pub fn count(&self, scheme_name: &str, outcome: Outcome) {
        let s = usize::from(scheme_name == scheme::AKA);
        self.0[s][outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// How many `outcome`s were counted for `scheme_name`.
    pub fn get(&self, scheme_name: &str, outcome: Outcome) -> u64 {
        let s = usize::from(scheme_name == scheme::AKA);
        self.0[s][outcome as usize].load(Ordering::Relaxed)
    }

    /// Registers the counters in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(Exported(self.clone())));
    }
}

#[derive(Debug)]
struct Exported(AuthOutcomes);

impl Collector for Exported {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let mut family = enc.encode_descriptor(
            "scscf_authentications",
            "REGISTER authentications by scheme and result: challenged (401), stale (401 stale=true), resync (AKA), success, failure (403)",
            None,
            MetricType::Counter,
        )?;
        for (s, name) in SCHEMES.iter().enumerate() {
            for (r, result) in RESULTS.iter().enumerate() {
                let n = self.0 .0[s][r].load(Ordering::Relaxed);
                let labels = [("scheme", *name), ("result", *result)];
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_by_scheme_and_exported() {
        let o = AuthOutcomes::default();
        o.count(scheme::AKA, Outcome::Resync);
        o.count(scheme::DIGEST, Outcome::Challenged);
        o.count(scheme::UNKNOWN, Outcome::Challenged);
        assert_eq!(o.get(scheme::DIGEST, Outcome::Challenged), 2);
        assert_eq!(o.get(scheme::AKA, Outcome::Resync), 1);
        let mut registry = Registry::default();
        o.register(&mut registry);
        let mut text = String::new();
        ims_runtime::prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("scscf_authentications_total{scheme=\"digest\",result=\"challenged\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("scscf_authentications_total{scheme=\"aka\",result=\"failure\"} 0"),
            "{text}"
        );
    }
}
