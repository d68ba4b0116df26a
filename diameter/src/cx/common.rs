//! What every Cx request and answer carries (TS 29.229 §6.1) and the AVP reader used to
//! decode them.

use bytes::Bytes;

use super::{vendor_specific_application_id, NO_STATE_MAINTAINED};
use crate::avp::Avp;
use crate::dict::{base, result, AvpDef, AvpType, CX_APPLICATION_ID, VENDOR_3GPP};
use crate::error::DecodeError;
use crate::message::{Message, FLAG_PROXIABLE, FLAG_REQUEST};

/// Why a message is not a valid Cx command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CxError {
    /// A mandatory AVP is absent (DIAMETER_MISSING_AVP).
    #[error("missing AVP {}", .0.name)]
    MissingAvp(&'static AvpDef),
    /// An AVP is malformed (wrong size, not UTF-8, unknown enumerated value ...).
    #[error("invalid AVP {}: {error}", avp.code)]
    InvalidAvp {
        /// The AVP as received.
        avp: Avp,
        /// What is wrong.
        error: DecodeError,
    },
    /// Command code, application or R bit do not match the expected command.
    #[error("not the expected command {expected} (got {found}, request: {request})")]
    WrongCommand {
        /// Expected command code.
        expected: u32,
        /// Command code received.
        found: u32,
        /// Whether the R bit was set.
        request: bool,
    },
}

impl CxError {
    /// The Result-Code for an answer to the offending request (RFC 6733 §7.1).
    pub fn result_code(&self) -> u32 {
        match self {
            CxError::MissingAvp(_) => result::DIAMETER_MISSING_AVP,
            CxError::InvalidAvp { error, .. } => error.result_code(),
            CxError::WrongCommand { .. } => result::DIAMETER_COMMAND_UNSUPPORTED,
        }
    }

    /// The content of the Failed-AVP (RFC 6733 §7.5): the offending AVP, or for a
    /// missing one an example with zeroed data of the minimum length.
    pub fn failed_avp(&self) -> Option<Avp> {
        match self {
            CxError::MissingAvp(def) => {
                let len = match def.ty {
                    AvpType::Unsigned32
                    | AvpType::Integer32
                    | AvpType::Enumerated
                    | AvpType::Time => 4,
                    AvpType::Unsigned64 => 8,
                    AvpType::Address => 6,
                    _ => 0,
                };
                Some(Avp::new(def, Bytes::from(vec![0u8; len])))
            }
            CxError::InvalidAvp { avp, .. } => Some(avp.clone()),
            CxError::WrongCommand { .. } => None,
        }
    }

    /// The error answer to `req` (RFC 6733 §7.2).
    pub fn answer(&self, req: &Message, origin_host: &str, origin_realm: &str) -> Message {
        let mut ans = Message::error_answer(
            req,
            origin_host,
            origin_realm,
            self.result_code(),
            self.failed_avp().as_ref(),
        );
        // Keep the Cx AVPs the answer ABNF asks for, before Proxy-Info.
        let at = 3.min(ans.avps.len());
        ans.avps.insert(at, vendor_specific_application_id());
        ans.avps.insert(
            at + 1,
            Avp::i32(&base::AUTH_SESSION_STATE, NO_STATE_MAINTAINED),
        );
        ans
    }
}

/// Reads typed values from a list of AVPs (a message or a Grouped AVP).
pub(crate) struct Reader<'a> {
    avps: &'a [Avp],
}

fn invalid(avp: &Avp, error: DecodeError) -> CxError {
    CxError::InvalidAvp {
        avp: avp.clone(),
        error,
    }
}

impl<'a> Reader<'a> {
    pub(crate) fn new(avps: &'a [Avp]) -> Reader<'a> {
        Reader { avps }
    }

    pub(crate) fn opt(&self, def: &AvpDef) -> Option<&'a Avp> {
        self.avps.iter().find(|a| a.is(def))
    }

    pub(crate) fn all(&self, def: &'a AvpDef) -> impl Iterator<Item = &'a Avp> + 'a {
        self.avps.iter().filter(move |a| a.is(def))
    }

