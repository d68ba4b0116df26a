//! Credentials and challenges: `Authorization`, `WWW-Authenticate` and their proxy
//! forms (RFC 3261 §22, RFC 7616 digest, RFC 3310 AKA, RFC 8898 Bearer).

use super::scan;
use super::ParseError;

/// `scheme` followed by either comma-separated `name=value` parameters (Digest) or a
/// single token68 (Bearer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParams<'a> {
    /// Auth scheme (`Digest`, `Bearer`, ...), as written.
    pub scheme: &'a str,
    /// Parameters in order; values keep their quotes.
    pub params: Vec<(&'a str, &'a str)>,
    /// token68 (for Bearer), if the value is not a parameter list.
    pub token68: Option<&'a str>,
}

fn bad(reason: &'static str) -> ParseError {
    ParseError::HeaderValue {
        header: "Authorization",
        reason,
    }
}

impl<'a> AuthParams<'a> {
    /// Parses a credentials or challenge value. Quoted values may hold commas
    /// (`qop="auth,auth-int"`).
    pub fn parse(s: &'a str) -> Result<AuthParams<'a>, ParseError> {
        let s = s.trim();
        let (scheme, rest) = match s.find(|c: char| c.is_ascii_whitespace()) {
            Some(i) => (&s[..i], s[i..].trim_start()),
            None => (s, ""),
        };
        if !scan::is_token(scheme.as_bytes()) {
            return Err(bad("scheme is not a token"));
        }
        // token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
        let is_token68 = !rest.is_empty() && !rest.contains(',') && {
            let body = rest.trim_end_matches('=');
            !body.is_empty()
                && body.bytes().all(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
                })
        };
        if is_token68 && !rest.trim_end_matches('=').contains('=') {
            return Ok(AuthParams {
                scheme,
                params: Vec::new(),
                token68: Some(rest),
            });
        }
        let mut params = Vec::new();
        for r in scan::split_list(rest.as_bytes()) {
            let item = &rest[r];
            let eq = item.find('=').ok_or(bad("parameter without '='"))?;
            let name = item[..eq].trim();
            let value = item[eq + 1..].trim();
            if !scan::is_token(name.as_bytes()) {
                return Err(bad("parameter name is not a token"));
            }
            if value.starts_with('"') && (value.len() < 2 || !value.ends_with('"')) {
                return Err(bad("unterminated quoted string"));
            }
            params.push((name, value));
        }
        Ok(AuthParams {
            scheme,
            params,
            token68: None,
        })
    }

    /// A parameter's raw value (quotes kept), by case-insensitive name.
    pub fn raw(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// A parameter's value without quotes or escapes.
    pub fn get(&self, name: &str) -> Option<String> {
        self.raw(name).map(scan::unquote)
    }

    /// The `qop` values offered (a challenge's quoted list) or chosen (credentials).
    pub fn qop_list(&self) -> Vec<String> {
        self.get("qop")
            .map(|q| {
                q.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The nonce count `nc`, read as the 8 hex digits RFC 2617 §3.2.2 defines.
    pub fn nonce_count(&self) -> Option<u32> {
        let nc = self.get("nc")?;
        if nc.len() != 8 {
            return None;
        }
        u32::from_str_radix(&nc, 16).ok()
    }
}
