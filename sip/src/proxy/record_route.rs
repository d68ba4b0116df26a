//! Record-Route values this element inserts (RFC 3261 §16.6 step 4, §20.30) and
//! double record-routing across two interfaces or transports (RFC 5658).

use crate::message::addr::NameAddr;
use crate::message::uri::Uri;
use crate::{HeaderName, SipMessage};

use super::TransportKind;

/// One URI this element puts into Record-Route (or Path, Service-Route): always a
/// loose-routing SIP URI `<sip:[user@]host[:port][;transport=x];lr>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteUri {
    /// Host (IPv6 in brackets).
    pub host: String,
    /// Port, if not the default.
    pub port: Option<u16>,
    /// `transport=` parameter, if any.
    pub transport: Option<TransportKind>,
    /// User part: e.g. a flow token identifying the connection a UE registered over
    /// (RFC 5626 §5.3 style), which the P-CSCF reads back from the Route.
    pub user: Option<String>,
}

impl RouteUri {
    /// `<sip:host[:port];lr>` with no transport or user part.
    pub fn new(host: impl Into<String>, port: Option<u16>) -> RouteUri {
        RouteUri {
            host: host.into(),
            port,
            transport: None,
            user: None,
        }
    }

    /// The header value, in angle brackets with `;lr` (§16.6 step 4: a proxy that
    /// record-routes MUST use `lr` so downstream elements route loosely, §19.1.1);
    /// a `sips` URI when `sips` is set (same step: required when the Request-URI or
    /// the top Route is `sips`).
    pub fn to_header_value(&self, sips: bool) -> String {
        let mut s = String::from(if sips { "<sips:" } else { "<sip:" });
        if let Some(user) = &self.user {
            s.push_str(user);
            s.push('@');
        }
        s.push_str(&self.host);
        if let Some(port) = self.port {
            s.push(':');
            s.push_str(&port.to_string());
        }
        if let Some(t) = self.transport {
            s.push_str(";transport=");
            s.push_str(t.uri_param());
        }
        s.push_str(";lr>");
        s
    }
}

/// How this element record-routes a request (§16.6 step 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordRoute {
    /// One Record-Route value.
    Single(RouteUri),
    /// Two values (RFC 5658 double record-routing) when the request arrives on one
    /// interface or transport and leaves on another: `inbound` is the address the
    /// previous hop reaches us at, `outbound` the one the next hop reaches us at. The
    /// Record-Route list then reads `outbound, inbound, ...` from the top, so each side
    /// of the dialog routes to the address it can reach.
    Double {
        /// Address facing the upstream side (where the request came from).
        inbound: RouteUri,
        /// Address facing the downstream side (where the request goes).
        outbound: RouteUri,
    },
}

/// Inserts our Record-Route value(s) above any existing ones (§16.6 step 4), as
/// `sips` URIs when `sips` is set.
pub fn insert_record_route(req: &mut SipMessage, rr: &RecordRoute, sips: bool) {
    match rr {
        RecordRoute::Single(uri) => {
            req.headers
                .push_front(HeaderName::RecordRoute, uri.to_header_value(sips));
        }
        RecordRoute::Double { inbound, outbound } => {
            req.headers
                .push_front(HeaderName::RecordRoute, inbound.to_header_value(sips));
            req.headers
                .push_front(HeaderName::RecordRoute, outbound.to_header_value(sips));
        }
    }
}

/// The user part of a Route/Record-Route value's URI (a flow token we put there), if
/// the value parses and has one.
pub fn route_user(value: &str) -> Option<String> {
    let addr = NameAddr::parse(value).ok()?;
    Uri::parse(addr.uri).ok()?.user.map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn req() -> SipMessage {
        SipMessage::parse(Bytes::from_static(
            b"INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP ua;branch=z9hG4bK1\r\n\
Record-Route: <sip:upstream.example.com;lr>\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\n\
Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap()
    }

    #[test]
    fn header_value_forms() {
        assert_eq!(
            RouteUri::new("p.example.com", None).to_header_value(false),
            "<sip:p.example.com;lr>"
        );
        assert_eq!(
            RouteUri::new("p.example.com", None).to_header_value(true),
            "<sips:p.example.com;lr>"
        );
        let flow = RouteUri {
            host: "[2001:db8::1]".into(),
            port: Some(5061),
            transport: Some(TransportKind::Tls),
            user: Some("FT1234".into()),
        };
        assert_eq!(
            flow.to_header_value(false),
            "<sip:FT1234@[2001:db8::1]:5061;transport=tls;lr>"
        );
        assert_eq!(
            route_user(&flow.to_header_value(false)).as_deref(),
            Some("FT1234")
        );
        assert_eq!(route_user("<sip:p.example.com;lr>"), None);
    }

    #[test]
    fn single_goes_on_top() {
        let mut r = req();
        insert_record_route(
            &mut r,
            &RecordRoute::Single(RouteUri::new("p.example.com", Some(5070))),
            false,
        );
        let rr: Vec<_> = r.headers.values(&HeaderName::RecordRoute).collect();
        assert_eq!(
            rr,
            vec![
                "<sip:p.example.com:5070;lr>",
                "<sip:upstream.example.com;lr>"
            ]
        );
    }

    #[test]
    fn double_puts_outbound_above_inbound() {
        let mut r = req();
        insert_record_route(
            &mut r,
            &RecordRoute::Double {
                inbound: RouteUri {
                    transport: Some(TransportKind::Tls),
                    ..RouteUri::new("10.0.0.1", Some(5061))
                },
                outbound: RouteUri {
                    transport: Some(TransportKind::Udp),
                    ..RouteUri::new("192.168.0.1", None)
                },
            },
            false,
        );
        let rr: Vec<_> = r.headers.values(&HeaderName::RecordRoute).collect();
        assert_eq!(
            rr,
            vec![
                "<sip:192.168.0.1;transport=udp;lr>",
                "<sip:10.0.0.1:5061;transport=tls;lr>",
                "<sip:upstream.example.com;lr>"
            ]
        );
    }
}
