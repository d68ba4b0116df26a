//! Low-level lexical helpers shared by the typed header views (RFC 3261 §25.1).

use std::ops::Range;

use smallvec::SmallVec;

/// True for RFC 3261 `token` characters.
pub fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// True when `s` is a non-empty RFC 3261 token.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&c| is_token_char(c))
}

/// True for linear whitespace characters (after unfolding).
pub fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// The range of `s[r]` with surrounding whitespace removed.
pub fn trim_range(s: &[u8], r: Range<usize>) -> Range<usize> {
    let mut start = r.start;
    let mut end = r.end;
    while start < end && is_ws(s[start]) {
        start += 1;
    }
    while end > start && is_ws(s[end - 1]) {
        end -= 1;
    }
    start..end
}

/// `s` without surrounding whitespace.
pub fn trim(s: &[u8]) -> &[u8] {
    &s[trim_range(s, 0..s.len())]
}

/// Position of the first `sep` in `s` that is outside quoted strings and `<...>`.
pub fn find_unquoted(s: &[u8], sep: u8) -> Option<usize> {
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if in_quotes {
            match c {
                b'\\' => i += 1,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else if c == b'"' {
            in_quotes = true;
        } else if c == sep && !in_angle {
            return Some(i);
        } else if c == b'<' {
            in_angle = true;
        } else if c == b'>' {
            in_angle = false;
        }
        i += 1;
    }
    None
}

/// Splits a header value into its comma-separated elements (RFC 3261 §7.3.1), skipping
/// commas inside quoted strings and angle brackets. Yields trimmed, non-empty ranges.
pub fn split_list(s: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
    split_on(s, b',')
}

/// Splits `s` on an unquoted separator, yielding trimmed non-empty ranges.
pub fn split_on(s: &[u8], sep: u8) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || loop {
        if pos > s.len() {
            return None;
        }
        let rest = &s[pos..];
        let end = match find_unquoted(rest, sep) {
            Some(i) => pos + i,
            None => s.len(),
        };
        let r = trim_range(s, pos..end);
        pos = end + 1;
        if !r.is_empty() {
            return Some(r);
        }
    })
}

/// One `name[=value]` parameter; `value` keeps its quotes if it had them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param<'a> {
    /// Parameter name as written.
    pub name: &'a str,
    /// Parameter value as written (quotes kept), if any.
    pub value: Option<&'a str>,
}

impl<'a> Param<'a> {
    /// The value with surrounding quotes and backslash escapes removed.
    pub fn unquoted(&self) -> Option<String> {
        self.value.map(unquote)
    }
}

/// Removes surrounding double quotes and `\` escapes; returns `s` unchanged if unquoted.
pub fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 2 && b[0] == b'"' && b[b.len() - 1] == b'"' {
        let inner = &s[1..s.len() - 1];
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        s.to_string()
    }
}

/// The parameters of a URI or header value: up to four without a heap allocation (a
/// Via's branch, rport, received; a From's tag), as every received message has its
/// top Via and addresses parsed several times.
pub type Params<'a> = SmallVec<[Param<'a>; 4]>;

/// Parses `;`-separated parameters (`;a=b;c`), as they follow a URI or header value.
/// `s` starts after the first `;` (or is empty). Names must be tokens; values may be
/// tokens, quoted strings or IPv6 references. An empty parameter (`;;`, or a `;` with
/// nothing after it) is an error: the grammar has `*( SEMI generic-param )` and no
/// empty element (RFC 3261 §25.1; RFC 4475 §3.1.2.1).
pub fn parse_params(s: &str) -> Result<Params<'_>, &'static str> {
    let mut out = Params::new();
    if s.trim().is_empty() {
        return if s.is_empty() {
            Ok(out)
        } else {
            Err("empty parameter")
        };
    }
    let bytes = s.as_bytes();
    let mut pos = 0;
    while pos <= s.len() {
        let end = find_unquoted(&bytes[pos..], b';').map_or(s.len(), |i| pos + i);
        let r = trim_range(bytes, pos..end);
        pos = end + 1;
        if r.is_empty() {
            return Err("empty parameter");
        }
        let item = &s[r];
        let (name, value) = match item.find('=') {
            Some(eq) => (item[..eq].trim(), Some(item[eq + 1..].trim())),
            None => (item, None),
        };
        if !is_token(name.as_bytes()) {
            return Err("parameter name is not a token");
        }
        if let Some(v) = value {
            if v.is_empty() {
                return Err("empty parameter value");
            }
            if v.starts_with('"') && (v.len() < 2 || !v.ends_with('"')) {
                return Err("unterminated quoted parameter value");
            }
        }
        out.push(Param { name, value });
    }
    Ok(out)
}

/// Finds a parameter by name (case-insensitive).
pub fn find_param<'p, 'a>(params: &'p [Param<'a>], name: &str) -> Option<&'p Param<'a>> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}
