//! Request validation before proxying (RFC 3261 §16.3).
//!
//! Steps implemented: 1 reasonable syntax (the parser did most; here the Request-URI
//! and Max-Forwards), 2 URI scheme, 3 Max-Forwards, 4 loop detection, 5 Proxy-Require.
//! Step 6 (Proxy-Authorization) is policy and left to the CSCF.
//!
//! Max-Forwards 0 on an OPTIONS: §16.3 step 3 lets the element answer it as a UAS
//! (§11). This module always reports [`Rejection::TooManyHops`]; a CSCF that wants to
//! answer such an OPTIONS with 200 matches on that variant before building the 483.

use crate::message::build::response_with;
use crate::message::uri::Uri;
use crate::{HeaderName, Method, SipMessage};

use super::loops::{is_loop, LoopHash};
use super::ProxyConfig;

/// Why a request is answered instead of proxied. Each variant maps to its status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Malformed request (400), with the reason sent in the reason phrase.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// Request-URI scheme other than sip, sips or tel (416, §16.3 step 2).
    #[error("unsupported URI scheme {0}")]
    UnsupportedUriScheme(String),
    /// Max-Forwards is 0 (483, §16.3 step 3).
    #[error("too many hops")]
    TooManyHops,
    /// The request looped back to us unchanged (482, §16.3 step 4).
    #[error("loop detected")]
    LoopDetected,
    /// Proxy-Require lists option tags we do not support (420, §16.3 step 5); they are
    /// listed in `Unsupported`.
    #[error("unsupported Proxy-Require option tags {0:?}")]
    BadExtension(Vec<String>),
}

impl Rejection {
    /// The status code of the response.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::BadRequest(_) => 400,
            Rejection::UnsupportedUriScheme(_) => 416,
            Rejection::TooManyHops => 483,
            Rejection::LoopDetected => 482,
            Rejection::BadExtension(_) => 420,
        }
    }

    /// The response to send, or `None` for an ACK, which is never answered (§17).
    pub fn response(&self, req: &SipMessage) -> Option<SipMessage> {
        if req.method() == Some(&Method::Ack) {
            return None;
        }
        let code = self.status();
        let unsupported;
        let (reason, extra): (&str, Vec<(HeaderName, &str)>) = match self {
            Rejection::BadRequest(why) => (why, Vec::new()),
            Rejection::BadExtension(tags) => {
                unsupported = tags.join(", ");
                (
                    crate::message::build::reason_phrase(code),
                    vec![(HeaderName::Unsupported, unsupported.as_str())],
                )
            }
            _ => (crate::message::build::reason_phrase(code), Vec::new()),
        };
        Some(response_with(req, code, reason, None, &extra))
    }
}

/// The request passed §16.3: what the forwarding step needs from validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// Hash of the request as received, for the branch ids of every fork (§16.6 step 8).
    pub loop_hash: LoopHash,
}

/// Runs the §16.3 checks on a received request. Logs the reason on rejection.
pub fn validate(req: &SipMessage, config: &ProxyConfig) -> Result<Validated, Rejection> {
    let result = check(req, config);
    if let Err(e) = &result {
        tracing::debug!(error = %e, "request rejected by proxy validation");
    }
    result
}

