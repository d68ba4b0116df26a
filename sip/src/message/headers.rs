//! Header fields: raw-preserving storage, name lookup with compact forms, and the
//! list operations a proxy needs (push/pop of comma-separated values).

use bytes::{BufMut, Bytes, BytesMut};

use super::scan;

macro_rules! header_names {
    ($( $variant:ident => $canon:literal $(, $compact:literal)? ; )*) => {
        /// Header names the stack knows; anything else is [`HeaderName::Other`].
        /// Matching is case-insensitive and accepts compact forms (RFC 3261 §7.3.3).
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum HeaderName {
            $(
                #[doc = $canon]
                $variant,
            )*
            /// Any other header, by its name as written.
            Other(Bytes),
        }

        impl HeaderName {
            /// Identifies a header name (case-insensitive, compact forms accepted).
            pub fn from_bytes(name: &[u8]) -> HeaderName {
                HeaderName::known(name).unwrap_or_else(|| HeaderName::Other(Bytes::copy_from_slice(name)))
            }

            /// Like [`HeaderName::from_bytes`], but an unknown name shares `name`'s
            /// buffer instead of copying it (the parser passes a slice of the input).
            pub fn from_shared(name: Bytes) -> HeaderName {
                HeaderName::known(&name).unwrap_or(HeaderName::Other(name))
            }

            fn known(name: &[u8]) -> Option<HeaderName> {
                $(
                    if name.eq_ignore_ascii_case($canon.as_bytes()) $( || name.eq_ignore_ascii_case($compact.as_bytes()) )? {
                        return Some(HeaderName::$variant);
                    }
                )*
                None
            }

            /// The canonical (long) name.
            pub fn as_str(&self) -> &str {
                match self {
                    $( HeaderName::$variant => $canon, )*
                    HeaderName::Other(b) => std::str::from_utf8(b).unwrap_or("X-Invalid"),
                }
            }

            /// True when `other` names the same header (case-insensitively for `Other`).
            pub fn matches(&self, other: &HeaderName) -> bool {
                match (self, other) {
                    (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
                    (a, b) => a == b,
                }
            }
        }
    };
}

header_names! {
    Via => "Via", "v";
    From => "From", "f";
    To => "To", "t";
    CallId => "Call-ID", "i";
    CSeq => "CSeq";
    MaxForwards => "Max-Forwards";
    Contact => "Contact", "m";
    ContentLength => "Content-Length", "l";
    ContentType => "Content-Type", "c";
    ContentEncoding => "Content-Encoding", "e";
    Route => "Route";
    RecordRoute => "Record-Route";
    Path => "Path";
    ServiceRoute => "Service-Route";
    Expires => "Expires";
    MinExpires => "Min-Expires";
    Authorization => "Authorization";
    WwwAuthenticate => "WWW-Authenticate";
    ProxyAuthorization => "Proxy-Authorization";
    ProxyAuthenticate => "Proxy-Authenticate";
    AuthenticationInfo => "Authentication-Info";
    Supported => "Supported", "k";
    Require => "Require";
    ProxyRequire => "Proxy-Require";
    Unsupported => "Unsupported";
    Allow => "Allow";
    Event => "Event", "o";
    Subject => "Subject", "s";
    ReferTo => "Refer-To", "r";
    ReferredBy => "Referred-By", "b";
    AllowEvents => "Allow-Events", "u";
    SessionExpires => "Session-Expires", "x";
    AcceptContact => "Accept-Contact", "a";
    RejectContact => "Reject-Contact", "j";
    RequestDisposition => "Request-Disposition", "d";
    UserAgent => "User-Agent";
    Server => "Server";
    Warning => "Warning";
    RetryAfter => "Retry-After";
    PAssertedIdentity => "P-Asserted-Identity";
    PPreferredIdentity => "P-Preferred-Identity";
    PAssociatedUri => "P-Associated-URI";
    PVisitedNetworkId => "P-Visited-Network-ID";
    PChargingVector => "P-Charging-Vector";
    PChargingFunctionAddresses => "P-Charging-Function-Addresses";
    PAccessNetworkInfo => "P-Access-Network-Info";
    PCalledPartyId => "P-Called-Party-ID";
    PServedUser => "P-Served-User";
}

impl std::fmt::Display for HeaderName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header field line. `value` has folding replaced by single spaces and surrounding
/// whitespace trimmed; `raw` holds the original line bytes (terminator included) until
/// the header is modified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Identified name.
    pub name: HeaderName,
    value: Bytes,
    raw: Option<Bytes>,
}

impl Header {
    /// A new header written as `Name: value`.
    pub fn new(name: HeaderName, value: impl Into<Bytes>) -> Header {
        Header {
            name,
            value: value.into(),
            raw: None,
        }
    }

    /// A header as parsed, keeping its original line.
    pub(crate) fn parsed(name: HeaderName, value: Bytes, raw: Bytes) -> Header {
        Header {
            name,
            value,
            raw: Some(raw),
        }
    }

    /// The (unfolded, trimmed) value.
    pub fn value(&self) -> &Bytes {
        &self.value
    }

