//! The next hops a decision's branches go to, looked up while the policy decides.

use crate::message::addr::NameAddr;
use crate::message::uri::Uri;
use crate::proxy::routing::NextHop;
use crate::{HeaderName, SipMessage};

use super::Decision;

/// The next hop each branch of `decision` is sent to (RFC 3261 §16.6 steps 6-7), for
/// [`super::EngineConfig::prepare`]: the first preloaded Route, else the branch's own
/// first Route, else the request's top Route, else the branch's target (the
/// Request-URI when there are no targets), when its host is a name (an IP address needs
/// no lookup). Only these are looked up: a REGISTER sent to the S-CSCF by URI does not
/// wait for a lookup of its Request-URI's domain. Unreadable values are skipped (the
/// routing step reports them).
pub(super) fn next_hops(request: &SipMessage, decision: &Decision) -> Vec<NextHop> {
    let (request, forward) = match decision {
        Decision::Respond(_) => return Vec::new(),
        Decision::Forward(forward) => (request, forward),
        Decision::ForwardWith {
            request, forward, ..
        } => (request, forward),
    };
    let route_hop = |value: &str| {
        let first = value.split(',').next()?;
        let addr = NameAddr::parse(first.trim()).ok()?;
        uri_hop(addr.uri)
    };
    let own_route = request.headers.get_str(&HeaderName::Route);
    let ruri = request
        .request()
        .and_then(|r| std::str::from_utf8(&r.uri).ok());
    // Without targets, one branch that keeps the Request-URI.
    let ruri_branch = ruri.filter(|_| forward.targets.is_empty());
    let targets = forward
        .targets
        .iter()
        .map(String::as_str)
        .chain(ruri_branch);
    let mut hops = Vec::new();
    for (i, target) in targets.enumerate() {
        let route = forward
            .preload_routes
            .first()
            .or_else(|| forward.target_routes.get(i).and_then(|r| r.first()))
            .map(String::as_str)
            .or(own_route);
        let hop = match route {
            Some(route) => route_hop(route),
            None => uri_hop(target),
        };
        if let Some(hop) = hop {
            if !hops.contains(&hop) {
                hops.push(hop);
            }
        }
    }
    hops
}

/// The next hop of a SIP(S) URI (its `maddr`, else its host) when that is a name.
fn uri_hop(uri: &str) -> Option<NextHop> {
    let uri = Uri::parse(uri).ok()?;
    let host = uri.param("maddr").flatten().unwrap_or(uri.host);
    if crate::proxy::ip_of(host).is_some() {
        return None;
    }
    NextHop::of_uri(&uri).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::proxy::engine::Forward;

    fn hosts(request: &SipMessage, decision: &Decision) -> Vec<String> {
        next_hops(request, decision)
            .into_iter()
            .map(|hop| hop.host)
            .collect()
    }

    fn request(ruri: &str, route: Option<&str>) -> SipMessage {
        let route = route.map_or(String::new(), |r| format!("Route: {r}\r\n"));
        SipMessage::parse(
            format!(
                "REGISTER {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK1\r\n\
                 {route}From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>\r\nCall-ID: c\r\n\
                 CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
        )
        .unwrap()
    }

    fn forward(targets: &[&str], preload: &[&str], per_target: &[&[&str]]) -> Decision {
        Decision::Forward(Forward {
            targets: targets.iter().map(|t| t.to_string()).collect(),
            preload_routes: preload.iter().map(|t| t.to_string()).collect(),
            target_routes: per_target
                .iter()
                .map(|r| r.iter().map(|t| t.to_string()).collect())
                .collect(),
            ..Forward::default()
        })
    }

    #[test]
    fn ip_addresses_need_no_lookup() {
        let req = request("sip:ims.example.net", Some("<sip:10.0.0.5:5070;lr>"));
        assert!(hosts(&req, &forward(&[], &[], &[])).is_empty());
        let d = forward(
            &["sip:bob@[2001:db8::1]", "sip:bob@ue.example"],
            &["<sip:192.0.2.1;lr>"],
            &[],
        );
        assert!(
            hosts(&req, &d).is_empty(),
            "the preloaded Route is an address"
        );
    }

    #[test]
    fn a_target_replaces_the_request_uri_s_domain() {
        let req = request("sip:ims.example.net", None);
        let d = forward(&["sip:scscf.ims.example.net:5080"], &[], &[]);
        assert_eq!(hosts(&req, &d), ["scscf.ims.example.net"]);
    }

    #[test]
    fn routes_come_before_targets_in_their_order() {
        let own = Some("<sip:icscf.core;lr>, <sip:other.core;lr>");
        let req = request("sip:bob@ims.example.net", own);
        // Preloaded Route first.
        let d = forward(&["sip:bob@ue.example"], &["<sip:as.example;lr>"], &[]);
        assert_eq!(hosts(&req, &d), ["as.example"]);
        // Then each branch's own Route, then the request's top Route.
        let d = forward(
            &["sip:bob@a.example", "sip:bob@b.example"],
            &[],
            &[&["<sip:pcscf-a.core;lr>"]],
        );
        assert_eq!(hosts(&req, &d), ["pcscf-a.core", "icscf.core"]);
        // No target, no preload: the request's Route.
        assert_eq!(hosts(&req, &forward(&[], &[], &[])), ["icscf.core"]);
        // Nothing but the Request-URI (its maddr when it has one).
        let req = request("sip:bob@ims.example.net;maddr=relay.example", None);
        assert_eq!(hosts(&req, &forward(&[], &[], &[])), ["relay.example"]);
    }
}