    pub(crate) fn req(&self, def: &'static AvpDef) -> Result<&'a Avp, CxError> {
        self.opt(def).ok_or(CxError::MissingAvp(def))
    }

    pub(crate) fn string(&self, def: &'static AvpDef) -> Result<String, CxError> {
        utf8(self.req(def)?)
    }

    pub(crate) fn opt_string(&self, def: &AvpDef) -> Result<Option<String>, CxError> {
        self.opt(def).map(utf8).transpose()
    }

    pub(crate) fn strings(&self, def: &'a AvpDef) -> Result<Vec<String>, CxError> {
        self.all(def).map(utf8).collect()
    }

    pub(crate) fn u32(&self, def: &'static AvpDef) -> Result<u32, CxError> {
        let a = self.req(def)?;
        a.as_u32().map_err(|e| invalid(a, e))
    }

    pub(crate) fn opt_u32(&self, def: &AvpDef) -> Result<Option<u32>, CxError> {
        self.opt(def)
            .map(|a| a.as_u32().map_err(|e| invalid(a, e)))
            .transpose()
    }

    pub(crate) fn opt_bytes(&self, def: &AvpDef) -> Option<Bytes> {
        self.opt(def).map(|a| a.data.clone())
    }

    /// Decodes the Grouped AVPs `def` with `f`.
    pub(crate) fn groups<T>(
        &self,
        def: &'a AvpDef,
        f: impl Fn(&Reader<'_>) -> Result<T, CxError>,
    ) -> Result<Vec<T>, CxError> {
        self.all(def)
            .map(|a| {
                let inner = a.grouped_avps().map_err(|e| invalid(a, e))?;
                f(&Reader::new(&inner))
            })
            .collect()
    }

    pub(crate) fn opt_group<T>(
        &self,
        def: &'a AvpDef,
        f: impl Fn(&Reader<'_>) -> Result<T, CxError>,
    ) -> Result<Option<T>, CxError> {
        Ok(self.groups(def, f)?.into_iter().next())
    }

    /// An Enumerated AVP mapped by `f`; unknown values are DIAMETER_INVALID_AVP_VALUE.
    pub(crate) fn opt_enum<T>(
        &self,
        def: &AvpDef,
        f: impl Fn(i32) -> Option<T>,
    ) -> Result<Option<T>, CxError> {
        self.opt(def)
            .map(|a| {
                let v = a.as_i32().map_err(|e| invalid(a, e))?;
                f(v).ok_or_else(|| {
                    invalid(
                        a,
                        DecodeError::AvpUnexpectedValue {
                            code: a.code,
                            value: v.into(),
                        },
                    )
                })
            })
            .transpose()
    }

    pub(crate) fn enumerated<T>(
        &self,
        def: &'static AvpDef,
        f: impl Fn(i32) -> Option<T>,
    ) -> Result<T, CxError> {
        self.opt_enum(def, f)?.ok_or(CxError::MissingAvp(def))
    }
}

fn utf8(a: &Avp) -> Result<String, CxError> {
    a.as_utf8().map(str::to_owned).map_err(|e| invalid(a, e))
}

/// Checks command code and R bit, then the AVPs every Cx request has.
pub(crate) fn check_command(msg: &Message, code: u32, request: bool) -> Result<(), CxError> {
    if msg.command_code != code || msg.is_request() != request {
        return Err(CxError::WrongCommand {
            expected: code,
            found: msg.command_code,
            request: msg.is_request(),
        });
    }
    Ok(())
}

/// Session, origin and destination of a Cx request (TS 29.229 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestHeader {
    /// Session-Id.
    pub session_id: String,
    /// Origin-Host.
    pub origin_host: String,
    /// Origin-Realm.
    pub origin_realm: String,
    /// Destination-Host (optional in UAR/SAR/LIR/MAR, mandatory in RTR/PPR).
    pub destination_host: Option<String>,
    /// Destination-Realm.
    pub destination_realm: String,
}

impl RequestHeader {
    /// Starts a request message with the header AVPs in ABNF order: Session-Id,
    /// Vendor-Specific-Application-Id, Auth-Session-State, Origin-Host, Origin-Realm,
    /// Destination-Host, Destination-Realm.
    pub(crate) fn start(&self, code: u32) -> Message {
        let mut m = Message::request(code, CX_APPLICATION_ID);
        m.avps.push(Avp::utf8(&base::SESSION_ID, &self.session_id));
        m.avps.push(vendor_specific_application_id());
        m.avps
            .push(Avp::i32(&base::AUTH_SESSION_STATE, NO_STATE_MAINTAINED));
        m.avps
            .push(Avp::utf8(&base::ORIGIN_HOST, &self.origin_host));
        m.avps
            .push(Avp::utf8(&base::ORIGIN_REALM, &self.origin_realm));
        if let Some(h) = &self.destination_host {
            m.avps.push(Avp::utf8(&base::DESTINATION_HOST, h));
        }
        m.avps
            .push(Avp::utf8(&base::DESTINATION_REALM, &self.destination_realm));
        m
    }

    /// Reads the header of a request with command `code`.
    pub(crate) fn read(msg: &Message, code: u32) -> Result<RequestHeader, CxError> {
        check_command(msg, code, true)?;
        let r = Reader::new(&msg.avps);
        let session_id = r.string(&base::SESSION_ID)?;
        check_application(&r)?;
        r.req(&base::AUTH_SESSION_STATE)?;
        Ok(RequestHeader {
            session_id,
            origin_host: r.string(&base::ORIGIN_HOST)?,
            origin_realm: r.string(&base::ORIGIN_REALM)?,
            destination_host: r.opt_string(&base::DESTINATION_HOST)?,
            destination_realm: r.string(&base::DESTINATION_REALM)?,
        })
    }
}

/// Checks the Vendor-Specific-Application-Id is {10415, 16777216}.
fn check_application(r: &Reader<'_>) -> Result<(), CxError> {
    let vsai = r.req(&base::VENDOR_SPECIFIC_APPLICATION_ID)?;
    let inner = vsai.grouped_avps().map_err(|e| invalid(vsai, e))?;
    let g = Reader::new(&inner);
    let app = g.opt_u32(&base::AUTH_APPLICATION_ID)?;
    if app != Some(CX_APPLICATION_ID) {
        return Err(invalid(
            vsai,
            DecodeError::AvpUnexpectedValue {
                code: base::AUTH_APPLICATION_ID.code,
                value: app.map_or(-1, i64::from),
            },
        ));
    }
    Ok(())
}

/// The outcome of a Cx answer: a base Result-Code or a 3GPP Experimental-Result-Code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CxResult {
    /// Result-Code (RFC 6733 §7.1).
    Base(u32),
    /// Experimental-Result with its Vendor-Id (10415 for TS 29.229 §6.2 codes).
    Experimental {
        /// Vendor-Id.
        vendor_id: u32,
        /// Experimental-Result-Code.
        code: u32,
    },
}

impl CxResult {
    /// A TS 29.229 §6.2 Experimental-Result-Code (vendor 10415).
    pub fn experimental(code: u32) -> CxResult {
        CxResult::Experimental {
            vendor_id: VENDOR_3GPP,
            code,
        }
    }