    /// The value as text, or `None` if it is not UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }

    /// Replaces the value; the header will be written in canonical form.
    pub fn set_value(&mut self, value: impl Into<Bytes>) {
        self.value = value.into();
        self.raw = None;
    }

    /// The comma-separated elements of this header's value (quotes and `<>` respected).
    pub fn values(&self) -> impl Iterator<Item = Bytes> + '_ {
        scan::split_list(&self.value).map(|r| self.value.slice(r))
    }

    fn write_to(&self, out: &mut BytesMut) {
        match &self.raw {
            Some(raw) => out.put_slice(raw),
            None => {
                out.put_slice(self.name.as_str().as_bytes());
                out.put_slice(b": ");
                out.put_slice(&self.value);
                out.put_slice(b"\r\n");
            }
        }
    }
}

/// The ordered header fields of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    list: Vec<Header>,
}

impl Headers {
    /// No headers.
    pub fn new() -> Headers {
        Headers { list: Vec::new() }
    }

    pub(crate) fn with_capacity(n: usize) -> Headers {
        Headers {
            list: Vec::with_capacity(n),
        }
    }

    /// Frees the spare capacity of the header list.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.list.shrink_to_fit();
    }

    /// All header fields in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.list.iter()
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when there are no headers.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The first header line with this name.
    pub fn get(&self, name: &HeaderName) -> Option<&Header> {
        self.list.iter().find(|h| h.name.matches(name))
    }

    /// The value of the first header line with this name.
    pub fn get_value(&self, name: &HeaderName) -> Option<&Bytes> {
        self.get(name).map(|h| &h.value)
    }

    /// The value of the first header with this name, as text.
    pub fn get_str(&self, name: &HeaderName) -> Option<&str> {
        self.get(name).and_then(|h| h.value_str())
    }

    /// All header lines with this name, in order.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a Header> + 'a {
        self.list.iter().filter(move |h| h.name.matches(name))
    }

    /// Every comma-separated value across all lines with this name, in order
    /// (so `Via: a, b` followed by `Via: c` yields a, b, c).
    pub fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = Bytes> + 'a {
        self.get_all(name).flat_map(|h| h.values())
    }

    /// The first comma-separated value of the first line with this name.
    pub fn first_value(&self, name: &HeaderName) -> Option<Bytes> {
        self.get(name).and_then(|h| h.values().next())
    }

    /// Appends a header line at the end.
    pub fn push(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.list.push(Header::new(name, value));
    }

    /// Inserts a header line before every other line (used for Via, Record-Route).
    /// The new line goes before the first line of the same name if there is one, so
    /// headers keep their grouping; otherwise at the very top.
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        let pos = self
            .list
            .iter()
            .position(|h| h.name.matches(&name))
            .unwrap_or(0);
        self.list.insert(pos, Header::new(name, value));
    }

    /// Replaces all lines with this name by a single line (appended if absent).
    pub fn set(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        let value = value.into();
        match self.list.iter().position(|h| h.name.matches(&name)) {
            Some(pos) => {
                self.list[pos].set_value(value);
                let mut i = pos + 1;
                while i < self.list.len() {
                    if self.list[i].name.matches(&name) {
                        self.list.remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
            None => self.push(name, value),
        }
    }

    /// Removes all lines with this name; returns how many were removed.
    pub fn remove_all(&mut self, name: &HeaderName) -> usize {
        let before = self.list.len();
        self.list.retain(|h| !h.name.matches(name));
        before - self.list.len()
    }

    /// Keeps only the header lines for which `keep` returns true; returns how many were
    /// removed.
    pub fn retain(&mut self, mut keep: impl FnMut(&Header) -> bool) -> usize {
        let before = self.list.len();
        self.list.retain(|h| keep(h));
        before - self.list.len()
    }

    /// Removes and returns the first comma-separated value of the first line with this
    /// name. A line holding several values is rewritten with the rest.
    pub fn pop_first_value(&mut self, name: &HeaderName) -> Option<Bytes> {
        let pos = self.list.iter().position(|h| h.name.matches(name))?;
        let value = self.list[pos].value.clone();
        let mut ranges = scan::split_list(&value);
        let first = ranges.next()?;
        let second = ranges.next();
        match second {
            None => {
                self.list.remove(pos);
            }
            Some(second) => self.list[pos].set_value(value.slice(second.start..)),
        }
        Some(value.slice(first))
    }

    /// Removes every header line.
    pub fn clear(&mut self) {
        self.list.clear();
    }

    pub(crate) fn push_header(&mut self, header: Header) {
        self.list.push(header);
    }

    pub(crate) fn write_to(&self, out: &mut BytesMut) {
        for h in &self.list {
            h.write_to(out);
        }
    }

    pub(crate) fn encoded_len_hint(&self) -> usize {
        self.list
            .iter()
            .map(|h| h.raw.as_ref().map_or(h.value.len() + 24, |r| r.len()))
            .sum()
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = std::slice::Iter<'a, Header>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}
