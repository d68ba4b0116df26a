//! S-CSCF: registrar and session control (TS 24.229 §5.4).
//!
//! * [`registrar`]: REGISTER handling, SAR, RTR/PPR (TS 24.229 §5.4.1, TS 29.228 §6.1);
//!   in a pool, the take-over of a failed peer's users ([`registrar::takeover`],
//!   TS 23.380 §4).
//! * [`auth`]: Digest MD5 and AKAv1-MD5 challenges and verification (TS 33.203,
//!   RFC 3310).
//! * [`cloud_auth`]: registrations checked against the token's tenant and the policies
//!   (design brief §5-§6).
//! * [`location`]: bindings and the RFC 3261 §10.3 rules (RFC 5626/5627 instances).
//! * [`gruu`]: public and temporary GRUUs of the bindings with an instance (RFC 5627,
//!   TS 24.229 §5.4.7A), and the way back from one to its contacts.
//! * [`store`]: bindings persisted in SQLite or PostgreSQL, written by one group-commit
//!   writer ([`store::writer`]), owned by one S-CSCF of a pool each, with leases
//!   ([`store::pool`]); a REGISTER that only refreshes expiries within the bound is
//!   not written ([`store::written`], issue 12).
//! * [`identity_lock`]: the order of the registrar's changes per identity.
//! * [`profile`]: the IMSSubscription (TS 29.228 Annex E): implicit registration set,
//!   service profiles, cloud profile.
//! * [`ifc`]: initial filter criteria and their evaluation (TS 29.228 Annex B/C,
//!   TS 24.229 §5.4.3.2-3).
//! * [`cx`]: the Diameter Cx client toward the HSS (TS 29.229).
//! * [`session`]: originating and terminating routing of initial requests (TS 24.229
//!   §5.4.3), with the places application servers slot into.
//! * [`unregistered`]: profiles of the identities served unregistered, kept for a
//!   while and released at the HSS when they lapse (TS 29.228 §6.1.2).
//! * [`regevent`]: the reg event package (RFC 3680) notifier: subscriptions of UEs,
//!   P-CSCFs and application servers to a user's registration state (§5.4.2.1).
//! * [`api`]: the operator API (a user's registrations and reg event subscriptions).
//! * [`policy`]: the proxy policy tying the registrar and session routing into the SIP
//!   proxy engine.

pub mod api;
pub mod auth;
pub mod auth_metrics;
pub mod cloud_auth;
pub mod cx;
pub mod gruu;
pub mod identity_lock;
pub mod ifc;
pub mod location;
pub mod policy;
pub mod profile;
pub mod regevent;
pub mod registrar;
pub mod session;
pub mod store;
pub mod thirdparty;
pub mod unregistered;
