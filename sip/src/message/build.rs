//! Building responses and CANCEL requests from a received or sent request
//! (RFC 3261 §8.2.6, §9.1, §16.2), and fresh tags and branch ids (§19.3, §8.1.1.7).

use bytes::Bytes;
use rand::Rng;

use super::addr::NameAddr;
use super::cseq::CSeq;
use super::scan::{is_token, trim};
use super::via::BRANCH_MAGIC;
use super::{HeaderName, Headers, Method, Request, Response, SipMessage, StartLine};

/// Why a request could not be derived from another one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The source message is a response, not a request.
    #[error("not a request")]
    NotARequest,
    /// A header the new message must copy is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header the new message must copy cannot be parsed.
    #[error("malformed header {0}")]
    Malformed(&'static str),
}

/// Appends `len` random lowercase hex digits to `out`.
pub(crate) fn push_random_hex(out: &mut String, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rng = rand::thread_rng();
    out.extend((0..len).map(|_| char::from(HEX[rng.gen_range(0..16)])));
}

/// `len` random lowercase hex digits.
fn random_hex(len: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(HEX[rng.gen_range(0..16)]))
        .collect()
}

/// A fresh From/To tag: 64 random bits in hex (RFC 3261 §19.3 asks for at least 32).
pub fn new_tag() -> String {
    random_hex(16)
}

/// A fresh RFC 3261 branch id: the magic cookie `z9hG4bK` followed by 64 random bits
/// in hex (§8.1.1.7). Proxies that detect loops use [`crate::proxy::loops`] instead.
pub fn new_branch() -> String {
    format!("{BRANCH_MAGIC}{}", random_hex(16))
}

/// The default reason phrase for a status code (RFC 3261 §21 and the extensions the
/// IMS core answers with).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        430 => "Flow Failed",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => match code / 100 {
            1 => "Progress",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// A response to `req` with the default reason phrase, a fresh To tag (unless the code
/// is 100 or the request already has one) and no extra headers. See [`response_with`].
pub fn response(req: &SipMessage, code: u16) -> SipMessage {
    response_with(req, code, reason_phrase(code), None, &[])
}

/// A response to `req` built per RFC 3261 §8.2.6.2: every Via (in order), From, To,
/// Call-ID and CSeq are copied; a To tag is added to non-100 responses when the request
/// has none (`to_tag`, or a fresh one from [`new_tag`]); then `extra` headers (Server,
/// Min-Expires, WWW-Authenticate, Retry-After, ...) in the given order; then
/// `Content-Length: 0`. A 100 also copies `Timestamp` (§8.2.6.1).
///
/// Headers absent from `req` are skipped rather than failing: the parser guarantees
/// them for parsed messages, and a best-effort response is still better than none.
pub fn response_with(
    req: &SipMessage,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &[(HeaderName, &str)],
) -> SipMessage {
    let mut headers = Headers::with_capacity(8 + extra.len());
    for h in req.headers.get_all(&HeaderName::Via) {
        headers.push(HeaderName::Via, h.value().clone());
    }
    for name in [HeaderName::From, HeaderName::To] {
        let Some(value) = req.headers.get_value(&name) else {
            continue;
        };
        let needs_tag = name == HeaderName::To
            && code != 100
            && std::str::from_utf8(value)
                .ok()
                .and_then(|v| NameAddr::parse(v).ok())
                .is_some_and(|a| a.tag().is_none());
        if needs_tag {
            let tag = to_tag.map_or_else(new_tag, str::to_string);
            let mut v = value.to_vec();
            v.extend_from_slice(b";tag=");
            v.extend_from_slice(tag.as_bytes());
            headers.push(name, v);
        } else {
            headers.push(name, value.clone());
        }
    }
    for name in [HeaderName::CallId, HeaderName::CSeq] {
        if let Some(v) = req.headers.get_value(&name) {
            headers.push(name, v.clone());
        }
    }
    if code == 100 {
        let ts = HeaderName::Other(Bytes::from_static(b"Timestamp"));
        if let Some(v) = req.headers.get_value(&ts) {
            headers.push(ts, v.clone());
        }
    }
    for (name, value) in extra {
        headers.push(name.clone(), Bytes::copy_from_slice(value.as_bytes()));
    }
    headers.push(HeaderName::ContentLength, "0");
    SipMessage::new(
        StartLine::Response(Response::new(
            code,
            Bytes::copy_from_slice(reason.as_bytes()),
        )),
        headers,
        Bytes::new(),
    )
}

