//! Who may subscribe to the reg event of a registered identity (TS 24.229
//! §5.4.2.1.1): the subscriber's identity, as the P-Asserted-Identity the trust
//! boundary let through (`ims_node::Ingress` removes it from senders not trusted to
//! assert one), must be
//!
//! * one of the public identities of the implicit registration set registered here
//!   (the user's own UE),
//! * the P-CSCF on the user's Path: a node identity (a SIP URI without user part)
//!   whose host is exactly the host of a Path value the user registered with — not a
//!   substring of it, as Kamailio's `ims_registrar_scscf` compares,
//! * or an application server named in the user's iFCs: its ServerName itself, or a
//!   node identity whose host (and port, when it has one) is that of a ServerName;
//!
//! anybody else, or a request without an asserted identity, is refused (403).

use ims_sip::message::addr::NameAddr;
use ims_sip::message::uri::Uri;
use ims_sip::{HeaderName, SipMessage};

use super::subscription::SubscriberKind;
use crate::location::Registration;

/// Why a subscriber is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No P-Asserted-Identity (none sent, or removed at the trust boundary).
    #[error("no asserted identity")]
    NoIdentity,
    /// The asserted identity is none of the allowed subscribers.
    #[error("{0} may not subscribe to this registration")]
    NotAllowed(String),
}

/// The identities of a P-Asserted-Identity header value (one or two, RFC 3325 §9.1).
pub fn asserted_uris(pai: &str) -> Vec<String> {
    pai.split(',')
        .filter_map(|v| NameAddr::parse(v.trim()).ok().map(|a| a.uri.to_string()))
        .collect()
}

/// The asserted identities of `req`: the URIs of its P-Asserted-Identity headers (what
/// the ingress filter left: nothing from a sender not trusted to assert one).
pub fn asserted_of(req: &SipMessage) -> Vec<String> {
    req.headers
        .get_all(&HeaderName::PAssertedIdentity)
        .filter_map(|h| h.value_str().map(asserted_uris))
        .flatten()
        .collect()
}

/// Whether a SUBSCRIBE from `asserted` to `reg` is a network node's (the P-CSCF on the
/// user's Path, an application server of its iFCs) rather than a request a phone
/// started: cloud authorization checks what phones start, with their token, and a node
/// subscribing for its own bookkeeping (TS 24.229 §5.2.3, §5.7.1.1) carries none.
pub fn is_network_node(asserted: &[String], reg: &Registration) -> bool {
    matches!(
        authorize(asserted, reg),
        Ok(SubscriberKind::Pcscf | SubscriberKind::ApplicationServer)
    )
}

/// Scheme, user and host (lower case) and port of a URI, to compare identities.
fn parts(uri: &str) -> Option<(String, Option<String>, String, Option<u16>)> {
    let u = Uri::parse(uri).ok()?;
    Some((
        u.scheme.to_ascii_lowercase(),
        u.user.map(str::to_string),
        u.host.to_ascii_lowercase(),
        u.port,
    ))
}

