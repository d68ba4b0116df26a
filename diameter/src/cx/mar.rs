//! Multimedia-Auth-Request/Answer (TS 29.229 §6.1.7, §6.1.8).

use super::common::{answer_impl, AnswerHeader, CxError, Reader, RequestHeader};
use super::types::{SipAuthDataItem, SupportedFeatures};
use crate::avp::Avp;
use crate::dict::{base, command, cx};
use crate::message::Message;

/// MAR: the S-CSCF asks for authentication vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mar {
    /// Session, origin, destination.
    pub header: RequestHeader,
    /// User-Name (private identity).
    pub user_name: String,
    /// Supported-Features.
    pub supported_features: Vec<SupportedFeatures>,
    /// Public-Identity.
    pub public_identity: String,
    /// SIP-Auth-Data-Item (scheme; AUTS on re-synchronisation).
    pub sip_auth_data_item: SipAuthDataItem,
    /// SIP-Number-Auth-Items.
    pub sip_number_auth_items: u32,
    /// Server-Name.
    pub server_name: String,
}

impl Mar {
    /// The request message.
    pub fn to_message(&self) -> Message {
        let mut m = self.header.start(command::MULTIMEDIA_AUTH);
        m.avps.push(Avp::utf8(&base::USER_NAME, &self.user_name));
        m.avps.extend(
            self.supported_features
                .iter()
                .map(SupportedFeatures::to_avp),
        );
        m.avps
            .push(Avp::utf8(&cx::PUBLIC_IDENTITY, &self.public_identity));
        m.avps.push(self.sip_auth_data_item.to_avp());
        m.avps.push(Avp::u32(
            &cx::SIP_NUMBER_AUTH_ITEMS,
            self.sip_number_auth_items,
        ));
        m.avps.push(Avp::utf8(&cx::SERVER_NAME, &self.server_name));
        m
    }

    /// Decodes and validates a MAR.
    pub fn from_message(msg: &Message) -> Result<Mar, CxError> {
        let header = RequestHeader::read(msg, command::MULTIMEDIA_AUTH)?;
        let r = Reader::new(&msg.avps);
        Ok(Mar {
            header,
            user_name: r.string(&base::USER_NAME)?,
            supported_features: SupportedFeatures::read_all(&r)?,
            public_identity: r.string(&cx::PUBLIC_IDENTITY)?,
            sip_auth_data_item: SipAuthDataItem::read_all(&r)?
                .into_iter()
                .next()
                .ok_or(CxError::MissingAvp(&cx::SIP_AUTH_DATA_ITEM))?,
            sip_number_auth_items: r.u32(&cx::SIP_NUMBER_AUTH_ITEMS)?,
            server_name: r.string(&cx::SERVER_NAME)?,
        })
    }
}

/// MAA: authentication vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maa {
    /// Session, origin, result.
    pub header: AnswerHeader,
    /// User-Name.
    pub user_name: Option<String>,
    /// Supported-Features.
    pub supported_features: Vec<SupportedFeatures>,
    /// Public-Identity.
    pub public_identity: Option<String>,
    /// SIP-Number-Auth-Items.
    pub sip_number_auth_items: Option<u32>,
    /// SIP-Auth-Data-Item, one per vector.
    pub sip_auth_data_items: Vec<SipAuthDataItem>,
}

impl Maa {
    /// The answer message.
    pub fn to_message(&self) -> Message {
        let mut m = self.header.start(command::MULTIMEDIA_AUTH);
        if let Some(u) = &self.user_name {
            m.avps.push(Avp::utf8(&base::USER_NAME, u));
        }
        m.avps.extend(
            self.supported_features
                .iter()
                .map(SupportedFeatures::to_avp),
        );
        if let Some(p) = &self.public_identity {
            m.avps.push(Avp::utf8(&cx::PUBLIC_IDENTITY, p));
        }
        if let Some(n) = self.sip_number_auth_items {
            m.avps.push(Avp::u32(&cx::SIP_NUMBER_AUTH_ITEMS, n));
        }
        m.avps
            .extend(self.sip_auth_data_items.iter().map(SipAuthDataItem::to_avp));
        m
    }

    /// Decodes a MAA.
    pub fn from_message(msg: &Message) -> Result<Maa, CxError> {
        let header = AnswerHeader::read(msg, command::MULTIMEDIA_AUTH)?;
        let r = Reader::new(&msg.avps);
        Ok(Maa {
            header,
            user_name: r.opt_string(&base::USER_NAME)?,
            supported_features: SupportedFeatures::read_all(&r)?,
            public_identity: r.opt_string(&cx::PUBLIC_IDENTITY)?,
            sip_number_auth_items: r.opt_u32(&cx::SIP_NUMBER_AUTH_ITEMS)?,
            sip_auth_data_items: SipAuthDataItem::read_all(&r)?,
        })
    }
}

answer_impl!(Maa);
