//! The message parser (RFC 3261 §7, §25).
//!
//! It finds the header section, unfolds continuation lines, identifies header names and
//! checks what every node relies on: start line, mandatory headers, CSeq and
//! Content-Length. Header values are otherwise kept raw and parsed lazily.

use bytes::{Bytes, BytesMut};

use super::cseq::CSeq;
use super::error::ParseError;
use super::headers::{Header, HeaderName, Headers};
use super::method::Method;
use super::scan;
use super::{Request, Response, SipMessage, StartLine};

/// Limits applied while parsing untrusted input.
#[derive(Debug, Clone)]
pub struct ParseLimits {
    /// Largest accepted message (headers + body), in bytes.
    pub max_message_size: usize,
    /// Largest number of header lines.
    pub max_headers: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_message_size: 65_535,
            max_headers: 256,
        }
    }
}

/// A line inside the input: `content` excludes the terminator, `next` is where the
/// following line starts.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    content_end: usize,
    next: usize,
}

/// The line starting at `start`, or `None` if no `\n` follows (header section incomplete).
fn line_at(s: &[u8], start: usize) -> Option<Line> {
    let nl = start + memchr::memchr(b'\n', s.get(start..)?)?;
    let content_end = if nl > start && s[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    Some(Line {
        start,
        content_end,
        next: nl + 1,
    })
}

/// Where the header section of a message starting at `start` ends: the offset of the
/// first body byte, or `None` when the empty line has not arrived yet. Used by the
/// stream framer as well as by the parser.
pub fn header_section_end(s: &[u8], start: usize) -> Option<usize> {
    let mut pos = start;
    loop {
        let line = line_at(s, pos)?;
        if line.content_end == line.start && pos != start {
            return Some(line.next);
        }
        pos = line.next;
    }
}

/// Parses one complete message (for a datagram, or a frame cut by the stream codec).
///
/// Leading CRLFs (keep-alives) are skipped. When Content-Length is present the body is
/// cut to it (extra bytes are ignored, as RFC 3261 §18.3 allows for datagrams); when it
/// is absent the rest of the input is the body.
pub fn parse_message(input: Bytes, limits: &ParseLimits) -> Result<SipMessage, ParseError> {
    let len = input.len();
    parse(input, limits)
        .inspect_err(|e| tracing::debug!(len, error = %e, "unparseable SIP message"))
}

fn parse(input: Bytes, limits: &ParseLimits) -> Result<SipMessage, ParseError> {
    if input.len() > limits.max_message_size {
        return Err(ParseError::TooLarge {
            size: input.len(),
            limit: limits.max_message_size,
        });
    }
    let mut pos = 0;
    while pos < input.len() && matches!(input[pos], b'\r' | b'\n') {
        pos += 1;
    }
    let first = line_at(&input, pos).ok_or(ParseError::Incomplete)?;
    let start = parse_start_line(
        &input[first.start..first.content_end],
        input.slice(first.start..first.next),
    )?;

    let mut headers = Headers::with_capacity(32);
    let mut line = line_at(&input, first.next).ok_or(ParseError::Incomplete)?;
    let (separator, body_start) = loop {
        if line.content_end == line.start {
            break (input.slice(line.start..line.next), line.next);
        }
        if matches!(input[line.start], b' ' | b'\t') {
            return Err(ParseError::Header("continuation line without a header"));
        }
        // Gather continuation lines (folding, RFC 3261 §7.3.1); the first line that is
        // not one starts the next header (or is the empty separator line).
        let mut last = line;
        let next = loop {
            let next = line_at(&input, last.next).ok_or(ParseError::Incomplete)?;
            if next.content_end > next.start && matches!(input[next.start], b' ' | b'\t') {
                last = next;
            } else {
                break next;
            }
        };
        if headers.len() >= limits.max_headers {
            return Err(ParseError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        headers.push_header(parse_header(
            &input,
            line.start,
            last.content_end,
            last.next,
        )?);
        line = next;
    };

    check_mandatory(&headers, &start)?;
    // A message may be kept for a while (a transaction's response, a proxy's request):
    // no spare header slots (a shrink in place, no copy).
    headers.shrink_to_fit();

    let available = input.len() - body_start;
    let body = match content_length(&headers)? {
        Some(declared) if declared > available => {
            return Err(ParseError::BodyTooShort {
                declared,
                available,
            })
        }
        Some(declared) => input.slice(body_start..body_start + declared),
        None => input.slice(body_start..),
    };
    Ok(SipMessage {
        start,
        headers,
        separator,
        body,
    })
}

fn parse_start_line(line: &[u8], raw: Bytes) -> Result<StartLine, ParseError> {
    if line.starts_with(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let sp1 = memchr::memchr(b' ', line).ok_or(ParseError::StartLine("no status code"))?;
        check_version(&line[..sp1])?;
        let rest = &line[sp1 + 1..];
        if rest.len() < 3 || (rest.len() > 3 && rest[3] != b' ') {
            return Err(ParseError::StartLine("status code is not three digits"));
        }
        let code_bytes = &rest[..3];
        if !code_bytes.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::StartLine("status code is not three digits"));
        }
        let code = code_bytes
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        if !(100..=699).contains(&code) {
            return Err(ParseError::StartLine("status code out of range"));
        }
        let reason = if line.len() > sp1 + 5 {
            raw.slice(sp1 + 5..line.len())
        } else {
            Bytes::new()
        };
        Ok(StartLine::Response(Response {
            code,
            reason,
            raw: Some(raw),
        }))
    } else {
        // Request-Line = Method SP Request-URI SP SIP-Version CRLF: exactly two single
        // spaces, none inside the Request-URI (RFC 3261 §7.1, §25.1; RFC 4475 §3.1.2.8-10).
        if line.last().is_some_and(|&c| scan::is_ws(c)) {
            return Err(ParseError::StartLine(
                "whitespace at the end of the request line",
            ));
        }
        let sp1 = memchr::memchr(b' ', line).ok_or(ParseError::StartLine("no Request-URI"))?;
        let sp2 = memchr::memrchr(b' ', line).ok_or(ParseError::StartLine("no SIP version"))?;
        if sp2 <= sp1 {
            return Err(ParseError::StartLine("no SIP version"));
        }
        let method = &line[..sp1];
        if !scan::is_token(method) {
            return Err(ParseError::StartLine("method is not a token"));
        }
        check_version(&line[sp2 + 1..])?;
        let uri = &line[sp1 + 1..sp2];
        if uri.is_empty() {
            return Err(ParseError::StartLine("empty Request-URI"));
        }
        if uri.iter().any(|&c| scan::is_ws(c)) {
            return Err(ParseError::StartLine(
                "whitespace in or around the Request-URI",
            ));
        }
        if !valid_request_uri(uri) {
            return Err(ParseError::StartLine("malformed Request-URI"));
        }
        Ok(StartLine::Request(Request {
            method: Method::from_token(method),
            uri: raw.slice(sp1 + 1..sp2),
            raw: Some(raw),
        }))
    }
}

/// An absolute URI: `scheme ":" rest`, no whitespace or control characters.
fn valid_request_uri(uri: &[u8]) -> bool {
    let Some(colon) = memchr::memchr(b':', uri) else {
        return false;
    };
    let scheme = &uri[..colon];
    !scheme.is_empty()
        && scheme[0].is_ascii_alphabetic()
        && scheme
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        && colon + 1 < uri.len()
        && uri
            .iter()
            .all(|&c| c > 0x20 && c != 0x7f && c != b'<' && c != b'>')
}

fn check_version(v: &[u8]) -> Result<(), ParseError> {
    // SIP-Version is case-insensitive (RFC 3261 §7.1).
    if v.eq_ignore_ascii_case(b"SIP/2.0") {
        Ok(())
    } else {
        Err(ParseError::Version)
    }
}

fn parse_header(
    input: &Bytes,
    start: usize,
    content_end: usize,
    next: usize,
) -> Result<Header, ParseError> {
    let line = &input[start..content_end];
    let colon = memchr::memchr(b':', line).ok_or(ParseError::Header("no colon"))?;
    let name_range = scan::trim_range(input, start..start + colon);
    if !scan::is_token(&input[name_range.clone()]) {
        return Err(ParseError::Header("header name is not a token"));
    }
    let value_range = scan::trim_range(input, start + colon + 1..content_end);
    let raw_value = &input[value_range.clone()];
    // Unfold: replace each CRLF+WS run with a single space; copy only when folded.
    let value = if raw_value.contains(&b'\n') {
        let mut v = BytesMut::with_capacity(raw_value.len());
        let mut i = 0;
        while i < raw_value.len() {
            let c = raw_value[i];
            if c == b'\r' || c == b'\n' {
                while v.last().is_some_and(|c| matches!(c, b' ' | b'\t')) {
                    v.truncate(v.len() - 1);
                }
                while i < raw_value.len() && scan::is_ws(raw_value[i]) {
                    i += 1;
                }
                v.extend_from_slice(b" ");
                continue;
            }
            v.extend_from_slice(&[c]);
            i += 1;
        }
        v.freeze()
    } else {
        input.slice(value_range)
    };
    Ok(Header::parsed(
        HeaderName::from_shared(input.slice(name_range)),
        value,
        input.slice(start..next),
    ))
}

fn single<'a>(
    headers: &'a Headers,
    name: &'a HeaderName,
    label: &'static str,
) -> Result<Option<&'a Bytes>, ParseError> {
    let mut it = headers.get_all(name);
    let first = it.next();
    if it.next().is_some() {
        return Err(ParseError::DuplicateHeader(label));
    }
    Ok(first.map(|h| h.value()))
}

