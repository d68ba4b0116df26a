//! The Cx/Dx application (3GPP TS 29.229 §6.1): UAR/UAA, SAR/SAA, LIR/LIA, MAR/MAA,
//! RTR/RTA and PPR/PPA as typed structs.
//!
//! Each struct converts to a [`Message`](crate::Message) (`to_message`; answers also `to_answer`, which
//! takes identifiers and Proxy-Info from the request) and back (`from_message`, which
//! checks the command, the R bit and the mandatory AVPs of the command's ABNF; a missing
//! one is [`CxError::MissingAvp`], answered with DIAMETER_MISSING_AVP and a Failed-AVP).
//! Every request carries Vendor-Specific-Application-Id {10415, 16777216} and
//! Auth-Session-State NO_STATE_MAINTAINED (TS 29.229 §6.1).

mod common;
mod lir;
mod mar;
mod ppr;
mod request;
mod rtr;
mod sar;
mod types;
mod uar;

pub use common::{AnswerHeader, CxError, CxResult, RequestHeader};
pub use lir::{Lia, Lir};
pub use mar::{Maa, Mar};
pub use ppr::{Ppa, Ppr};
pub use request::CxRequest;
pub use rtr::{Rta, Rtr};
pub use sar::{Saa, Sar};
pub use types::{
    AssociatedIdentities, ChargingInformation, DeregistrationReason, ReasonCode,
    ServerAssignmentType, ServerCapabilities, SipAuthDataItem, SipDigestAuthenticate,
    SupportedFeatures, UserAuthorizationType, UserDataAlreadyAvailable,
};
pub use uar::{Uaa, Uar};

use crate::avp::Avp;
use crate::dict::{base, CX_APPLICATION_ID, VENDOR_3GPP};

/// Vendor-Specific-Application-Id {Vendor-Id 10415, Auth-Application-Id 16777216}.
pub fn vendor_specific_application_id() -> Avp {
    Avp::grouped(
        &base::VENDOR_SPECIFIC_APPLICATION_ID,
        &[
            Avp::u32(&base::VENDOR_ID, VENDOR_3GPP),
            Avp::u32(&base::AUTH_APPLICATION_ID, CX_APPLICATION_ID),
        ],
    )
}

/// Auth-Session-State NO_STATE_MAINTAINED (1), RFC 6733 §8.11.
pub const NO_STATE_MAINTAINED: i32 = 1;
