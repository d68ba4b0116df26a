//! Route processing: preprocessing of a received request (RFC 3261 §16.4) and the
//! forwarding steps 1-7 of §16.6 (copy, Request-URI, Max-Forwards, Record-Route,
//! Route pre-loading, strict-route postprocessing, next hop). Step 8 (Via) is
//! [`super::via::add_via`], done once the caller has picked the local socket for the
//! [`NextHop`].

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use crate::message::addr::NameAddr;
use crate::message::uri::Uri;
use crate::{HeaderName, SipMessage};

use super::record_route::{insert_record_route, RecordRoute};
use super::{ProxyConfig, TransportKind};

/// Why a request cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    /// The message is a response.
    #[error("not a request")]
    NotARequest,
    /// A Route value or the Request-URI does not parse.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The next-hop URI has a scheme we cannot send to (e.g. `tel`, which needs ENUM).
    #[error("cannot route to a {0} URI")]
    UnroutableScheme(String),
    /// The next-hop URI names a transport we do not know.
    #[error("unknown transport {0}")]
    UnknownTransport(String),
}

/// The URI of a Route/Record-Route value.
fn route_uri(value: &str) -> Result<Uri<'_>, RoutingError> {
    let addr = NameAddr::parse(value).map_err(|_| RoutingError::Malformed("Route"))?;
    Uri::parse(addr.uri).map_err(|_| RoutingError::Malformed("Route"))
}

fn text(b: &Bytes) -> Result<&str, RoutingError> {
    std::str::from_utf8(b).map_err(|_| RoutingError::Malformed("Route"))
}

/// The default port for a SIP URI: 5061 for `sips` or `transport=tls`, else that of its
/// transport (RFC 3261 §19.1.2).
fn uri_default_port(uri: &Uri<'_>) -> u16 {
    if uri.scheme.eq_ignore_ascii_case("sips") {
        return 5061;
    }
    uri.param("transport")
        .flatten()
        .and_then(TransportKind::from_token)
        .map_or(5060, TransportKind::default_port)
}

/// True when a SIP URI names this element (host and port, after defaults).
pub fn is_own_uri(uri: &Uri<'_>, config: &ProxyConfig) -> bool {
    let sip = uri.scheme.eq_ignore_ascii_case("sip") || uri.scheme.eq_ignore_ascii_case("sips");
    sip && config.is_local(uri.host, uri.port, uri_default_port(uri))
}

/// What §16.4 preprocessing did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preprocessed {
    /// The Request-URI was one of our Record-Route values (the previous hop is a strict
    /// router) and was replaced by the last Route value.
    pub strict_request_uri: Option<Bytes>,
    /// Our Route value popped from the top, as written (the caller may read parameters
    /// or a flow token from it).
    pub popped_route: Option<Bytes>,
}

/// Route information preprocessing (RFC 3261 §16.4):
/// * if the Request-URI is a value we placed in Record-Route (ours, with `;lr`) and
///   Route is not empty, the last Route value becomes the Request-URI and is removed;
/// * if the top Route value names us, it is removed (once: a caller that double
///   record-routes calls [`pop_own_route`] again).
pub fn preprocess_route(
    req: &mut SipMessage,
    config: &ProxyConfig,
) -> Result<Preprocessed, RoutingError> {
    let ruri = req.request().ok_or(RoutingError::NotARequest)?.uri.clone();
    let mut out = Preprocessed::default();
    let ruri_is_our_rr = std::str::from_utf8(&ruri)
        .ok()
        .and_then(|t| Uri::parse(t).ok())
        .is_some_and(|u| u.is_loose_route() && is_own_uri(&u, config));
    if ruri_is_our_rr {
        if let Some(last) = pop_last_route(req) {
            let uri = uri_text(&route_uri(text(&last)?)?);
            req.set_request_uri(uri);
            out.strict_request_uri = Some(ruri);
        }
    }
    out.popped_route = pop_own_route(req, config)?;
    Ok(out)
}