/// The `100 Trying` a stateful proxy sends for an INVITE (RFC 3261 §16.2): hop by hop,
/// so it carries no To tag.
pub fn trying(req: &SipMessage) -> SipMessage {
    response(req, 100)
}

/// The CANCEL for a request this element sent (RFC 3261 §9.1): same Request-URI,
/// Call-ID, From, To and CSeq number (method CANCEL), a single Via equal to the top Via
/// of the cancelled request (so it reaches the same transaction downstream), the same
/// Route headers, `Max-Forwards: 70` (§8.1.1.6) and no body.
pub fn cancel(req: &SipMessage) -> Result<SipMessage, BuildError> {
    let uri = req.request().ok_or(BuildError::NotARequest)?.uri.clone();
    let via = req
        .headers
        .first_value(&HeaderName::Via)
        .ok_or(BuildError::MissingHeader("Via"))?;
    let cseq_value = req
        .headers
        .get_value(&HeaderName::CSeq)
        .ok_or(BuildError::MissingHeader("CSeq"))?;
    let cseq = CSeq::parse(cseq_value).map_err(|_| BuildError::Malformed("CSeq"))?;
    let mut headers = Headers::with_capacity(10);
    headers.push(HeaderName::Via, via);
    for h in req.headers.get_all(&HeaderName::Route) {
        headers.push(HeaderName::Route, h.value().clone());
    }
    headers.push(HeaderName::MaxForwards, "70");
    for (name, label) in [
        (HeaderName::From, "From"),
        (HeaderName::To, "To"),
        (HeaderName::CallId, "Call-ID"),
    ] {
        let v = req
            .headers
            .get_value(&name)
            .ok_or(BuildError::MissingHeader(label))?;
        headers.push(name, v.clone());
    }
    headers.push(
        HeaderName::CSeq,
        CSeq {
            seq: cseq.seq,
            method: Method::Cancel,
        }
        .to_string(),
    );
    headers.push(HeaderName::ContentLength, "0");
    Ok(SipMessage::new(
        StartLine::Request(Request::new(Method::Cancel, uri)),
        headers,
        Bytes::new(),
    ))
}

/// Lines [`bad_request_from_raw`] looks at, at most (a parse failure may be caused by
/// an over-long header section; this bounds the work spent answering it).
const RAW_SCAN_MAX_LINES: usize = 256;

/// A best-effort `400 Bad Request` for bytes that failed to parse (RFC 3261 §8.2.6,
/// §18.2.1: a malformed request should be answered when a response can be routed).
///
/// The input must start with something that is not a status line; the header lines
/// (folded lines are joined, compact names understood) must yield at least one Via and
/// From, To, Call-ID and CSeq, or no response is built (`None`): responses and
/// unreadable requests are dropped. `reason` goes into the status line, so it should
/// say what was wrong (e.g. the parse error).
pub fn bad_request_from_raw(input: &[u8], reason: &str) -> Option<SipMessage> {
    let mut lines = input
        .split(|c| *c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .skip_while(|l| l.is_empty())
        .take(RAW_SCAN_MAX_LINES);
    let first = lines.next()?;
    if first.starts_with(b"SIP/") {
        return None;
    }
    let method = first.split(|c| *c == b' ').next().filter(|m| is_token(m))?;
    // Join folded lines, stop at the empty line.
    let mut fields: Vec<Vec<u8>> = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        match (line.first(), fields.last_mut()) {
            (Some(b' ' | b'\t'), Some(last)) => {
                last.push(b' ');
                last.extend_from_slice(trim(line));
            }
            _ => fields.push(line.to_vec()),
        }
    }
    let wanted = [
        HeaderName::Via,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
    ];
    let mut headers = Headers::with_capacity(8);
    for field in &fields {
        let Some(colon) = memchr::memchr(b':', field) else {
            continue;
        };
        let (name, value) = field.split_at(colon);
        let name = HeaderName::from_bytes(trim(name));
        let value = trim(value.get(1..).unwrap_or_default());
        if wanted.contains(&name) && !value.is_empty() {
            headers.push(name, Bytes::copy_from_slice(value));
        }
    }
    if wanted.iter().any(|n| headers.get(n).is_none()) {
        tracing::debug!("unparsable request without routable headers: not answered");
        return None;
    }
    let req = SipMessage::new(
        StartLine::Request(Request::new(
            Method::from_token(method),
            Bytes::from_static(b"sip:invalid"),
        )),
        headers,
        Bytes::new(),
    );
    Some(response_with(&req, 400, reason, None, &[]))
}

