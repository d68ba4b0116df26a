//! HSS: the subscriber database of the IMS core (TS 29.228/29.229).
//!
//! * [`store`]: subscriptions, identities, credentials, service profiles and
//!   registration state in SQLite or PostgreSQL.
//! * [`provisioning`]: the REST API (`/api/v1/...`) that operators and `imsctl
//!   subscriber` use to manage subscribers.
//! * [`secrets`]: the key protecting AKA secrets at rest and the admin token.
//! * [`cx`]: the Diameter Cx server (UAR/MAR/SAR/LIR answered from the store, RTR/PPR
//!   sent on provisioning changes).
//! * [`node`]: building the Diameter listeners from the `[diameter]` configuration.

pub mod cx;
pub mod node;
pub mod provisioning;
pub mod secrets;
pub mod store;
