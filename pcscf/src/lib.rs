//! P-CSCF: the IMS edge proxy toward UEs (TS 24.229 §5.2).
//!
//! | module | what | standard |
//! |---|---|---|
//! | [`flow_token`] | flow tokens in Path naming the UE's connection | RFC 5626 §5.2-5.3 |
//! | [`registrations`] | registrations learned from the 200 to REGISTER | TS 24.229 §5.2.2.1 |
//! | [`regsub`] | the P-CSCF's reg event subscriptions for its UEs | TS 24.229 §5.2.3, RFC 6665 |
//! | [`reginfo`] | what a reg event NOTIFY says ended | RFC 3680 §5.4 |
//! | [`store`] | the registrations' durable copy with their reg event subscription dialogs (SQLite or PostgreSQL), restored at start; a refresh that only moves the expiry within the bound is not written ([`store::written`]) | issue 15, issue 16, issue 12, RFC 5626 §5.3 |
//! | [`headers`] | Path, P-Visited-Network-ID, P-Charging-Vector, P-Asserted-Identity | RFC 3327, RFC 7315, RFC 3325 |
//! | [`budget`] | per-source budgets of unauthenticated traffic, back-off after failed authentication | issue 11 |
//! | [`policy`] | the routing decisions over the proxy engine | TS 24.229 §5.2.2, §5.2.6 |

pub mod budget;
pub mod flow_token;
pub mod headers;
pub mod policy;
pub mod reginfo;
pub mod registrations;
pub mod regsub;
pub mod store;
#[cfg(test)]
mod testutil;

pub use policy::{Pcscf, PcscfPolicy, PcscfSettings};