fn content_length(headers: &Headers) -> Result<Option<usize>, ParseError> {
    let Some(v) = single(headers, &HeaderName::ContentLength, "Content-Length")? else {
        return Ok(None);
    };
    match decimal(v) {
        Some(n) if n < 1_000_000_000 => Ok(Some(n as usize)),
        _ => Err(ParseError::HeaderValue {
            header: "Content-Length",
            reason: "not a decimal number below 10^9",
        }),
    }
}

/// `1*DIGIT` as a number, `None` when empty, not all digits or above `u32::MAX`
/// (leading zeros do not count towards the size).
pub(crate) fn decimal(v: &[u8]) -> Option<u32> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u32, |acc, &d| {
        if d.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        } else {
            None
        }
    })
}

/// RFC 3261 §8.1.1: To, From, CSeq, Call-ID and Via are mandatory in every message
/// (Max-Forwards is checked by the proxy core, which may add it).
fn check_mandatory(headers: &Headers, start: &StartLine) -> Result<(), ParseError> {
    for (name, label) in [
        (HeaderName::To, "To"),
        (HeaderName::From, "From"),
        (HeaderName::CallId, "Call-ID"),
        (HeaderName::CSeq, "CSeq"),
    ] {
        if single(headers, &name, label)?.is_none() {
            return Err(ParseError::MissingHeader(label));
        }
    }
    if headers.get(&HeaderName::Via).is_none() {
        return Err(ParseError::MissingHeader("Via"));
    }
    if let Some(v) = single(headers, &HeaderName::MaxForwards, "Max-Forwards")? {
        // 1*DIGIT; leading zeros are allowed (RFC 4475 §3.1.1.1 `0068`), the value is
        // at most 255 (RFC 3261 §20.22, RFC 4475 §3.1.2.4).
        if decimal(v).is_none_or(|n| n > 255) {
            return Err(ParseError::HeaderValue {
                header: "Max-Forwards",
                reason: "not a number 0-255",
            });
        }
    }
    let cseq_value = headers
        .get_value(&HeaderName::CSeq)
        .ok_or(ParseError::MissingHeader("CSeq"))?;
    let cseq = CSeq::parse(cseq_value)?;
    if let StartLine::Request(r) = start {
        if cseq.method != r.method {
            return Err(ParseError::CSeqMethodMismatch);
        }
    }
    Ok(())
}
