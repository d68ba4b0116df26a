//! The logic of an RFC 3261 §16 stateful proxy, as sans-IO functions and types over
//! [`SipMessage`](crate::SipMessage). No sockets, no timers, no tasks: a glue layer
//! feeds in received messages and transaction events and sends what comes out.
//!
//! The order a glue layer drives it in, for a request arriving on a server transaction:
//!
//! 1. [`via::stamp_received`]: `received`/`rport` on the top Via (§18.2.1, RFC 3581 §4).
//! 2. [`validate::validate`]: §16.3 checks; a [`validate::Rejection`] becomes the
//!    response. The [`loops::LoopHash`] it computed is kept for step 5.
//! 3. [`routing::preprocess_route`]: §16.4 (strict-router Request-URI, pop our Route).
//! 4. Targets (§16.5) are the CSCF's policy.
//! 5. Per target, [`routing::forward`] (§16.6 steps 1-7) then [`via::add_via`]
//!    (step 8), and [`response_context::ResponseContext::add_branch`].
//! 6. Responses and client-transaction events go to the
//!    [`response_context::ResponseContext`] (§16.7-§16.9); a CANCEL to
//!    [`cancel::handle_cancel`] (§16.10). Upstream responses are sent to
//!    [`via::response_destination`] (§18.2.2, RFC 3581 §4).
//!
//! [`engine::ProxyEngine`] is that glue layer, running over the transport and
//! transaction layers; a CSCF plugs its routing and answers in as an
//! [`engine::Policy`].

pub mod cancel;
pub mod engine;
pub mod loops;
pub mod record_route;
pub mod response_context;
pub mod routing;
pub mod validate;
pub mod via;

pub use crate::transport::TransportKind;

/// One address this element is reachable at: what it writes into Via sent-by,
/// Record-Route and Path, and what it recognizes in Route, Request-URI and Via.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddr {
    /// Host name or IP address (IPv6 in brackets), compared case-insensitively.
    pub host: String,
    /// Port; `None` stands for the default port of the transport in use. Ports are
    /// compared after applying that default on both sides.
    pub port: Option<u16>,
}

impl LocalAddr {
    /// A local address `host[:port]`.
    pub fn new(host: impl Into<String>, port: Option<u16>) -> LocalAddr {
        LocalAddr {
            host: host.into(),
            port,
        }
    }

    /// True when `host`/`port` (port defaulting to `default_port`) name this address.
    /// IP addresses compare by value, so `[2001:DB8:0::1]` matches `[2001:db8::1]`.
    pub fn matches(&self, host: &str, port: Option<u16>, default_port: u16) -> bool {
        let same_host = match (ip_of(&self.host), ip_of(host)) {
            (Some(a), Some(b)) => a == b,
            _ => self.host.eq_ignore_ascii_case(host),
        };
        if !same_host {
            return false;
        }
        self.port.unwrap_or(default_port) == port.unwrap_or(default_port)
    }
}

/// The IP address in a host (IPv6 with or without brackets), if it is one.
pub(crate) fn ip_of(host: &str) -> Option<std::net::IpAddr> {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()
}

/// What the proxy core needs to know about the element it runs in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Every address of this element (all interfaces and transports). Used to recognize
    /// our own Route/Record-Route URIs (§16.4) and our own Via sent-by (§16.3 step 4).
    pub local: Vec<LocalAddr>,
    /// Option tags this proxy supports in Proxy-Require (§16.3 step 5).
    pub supported: Vec<String>,
}

impl ProxyConfig {
    /// True when `host[:port]` is one of our addresses.
    pub fn is_local(&self, host: &str, port: Option<u16>, default_port: u16) -> bool {
        self.local
            .iter()
            .any(|l| l.matches(host, port, default_port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_address_matching_applies_default_ports() {
        let l = LocalAddr::new("Proxy.Example.com", None);
        assert!(l.matches("proxy.example.com", None, 5060));
        assert!(l.matches("proxy.example.com", Some(5060), 5060));
        assert!(!l.matches("proxy.example.com", Some(5070), 5060));
        assert!(!l.matches("other.example.com", None, 5060));
        let p = LocalAddr::new("10.0.0.1", Some(5070));
        assert!(p.matches("10.0.0.1", Some(5070), 5060));
        assert!(!p.matches("10.0.0.1", None, 5060));
        assert!(!p.matches("10.0.0.1", Some(5060), 5060));
        let v6 = LocalAddr::new("[2001:DB8:0::1]", None);
        assert!(v6.matches("[2001:db8::1]", None, 5060));
        assert!(!v6.matches("[2001:db8::2]", None, 5060));
    }
}
