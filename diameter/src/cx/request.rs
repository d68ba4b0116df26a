//! Dispatch of an incoming Cx request to its typed form.

use super::common::CxError;
use super::{Lir, Mar, Ppr, Rtr, Sar, Uar};
use crate::dict::command;
use crate::message::Message;

/// Any Cx request, decoded and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CxRequest {
    /// UAR.
    Uar(Uar),
    /// SAR.
    Sar(Sar),
    /// LIR.
    Lir(Lir),
    /// MAR.
    Mar(Mar),
    /// RTR.
    Rtr(Rtr),
    /// PPR.
    Ppr(Ppr),
}

impl CxRequest {
    /// Decodes a request by its command code. An unknown command is
    /// [`CxError::WrongCommand`] (answered with DIAMETER_COMMAND_UNSUPPORTED).
    pub fn from_message(msg: &Message) -> Result<CxRequest, CxError> {
        Ok(match msg.command_code {
            command::USER_AUTHORIZATION => CxRequest::Uar(Uar::from_message(msg)?),
            command::SERVER_ASSIGNMENT => CxRequest::Sar(Sar::from_message(msg)?),
            command::LOCATION_INFO => CxRequest::Lir(Lir::from_message(msg)?),
            command::MULTIMEDIA_AUTH => CxRequest::Mar(Mar::from_message(msg)?),
            command::REGISTRATION_TERMINATION => CxRequest::Rtr(Rtr::from_message(msg)?),
            command::PUSH_PROFILE => CxRequest::Ppr(Ppr::from_message(msg)?),
            other => {
                return Err(CxError::WrongCommand {
                    expected: command::USER_AUTHORIZATION,
                    found: other,
                    request: msg.is_request(),
                })
            }
        })
    }
}
