//! Location-Info-Request/Answer (TS 29.229 §6.1.5, §6.1.6).

use super::common::{answer_impl, AnswerHeader, CxError, Reader, RequestHeader};
use super::types::{ServerCapabilities, SupportedFeatures, UserAuthorizationType};
use crate::avp::Avp;
use crate::dict::{command, cx};
use crate::message::Message;

/// Originating-Request value ORIGINATING (§6.3.34).
const ORIGINATING: i32 = 0;

/// LIR: the I-CSCF asks which S-CSCF serves a public identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lir {
    /// Session, origin, destination.
    pub header: RequestHeader,
    /// Originating-Request (ORIGINATING) present.
    pub originating_request: bool,
    /// Supported-Features.
    pub supported_features: Vec<SupportedFeatures>,
    /// Public-Identity.
    pub public_identity: String,
    /// User-Authorization-Type.
    pub user_authorization_type: Option<UserAuthorizationType>,
}

impl Lir {
    /// The request message.
    pub fn to_message(&self) -> Message {
        let mut m = self.header.start(command::LOCATION_INFO);
        if self.originating_request {
            m.avps.push(Avp::i32(&cx::ORIGINATING_REQUEST, ORIGINATING));
        }
        m.avps.extend(
            self.supported_features
                .iter()
                .map(SupportedFeatures::to_avp),
        );
        m.avps
            .push(Avp::utf8(&cx::PUBLIC_IDENTITY, &self.public_identity));
        if let Some(t) = self.user_authorization_type {
            m.avps
                .push(Avp::i32(&cx::USER_AUTHORIZATION_TYPE, t as i32));
        }
        m
    }

    /// Decodes and validates a LIR.
    pub fn from_message(msg: &Message) -> Result<Lir, CxError> {
        let header = RequestHeader::read(msg, command::LOCATION_INFO)?;
        let r = Reader::new(&msg.avps);
        Ok(Lir {
            header,
            originating_request: r
                .opt_enum(&cx::ORIGINATING_REQUEST, |v| {
                    (v == ORIGINATING).then_some(())
                })?
                .is_some(),
            supported_features: SupportedFeatures::read_all(&r)?,
            public_identity: r.string(&cx::PUBLIC_IDENTITY)?,
            user_authorization_type: r.opt_enum(
                &cx::USER_AUTHORIZATION_TYPE,
                UserAuthorizationType::from_i32,
            )?,
        })
    }
}

/// LIA: the serving S-CSCF, or capabilities to pick one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lia {
    /// Session, origin, result.
    pub header: AnswerHeader,
    /// Supported-Features.
    pub supported_features: Vec<SupportedFeatures>,
    /// Server-Name.
    pub server_name: Option<String>,
    /// Server-Capabilities.
    pub server_capabilities: Option<ServerCapabilities>,
    /// Wildcarded-Public-Identity.
    pub wildcarded_public_identity: Option<String>,
    /// LIA-Flags.
    pub lia_flags: Option<u32>,
}

impl Lia {
    /// The answer message.
    pub fn to_message(&self) -> Message {
        let mut m = self.header.start(command::LOCATION_INFO);
        m.avps.extend(
            self.supported_features
                .iter()
                .map(SupportedFeatures::to_avp),
        );
        if let Some(s) = &self.server_name {
            m.avps.push(Avp::utf8(&cx::SERVER_NAME, s));
        }
        if let Some(c) = &self.server_capabilities {
            m.avps.push(c.to_avp());
        }
        if let Some(w) = &self.wildcarded_public_identity {
            m.avps.push(Avp::utf8(&cx::WILDCARDED_PUBLIC_IDENTITY, w));
        }
        if let Some(f) = self.lia_flags {
            m.avps.push(Avp::u32(&cx::LIA_FLAGS, f));
        }
        m
    }

    /// Decodes a LIA.
    pub fn from_message(msg: &Message) -> Result<Lia, CxError> {
        let header = AnswerHeader::read(msg, command::LOCATION_INFO)?;
        let r = Reader::new(&msg.avps);
        Ok(Lia {
            header,
            supported_features: SupportedFeatures::read_all(&r)?,
            server_name: r.opt_string(&cx::SERVER_NAME)?,
            server_capabilities: ServerCapabilities::read(&r)?,
            wildcarded_public_identity: r.opt_string(&cx::WILDCARDED_PUBLIC_IDENTITY)?,
            lia_flags: r.opt_u32(&cx::LIA_FLAGS)?,
        })
    }
}

answer_impl!(Lia);
