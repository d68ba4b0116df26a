//! Server-Assignment-Request/Answer (TS 29.229 §6.1.3, §6.1.4).

use bytes::Bytes;

use super::common::{answer_impl, AnswerHeader, CxError, Reader, RequestHeader};
use super::types::{
    AssociatedIdentities, ChargingInformation, ServerAssignmentType, SupportedFeatures,
    UserDataAlreadyAvailable,
};
use crate::avp::Avp;
use crate::dict::{base, command, cx};
use crate::message::Message;

/// SAR: the S-CSCF registers, re-registers or de-registers a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sar {
    /// Session, origin, destination.
    pub header: RequestHeader,
    /// User-Name.
    pub user_name: Option<String>,
    /// Supported-Features.
    pub supported_features: Vec<SupportedFeatures>,
    /// Public-Identity values.
    pub public_identities: Vec<String>,
    /// Wildcarded-Public-Identity.
    pub wildcarded_public_identity: Option<String>,
    /// Server-Name.
    pub server_name: String,
    /// Server-Assignment-Type.
    pub server_assignment_type: ServerAssignmentType,
    /// User-Data-Already-Available.
    pub user_data_already_available: UserDataAlreadyAvailable,
    /// SAR-Flags.
    pub sar_flags: Option<u32>,
}

impl Sar {
    /// The request message.
    pub fn to_message(&self) -> Message {
        let mut m = self.header.start(command::SERVER_ASSIGNMENT);
        if let Some(u) = &self.user_name {
            m.avps.push(Avp::utf8(&base::USER_NAME, u));
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
        if let Some(w) = &self.wildcarded_public_identity {
            m.avps.push(Avp::utf8(&cx::WILDCARDED_PUBLIC_IDENTITY, w));
        }
        m.avps.push(Avp::utf8(&cx::SERVER_NAME, &self.server_name));
        m.avps.push(Avp::i32(
            &cx::SERVER_ASSIGNMENT_TYPE,
            self.server_assignment_type as i32,
        ));
        m.avps.push(Avp::i32(
            &cx::USER_DATA_ALREADY_AVAILABLE,
            self.user_data_already_available as i32,
        ));
        if let Some(f) = self.sar_flags {
            m.avps.push(Avp::u32(&cx::SAR_FLAGS, f));
        }
        m
    }

    /// Decodes and validates a SAR.
    pub fn from_message(msg: &Message) -> Result<Sar, CxError> {
        let header = RequestHeader::read(msg, command::SERVER_ASSIGNMENT)?;
        let r = Reader::new(&msg.avps);
        Ok(Sar {
            header,
            user_name: r.opt_string(&base::USER_NAME)?,
            supported_features: SupportedFeatures::read_all(&r)?,
            public_identities: r.strings(&cx::PUBLIC_IDENTITY)?,
            wildcarded_public_identity: r.opt_string(&cx::WILDCARDED_PUBLIC_IDENTITY)?,
            server_name: r.string(&cx::SERVER_NAME)?,
            server_assignment_type: r
                .enumerated(&cx::SERVER_ASSIGNMENT_TYPE, ServerAssignmentType::from_i32)?,
            user_data_already_available: r.enumerated(
                &cx::USER_DATA_ALREADY_AVAILABLE,
                UserDataAlreadyAvailable::from_i32,
            )?,
            sar_flags: r.opt_u32(&cx::SAR_FLAGS)?,
        })
    }
}

/// SAA: the user profile (User-Data) and charging addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saa {
    /// Session, origin, result.
    pub header: AnswerHeader,
    /// User-Name.
    pub user_name: Option<String>,
    /// Supported-Features.
    pub supported_features: Vec<SupportedFeatures>,
    /// User-Data (IMSSubscription XML, TS 29.228 Annex E).
    pub user_data: Option<Bytes>,
    /// Charging-Information.
    pub charging_information: Option<ChargingInformation>,
    /// Associated-Identities.
    pub associated_identities: Option<AssociatedIdentities>,
    /// Server-Name (when the S-CSCF name was stored earlier).
    pub server_name: Option<String>,
    /// Wildcarded-Public-Identity.
    pub wildcarded_public_identity: Option<String>,
}

impl Saa {
    /// The answer message.
    pub fn to_message(&self) -> Message {
        let mut m = self.header.start(command::SERVER_ASSIGNMENT);
        if let Some(u) = &self.user_name {
            m.avps.push(Avp::utf8(&base::USER_NAME, u));
        }
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
        if let Some(a) = &self.associated_identities {
            m.avps.push(a.to_avp());
        }
        if let Some(s) = &self.server_name {
            m.avps.push(Avp::utf8(&cx::SERVER_NAME, s));
        }
        if let Some(w) = &self.wildcarded_public_identity {
            m.avps.push(Avp::utf8(&cx::WILDCARDED_PUBLIC_IDENTITY, w));
        }
        m
    }

    /// Decodes a SAA.
    pub fn from_message(msg: &Message) -> Result<Saa, CxError> {
        let header = AnswerHeader::read(msg, command::SERVER_ASSIGNMENT)?;
        let r = Reader::new(&msg.avps);
        Ok(Saa {
            header,
            user_name: r.opt_string(&base::USER_NAME)?,
            supported_features: SupportedFeatures::read_all(&r)?,
            user_data: r.opt_bytes(&cx::USER_DATA),
            charging_information: ChargingInformation::read(&r)?,
            associated_identities: AssociatedIdentities::read(&r)?,
            server_name: r.opt_string(&cx::SERVER_NAME)?,
            wildcarded_public_identity: r.opt_string(&cx::WILDCARDED_PUBLIC_IDENTITY)?,
        })
    }
}

answer_impl!(Saa);
