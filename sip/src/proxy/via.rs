//! Via handling at a proxy: `received`/`rport` on requests as they arrive (RFC 3261
//! §18.2.1, RFC 3581 §4), our own Via on forwarded requests (§16.6 step 8), its removal
//! from responses (§16.7 step 3) and where a response goes next (§18.2.2, RFC 3581 §4).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use crate::message::via::Via;
use crate::{HeaderName, SipMessage};

use super::routing::NextHop;
use super::{ip_of, TransportKind};

/// A Via that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViaError {
    /// The message has no Via.
    #[error("no Via header")]
    Missing,
    /// The top Via does not parse.
    #[error("malformed Via header")]
    Malformed,
    /// The top Via names a transport we do not know.
    #[error("unknown Via transport {0}")]
    UnknownTransport(String),
}

fn parse_top(value: &Bytes) -> Result<Via<'_>, ViaError> {
    let text = std::str::from_utf8(value).map_err(|_| ViaError::Malformed)?;
    Via::parse(text).map_err(|_| ViaError::Malformed)
}

/// A via-parm written back from its parts, with `rport` filled and `received` replaced;
/// `len` is the length of the value it was parsed from.
fn rewrite(via: &Via<'_>, len: usize, received: Option<IpAddr>, rport: Option<u16>) -> String {
    // Room for `;received=<IPv6>` and `;rport=65535`: one allocation.
    let mut s = String::with_capacity(len + 64);
    let _ = write!(s, "SIP/2.0/{} {}", via.transport, via.host);
    if let Some(p) = via.port {
        let _ = write!(s, ":{p}");
    }
    for p in &via.params {
        if p.name.eq_ignore_ascii_case("received") && received.is_some() {
            continue;
        }
        match (p.name.eq_ignore_ascii_case("rport"), rport) {
            (true, Some(port)) => {
                let _ = write!(s, ";rport={port}");
            }
            _ => {
                s.push(';');
                s.push_str(p.name);
                if let Some(v) = p.value {
                    s.push('=');
                    s.push_str(v);
                }
            }
        }
    }
    if let Some(ip) = received {
        // RFC 3261 §20.42 grammar: IPv4address / IPv6address (no brackets).
        let _ = write!(s, ";received={ip}");
    }
    s
}

/// Stamps the top Via of a received request with where it really came from:
/// `received=<source IP>` when the sent-by host differs from it (§18.2.1), and, when
/// the Via has an empty `rport`, `rport=<source port>` plus `received` even if equal
/// (RFC 3581 §4). Returns true when the Via was changed.
pub fn stamp_received(req: &mut SipMessage, source: SocketAddr) -> Result<bool, ViaError> {
    let top = req
        .headers
        .first_value(&HeaderName::Via)
        .ok_or(ViaError::Missing)?;
    let via = parse_top(&top).inspect_err(|_| {
        tracing::debug!(via = ?top, "malformed top Via on received request");
    })?;
    let rport_requested = via.rport() == Some(None);
    let differs = ip_of(via.host) != Some(source.ip());
    if !rport_requested && !differs {
        return Ok(false);
    }
    let new = rewrite(
        &via,
        top.len(),
        Some(source.ip()),
        rport_requested.then_some(source.port()),
    );
    req.headers.pop_first_value(&HeaderName::Via);
    req.headers.push_front(HeaderName::Via, new);
    Ok(true)
}

/// The Via this element adds to a request it forwards (§16.6 step 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalVia<'a> {
    /// Transport the request is sent over (that of the [`NextHop`]).
    pub transport: TransportKind,
    /// sent-by host: the address of the socket used.
    pub host: Cow<'a, str>,
    /// sent-by port (omitted when `None`).
    pub port: Option<u16>,
    /// Ask for `rport` (RFC 3581 §3): useful over UDP toward peers that may be behind
    /// NAT, so responses return to the port the request left from.
    pub rport: bool,
}

/// Adds our Via on top of `req` with the given branch (from
/// [`super::loops::LoopHash::branch`], or [`crate::message::build::new_branch`] when
/// the proxy does not detect loops). Returns the header value written.
pub fn add_via(req: &mut SipMessage, via: &LocalVia<'_>, branch: &str) -> Bytes {
    add_via_with(req, via, |s| s.push_str(branch));
    req.headers
        .first_value(&HeaderName::Via)
        .unwrap_or_default()
}

