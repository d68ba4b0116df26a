//! Initial filter criteria (iFC): the part of a user's service profile that decides
//! which application servers a request visits (TS 29.228 Annex B.2.2 and Annex C;
//! TS 24.229 §5.4.3.2 originating, §5.4.3.3 terminating; TS 23.218 §6).
//!
//! * [`model`]: the iFC, TriggerPoint, SPT and ApplicationServer types, with patterns
//!   compiled once when the profile is read.
//! * [`parse`]: reading an `InitialFilterCriteria` element of the IMSSubscription.
//! * [`eval`]: matching a request against them (CNF/DNF, negation, session case,
//!   ProfilePartIndicator).
//! * [`cursor`]: the position in the chain carried in the original dialog identifier
//!   between AS hops.
//! * [`xml`]: the bounded XML reader for Cx User-Data.
//!
//! The S-CSCF's use, for a request it serves for a user (`profile` from the
//! registration or SAA, `impu` the served identity):
//!
//! ```
//! # use scscf::ifc::{IfcCursor, SessionCase, RegistrationState};
//! # fn route(profile: &scscf::profile::UserProfile, impu: &str, req: &ims_sip::message::SipMessage) {
//! let ifcs = profile.ifcs(impu);
//! let cursor = IfcCursor::start(SessionCase::Originating, RegistrationState::Registered);
//! if let Some((next, ifc)) = cursor.next(ifcs, req) {
//!     // Route to ifc.application_server.server_name, then back to this S-CSCF with
//!     // an odi that carries next.encode(); on return, IfcCursor::decode it and call
//!     // next() again on the request as returned.
//! #   let _ = (next, ifc);
//! }
//! # }
//! ```

pub mod cursor;
pub mod eval;
pub mod model;
pub mod parse;
pub mod xml;

pub use cursor::{CursorError, IfcCursor, IfcPosition};
pub use eval::matching;
pub use model::{
    ApplicationServer, DefaultHandling, InitialFilterCriteria, Pattern, RegistrationState,
    RegistrationType, SessionCase, Spt, SptCondition, TriggerPoint, TriggerPointError,
};
