//! I-CSCF: entry point of the home network (TS 24.229 §5.3).
//!
//! | module | what | standard |
//! |---|---|---|
//! | [`uar`] | the UAR for a REGISTER | TS 24.229 §5.3.1.2, TS 29.229 §6.1.1 |
//! | [`selection`] | S-CSCF by Server-Name or Server-Capabilities | TS 29.228 §6.1.1, §6.7 |
//! | [`lir`] | the LIR for an initial request toward a served user | TS 24.229 §5.3.2.1, TS 29.229 §6.1.5 |
//! | [`answer`] | UAA and LIA results to forwarding or SIP answers | TS 24.229 §5.3.1.2, §5.3.2.1, TS 29.229 §6.2 |
//! | [`memory`] | the S-CSCF of a challenged REGISTER, by Call-ID: one UAR per registration | issue 12, TS 24.229 §5.3.1.2-3 |
//! | [`restoration`] | another S-CSCF when the one a request was sent to fails | TS 24.229 §5.3.1.3, §5.3.2.1, TS 23.380 §4 |
//! | [`unknown`] | decoy challenges for identities that may not register, the UAR budget | issue 11 |
//! | [`policy`] | the routing decisions over the proxy engine | TS 24.229 §5.3 |

pub mod answer;
pub mod lir;
pub mod memory;
pub mod policy;
pub mod restoration;
pub mod selection;
pub mod uar;
pub mod unknown;

pub use policy::IcscfPolicy;
