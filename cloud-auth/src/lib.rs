//! Cloud authorization for the IMS core: Keystone token validation, the MultiPol-style
//! policy service and the request filter used by the P-CSCF and S-CSCF.
//!
//! - [`keystone`]: validates Keystone tokens (cached, single-flight, fail closed).
//! - [`oslo`]: the `default` enforcer, an oslo.policy-compatible rule language.
//! - [`cedar`]: the `custom` enforcer, tenant policies in Cedar.
//! - [`policy`]: policies and their composition (`op-and`, `op-or`, `all-pass`, `all-forbid`).
//! - [`filter`]: the request filter of the P-CSCF and S-CSCF (token, decision cache, feed).
//! - [`policyd`]: the policy service: store with history, REST API, verify, invalidation feed.
//! - [`roots`]: extra trust anchors (a private CA) for the HTTPS clients.

pub mod cedar;
pub mod filter;
pub mod keystone;
pub mod oslo;
pub mod policy;
pub mod policyd;
pub mod roots;