/// Whether `a` and `b` name the same public identity (scheme and host case-insensitive,
/// user exact, parameters ignored). A tel URI compares as written.
fn same_identity(a: &str, b: &str) -> bool {
    match (parts(a), parts(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The host of a Path or Route value.
fn route_host(value: &str) -> Option<String> {
    let a = NameAddr::parse(value.trim()).ok()?;
    parts(a.uri).map(|(_, _, host, _)| host)
}

/// Decides whether the subscriber asserted as `asserted` (the P-Asserted-Identity
/// URIs) may subscribe to `reg`.
pub fn authorize(asserted: &[String], reg: &Registration) -> Result<SubscriberKind, Refused> {
    if asserted.is_empty() {
        return Err(Refused::NoIdentity);
    }
    let servers: Vec<&str> = reg
        .profile
        .service_profiles
        .iter()
        .flat_map(|sp| &sp.ifcs)
        .map(|ifc| ifc.application_server.server_name.trim())
        .collect();
    for id in asserted {
        if reg.associated_uris().iter().any(|a| same_identity(a, id)) {
            return Ok(SubscriberKind::User);
        }
        if servers.iter().any(|s| same_identity(s, id)) {
            return Ok(SubscriberKind::ApplicationServer);
        }
        // Node identities only: a user's identity never matches a node by its domain.
        let Some((scheme, None, host, port)) = parts(id) else {
            continue;
        };
        if !scheme.starts_with("sip") {
            continue;
        }
        let on_path = reg
            .bindings
            .iter()
            .flat_map(|b| &b.path)
            .any(|p| route_host(p).as_deref() == Some(host.as_str()));
        if on_path {
            return Ok(SubscriberKind::Pcscf);
        }
        let named_in_ifc = servers
            .iter()
            .filter_map(|s| parts(s))
            .any(|(_, _, h, p)| h == host && (port.is_none() || p == port));
        if named_in_ifc {
            return Ok(SubscriberKind::ApplicationServer);
        }
    }
    Err(Refused::NotAllowed(asserted.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::UserProfile;
    use crate::store::tests::reg;

    fn alice() -> Registration {
        let mut r = reg("sip:alice@ims.example.net", &[("sip:a@10.0.0.1", 5000)]);
        r.bindings[0].path = vec!["<sip:term@pcscf.example.net:5060;lr>".into()];
        let xml = "<IMSSubscription><ServiceProfile>\
            <PublicIdentity><Identity>sip:alice@ims.example.net</Identity></PublicIdentity>\
            <PublicIdentity><Identity>tel:+1555</Identity></PublicIdentity>\
            <InitialFilterCriteria><Priority>1</Priority><ApplicationServer>\
            <ServerName>sip:as.example.net:5090</ServerName></ApplicationServer>\
            </InitialFilterCriteria></ServiceProfile></IMSSubscription>";
        r.profile = UserProfile::parse(bytes::Bytes::from_static(xml.as_bytes())).unwrap();
        r
    }

    fn check(pai: &str) -> Result<SubscriberKind, Refused> {
        authorize(&asserted_uris(pai), &alice())
    }

    #[test]
    fn only_the_pcscf_and_the_users_application_servers_count_as_network_nodes() {
        let node = |pai: &str| is_network_node(&asserted_uris(pai), &alice());
        assert!(node("<sip:pcscf.example.net>"));
        assert!(node("<sip:as.example.net:5090>"));
        // The user's own UE starts its subscription: cloud authorization applies.
        assert!(!node("<sip:alice@ims.example.net>"));
        // Nobody else is exempt: another user, a look-alike host, no identity.
        assert!(!node("<sip:bob@ims.example.net>"));
        assert!(!node("<sip:pcscf.example.net.evil.org>"));
        assert!(!node(""));
    }

    #[test]
    fn the_users_own_identities() {
        assert_eq!(
            check("<sip:alice@IMS.example.net>"),
            Ok(SubscriberKind::User)
        );
        assert_eq!(check("<tel:+1555>"), Ok(SubscriberKind::User));
        assert_eq!(
            check("\"Alice\" <sip:alice@ims.example.net>, <tel:+1555>"),
            Ok(SubscriberKind::User)
        );
    }

    #[test]
    fn another_user_is_refused() {
        assert!(matches!(
            check("<sip:bob@ims.example.net>"),
            Err(Refused::NotAllowed(_))
        ));
        assert_eq!(check(""), Err(Refused::NoIdentity));
    }

    #[test]
    fn the_pcscf_on_the_path_by_exact_host() {
        assert_eq!(check("<sip:pcscf.example.net>"), Ok(SubscriberKind::Pcscf));
        // Kamailio's substring match would take these.
        for pai in [
            "<sip:example.net>",
            "<sip:cscf.example.net>",
            "<sip:pcscf.example.net.evil.org>",
            "<sip:term@pcscf.example.net>",
        ] {
            assert!(check(pai).is_err(), "{pai}");
        }
    }

    #[test]
    fn an_application_server_of_the_ifcs() {
        assert_eq!(
            check("<sip:as.example.net:5090>"),
            Ok(SubscriberKind::ApplicationServer)
        );
        assert_eq!(
            check("<sip:as.example.net>"),
            Ok(SubscriberKind::ApplicationServer)
        );
        assert!(check("<sip:as.example.net:5099>").is_err());
        assert!(check("<sip:other-as.example.net>").is_err());
    }
}
