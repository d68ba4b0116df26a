//! The IMS headers the P-CSCF writes or polices: Path (RFC 3327), P-Visited-Network-ID
//! and P-Charging-Vector (RFC 7315 §4.3, §4.6), P-Asserted-Identity and
//! P-Preferred-Identity (RFC 3325 §9, TS 24.229 §5.2.6.3.3).

use ims_sip::{HeaderName, SipMessage};

use crate::registrations::{uri_of, Registration};

/// Whether a comma-separated option-tag header (Supported, Require) lists `tag`.
pub fn lists_option(msg: &SipMessage, name: &HeaderName, tag: &str) -> bool {
    msg.headers
        .values(name)
        .any(|v| v.trim_ascii().eq_ignore_ascii_case(tag.as_bytes()))
}

/// Adds our Path value on top (RFC 3327 §5.2) and, when the UE did not say
/// `Supported: path`, `Require: path`, so a registrar that does not support Path
/// refuses the REGISTER (420) instead of losing the route back to the UE.
pub fn add_path(req: &mut SipMessage, path_value: &str) {
    req.headers
        .push_front(HeaderName::Path, path_value.to_string());
    if !lists_option(req, &HeaderName::Supported, "path") {
        req.headers.push(HeaderName::Require, "path");
    }
}

/// Sets P-Visited-Network-ID (TS 24.229 §5.2.2.1), quoted unless it is a token.
pub fn set_visited_network(req: &mut SipMessage, id: &str) {
    let token = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
    let value = if token {
        id.to_string()
    } else {
        format!("\"{id}\"")
    };
    req.headers.set(HeaderName::PVisitedNetworkId, value);
}

/// A fresh IMS charging identifier (RFC 7315 §4.6: globally unique): 16 random bytes
/// in hex.
pub fn new_icid() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Replaces any P-Charging-Vector with one carrying a new `icid-value` generated at
/// `host` (TS 24.229 §5.2.2.1, §5.2.6.3.3; a UE may not supply one).
pub fn set_charging_vector(req: &mut SipMessage, host: &str) -> String {
    let icid = new_icid();
    req.headers.set(
        HeaderName::PChargingVector,
        format!("icid-value={icid};icid-generated-at={host}"),
    );
    icid
}

/// The identity the P-CSCF asserts for a request from a registered UE (TS 24.229
/// §5.2.6.3.3, RFC 3325 §9.1): the P-Preferred-Identity if it is one of the UE's
/// associated URIs, else the default public identity (the first associated URI, or
/// the registered identity when the registrar sent none).
pub fn asserted_identity(req: &SipMessage, reg: &Registration) -> String {
    let preferred = req
        .headers
        .values(&HeaderName::PPreferredIdentity)
        .filter_map(|v| std::str::from_utf8(&v).ok().and_then(uri_of))
        .find(|p| reg.associated.iter().any(|a| a.eq_ignore_ascii_case(p)));
    preferred
        .or_else(|| reg.associated.first().cloned())
        .unwrap_or_else(|| reg.public_identity.clone())
}

/// Removes what a UE may not assert and asserts the identity: P-Asserted-Identity,
/// P-Preferred-Identity and P-Served-User from the UE go (the S-CSCF takes the served
/// user from P-Served-User, which only the trust domain may set, RFC 5502 §4), and
/// `<identity>` is set (RFC 3325 §9.1: a proxy in the trust domain replaces what an
/// untrusted UE sent).
pub fn assert_identity(req: &mut SipMessage, identity: &str) {
    req.headers.remove_all(&HeaderName::PPreferredIdentity);
    req.headers.remove_all(&HeaderName::PServedUser);
    req.headers
        .set(HeaderName::PAssertedIdentity, format!("<{identity}>"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{flows, register_200, sip};
    use tokio::time::Instant;

    #[test]
    fn path_goes_on_top_with_require_when_the_ue_does_not_support_it() {
        let mut r = sip("REGISTER sip:ims.example.net SIP/2.0\r\nPath: <sip:other;lr>\r\n");
        add_path(&mut r, "<sip:TOK@p.net;lr>");
        let paths: Vec<_> = r.headers.values(&HeaderName::Path).collect();
        assert_eq!(paths, vec!["<sip:TOK@p.net;lr>", "<sip:other;lr>"]);
        assert_eq!(r.headers.get_str(&HeaderName::Require), Some("path"));

        let mut r = sip("REGISTER sip:ims.example.net SIP/2.0\r\nSupported: gruu, path\r\n");
        add_path(&mut r, "<sip:TOK@p.net;lr>");
        assert!(r.headers.get(&HeaderName::Require).is_none());
    }

    #[test]
    fn visited_network_and_charging_vector_replace_what_the_ue_sent() {
        let mut r = sip(
            "REGISTER sip:ims.example.net SIP/2.0\r\nP-Visited-Network-ID: evil\r\n\
             P-Charging-Vector: icid-value=forged\r\n",
        );
        set_visited_network(&mut r, "visited.example.net");
        let icid = set_charging_vector(&mut r, "127.0.0.1");
        let again = set_charging_vector(&mut r.clone(), "127.0.0.1");
        assert_ne!(icid, again, "each request gets its own icid");
        assert_eq!(
            r.headers.get_str(&HeaderName::PVisitedNetworkId),
            Some("visited.example.net")
        );
        assert_eq!(r.headers.get_all(&HeaderName::PVisitedNetworkId).count(), 1);
        let pcv = r.headers.get_str(&HeaderName::PChargingVector).unwrap();
        assert_eq!(
            pcv,
            format!("icid-value={icid};icid-generated-at=127.0.0.1")
        );
        assert_eq!(icid.len(), 32);
        set_visited_network(&mut r, "Visited Net");
        assert_eq!(
            r.headers.get_str(&HeaderName::PVisitedNetworkId),
            Some("\"Visited Net\"")
        );
    }

    #[tokio::test]
    async fn preferred_identity_is_honoured_only_when_associated() {
        let flow = flows(1).await[0];
        let regs = crate::registrations::Registrations::new(10);
        let (req, ok) = register_200(3600);
        regs.learn(&req, flow, &ok, Instant::now());
        let reg = regs.by_flow(&flow, Instant::now()).unwrap();

        let r = sip("MESSAGE sip:bob@ims.example.net SIP/2.0\r\n\
             P-Preferred-Identity: <tel:+15551230001>\r\n");
        assert_eq!(asserted_identity(&r, &reg), "tel:+15551230001");
        let r = sip("MESSAGE sip:bob@ims.example.net SIP/2.0\r\n\
             P-Preferred-Identity: <sip:mallory@ims.example.net>\r\n");
        assert_eq!(asserted_identity(&r, &reg), "sip:alice@ims.example.net");
        let mut r = sip("MESSAGE sip:bob@ims.example.net SIP/2.0\r\n\
             P-Asserted-Identity: <sip:mallory@ims.example.net>\r\n\
             P-Served-User: <sip:mallory@ims.example.net>;sescase=orig\r\n\
             P-Preferred-Identity: <tel:+15551230001>\r\n");
        assert_identity(&mut r, "tel:+15551230001");
        assert!(r.headers.get(&HeaderName::PServedUser).is_none());
        let pai: Vec<_> = r.headers.values(&HeaderName::PAssertedIdentity).collect();
        assert_eq!(pai, vec!["<tel:+15551230001>"]);
        assert!(r.headers.get(&HeaderName::PPreferredIdentity).is_none());
    }
}
