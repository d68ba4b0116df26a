//! The SIP message model (RFC 3261 §7) and its parser/serializer.
//!
//! A message keeps the bytes it was parsed from: the start line, every header line
//! (including folding and compact names) and the body. Serialization writes the original
//! bytes of whatever was not modified, so untouched messages round-trip byte-exactly.
//! Typed views over header values ([`via::Via`], [`cseq::CSeq`], [`addr::NameAddr`],
//! [`uri::Uri`], [`auth_params::AuthParams`]) are parsed only when asked for.
//!
//! Two levels of checking: [`parse_message`] frames the message and checks the start
//! line, mandatory headers, CSeq and Content-Length (enough to forward it);
//! [`SipMessage::validate`] checks the grammar of the headers the stack interprets,
//! for the node that acts on the message. `sip/tests/rfc4475.rs` lists which of the
//! two rejects each RFC 4475 torture message.

pub mod addr;
pub mod auth_params;
pub mod build;
pub mod cseq;
pub mod delta_seconds;
mod error;
mod headers;
pub mod identity;
pub mod key;
mod method;
mod parse;
pub mod scan;
pub mod uri;
mod validate;
pub mod via;

pub use error::ParseError;
pub use headers::{Header, HeaderName, Headers};
pub use method::Method;
pub use parse::{header_section_end, parse_message, ParseLimits};

use bytes::{BufMut, Bytes, BytesMut};

/// The first line of a request (RFC 3261 §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Request method.
    pub method: Method,
    /// Request-URI exactly as received (or as set by the proxy).
    pub uri: Bytes,
    /// Original start line including its terminator, if unchanged since parsing.
    raw: Option<Bytes>,
}

/// The first line of a response (RFC 3261 §7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, 100..=699.
    pub code: u16,
    /// Reason phrase as received.
    pub reason: Bytes,
    raw: Option<Bytes>,
}

/// Request line or status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// A request line.
    Request(Request),
    /// A status line.
    Response(Response),
}

impl Request {
    /// A new request line `METHOD uri SIP/2.0`.
    pub fn new(method: Method, uri: impl Into<Bytes>) -> Self {
        Request {
            method,
            uri: uri.into(),
            raw: None,
        }
    }
}

impl Response {
    /// A new status line `SIP/2.0 code reason`.
    pub fn new(code: u16, reason: impl Into<Bytes>) -> Self {
        Response {
            code,
            reason: reason.into(),
            raw: None,
        }
    }
}

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage {
    start: StartLine,
    /// The header fields, in order.
    pub headers: Headers,
    /// The empty line separating headers from body, as received (`\r\n` when built).
    separator: Bytes,
    body: Bytes,
}

impl SipMessage {
    /// Builds a message from its parts. `Content-Length` is not touched: use
    /// [`SipMessage::set_body`] to set a body and its length together.
    pub fn new(start: StartLine, headers: Headers, body: Bytes) -> Self {
        SipMessage {
            start,
            headers,
            separator: Bytes::from_static(b"\r\n"),
            body,
        }
    }

    /// Parses one complete message with default limits (see [`parse_message`]).
    pub fn parse(input: impl Into<Bytes>) -> Result<SipMessage, ParseError> {
        parse_message(input.into(), &ParseLimits::default())
    }

    /// The start line.
    pub fn start_line(&self) -> &StartLine {
        &self.start
    }

    /// True for requests.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request(_))
    }

    /// The request line, if this is a request.
    pub fn request(&self) -> Option<&Request> {
        match &self.start {
            StartLine::Request(r) => Some(r),
            StartLine::Response(_) => None,
        }
    }

    /// The status line, if this is a response.
    pub fn response(&self) -> Option<&Response> {
        match &self.start {
            StartLine::Response(r) => Some(r),
            StartLine::Request(_) => None,
        }
    }

    /// The request method, if this is a request.
    pub fn method(&self) -> Option<&Method> {
        self.request().map(|r| &r.method)
    }

    /// The status code, if this is a response.
    pub fn status(&self) -> Option<u16> {
        self.response().map(|r| r.code)
    }

    /// True when the To header carries a tag. For a request: it belongs to a dialog
    /// (RFC 3261 §12.2), and a proxy routes it by its Route set (§16.12).
    pub fn has_to_tag(&self) -> bool {
        self.headers
            .get_str(&HeaderName::To)
            .and_then(|v| addr::NameAddr::parse(v).ok().map(|a| a.tag().is_some()))
            .unwrap_or(false)
    }

    /// Replaces the Request-URI (requests only; ignored for responses).
    pub fn set_request_uri(&mut self, uri: impl Into<Bytes>) {
        if let StartLine::Request(r) = &mut self.start {
            r.uri = uri.into();
            r.raw = None;
        }
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Replaces the body and sets `Content-Length` to match.
    pub fn set_body(&mut self, body: Bytes) {
        self.headers
            .set(HeaderName::ContentLength, body.len().to_string());
        self.body = body;
    }

    /// Serializes the message. Unmodified parts are written as their original bytes.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len_hint());
        self.write_to(&mut out);
        out.freeze()
    }

    /// Appends the serialized message to `out`.
    pub fn write_to(&self, out: &mut BytesMut) {
        match &self.start {
            StartLine::Request(r) => match &r.raw {
                Some(raw) => out.put_slice(raw),
                None => {
                    out.put_slice(r.method.as_str().as_bytes());
                    out.put_u8(b' ');
                    out.put_slice(&r.uri);
                    out.put_slice(b" SIP/2.0\r\n");
                }
            },
            StartLine::Response(r) => match &r.raw {
                Some(raw) => out.put_slice(raw),
                None => {
                    out.put_slice(b"SIP/2.0 ");
                    out.put_slice(r.code.to_string().as_bytes());
                    out.put_u8(b' ');
                    out.put_slice(&r.reason);
                    out.put_slice(b"\r\n");
                }
            },
        }
        self.headers.write_to(out);
        out.put_slice(&self.separator);
        out.put_slice(&self.body);
    }

    fn encoded_len_hint(&self) -> usize {
        64 + self.headers.encoded_len_hint() + self.body.len()
    }
}

impl std::fmt::Display for SipMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}
