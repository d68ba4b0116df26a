//! Grammar checks on the header values the stack interprets, beyond what the parser
//! needs to frame a message (RFC 3261 §25.1).
//!
//! The parser ([`super::parse_message`]) checks only the start line, framing and the
//! mandatory headers, so a proxy can forward what it does not understand. A UAS, a
//! registrar or a proxy about to act on a request calls [`SipMessage::validate`] to
//! reject what RFC 4475 §3.1.2 lists as syntactically invalid but framable: empty
//! parameters (badinv01), unterminated quotes (quotbal), escaped headers in the
//! Request-URI (escruri), a non-GMT Date (baddate), an unbracketed URI with `?`
//! (regbadct), whitespace inside `<>` (badaspec), a non-token display name (baddn).
//!
//! What stays for the layers above: unsupported `Require`/`Proxy-Require` (RFC 4475
//! §3.3.5, 420), unknown Content-Type (§3.3.6, 415), unknown URI schemes (§3.3.2, 416),
//! `Max-Forwards: 0` (§3.3.11, 483).

use super::addr::NameAddr;
use super::auth_params::AuthParams;
use super::uri::Uri;
use super::via::Via;
use super::{HeaderName, ParseError, SipMessage};

/// Headers whose value is a comma-separated list of name-addr / addr-spec.
const NAME_ADDR_LISTS: [(HeaderName, &str); 8] = [
    (HeaderName::Contact, "Contact"),
    (HeaderName::Route, "Route"),
    (HeaderName::RecordRoute, "Record-Route"),
    (HeaderName::Path, "Path"),
    (HeaderName::ServiceRoute, "Service-Route"),
    (HeaderName::PAssertedIdentity, "P-Asserted-Identity"),
    (HeaderName::PPreferredIdentity, "P-Preferred-Identity"),
    (HeaderName::PAssociatedUri, "P-Associated-URI"),
];

/// Credentials and challenges, parsed with [`AuthParams`].
const AUTH_HEADERS: [(HeaderName, &str); 4] = [
    (HeaderName::Authorization, "Authorization"),
    (HeaderName::ProxyAuthorization, "Proxy-Authorization"),
    (HeaderName::WwwAuthenticate, "WWW-Authenticate"),
    (HeaderName::ProxyAuthenticate, "Proxy-Authenticate"),
];

/// Re-labels an error from a typed view with the header it came from.
fn in_header(header: &'static str) -> impl Fn(ParseError) -> ParseError {
    move |e| match e {
        ParseError::HeaderValue { reason, .. } => ParseError::HeaderValue { header, reason },
        other => other,
    }
}

fn text<'a>(value: &'a [u8], header: &'static str) -> Result<&'a str, ParseError> {
    std::str::from_utf8(value).map_err(|_| ParseError::HeaderValue {
        header,
        reason: "not UTF-8",
    })
}

/// A name-addr or addr-spec; SIP, SIPS and tel URIs inside are parsed too.
fn check_name_addr(value: &str, header: &'static str) -> Result<(), ParseError> {
    let addr = NameAddr::parse(value).map_err(in_header(header))?;
    if addr.uri != "*" {
        Uri::parse(addr.uri).map_err(in_header(header))?;
    }
    Ok(())
}

impl SipMessage {
    /// Checks the grammar of the start line's URI and of the headers the stack
    /// interprets (Via, From, To, the name-addr lists, credentials, Date). Returns the
    /// first violation; `status_code()` of the error is the answer to send (400).
    ///
    /// Implements RFC 3261 §25.1 for those headers, §19.1.1 (no headers in a
    /// Request-URI) and §20.17 (Date in GMT), as RFC 4475 §3.1.2 exercises them.
    pub fn validate(&self) -> Result<(), ParseError> {
        if let Some(req) = self.request() {
            let uri = text(&req.uri, "Request-URI")?;
            let parsed = Uri::parse(uri).map_err(in_header("Request-URI"))?;
            let is_sip = parsed.scheme.eq_ignore_ascii_case("sip")
                || parsed.scheme.eq_ignore_ascii_case("sips");
            if is_sip && parsed.headers.is_some() {
                return Err(ParseError::HeaderValue {
                    header: "Request-URI",
                    reason: "headers are not allowed in a Request-URI",
                });
            }
        }
        for value in self.headers.values(&HeaderName::Via) {
            Via::parse(text(&value, "Via")?)?;
        }
        for (name, label) in [(HeaderName::From, "From"), (HeaderName::To, "To")] {
            for h in self.headers.get_all(&name) {
                check_name_addr(text(h.value(), label)?, label)?;
            }
        }
        for (name, label) in &NAME_ADDR_LISTS {
            for value in self.headers.values(name) {
                check_name_addr(text(&value, label)?, label)?;
            }
        }
        for (name, label) in &AUTH_HEADERS {
            for h in self.headers.get_all(name) {
                AuthParams::parse(text(h.value(), label)?).map_err(in_header(label))?;
            }
        }
        let date = HeaderName::from_bytes(b"Date");
        if let Some(value) = self.headers.get_value(&date) {
            check_date(value)?;
        }
        Ok(())
    }
}

/// `Date: rfc1123-date`, which SIP restricts to GMT (RFC 3261 §20.17, §25.1):
/// `wkday "," SP 2DIGIT SP month SP 4DIGIT SP 2DIGIT ":" 2DIGIT ":" 2DIGIT SP "GMT"`.
fn check_date(value: &[u8]) -> Result<(), ParseError> {
    const BAD: ParseError = ParseError::HeaderValue {
        header: "Date",
        reason: "not an RFC 1123 date in GMT",
    };
    const WKDAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    // "Sat, 15 Oct 2005 04:44:56 GMT" is 29 octets.
    let v: &[u8; 29] = value.try_into().map_err(|_| BAD)?;
    let digits = |r: std::ops::Range<usize>| v[r].iter().all(u8::is_ascii_digit);
    let ok = WKDAYS.contains(&&v[0..3])
        && &v[3..5] == b", "
        && digits(5..7)
        && v[7] == b' '
        && MONTHS.contains(&&v[8..11])
        && v[11] == b' '
        && digits(12..16)
        && v[16] == b' '
        && digits(17..19)
        && v[19] == b':'
        && digits(20..22)
        && v[22] == b':'
        && digits(23..25)
        && &v[25..] == b" GMT";
    if ok {
        Ok(())
    } else {
        Err(BAD)
    }
}