/// A quoted-string (RFC 3261 §25.1): `"` and `\` escaped, control characters dropped
/// so no value can break the header line.
pub fn quoted_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::via::Via;

    const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1, SIP/2.0/UDP ua.example.com;branch=z9hG4bKua\r\n\
Via: SIP/2.0/TCP first.example.com;branch=z9hG4bK1st\r\n\
Route: <sip:p2.example.com;lr>\r\n\
Route: <sip:p3.example.com;lr>\r\n\
Max-Forwards: 69\r\n\
From: Alice <sip:alice@example.com>;tag=a1\r\n\
To: Bob <sip:bob@example.com>\r\n\
Call-ID: c1@example.com\r\n\
CSeq: 314 INVITE\r\n\
Timestamp: 54\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n";

    fn invite() -> SipMessage {
        SipMessage::parse(Bytes::from_static(INVITE)).unwrap()
    }

    fn to_tag(msg: &SipMessage) -> Option<String> {
        let to = msg.headers.get_str(&HeaderName::To).unwrap();
        NameAddr::parse(to).unwrap().tag().map(str::to_string)
    }

    #[test]
    fn response_copies_dialog_headers_and_all_vias() {
        let resp = response(&invite(), 486);
        assert_eq!(resp.status(), Some(486));
        assert_eq!(resp.response().unwrap().reason, "Busy Here");
        let vias: Vec<_> = resp.headers.values(&HeaderName::Via).collect();
        assert_eq!(vias.len(), 3);
        assert!(vias[0].starts_with(b"SIP/2.0/UDP p1.example.com"));
        assert!(vias[2].starts_with(b"SIP/2.0/TCP first.example.com"));
        for name in [HeaderName::From, HeaderName::CallId, HeaderName::CSeq] {
            assert_eq!(
                resp.headers.get_value(&name),
                invite().headers.get_value(&name)
            );
        }
        assert!(to_tag(&resp).is_some_and(|t| t.len() == 16));
        assert_eq!(resp.headers.get_str(&HeaderName::ContentLength), Some("0"));
        assert!(resp.body().is_empty());
        assert!(resp.headers.get(&HeaderName::Route).is_none());
        assert!(resp.headers.get(&HeaderName::ContentType).is_none());
        // It serializes into something the parser accepts.
        let reparsed = SipMessage::parse(resp.to_bytes()).unwrap();
        assert_eq!(reparsed.status(), Some(486));
    }

    #[test]
    fn response_keeps_an_existing_to_tag_and_uses_a_given_one() {
        let mut req = invite();
        let given = response_with(&req, 404, "Not Here", Some("mytag"), &[]);
        assert_eq!(to_tag(&given).as_deref(), Some("mytag"));
        assert_eq!(given.response().unwrap().reason, "Not Here");
        req.headers
            .set(HeaderName::To, "Bob <sip:bob@example.com>;tag=b9");
        let resp = response_with(&req, 200, "OK", Some("other"), &[]);
        assert_eq!(to_tag(&resp).as_deref(), Some("b9"));
    }

    #[test]
    fn response_appends_extra_headers_before_content_length() {
        let resp = response_with(
            &invite(),
            423,
            "Interval Too Brief",
            None,
            &[
                (HeaderName::MinExpires, "600"),
                (HeaderName::Server, "ims-core"),
            ],
        );
        let names: Vec<_> = resp.headers.iter().map(|h| h.name.clone()).collect();
        let n = names.len();
        assert_eq!(names[n - 3], HeaderName::MinExpires);
        assert_eq!(names[n - 2], HeaderName::Server);
        assert_eq!(names[n - 1], HeaderName::ContentLength);
        assert_eq!(resp.headers.get_str(&HeaderName::MinExpires), Some("600"));
    }

    #[test]
    fn trying_has_no_to_tag_and_copies_timestamp() {
        let t = trying(&invite());
        assert_eq!(t.status(), Some(100));
        assert_eq!(to_tag(&t), None);
        let ts = HeaderName::Other(Bytes::from_static(b"Timestamp"));
        assert_eq!(t.headers.get_str(&ts), Some("54"));
        assert!(response(&invite(), 180).headers.get(&ts).is_none());
    }

    #[test]
    fn cancel_matches_the_cancelled_request() {
        let req = invite();
        let c = cancel(&req).unwrap();
        assert_eq!(c.method(), Some(&Method::Cancel));
        assert_eq!(c.request().unwrap().uri, "sip:bob@example.com");
        let vias: Vec<_> = c.headers.values(&HeaderName::Via).collect();
        assert_eq!(vias.len(), 1);
        let top = req.headers.first_value(&HeaderName::Via).unwrap();
        assert_eq!(vias[0], top);
        let routes: Vec<_> = c.headers.values(&HeaderName::Route).collect();
        assert_eq!(
            routes,
            vec!["<sip:p2.example.com;lr>", "<sip:p3.example.com;lr>"]
        );
        assert_eq!(c.headers.get_str(&HeaderName::CSeq), Some("314 CANCEL"));
        for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
            assert_eq!(c.headers.get_value(&name), req.headers.get_value(&name));
        }
        assert!(c.body().is_empty());
        // Same transaction key as the INVITE apart from the method (§9.2).
        let reparsed = SipMessage::parse(c.to_bytes()).unwrap();
        let via = reparsed.headers.get_str(&HeaderName::Via).unwrap();
        assert_eq!(Via::parse(via).unwrap().branch(), Some("z9hG4bKp1"));
    }

    #[test]
    fn cancel_of_a_response_is_an_error() {
        let resp = response(&invite(), 180);
        assert_eq!(cancel(&resp), Err(BuildError::NotARequest));
    }

    #[test]
    fn branches_and_tags_are_fresh() {
        let b1 = new_branch();
        let b2 = new_branch();
        assert!(b1.starts_with(BRANCH_MAGIC));
        assert_eq!(b1.len(), BRANCH_MAGIC.len() + 16);
        assert_ne!(b1, b2);
        assert_ne!(new_tag(), new_tag());
    }

    #[test]
    fn bad_request_from_partly_readable_bytes() {
        // A broken CSeq fails the parse, but the response can still be routed.
        let raw = b"INVITE sip:bob@example.com SIP/2.0\r\n\
v: SIP/2.0/UDP ua.example.com;branch=z9hG4bKx,\r\n SIP/2.0/UDP second;branch=z9hG4bKy\r\n\
f: <sip:alice@example.com>;tag=a\r\nt: <sip:bob@example.com>\r\ni: abc\r\n\
CSeq: one INVITE\r\nGarbage\r\n\r\n";
        assert!(SipMessage::parse(Bytes::from_static(raw)).is_err());
        let resp = bad_request_from_raw(raw, "Malformed CSeq").unwrap();
        assert_eq!(resp.status(), Some(400));
        assert_eq!(resp.response().unwrap().reason, "Malformed CSeq");
        let vias: Vec<_> = resp.headers.values(&HeaderName::Via).collect();
        assert_eq!(vias.len(), 2);
        assert_eq!(resp.headers.get_str(&HeaderName::CallId), Some("abc"));
        assert_eq!(resp.headers.get_str(&HeaderName::CSeq), Some("one INVITE"));
        assert!(to_tag(&resp).is_some());
    }

    #[test]
    fn no_bad_request_for_responses_or_unroutable_bytes() {
        let resp = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\r\n";
        assert_eq!(bad_request_from_raw(resp, "x"), None);
        let no_via = b"INVITE sip:b@y SIP/2.0\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\n\
Call-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";
        assert_eq!(bad_request_from_raw(no_via, "x"), None);
        assert_eq!(bad_request_from_raw(b"", "x"), None);
        assert_eq!(bad_request_from_raw(b"\xff\xfe garbage", "x"), None);
    }

    #[test]
    fn reason_phrases() {
        assert_eq!(reason_phrase(482), "Loop Detected");
        assert_eq!(reason_phrase(499), "Client Error");
        assert_eq!(reason_phrase(699), "Global Failure");
    }
}
