//! name-addr / addr-spec values: From, To, Contact, Route, Record-Route, Path,
//! Service-Route, P-Asserted-Identity (RFC 3261 §20.10, §25.1).

use super::scan::{self, Params};
use super::ParseError;

/// `[display-name] <uri> *(;param)` or `uri *(;param)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name as written (quotes kept), if any.
    pub display: Option<&'a str>,
    /// The URI text, without angle brackets.
    pub uri: &'a str,
    /// Header parameters (after `>` or, for addr-spec, after the URI).
    pub params: Params<'a>,
    /// True when the URI was enclosed in `<>`.
    pub angle: bool,
}

fn bad(reason: &'static str) -> ParseError {
    ParseError::HeaderValue {
        header: "name-addr",
        reason,
    }
}

impl<'a> NameAddr<'a> {
    /// Parses one element (already split from a comma list).
    pub fn parse(s: &'a str) -> Result<NameAddr<'a>, ParseError> {
        let s = s.trim();
        if s == "*" {
            return Ok(NameAddr {
                display: None,
                uri: s,
                params: Params::new(),
                angle: false,
            });
        }
        if !quotes_balanced(s) {
            return Err(bad("unterminated quoted string"));
        }
        let lt = scan::find_unquoted(s.as_bytes(), b'<');
        if let Some(lt) = lt {
            let display = s[..lt].trim();
            if display.starts_with('"') {
                if display.len() < 2
                    || !display.ends_with('"')
                    || display.ends_with("\\\"") && !display.ends_with("\\\\\"")
                {
                    return Err(bad("unterminated display name"));
                }
            } else if display
                .split_ascii_whitespace()
                .any(|w| !scan::is_token(w.as_bytes()))
            {
                return Err(bad("display name must be tokens or a quoted string"));
            }
            let after = &s[lt + 1..];
            let gt = after.find('>').ok_or(bad("missing '>'"))?;
            // LAQUOT addr-spec RAQUOT: no whitespace inside the brackets (RFC 4475 §3.1.2.14).
            let uri = &after[..gt];
            if uri.bytes().any(scan::is_ws) {
                return Err(bad("whitespace inside <>"));
            }
            let rest = after[gt + 1..].trim_start();
            let params = match rest.strip_prefix(';') {
                Some(p) => scan::parse_params(p).map_err(bad)?,
                None if rest.is_empty() => Params::new(),
                None => return Err(bad("unexpected text after '>'")),
            };
            if uri.is_empty() || !uri.contains(':') {
                return Err(bad("URI without scheme"));
            }
            Ok(NameAddr {
                display: (!display.is_empty()).then_some(display),
                uri,
                params,
                angle: true,
            })
        } else {
            if s.starts_with('"') {
                return Err(bad("display name without <uri>"));
            }
            let (uri, params) = match s.find(';') {
                Some(i) => (s[..i].trim(), scan::parse_params(&s[i + 1..]).map_err(bad)?),
                None => (s, Params::new()),
            };
            if uri.is_empty() || !uri.contains(':') || uri.contains(char::is_whitespace) {
                return Err(bad("malformed addr-spec"));
            }
            // A URI holding ',', '?' or ';' must be in <> (RFC 3261 §20; RFC 4475
            // §3.1.2.13); ';' already starts the header parameters here.
            if uri.contains(['?', ',']) {
                return Err(bad("URI with '?' or ',' not enclosed in <>"));
            }
            Ok(NameAddr {
                display: None,
                uri,
                params,
                angle: false,
            })
        }
    }

    /// A header parameter (`Some(None)` for a flag).
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        scan::find_param(&self.params, name).map(|p| p.value)
    }

    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&'a str> {
        self.param("tag").flatten()
    }
}

/// True when every quoted string in `s` is closed (backslash escapes respected).
fn quotes_balanced(s: &str) -> bool {
    let mut in_quotes = false;
    let mut escaped = false;
    for c in s.bytes() {
        if escaped {
            escaped = false;
        } else if in_quotes && c == b'\\' {
            escaped = true;
        } else if c == b'"' {
            in_quotes = !in_quotes;
        }
    }
    !in_quotes
}
