//! The policy service (`policyd`, design brief §6, after MultiPol): global and customer
//! policies with their history, the tenant's effective policy, verify questions from the
//! request filters, and the invalidation feed that makes filters drop stale decisions.
//!
//! - [`model`]: policies, scopes, enforcers and their rule formats.
//! - [`store`]: every version, in SQLite or PostgreSQL (sqlx).
//! - [`builtin`]: the built-in globals `enable`, `restrict`, `self-protect` (constraints I-IV).
//! - [`engine`]: current policies in memory, compilation, decisions, the feed.
//! - [`api`]: the REST API, authenticated by Keystone tokens and authorized by the policies.

pub mod api;
pub mod builtin;
pub mod engine;
pub mod model;
pub mod store;

pub use api::{router, Metrics};
pub use engine::{Change, Engine, Verdict};
pub use model::{EnforcerKind, PolicyVersion, Reference, Scope, Spec};
pub use store::{Store, StoreError};