/// Removes the top Route value if it names this element (§16.4), returning it.
pub fn pop_own_route(
    req: &mut SipMessage,
    config: &ProxyConfig,
) -> Result<Option<Bytes>, RoutingError> {
    let Some(top) = req.headers.first_value(&HeaderName::Route) else {
        return Ok(None);
    };
    if is_own_uri(&route_uri(text(&top)?)?, config) {
        Ok(req.headers.pop_first_value(&HeaderName::Route))
    } else {
        Ok(None)
    }
}

/// Removes and returns the last Route value.
fn pop_last_route(req: &mut SipMessage) -> Option<Bytes> {
    let all: Vec<Bytes> = req.headers.values(&HeaderName::Route).collect();
    let (last, rest) = all.split_last()?;
    req.headers.remove_all(&HeaderName::Route);
    for v in rest {
        req.headers.push(HeaderName::Route, v.clone());
    }
    Some(last.clone())
}

/// A URI as text, without the header parameters of the name-addr it came from.
fn uri_text(uri: &Uri<'_>) -> String {
    let mut s = format!("{}:", uri.scheme);
    if let Some(u) = uri.user {
        s.push_str(u);
        if let Some(p) = uri.password {
            s.push(':');
            s.push_str(p);
        }
        s.push('@');
    }
    s.push_str(uri.host);
    if let Some(port) = uri.port {
        s.push(':');
        s.push_str(&port.to_string());
    }
    for p in &uri.params {
        s.push(';');
        s.push_str(p.name);
        if let Some(v) = p.value {
            s.push('=');
            s.push_str(v);
        }
    }
    if let Some(h) = uri.headers {
        s.push('?');
        s.push_str(h);
    }
    s
}

/// What to change in the copy of a request for one target (§16.6 steps 2, 4, 5).
#[derive(Debug, Clone, Default)]
pub struct ForwardSpec<'a> {
    /// The new Request-URI (§16.6 step 2); `None` keeps the received one (e.g. a
    /// request routed by its Route set).
    pub target: Option<&'a str>,
    /// Record-Route to insert (§16.6 step 4).
    pub record_route: Option<&'a RecordRoute>,
    /// Route values to push in front of the existing Route set, topmost first
    /// (§16.6 step 5: an outbound proxy, a Service-Route, an application server).
    /// Each is a full header value such as `<sip:scscf.example.com;lr>`.
    pub preload_routes: &'a [String],
}

/// A request copy ready for its Via (§16.6 step 8) and the address to send it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The request to send, without our Via yet.
    pub request: SipMessage,
    /// Where it goes (§16.6 step 7).
    pub next_hop: NextHop,
}

/// §16.6 steps 1-7 for one target: copy `received`, set the Request-URI, decrement
/// Max-Forwards (or add `Max-Forwards: 70` when absent), insert Record-Route, pre-load
/// Route values, convert for a strict next hop, and determine the next hop.
///
/// `received` must have passed [`super::validate::validate`] (so Max-Forwards ≥ 1)
/// and [`preprocess_route`].
pub fn forward(received: &SipMessage, spec: &ForwardSpec<'_>) -> Result<Forwarded, RoutingError> {
    // Step 1: copy.
    let mut req = received.clone();
    // Step 2: Request-URI.
    if let Some(target) = spec.target {
        Uri::parse(target).map_err(|_| RoutingError::Malformed("target URI"))?;
        req.set_request_uri(Bytes::copy_from_slice(target.as_bytes()));
    }
    // Step 3: Max-Forwards.
    let mf = match req.headers.get_str(&HeaderName::MaxForwards) {
        Some(v) => v
            .trim()
            .parse::<u8>()
            .map_err(|_| RoutingError::Malformed("Max-Forwards"))?
            .saturating_sub(1),
        None => 70,
    };
    req.headers.set(HeaderName::MaxForwards, mf.to_string());
    // Step 5: Route pre-loading, keeping the given order on top.
    for route in spec.preload_routes.iter().rev() {
        req.headers.push_front(HeaderName::Route, route.clone());
    }
    // Step 6: strict-route postprocessing.
    let strict = strict_route_postprocess(&mut req)?;
    // Step 4, done after step 6 because it depends on its outcome: `sips` when the
    // Request-URI or the top Route (after step 6) is `sips`. The headers it touches
    // are disjoint from steps 5-6, so the result is that of the §16.6 order.
    if let Some(rr) = spec.record_route {
        let sips = needs_sips(&req);
        insert_record_route(&mut req, rr, sips);
    }
    // Step 7: next hop.
    let next_hop = next_hop(&req, strict)?;
    Ok(Forwarded {
        request: req,
        next_hop,
    })
}

