//! User-Authorization-Request/Answer (TS 29.229 §6.1.1, §6.1.2).

use super::common::{answer_impl, AnswerHeader, CxError, Reader, RequestHeader};
use super::types::{ServerCapabilities, SupportedFeatures, UserAuthorizationType};
use crate::avp::Avp;
use crate::dict::{base, command, cx};
use crate::message::Message;

/// UAR: sent by the I-CSCF on REGISTER to find the S-CSCF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uar {
    /// Session, origin, destination.
    pub header: RequestHeader,
    /// User-Name (the private identity).
    pub user_name: String,
    /// Supported-Features.
    pub supported_features: Vec<SupportedFeatures>,
    /// Public-Identity.
    pub public_identity: String,
    /// Visited-Network-Identifier.
    pub visited_network_identifier: String,
    /// User-Authorization-Type.
    pub user_authorization_type: Option<UserAuthorizationType>,
    /// UAR-Flags.
    pub uar_flags: Option<u32>,
}

impl Uar {
    /// The request message (identifiers are assigned by the peer).
    pub fn to_message(&self) -> Message {
        let mut m = self.header.start(command::USER_AUTHORIZATION);
        m.avps.push(Avp::utf8(&base::USER_NAME, &self.user_name));
        m.avps.extend(
            self.supported_features
                .iter()
                .map(SupportedFeatures::to_avp),
        );
        m.avps
            .push(Avp::utf8(&cx::PUBLIC_IDENTITY, &self.public_identity));
        m.avps.push(Avp::utf8(
            &cx::VISITED_NETWORK_IDENTIFIER,
            &self.visited_network_identifier,
        ));
        if let Some(t) = self.user_authorization_type {
            m.avps
                .push(Avp::i32(&cx::USER_AUTHORIZATION_TYPE, t as i32));
        }
        if let Some(f) = self.uar_flags {
            m.avps.push(Avp::u32(&cx::UAR_FLAGS, f));
        }
        m
    }

    /// Decodes and validates a UAR.
    pub fn from_message(msg: &Message) -> Result<Uar, CxError> {
        let header = RequestHeader::read(msg, command::USER_AUTHORIZATION)?;
        let r = Reader::new(&msg.avps);
        Ok(Uar {
            header,
            user_name: r.string(&base::USER_NAME)?,
            supported_features: SupportedFeatures::read_all(&r)?,
            public_identity: r.string(&cx::PUBLIC_IDENTITY)?,
            visited_network_identifier: r.string(&cx::VISITED_NETWORK_IDENTIFIER)?,
            user_authorization_type: r.opt_enum(
                &cx::USER_AUTHORIZATION_TYPE,
                UserAuthorizationType::from_i32,
            )?,
            uar_flags: r.opt_u32(&cx::UAR_FLAGS)?,
        })
    }
}

/// UAA: the HSS's answer with the S-CSCF name or capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uaa {
    /// Session, origin, result.
    pub header: AnswerHeader,
    /// Supported-Features.
    pub supported_features: Vec<SupportedFeatures>,
    /// Server-Name.
    pub server_name: Option<String>,
    /// Server-Capabilities.
    pub server_capabilities: Option<ServerCapabilities>,
}

impl Uaa {
    /// The answer message (identifiers zero; see `to_answer`).
    pub fn to_message(&self) -> Message {
        let mut m = self.header.start(command::USER_AUTHORIZATION);
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
        m
    }

    /// Decodes a UAA.
    pub fn from_message(msg: &Message) -> Result<Uaa, CxError> {
        let header = AnswerHeader::read(msg, command::USER_AUTHORIZATION)?;
        let r = Reader::new(&msg.avps);
        Ok(Uaa {
            header,
            supported_features: SupportedFeatures::read_all(&r)?,
            server_name: r.opt_string(&cx::SERVER_NAME)?,
            server_capabilities: ServerCapabilities::read(&r)?,
        })
    }
}

answer_impl!(Uaa);
