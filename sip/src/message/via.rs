//! The Via header (RFC 3261 §20.42, RFC 3581 `rport`).

use super::scan::{self, Params};
use super::ParseError;

/// The magic cookie that marks RFC 3261 branch ids (§8.1.1.7).
pub const BRANCH_MAGIC: &str = "z9hG4bK";

/// One via-parm: `SIP/2.0/<transport> <host>[:port] *(;param)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    /// Transport token (`UDP`, `TCP`, `TLS`, ...), as written.
    pub transport: &'a str,
    /// Host: hostname, IPv4 address or bracketed IPv6 reference.
    pub host: &'a str,
    /// Port, if present.
    pub port: Option<u16>,
    /// Parameters in order.
    pub params: Params<'a>,
}

const BAD: fn(&'static str) -> ParseError = |reason| ParseError::HeaderValue {
    header: "Via",
    reason,
};

impl<'a> Via<'a> {
    /// Parses one via-parm (one element of a possibly comma-joined Via header).
    pub fn parse(s: &'a str) -> Result<Via<'a>, ParseError> {
        let s = s.trim();
        // sent-protocol = name SLASH version SLASH transport (with optional LWS)
        let mut rest = s;
        let mut proto = [""; 3];
        for (i, slot) in proto.iter_mut().enumerate() {
            rest = rest.trim_start();
            let end = if i < 2 {
                rest.find('/').ok_or(BAD("incomplete sent-protocol"))?
            } else {
                rest.find(|c: char| c.is_ascii_whitespace())
                    .ok_or(BAD("missing sent-by"))?
            };
            *slot = rest[..end].trim_end();
            rest = &rest[end + usize::from(i < 2)..];
        }
        if !proto[0].eq_ignore_ascii_case("SIP") || proto[1] != "2.0" {
            return Err(BAD("sent-protocol is not SIP/2.0"));
        }
        if !scan::is_token(proto[2].as_bytes()) {
            return Err(BAD("transport is not a token"));
        }
        let rest = rest.trim_start();
        let (sent_by, params) = match scan::find_unquoted(rest.as_bytes(), b';') {
            Some(i) => (rest[..i].trim(), &rest[i + 1..]),
            None => (rest.trim(), ""),
        };
        let (host, port) = split_host_port(sent_by).ok_or(BAD("malformed sent-by"))?;
        let params = scan::parse_params(params).map_err(BAD)?;
        Ok(Via {
            transport: proto[2],
            host,
            port,
            params,
        })
    }

    /// A parameter's value (quotes kept), `Some(None)` for a flag parameter.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        scan::find_param(&self.params, name).map(|p| p.value)
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.param("branch").flatten()
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&'a str> {
        self.param("received").flatten()
    }

    /// The `rport` parameter: `Some(None)` when requested, `Some(Some(p))` when filled.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.param("rport").map(|v| v.and_then(|p| p.parse().ok()))
    }
}

/// Splits `host[:port]`; `host` may be an IPv6 reference in brackets.
pub fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if s.starts_with('[') {
        let close = s.find(']')?;
        let host = &s[..=close];
        let after = s[close + 1..].trim_start();
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p.trim())),
            None if after.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match s.rfind(':') {
            Some(i) => (s[..i].trim_end(), Some(s[i + 1..].trim())),
            None => (s, None),
        }
    };
    if host.is_empty() || !valid_host(host) {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host, port))
}

/// Hostname, IPv4 address or `[IPv6]` reference (RFC 3261 §25.1 `host`).
pub fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
}