fn check(req: &SipMessage, config: &ProxyConfig) -> Result<Validated, Rejection> {
    let r = req
        .request()
        .ok_or(Rejection::BadRequest("not a request"))?;
    // Step 1 and 2: the Request-URI must parse, and be a scheme we proxy.
    let uri_text =
        std::str::from_utf8(&r.uri).map_err(|_| Rejection::BadRequest("Request-URI not UTF-8"))?;
    let uri = Uri::parse(uri_text).map_err(|_| Rejection::BadRequest("malformed Request-URI"))?;
    if !["sip", "sips", "tel"]
        .iter()
        .any(|s| uri.scheme.eq_ignore_ascii_case(s))
    {
        return Err(Rejection::UnsupportedUriScheme(uri.scheme.to_string()));
    }
    // Step 3: Max-Forwards (its syntax, 0-255 digits, was checked by the parser).
    if let Some(mf) = req.headers.get_str(&HeaderName::MaxForwards) {
        let n: u8 = mf
            .trim()
            .parse()
            .map_err(|_| Rejection::BadRequest("malformed Max-Forwards"))?;
        if n == 0 {
            return Err(Rejection::TooManyHops);
        }
    }
    // Step 4: loop detection.
    let loop_hash = LoopHash::of(req);
    if is_loop(req, &loop_hash, config) {
        return Err(Rejection::LoopDetected);
    }
    // Step 5: Proxy-Require.
    let unsupported: Vec<String> = req
        .headers
        .values(&HeaderName::ProxyRequire)
        .map(|tag| String::from_utf8_lossy(&tag).into_owned())
        .filter(|tag| !config.supported.iter().any(|s| s.eq_ignore_ascii_case(tag)))
        .collect();
    if !unsupported.is_empty() {
        return Err(Rejection::BadExtension(unsupported));
    }
    Ok(Validated { loop_hash })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::LocalAddr;
    use bytes::Bytes;

    fn config() -> ProxyConfig {
        ProxyConfig {
            local: vec![LocalAddr::new("pcscf.example.com", Some(5060))],
            supported: vec!["sec-agree".into()],
        }
    }

    fn req(method: &str, ruri: &str, extra: &str) -> SipMessage {
        SipMessage::parse(Bytes::from(format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP ua.example.com;branch=z9hG4bKua\r\n\
             {extra}From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n\
             Call-ID: c\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        )))
        .unwrap()
    }

    #[test]
    fn accepts_sip_sips_and_tel() {
        for ruri in ["sip:b@example.com", "SIPS:b@example.com", "tel:+15551234"] {
            assert!(
                validate(&req("INVITE", ruri, ""), &config()).is_ok(),
                "{ruri}"
            );
        }
    }

    #[test]
    fn other_scheme_is_416() {
        let r = req("INVITE", "mailto:b@example.com", "");
        let e = validate(&r, &config()).unwrap_err();
        assert_eq!(e, Rejection::UnsupportedUriScheme("mailto".into()));
        assert_eq!(e.response(&r).unwrap().status(), Some(416));
    }

    #[test]
    fn malformed_request_uri_is_400() {
        let r = req("INVITE", "sip:b@bad_host!", "");
        let e = validate(&r, &config()).unwrap_err();
        let resp = e.response(&r).unwrap();
        assert_eq!(resp.status(), Some(400));
        assert_eq!(resp.response().unwrap().reason, "malformed Request-URI");
    }

    #[test]
    fn max_forwards_zero_is_483_and_one_passes() {
        let r = req("INVITE", "sip:b@example.com", "Max-Forwards: 0\r\n");
        let e = validate(&r, &config()).unwrap_err();
        assert_eq!(e, Rejection::TooManyHops);
        let resp = e.response(&r).unwrap();
        assert_eq!(resp.status(), Some(483));
        assert_eq!(resp.response().unwrap().reason, "Too Many Hops");
        let ok = req("INVITE", "sip:b@example.com", "Max-Forwards: 1\r\n");
        assert!(validate(&ok, &config()).is_ok());
        // An OPTIONS gets the same verdict; answering it is the caller's choice.
        let opt = req("OPTIONS", "sip:pcscf.example.com", "Max-Forwards: 0\r\n");
        assert_eq!(validate(&opt, &config()), Err(Rejection::TooManyHops));
    }

    #[test]
    fn max_forwards_out_of_range_is_400() {
        // The parser refuses it on the wire; a message built in code can still carry it.
        let wire = "INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n\
            Max-Forwards: 300\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n\
            Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(SipMessage::parse(wire).unwrap_err().status_code(), 400);
        let mut r = req("INVITE", "sip:b@example.com", "");
        r.headers.set(HeaderName::MaxForwards, "300");
        assert_eq!(validate(&r, &config()).unwrap_err().status(), 400);
    }

    #[test]
    fn ack_rejections_are_not_answered() {
        let r = req("ACK", "sip:b@example.com", "Max-Forwards: 0\r\n");
        let e = validate(&r, &config()).unwrap_err();
        assert_eq!(e, Rejection::TooManyHops);
        assert!(e.response(&r).is_none());
    }

    #[test]
    fn looped_request_is_482() {
        let first = req("INVITE", "sip:b@example.com", "");
        let hash = validate(&first, &config()).unwrap().loop_hash;
        // The request comes back with our Via below another proxy's, unchanged otherwise.
        let ours = format!(
            "SIP/2.0/UDP pcscf.example.com:5060;branch={}",
            hash.branch()
        );
        let mut back = first.clone();
        back.headers.push_front(HeaderName::Via, ours);
        back.headers.push_front(
            HeaderName::Via,
            "SIP/2.0/UDP other.example.com;branch=z9hG4bKo",
        );
        let e = validate(&back, &config()).unwrap_err();
        assert_eq!(e, Rejection::LoopDetected);
        assert_eq!(e.response(&back).unwrap().status(), Some(482));
    }

    #[test]
    fn spiral_with_changed_request_uri_is_not_a_loop() {
        let first = req("INVITE", "sip:b@example.com", "");
        let hash = validate(&first, &config()).unwrap().loop_hash;
        let ours = format!("SIP/2.0/UDP pcscf.example.com;branch={}", hash.branch());
        let mut spiral = req("INVITE", "sip:b@as.example.com", "");
        spiral.headers.push_front(HeaderName::Via, ours.clone());
        assert!(validate(&spiral, &config()).is_ok());
        // Same Request-URI but a Route added (e.g. by an application server).
        let mut routed = req("INVITE", "sip:b@example.com", "Route: <sip:scscf;lr>\r\n");
        routed.headers.push_front(HeaderName::Via, ours);
        assert!(validate(&routed, &config()).is_ok());
    }

    #[test]
    fn proxy_require_unknown_is_420_with_unsupported() {
        let r = req(
            "REGISTER",
            "sip:example.com",
            "Proxy-Require: sec-agree, foo\r\nProxy-Require: bar\r\n",
        );
        let e = validate(&r, &config()).unwrap_err();
        assert_eq!(e, Rejection::BadExtension(vec!["foo".into(), "bar".into()]));
        let resp = e.response(&r).unwrap();
        assert_eq!(resp.status(), Some(420));
        assert_eq!(
            resp.headers.get_str(&HeaderName::Unsupported),
            Some("foo, bar")
        );
        let ok = req(
            "REGISTER",
            "sip:example.com",
            "Proxy-Require: Sec-Agree\r\n",
        );
        assert!(validate(&ok, &config()).is_ok());
    }
}
