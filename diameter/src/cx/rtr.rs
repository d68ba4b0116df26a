//! Registration-Termination-Request/Answer (TS 29.229 §6.1.9, §6.1.10), sent by the HSS.

use super::common::{answer_impl, AnswerHeader, CxError, Reader, RequestHeader};
use super::types::{AssociatedIdentities, DeregistrationReason, SupportedFeatures};
use crate::avp::Avp;
use crate::dict::{base, command, cx};
use crate::message::Message;

/// RTR: the HSS de-registers identities at the S-CSCF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtr {
    /// Session, origin, destination (Destination-Host is mandatory).
    pub header: RequestHeader,
    /// User-Name.
    pub user_name: String,
    /// Associated-Identities.
    pub associated_identities: Option<AssociatedIdentities>,
    /// Supported-Features.
    pub supported_features: Vec<SupportedFeatures>,
    /// Public-Identity values (none: all identities of the user).
    pub public_identities: Vec<String>,
    /// Deregistration-Reason.
    pub deregistration_reason: DeregistrationReason,
}

impl Rtr {
    /// The request message.
    pub fn to_message(&self) -> Message {
        let mut m = self.header.start(command::REGISTRATION_TERMINATION);
        m.avps.push(Avp::utf8(&base::USER_NAME, &self.user_name));
        if let Some(a) = &self.associated_identities {
            m.avps.push(a.to_avp());
        }
        m.avps.extend(
            self.supported_features
                .iter()
                .map(SupportedFeatures::to_avp),
        );
        m.avps.extend(
            self.public_identities
                .iter()
                .map(|p| Avp::utf8(&cx::PUBLIC_IDENTITY, p)),
        );
        m.avps.push(self.deregistration_reason.to_avp());
        m
    }

    /// Decodes and validates a RTR.
    pub fn from_message(msg: &Message) -> Result<Rtr, CxError> {
        let header = RequestHeader::read(msg, command::REGISTRATION_TERMINATION)?;
        if header.destination_host.is_none() {
            return Err(CxError::MissingAvp(&base::DESTINATION_HOST));
        }
        let r = Reader::new(&msg.avps);
        Ok(Rtr {
            header,
            user_name: r.string(&base::USER_NAME)?,
            associated_identities: AssociatedIdentities::read(&r)?,
            supported_features: SupportedFeatures::read_all(&r)?,
            public_identities: r.strings(&cx::PUBLIC_IDENTITY)?,
            deregistration_reason: DeregistrationReason::read(&r)?,
        })
    }
}

/// RTA: the S-CSCF confirms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rta {
    /// Session, origin, result.
    pub header: AnswerHeader,
    /// Associated-Identities.
    pub associated_identities: Option<AssociatedIdentities>,
    /// Supported-Features.
    pub supported_features: Vec<SupportedFeatures>,
}

impl Rta {
    /// The answer message.
    pub fn to_message(&self) -> Message {
        let mut m = self.header.start(command::REGISTRATION_TERMINATION);
        if let Some(a) = &self.associated_identities {
            m.avps.push(a.to_avp());
        }
        m.avps.extend(
            self.supported_features
                .iter()
                .map(SupportedFeatures::to_avp),
        );
        m
    }

    /// Decodes a RTA.
    pub fn from_message(msg: &Message) -> Result<Rta, CxError> {
        let header = AnswerHeader::read(msg, command::REGISTRATION_TERMINATION)?;
        let r = Reader::new(&msg.avps);
        Ok(Rta {
            header,
            associated_identities: AssociatedIdentities::read(&r)?,
            supported_features: SupportedFeatures::read_all(&r)?,
        })
    }
}

answer_impl!(Rta);