    /// Whether the code is in the 2xxx success class.
    pub fn is_success(&self) -> bool {
        let code = match self {
            CxResult::Base(c) | CxResult::Experimental { code: c, .. } => *c,
        };
        (2000..3000).contains(&code)
    }

    fn to_avp(self) -> Avp {
        match self {
            CxResult::Base(c) => Avp::u32(&base::RESULT_CODE, c),
            CxResult::Experimental { vendor_id, code } => Avp::grouped(
                &base::EXPERIMENTAL_RESULT,
                &[
                    Avp::u32(&base::VENDOR_ID, vendor_id),
                    Avp::u32(&base::EXPERIMENTAL_RESULT_CODE, code),
                ],
            ),
        }
    }

    fn read(r: &Reader<'_>) -> Result<CxResult, CxError> {
        if let Some(c) = r.opt_u32(&base::RESULT_CODE)? {
            return Ok(CxResult::Base(c));
        }
        let exp = r.opt_group(&base::EXPERIMENTAL_RESULT, |g| {
            Ok(CxResult::Experimental {
                vendor_id: g.u32(&base::VENDOR_ID)?,
                code: g.u32(&base::EXPERIMENTAL_RESULT_CODE)?,
            })
        })?;
        exp.ok_or(CxError::MissingAvp(&base::RESULT_CODE))
    }
}

/// Session, origin and result of a Cx answer (TS 29.229 §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerHeader {
    /// Session-Id (copied from the request).
    pub session_id: String,
    /// Origin-Host of the answering node.
    pub origin_host: String,
    /// Origin-Realm of the answering node.
    pub origin_realm: String,
    /// Result-Code or Experimental-Result.
    pub result: CxResult,
    /// Error-Message, if any.
    pub error_message: Option<String>,
}