/// True when the Request-URI or the top Route of `req` is a `sips` URI: the
/// Record-Route inserted then must be `sips` too (§16.6 step 4). A caller that picks
/// its Record-Route after [`forward`] (from the next hop) inserts it with this.
pub fn needs_sips(req: &SipMessage) -> bool {
    let is_sips = |b: &[u8]| b.get(..5).is_some_and(|p| p.eq_ignore_ascii_case(b"sips:"));
    let ruri_sips = req.request().is_some_and(|r| is_sips(&r.uri));
    let route_sips = req
        .headers
        .first_value(&HeaderName::Route)
        .and_then(|v| {
            let t = std::str::from_utf8(&v).ok()?;
            Some(is_sips(NameAddr::parse(t).ok()?.uri.as_bytes()))
        })
        .unwrap_or(false);
    ruri_sips || route_sips
}

/// §16.6 step 6: when the top Route lacks `;lr` (a strict router, RFC 2543), the
/// Request-URI moves to the end of the Route set and the top Route's URI becomes the
/// Request-URI. Returns true when the request was converted.
pub fn strict_route_postprocess(req: &mut SipMessage) -> Result<bool, RoutingError> {
    let ruri = req.request().ok_or(RoutingError::NotARequest)?.uri.clone();
    let Some(top) = req.headers.first_value(&HeaderName::Route) else {
        return Ok(false);
    };
    let top_uri = route_uri(text(&top)?)?;
    if top_uri.is_loose_route() {
        return Ok(false);
    }
    let new_ruri = uri_text(&top_uri);
    req.headers.pop_first_value(&HeaderName::Route);
    let mut last = Vec::with_capacity(ruri.len() + 2);
    last.push(b'<');
    last.extend_from_slice(&ruri);
    last.push(b'>');
    req.headers.push(HeaderName::Route, last);
    req.set_request_uri(new_ruri);
    Ok(true)
}

/// Where a request goes next (§16.6 step 7) as its URI names it; the engine looks its
/// host up per RFC 3263 (`engine::HostCache`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    /// Transport: the URI's `transport` parameter, TLS for `sips`, else UDP.
    pub transport: TransportKind,
    /// Host (the `maddr` parameter if present): name, IPv4 or `[IPv6]`.
    pub host: String,
    /// Port: explicit, or the transport's default.
    pub port: u16,
    /// The URI names the port: RFC 3263 §4.2 looks the host up by its addresses only
    /// (no SRV).
    pub explicit_port: bool,
    /// The URI names the transport (`transport=`): RFC 3263 §4.1 does no NAPTR.
    pub explicit_transport: bool,
}

