//! The transport protocols SIP names (RFC 3261 §18, §19.1.1; RFC 7118).

use std::fmt;

/// A transport protocol, as named in Via (`SIP/2.0/<transport>`) and in the URI
/// `transport` parameter (RFC 3261 §18, §19.1.1; RFC 7118 for WebSocket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP.
    Sctp,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket (RFC 7118).
    Wss,
}

impl TransportKind {
    /// Parses a transport token (case-insensitive): `UDP`, `TCP`, `TLS`, `SCTP`, `WS`, `WSS`.
    pub fn from_token(token: &str) -> Option<TransportKind> {
        [
            ("udp", TransportKind::Udp),
            ("tcp", TransportKind::Tcp),
            ("tls", TransportKind::Tls),
            ("sctp", TransportKind::Sctp),
            ("ws", TransportKind::Ws),
            ("wss", TransportKind::Wss),
        ]
        .into_iter()
        .find(|(name, _)| token.eq_ignore_ascii_case(name))
        .map(|(_, kind)| kind)
    }

    /// The token as written in a Via header (upper case).
    pub fn via_token(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
            TransportKind::Sctp => "SCTP",
            TransportKind::Ws => "WS",
            TransportKind::Wss => "WSS",
        }
    }

    /// The value of a URI `transport=` parameter (lower case).
    pub fn uri_param(self) -> &'static str {
        match self {
            TransportKind::Udp => "udp",
            TransportKind::Tcp => "tcp",
            TransportKind::Tls => "tls",
            TransportKind::Sctp => "sctp",
            TransportKind::Ws => "ws",
            TransportKind::Wss => "wss",
        }
    }

    /// True for connection-oriented (reliable) transports (RFC 3261 §18).
    pub fn is_reliable(self) -> bool {
        !matches!(self, TransportKind::Udp)
    }

    /// True for transports secured with TLS (what a `sips` URI requires, §26.2.2).
    pub fn is_secure(self) -> bool {
        matches!(self, TransportKind::Tls | TransportKind::Wss)
    }

    /// The default port (RFC 3261 §19.1.2: 5060, or 5061 for TLS; RFC 7118: 80/443).
    pub fn default_port(self) -> u16 {
        match self {
            TransportKind::Tls => 5061,
            TransportKind::Ws => 80,
            TransportKind::Wss => 443,
            _ => 5060,
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_token())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_tokens() {
        assert_eq!(TransportKind::from_token("tls"), Some(TransportKind::Tls));
        assert_eq!(TransportKind::from_token("UDP"), Some(TransportKind::Udp));
        assert_eq!(TransportKind::from_token("quic"), None);
        assert_eq!(TransportKind::Wss.via_token(), "WSS");
        assert!(!TransportKind::Udp.is_reliable());
        assert!(TransportKind::Tcp.is_reliable());
        assert_eq!(TransportKind::Tls.default_port(), 5061);
    }
}