impl AnswerHeader {
    /// The header of an answer to `req` from this node.
    pub fn for_request(
        req: &RequestHeader,
        origin_host: &str,
        origin_realm: &str,
        result: CxResult,
    ) -> AnswerHeader {
        AnswerHeader {
            session_id: req.session_id.clone(),
            origin_host: origin_host.to_owned(),
            origin_realm: origin_realm.to_owned(),
            result,
            error_message: None,
        }
    }

    /// Starts an answer message in ABNF order: Session-Id, Vendor-Specific-Application-Id,
    /// Result-Code / Experimental-Result, Auth-Session-State, Origin-Host, Origin-Realm.
    pub(crate) fn start(&self, code: u32) -> Message {
        let mut m = Message::request(code, CX_APPLICATION_ID);
        m.flags = FLAG_PROXIABLE;
        m.avps.push(Avp::utf8(&base::SESSION_ID, &self.session_id));
        m.avps.push(vendor_specific_application_id());
        m.avps.push(self.result.to_avp());
        m.avps
            .push(Avp::i32(&base::AUTH_SESSION_STATE, NO_STATE_MAINTAINED));
        m.avps
            .push(Avp::utf8(&base::ORIGIN_HOST, &self.origin_host));
        m.avps
            .push(Avp::utf8(&base::ORIGIN_REALM, &self.origin_realm));
        if let Some(e) = &self.error_message {
            m.avps.push(Avp::utf8(&base::ERROR_MESSAGE, e));
        }
        m
    }

    /// Reads the header of an answer with command `code`. Vendor-Specific-Application-Id
    /// and Auth-Session-State are not required: error answers (E bit) may lack them.
    pub(crate) fn read(msg: &Message, code: u32) -> Result<AnswerHeader, CxError> {
        check_command(msg, code, false)?;
        let r = Reader::new(&msg.avps);
        Ok(AnswerHeader {
            session_id: r.string(&base::SESSION_ID)?,
            origin_host: r.string(&base::ORIGIN_HOST)?,
            origin_realm: r.string(&base::ORIGIN_REALM)?,
            result: CxResult::read(&r)?,
            error_message: r.opt_string(&base::ERROR_MESSAGE)?,
        })
    }
}

/// Makes `ans` the answer to `req`: identifiers, P bit and Proxy-Info (RFC 6733 §6.2).
pub(crate) fn answer_to(mut ans: Message, req: &Message) -> Message {
    ans.flags = (ans.flags & !FLAG_REQUEST & !FLAG_PROXIABLE) | (req.flags & FLAG_PROXIABLE);
    ans.hop_by_hop = req.hop_by_hop;
    ans.end_to_end = req.end_to_end;
    ans.push_proxy_info_of(req);
    ans
}

/// Implements `to_answer` for a Cx answer type.
macro_rules! answer_impl {
    ($t:ty) => {
        impl $t {
            /// This answer as the reply to `req`: its identifiers, P bit and Proxy-Info.
            pub fn to_answer(&self, req: &$crate::message::Message) -> $crate::message::Message {
                $crate::cx::common::answer_to(self.to_message(), req)
            }
        }
    };
}
pub(crate) use answer_impl;