impl NextHop {
    /// The socket address: `host` if it is an IP literal, else `resolve(host)`
    /// (a static map or a caller's resolver; the proxy core does no DNS).
    pub fn socket_addr(&self, resolve: impl Fn(&str) -> Option<IpAddr>) -> Option<SocketAddr> {
        let bare = self
            .host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host);
        let ip = bare
            .parse::<IpAddr>()
            .ok()
            .or_else(|| resolve(&self.host))?;
        Some(SocketAddr::new(ip, self.port))
    }

    /// The next hop of a SIP or SIPS URI.
    pub fn of_uri(uri: &Uri<'_>) -> Result<NextHop, RoutingError> {
        let sips = uri.scheme.eq_ignore_ascii_case("sips");
        if !sips && !uri.scheme.eq_ignore_ascii_case("sip") {
            return Err(RoutingError::UnroutableScheme(uri.scheme.to_string()));
        }
        let explicit_transport = uri.param("transport").flatten().is_some();
        let transport = match uri.param("transport").flatten() {
            Some(t) => {
                let kind = TransportKind::from_token(t)
                    .ok_or_else(|| RoutingError::UnknownTransport(t.to_string()))?;
                // sips requires TLS on every hop (RFC 3261 §26.2.2).
                match kind {
                    TransportKind::Tcp | TransportKind::Udp if sips => TransportKind::Tls,
                    TransportKind::Ws if sips => TransportKind::Wss,
                    k => k,
                }
            }
            None if sips => TransportKind::Tls,
            None => TransportKind::Udp,
        };
        let host = uri.param("maddr").flatten().unwrap_or(uri.host);
        Ok(NextHop {
            transport,
            host: host.to_string(),
            port: uri.port.unwrap_or_else(|| transport.default_port()),
            explicit_port: uri.port.is_some(),
            explicit_transport,
        })
    }
}

