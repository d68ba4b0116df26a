//! Push-Profile-Request/Answer (TS 29.229 §6.1.11, §6.1.12), sent by the HSS.

use bytes::Bytes;

use super::common::{answer_impl, AnswerHeader, CxError, Reader, RequestHeader};
use super::types::{ChargingInformation, SipAuthDataItem, SupportedFeatures};
use crate::avp::Avp;
use crate::dict::{base, command, cx};
use crate::message::Message;

/// PPR: the HSS pushes a changed profile to the S-CSCF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ppr {
    /// Session, origin, destination (Destination-Host is mandatory).
    pub header: RequestHeader,
    /// User-Name.
    pub user_name: String,
    /// Supported-Features.
    pub supported_features: Vec<SupportedFeatures>,
    /// User-Data.
    pub user_data: Option<Bytes>,
    /// Charging-Information.
    pub charging_information: Option<ChargingInformation>,
    /// SIP-Auth-Data-Item.
    pub sip_auth_data_item: Option<SipAuthDataItem>,
}

impl Ppr {
    /// The request message.
    pub fn to_message(&self) -> Message {
        let mut m = self.header.start(command::PUSH_PROFILE);
        m.avps.push(Avp::utf8(&base::USER_NAME, &self.user_name));
        m.avps.extend(
            self.supported_features
                .iter()
                .map(SupportedFeatures::to_avp),
        );
        if let Some(d) = &self.user_data {
            m.avps.push(Avp::new(&cx::USER_DATA, d.clone()));
        }
        if let Some(c) = &self.charging_information {
            m.avps.push(c.to_avp());
        }
        if let Some(s) = &self.sip_auth_data_item {
            m.avps.push(s.to_avp());
        }
        m
    }

    /// Decodes and validates a PPR.
    pub fn from_message(msg: &Message) -> Result<Ppr, CxError> {
        let header = RequestHeader::read(msg, command::PUSH_PROFILE)?;
        if header.destination_host.is_none() {
            return Err(CxError::MissingAvp(&base::DESTINATION_HOST));
        }
        let r = Reader::new(&msg.avps);
        Ok(Ppr {
            header,
            user_name: r.string(&base::USER_NAME)?,
            supported_features: SupportedFeatures::read_all(&r)?,
            user_data: r.opt_bytes(&cx::USER_DATA),
            charging_information: ChargingInformation::read(&r)?,
            sip_auth_data_item: SipAuthDataItem::read_all(&r)?.into_iter().next(),
        })
    }
}

/// PPA: the S-CSCF confirms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ppa {
    /// Session, origin, result.
    pub header: AnswerHeader,
    /// Supported-Features.
    pub supported_features: Vec<SupportedFeatures>,
}

impl Ppa {
    /// The answer message.
    pub fn to_message(&self) -> Message {
        let mut m = self.header.start(command::PUSH_PROFILE);
        m.avps.extend(
            self.supported_features
                .iter()
                .map(SupportedFeatures::to_avp),
        );
        m
    }

    /// Decodes a PPA.
    pub fn from_message(msg: &Message) -> Result<Ppa, CxError> {
        let header = AnswerHeader::read(msg, command::PUSH_PROFILE)?;
        let r = Reader::new(&msg.avps);
        Ok(Ppa {
            header,
            supported_features: SupportedFeatures::read_all(&r)?,
        })
    }
}

answer_impl!(Ppa);
