//! The node layer shared by the CSCFs, between the SIP and Diameter stacks and the nodes.
//!
//! | module | what |
//! |---|---|
//! | [`zone`] | the trust zones a sender belongs to (design brief §7) |
//! | [`classify`] | a sender's zone from its source address (`[zones]`) |
//! | [`ingress`] | the one ingress filter: which request kinds a zone may send to a CSCF, which headers from it are kept (TS 24.229 §4.4, RFC 3325, RFC 5502) |
//! | [`cx`] | the Cx client of the I-CSCF and S-CSCF toward the HSS: UAR, LIR, MAR, SAR, Session-Ids, failures as SIP answers (TS 29.228, TS 29.229, RFC 6733) |
//! | [`span`] | the `tracing` span of a request (Call-ID, icid) on every line logged about it |

pub mod classify;
pub mod cx;
pub mod ingress;
pub mod span;
pub mod zone;

pub use classify::Classifier;
pub use ingress::{Ingress, Refused, RequestKind, Role};
pub use zone::Zone;