/// [`add_via`] with the branch written by `branch` into the value, so that the value
/// is built in one buffer and not copied or shared once more (the engine writes a fresh loop-detecting branch there,
/// [`super::loops::LoopHash::push_branch`]).
pub fn add_via_with(req: &mut SipMessage, via: &LocalVia<'_>, branch: impl FnOnce(&mut String)) {
    // "SIP/2.0/TLS " + host + ":65535" + ";branch=" + a 40-character branch + ";rport"
    let mut s = String::with_capacity(via.host.len() + 72);
    let _ = write!(s, "SIP/2.0/{} {}", via.transport.via_token(), via.host);
    if let Some(p) = via.port {
        let _ = write!(s, ":{p}");
    }
    s.push_str(";branch=");
    branch(&mut s);
    if via.rport {
        s.push_str(";rport");
    }
    req.headers.push_front(HeaderName::Via, s);
}

/// Removes the top Via of a response (ours, §16.7 step 3) and returns it. The caller
/// matched the response to a branch by this Via's branch beforehand.
pub fn pop_via(resp: &mut SipMessage) -> Result<Bytes, ViaError> {
    resp.headers
        .pop_first_value(&HeaderName::Via)
        .ok_or(ViaError::Missing)
}

/// Where a response is sent (RFC 3261 §18.2.2, RFC 3581 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseDestination {
    /// Address to send to (or to open a connection to).
    pub hop: NextHop,
    /// Reliable transport: send over the connection the request arrived on if it is
    /// still open (§18.2.2 first bullet); `hop` is the fallback.
    pub prefer_incoming_flow: bool,
}