/// The next hop of a request (§16.6 step 7): the top Route's URI, else the
/// Request-URI; the Request-URI also when `strict_converted` (the request was
/// reformatted for a strict router by [`strict_route_postprocess`]).
pub fn next_hop(req: &SipMessage, strict_converted: bool) -> Result<NextHop, RoutingError> {
    let top = req.headers.first_value(&HeaderName::Route);
    match top.filter(|_| !strict_converted) {
        Some(top) => NextHop::of_uri(&route_uri(text(&top)?)?),
        None => {
            let ruri = &req.request().ok_or(RoutingError::NotARequest)?.uri;
            let t =
                std::str::from_utf8(ruri).map_err(|_| RoutingError::Malformed("Request-URI"))?;
            NextHop::of_uri(&Uri::parse(t).map_err(|_| RoutingError::Malformed("Request-URI"))?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::record_route::RouteUri;
    use crate::proxy::LocalAddr;

    fn config() -> ProxyConfig {
        ProxyConfig {
            local: vec![
                LocalAddr::new("scscf.example.com", None),
                LocalAddr::new("10.0.0.5", Some(6060)),
            ],
            supported: vec![],
        }
    }

    fn req(ruri: &str, headers: &str) -> SipMessage {
        SipMessage::parse(Bytes::from(format!(
            "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP ua;branch=z9hG4bK1\r\n{headers}\
             From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n"
        )))
        .unwrap()
    }

    fn routes(r: &SipMessage) -> Vec<String> {
        r.headers
            .values(&HeaderName::Route)
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
            .collect()
    }

    fn ruri(r: &SipMessage) -> String {
        String::from_utf8(r.request().unwrap().uri.to_vec()).unwrap()
    }

    #[test]
    fn pops_our_top_route_only() {
        let mut r = req(
            "sip:b@y",
            "Route: <sip:scscf.example.com:5060;lr;orig>, <sip:as.example.com;lr>\r\n",
        );
        let p = preprocess_route(&mut r, &config()).unwrap();
        assert_eq!(
            p.popped_route.as_deref(),
            Some(&b"<sip:scscf.example.com:5060;lr;orig>"[..])
        );
        assert_eq!(p.strict_request_uri, None);
        assert_eq!(routes(&r), vec!["<sip:as.example.com;lr>"]);
        // The next top Route is not ours: nothing more is popped.
        let p = preprocess_route(&mut r, &config()).unwrap();
        assert_eq!(p.popped_route, None);
        assert_eq!(routes(&r), vec!["<sip:as.example.com;lr>"]);
    }

    #[test]
    fn port_must_match() {
        let mut r = req("sip:b@y", "Route: <sip:10.0.0.5;lr>\r\n");
        assert_eq!(
            preprocess_route(&mut r, &config()).unwrap().popped_route,
            None
        );
        let mut r = req("sip:b@y", "Route: <sip:10.0.0.5:6060;lr>\r\n");
        assert!(preprocess_route(&mut r, &config())
            .unwrap()
            .popped_route
            .is_some());
        assert!(routes(&r).is_empty());
    }

    #[test]
    fn strict_router_request_uri_is_restored_from_last_route() {
        // A strict router upstream put our Record-Route URI into the Request-URI and
        // moved the remote target to the end of the Route set (§16.4).
        let mut r = req(
            "sip:scscf.example.com;lr",
            "Route: <sip:p2.example.com;lr>\r\nRoute: <sip:bob@192.0.2.4>\r\n",
        );
        let p = preprocess_route(&mut r, &config()).unwrap();
        assert_eq!(
            p.strict_request_uri.as_deref(),
            Some(&b"sip:scscf.example.com;lr"[..])
        );
        assert_eq!(ruri(&r), "sip:bob@192.0.2.4");
        assert_eq!(routes(&r), vec!["<sip:p2.example.com;lr>"]);
    }

    #[test]
    fn request_uri_for_us_without_lr_is_left_alone() {
        let mut r = req(
            "sip:scscf.example.com",
            "Route: <sip:p2.example.com;lr>\r\n",
        );
        let p = preprocess_route(&mut r, &config()).unwrap();
        assert_eq!(p, Preprocessed::default());
        assert_eq!(ruri(&r), "sip:scscf.example.com");
    }

    #[test]
    fn strict_next_hop_conversion() {
        // §16.6 step 6: the top Route has no `lr`.
        let mut r = req(
            "sip:bob@192.0.2.4",
            "Route: <sip:strict.example.com>, <sip:p3.example.com;lr>\r\n",
        );
        assert!(strict_route_postprocess(&mut r).unwrap());
        assert_eq!(ruri(&r), "sip:strict.example.com");
        assert_eq!(
            routes(&r),
            vec!["<sip:p3.example.com;lr>", "<sip:bob@192.0.2.4>"]
        );
        // The next hop is then the strict router, now in the Request-URI (step 7).
        assert_eq!(next_hop(&r, true).unwrap().host, "strict.example.com");
        assert_eq!(next_hop(&r, false).unwrap().host, "p3.example.com");
        // A loose top Route is left alone.
        let mut l = req("sip:bob@192.0.2.4", "Route: <sip:p3.example.com;lr>\r\n");
        assert!(!strict_route_postprocess(&mut l).unwrap());
        assert_eq!(ruri(&l), "sip:bob@192.0.2.4");
    }

    #[test]
    fn forward_decrements_max_forwards_and_sets_target() {
        let r = req("sip:b@y", "Max-Forwards: 10\r\n");
        let f = forward(
            &r,
            &ForwardSpec {
                target: Some("sip:b@192.0.2.7:5070;transport=tcp"),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(ruri(&f.request), "sip:b@192.0.2.7:5070;transport=tcp");
        assert_eq!(
            f.request.headers.get_str(&HeaderName::MaxForwards),
            Some("9")
        );
        assert_eq!(
            f.next_hop,
            NextHop {
                transport: TransportKind::Tcp,
                host: "192.0.2.7".into(),
                port: 5070,
                explicit_port: true,
                explicit_transport: true,
            }
        );
        // The received request is untouched.
        assert_eq!(r.headers.get_str(&HeaderName::MaxForwards), Some("10"));
    }

    #[test]
    fn forward_adds_max_forwards_70_when_absent() {
        let f = forward(&req("sip:b@y", ""), &ForwardSpec::default()).unwrap();
        assert_eq!(
            f.request.headers.get_str(&HeaderName::MaxForwards),
            Some("70")
        );
    }

    #[test]
    fn forward_record_routes_and_preloads_in_order() {
        let r = req("sip:b@y", "Route: <sip:icscf.example.com;lr>\r\n");
        let rr = RecordRoute::Single(RouteUri::new("pcscf.example.com", None));
        let preload = [
            "<sip:outbound.example.com;lr>".to_string(),
            "<sip:scscf.example.com;lr>".to_string(),
        ];
        let f = forward(
            &r,
            &ForwardSpec {
                target: None,
                record_route: Some(&rr),
                preload_routes: &preload,
            },
        )
        .unwrap();
        assert_eq!(
            routes(&f.request),
            vec![
                "<sip:outbound.example.com;lr>",
                "<sip:scscf.example.com;lr>",
                "<sip:icscf.example.com;lr>"
            ]
        );
        let rrs: Vec<_> = f.request.headers.values(&HeaderName::RecordRoute).collect();
        assert_eq!(rrs, vec!["<sip:pcscf.example.com;lr>"]);
        assert_eq!(f.next_hop.host, "outbound.example.com");
        assert_eq!(f.next_hop.port, 5060);
        assert_eq!(f.next_hop.transport, TransportKind::Udp);
    }

    #[test]
    fn record_route_is_sips_toward_a_sips_target() {
        let rr = RecordRoute::Single(RouteUri::new("pcscf.example.com", Some(5061)));
        let spec = |target| ForwardSpec {
            target: Some(target),
            record_route: Some(&rr),
            preload_routes: &[],
        };
        let f = forward(&req("sip:b@y", ""), &spec("sips:bob@example.com")).unwrap();
        assert_eq!(
            f.request.headers.get_str(&HeaderName::RecordRoute),
            Some("<sips:pcscf.example.com:5061;lr>")
        );
        let f = forward(&req("sip:b@y", ""), &spec("sip:bob@example.com")).unwrap();
        assert_eq!(
            f.request.headers.get_str(&HeaderName::RecordRoute),
            Some("<sip:pcscf.example.com:5061;lr>")
        );
    }

    #[test]
    fn forward_to_a_strict_preloaded_route() {
        let preload = ["<sip:strict.example.com>".to_string()];
        let f = forward(
            &req("sip:b@y", ""),
            &ForwardSpec {
                target: Some("sip:bob@192.0.2.4"),
                preload_routes: &preload,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(ruri(&f.request), "sip:strict.example.com");
        assert_eq!(routes(&f.request), vec!["<sip:bob@192.0.2.4>"]);
        assert_eq!(f.next_hop.host, "strict.example.com");
    }

    #[test]
    fn next_hop_rules() {
        let hop = |u: &str| NextHop::of_uri(&Uri::parse(u).unwrap());
        let h = hop("sips:bob@example.com").unwrap();
        assert_eq!((h.transport, h.port), (TransportKind::Tls, 5061));
        let h = hop("sips:bob@example.com;transport=tcp").unwrap();
        assert_eq!(h.transport, TransportKind::Tls);
        let h = hop("sip:[2001:db8::1]:5080;transport=TLS").unwrap();
        assert_eq!((h.transport, h.port), (TransportKind::Tls, 5080));
        assert_eq!(h.host, "[2001:db8::1]");
        let h = hop("sip:bob@example.com;maddr=192.0.2.9").unwrap();
        assert_eq!((h.host.as_str(), h.port), ("192.0.2.9", 5060));
        assert_eq!(
            hop("tel:+15551234"),
            Err(RoutingError::UnroutableScheme("tel".into()))
        );
        assert_eq!(
            hop("sip:x@y;transport=carrier-pigeon"),
            Err(RoutingError::UnknownTransport("carrier-pigeon".into()))
        );
    }

    #[test]
    fn next_hop_socket_address() {
        let v6 = NextHop::of_uri(&Uri::parse("sip:[::1]:5070").unwrap()).unwrap();
        assert_eq!(
            v6.socket_addr(|_| None),
            Some("[::1]:5070".parse().unwrap())
        );
        let named = NextHop::of_uri(&Uri::parse("sip:scscf.example.com").unwrap()).unwrap();
        assert_eq!(named.socket_addr(|_| None), None);
        let map = |h: &str| (h == "scscf.example.com").then(|| "127.0.0.1".parse().unwrap());
        assert_eq!(
            named.socket_addr(map),
            Some("127.0.0.1:5060".parse().unwrap())
        );
    }
}
