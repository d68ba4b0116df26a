//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), parsed as views over the text.

use super::scan::{self, Params};
use super::via::split_host_port;
use super::ParseError;

/// A parsed URI. For `sip:`/`sips:` every field applies; for `tel:` the number is in
/// `host` and `params` holds its parameters; other schemes keep their text in `host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri<'a> {
    /// Scheme, as written (compare case-insensitively).
    pub scheme: &'a str,
    /// User part (escaped form, as written).
    pub user: Option<&'a str>,
    /// Password part.
    pub password: Option<&'a str>,
    /// Host (or tel number / opaque part).
    pub host: &'a str,
    /// Port.
    pub port: Option<u16>,
    /// URI parameters.
    pub params: Params<'a>,
    /// Header part after `?`, unparsed.
    pub headers: Option<&'a str>,
}

fn bad(reason: &'static str) -> ParseError {
    ParseError::HeaderValue {
        header: "URI",
        reason,
    }
}

impl<'a> Uri<'a> {
    /// Parses an absolute URI.
    pub fn parse(s: &'a str) -> Result<Uri<'a>, ParseError> {
        let s = s.trim();
        let colon = s.find(':').ok_or(bad("no scheme"))?;
        let scheme = &s[..colon];
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        {
            return Err(bad("malformed scheme"));
        }
        let rest = &s[colon + 1..];
        if rest.is_empty()
            || rest
                .bytes()
                .any(|c| c <= 0x20 || c == 0x7f || matches!(c, b'<' | b'>' | b'"'))
        {
            return Err(bad("empty, or holds whitespace, '<', '>' or '\"'"));
        }
        let is_sip = scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips");
        let is_tel = scheme.eq_ignore_ascii_case("tel");
        if !is_sip && !is_tel {
            return Ok(Uri {
                scheme,
                user: None,
                password: None,
                host: rest,
                port: None,
                params: Params::new(),
                headers: None,
            });
        }
        if is_tel {
            let (rest, headers) = match rest.find('?') {
                Some(q) => (&rest[..q], Some(&rest[q + 1..])),
                None => (rest, None),
            };
            let (number, params) = match rest.find(';') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, ""),
            };
            if number.is_empty() {
                return Err(bad("empty telephone number"));
            }
            return Ok(Uri {
                scheme,
                user: None,
                password: None,
                host: number,
                port: None,
                params: scan::parse_params(params).map_err(bad)?,
                headers,
            });
        }
        // userinfo ends at the last '@': neither user parts nor parameters nor headers
        // may hold a raw '@', while a user part may hold '?', ';' and ',' (RFC 3261
        // §25.1 `user-unreserved`; RFC 4475 §3.1.1.2 and §3.1.1.9).
        let (userinfo, hostpart) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (hostpart, headers) = match hostpart.find('?') {
            Some(q) => (&hostpart[..q], Some(&hostpart[q + 1..])),
            None => (hostpart, None),
        };
        let (user, password) = match userinfo {
            Some(u) => match u.find(':') {
                Some(c) => (Some(&u[..c]), Some(&u[c + 1..])),
                None => (Some(u), None),
            },
            None => (None, None),
        };
        if user == Some("") {
            return Err(bad("empty user part"));
        }
        let (hostport, params) = match hostpart.find(';') {
            Some(i) => (&hostpart[..i], &hostpart[i + 1..]),
            None => (hostpart, ""),
        };
        let (host, port) = split_host_port(hostport).ok_or(bad("malformed host"))?;
        Ok(Uri {
            scheme,
            user,
            password,
            host,
            port,
            params: scan::parse_params(params).map_err(bad)?,
            headers,
        })
    }

    /// A URI parameter (`Some(None)` for a flag such as `;lr`).
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        scan::find_param(&self.params, name).map(|p| p.value)
    }

    /// True when the URI carries `;lr` (loose routing, RFC 3261 §19.1.1).
    pub fn is_loose_route(&self) -> bool {
        self.param("lr").is_some()
    }

    /// The address-of-record this URI names, in canonical form (RFC 3261 §10.3 step 5):
    /// `scheme:user@host` for SIP and SIPS URIs and `tel:number` for tel URIs, without
    /// port, password, parameters or headers, scheme and host in lower case. This is
    /// how an IMS public identity is looked up from a Request-URI.
    pub fn address_of_record(&self) -> String {
        let scheme = self.scheme.to_ascii_lowercase();
        let host = self.host.to_ascii_lowercase();
        match self.user {
            Some(user) => format!("{scheme}:{user}@{host}"),
            None if scheme == "tel" => format!("{scheme}:{}", self.host),
            None => format!("{scheme}:{host}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Uri;

    #[test]
    fn address_of_record_drops_port_parameters_and_headers() {
        let aor = |s: &str| Uri::parse(s).unwrap().address_of_record();
        assert_eq!(
            aor("SIP:bob:pw@IMS.Example.NET:5060;user=phone;transport=tcp?Subject=x"),
            "sip:bob@ims.example.net"
        );
        assert_eq!(aor("sips:Bob@ims.example.net"), "sips:Bob@ims.example.net");
        assert_eq!(aor("tel:+1-555-123;phone-context=x"), "tel:+1-555-123");
        assert_eq!(aor("sip:ims.example.net:5080"), "sip:ims.example.net");
    }
}