/// Where a response with this (already popped) Via list goes: `None` when no Via
/// remains, i.e. the response was for this element (§16.7 step 3).
///
/// * reliable transport: the incoming connection, else `received` (or sent-by) and the
///   `rport` (or sent-by) port;
/// * `maddr`: that address, sent-by port (multicast);
/// * `received`: that address, port `rport` if filled, else sent-by port;
/// * otherwise sent-by (host and port; RFC 3263 §5 lookups are the caller's).
pub fn response_destination(resp: &SipMessage) -> Result<Option<ResponseDestination>, ViaError> {
    let Some(top) = resp.headers.first_value(&HeaderName::Via) else {
        return Ok(None);
    };
    let via = parse_top(&top)?;
    let transport = TransportKind::from_token(via.transport)
        .ok_or_else(|| ViaError::UnknownTransport(via.transport.to_string()))?;
    let sent_by_port = via.port.unwrap_or_else(|| transport.default_port());
    let rport = via.rport().flatten();
    let received = via.received().and_then(ip_of);
    let bracket = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let maddr = via.param("maddr").flatten();
    let (host, port) = match (maddr, received) {
        (Some(m), _) if !transport.is_reliable() => (m.to_string(), sent_by_port),
        (_, Some(ip)) => (bracket(ip), rport.unwrap_or(sent_by_port)),
        (_, None) => (via.host.to_string(), rport.unwrap_or(sent_by_port)),
    };
    Ok(Some(ResponseDestination {
        // §18.2.2: the sent-by as it is (RFC 3263 §5's SRV step for a sent-by
        // without a port is not done).
        hop: NextHop {
            transport,
            host,
            port,
            explicit_port: true,
            explicit_transport: true,
        },
        prefer_incoming_flow: transport.is_reliable(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(via: &str) -> SipMessage {
        SipMessage::parse(Bytes::from(format!(
            "OPTIONS sip:b@y SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP below;branch=z9hG4bK0\r\n\
             From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n"
        )))
        .unwrap()
    }

    fn top(m: &SipMessage) -> String {
        String::from_utf8(m.headers.first_value(&HeaderName::Via).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn received_added_when_sent_by_differs() {
        let mut r = req("SIP/2.0/UDP ua.example.com:5062;branch=z9hG4bKa");
        assert!(stamp_received(&mut r, "192.0.2.1:5062".parse().unwrap()).unwrap());
        assert_eq!(
            top(&r),
            "SIP/2.0/UDP ua.example.com:5062;branch=z9hG4bKa;received=192.0.2.1"
        );
        // The second Via is untouched and still second.
        let vias: Vec<_> = r.headers.values(&HeaderName::Via).collect();
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[1], "SIP/2.0/UDP below;branch=z9hG4bK0");
    }

    #[test]
    fn nothing_added_when_sent_by_is_the_source() {
        let mut r = req("SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bKa");
        let before = r.to_bytes();
        assert!(!stamp_received(&mut r, "192.0.2.1:5099".parse().unwrap()).unwrap());
        assert_eq!(r.to_bytes(), before);
    }

    #[test]
    fn empty_rport_is_filled_and_received_always_added() {
        let mut r = req("SIP/2.0/UDP 192.0.2.1:5062;rport;branch=z9hG4bKa");
        assert!(stamp_received(&mut r, "192.0.2.1:40000".parse().unwrap()).unwrap());
        assert_eq!(
            top(&r),
            "SIP/2.0/UDP 192.0.2.1:5062;rport=40000;branch=z9hG4bKa;received=192.0.2.1"
        );
        let v = Via::parse(&top(&r)).unwrap().rport();
        assert_eq!(v, Some(Some(40000)));
    }

    #[test]
    fn stale_received_is_replaced_and_ipv6_written_bare() {
        let mut r = req("SIP/2.0/TCP [2001:db8::1];received=10.1.1.1;branch=z9hG4bKa");
        assert!(stamp_received(&mut r, "[2001:db8::2]:5060".parse().unwrap()).unwrap());
        assert_eq!(
            top(&r),
            "SIP/2.0/TCP [2001:db8::1];branch=z9hG4bKa;received=2001:db8::2"
        );
    }

    #[test]
    fn malformed_top_via_is_an_error() {
        let mut r = req("SIP/2.0/UDP ua.example.com;branch=z9hG4bKa");
        r.headers.set(HeaderName::Via, "garbage");
        assert_eq!(
            stamp_received(&mut r, "192.0.2.1:5060".parse().unwrap()),
            Err(ViaError::Malformed)
        );
    }

    #[test]
    fn add_via_puts_ours_on_top() {
        let mut r = req("SIP/2.0/UDP ua;branch=z9hG4bKa");
        let v = add_via(
            &mut r,
            &LocalVia {
                transport: TransportKind::Tls,
                host: "10.0.0.1".into(),
                port: Some(5061),
                rport: true,
            },
            "z9hG4bKxyz",
        );
        assert_eq!(v, "SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKxyz;rport");
        assert_eq!(top(&r), v);
        assert_eq!(r.headers.values(&HeaderName::Via).count(), 3);
    }

    fn dest(via: &str) -> ResponseDestination {
        let mut resp = req(via);
        resp.headers.pop_first_value(&HeaderName::Via);
        resp.headers.push_front(HeaderName::Via, via.to_string());
        response_destination(&resp).unwrap().unwrap()
    }

    #[test]
    fn response_destination_rules() {
        // Unreliable, received + filled rport.
        let d =
            dest("SIP/2.0/UDP ua.example.com:5062;rport=40000;received=192.0.2.1;branch=z9hG4bKa");
        assert_eq!(
            (d.hop.host.as_str(), d.hop.port, d.prefer_incoming_flow),
            ("192.0.2.1", 40000, false)
        );
        // Unreliable, received only: the sent-by port.
        let d = dest("SIP/2.0/UDP ua.example.com:5062;received=192.0.2.1;branch=z9hG4bKa");
        assert_eq!((d.hop.host.as_str(), d.hop.port), ("192.0.2.1", 5062));
        // Unreliable, plain sent-by with default port.
        let d = dest("SIP/2.0/UDP ua.example.com;branch=z9hG4bKa");
        assert_eq!((d.hop.host.as_str(), d.hop.port), ("ua.example.com", 5060));
        // maddr.
        let d = dest("SIP/2.0/UDP ua.example.com:5062;maddr=239.1.1.1;branch=z9hG4bKa");
        assert_eq!((d.hop.host.as_str(), d.hop.port), ("239.1.1.1", 5062));
        // Reliable: reuse the flow; fallback received and rport, IPv6 bracketed.
        let d = dest("SIP/2.0/TLS ue.example.com;rport=50000;received=2001:db8::9;branch=z9hG4bKa");
        assert!(d.prefer_incoming_flow);
        assert_eq!(d.hop.transport, TransportKind::Tls);
        assert_eq!((d.hop.host.as_str(), d.hop.port), ("[2001:db8::9]", 50000));
        // TLS default port.
        let d = dest("SIP/2.0/TLS ue.example.com;branch=z9hG4bKa");
        assert_eq!(d.hop.port, 5061);
    }

    #[test]
    fn popping_the_last_via_means_the_response_is_for_us() {
        let mut resp = req("SIP/2.0/UDP proxy;branch=z9hG4bKa");
        pop_via(&mut resp).unwrap();
        assert!(response_destination(&resp).unwrap().is_some());
        pop_via(&mut resp).unwrap();
        assert_eq!(response_destination(&resp), Ok(None));
        assert_eq!(pop_via(&mut resp), Err(ViaError::Missing));
    }
}
