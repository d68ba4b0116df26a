//! The UAR the I-CSCF sends for every REGISTER (TS 24.229 §5.3.1.2, TS 29.228 §6.1.1,
//! TS 29.229 §6.1.1): User-Name is the private identity from the Authorization
//! `username`, or, when the UE sent none, derived from the public identity by
//! stripping the scheme (TS 33.203 §7.1 / TS 23.003 §13.3); Public-Identity is the To
//! URI; Visited-Network-Identifier is P-Visited-Network-ID; User-Authorization-Type is
//! DE_REGISTRATION for `Expires: 0`, else REGISTRATION.

use ims_diameter::cx::{RequestHeader, Uar, UserAuthorizationType};
use ims_sip::message::addr::NameAddr;
use ims_sip::message::auth_params::AuthParams;
use ims_sip::{HeaderName, SipMessage};

/// Why a REGISTER cannot be turned into a UAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UarError {
    /// The To header does not hold a URI.
    #[error("REGISTER without a usable To URI")]
    NoPublicIdentity,
}

/// The private identity: the Authorization `username` (TS 24.229 §5.1.1.2), else the
/// public identity without its scheme (`sip:alice@ims.example.net` ->
/// `alice@ims.example.net`).
pub fn private_identity(request: &SipMessage, public_identity: &str) -> String {
    let from_auth = request
        .headers
        .get_all(&HeaderName::Authorization)
        .filter_map(|h| h.value_str())
        .filter_map(|v| AuthParams::parse(v).ok())
        .find_map(|p| p.get("username"))
        .filter(|u| !u.is_empty());
    from_auth.unwrap_or_else(|| {
        public_identity
            .split_once(':')
            .map_or(public_identity, |(_, rest)| rest)
            .to_string()
    })
}

/// DE_REGISTRATION when the REGISTER removes its bindings (`Expires: 0`, or every
/// Contact with `expires=0`, or `Contact: *`), else REGISTRATION.
pub fn authorization_type(request: &SipMessage) -> UserAuthorizationType {
    let header_zero = request
        .headers
        .get_str(&HeaderName::Expires)
        .is_some_and(|v| v.trim() == "0");
    let contacts: Vec<_> = request.headers.values(&HeaderName::Contact).collect();
    let star = contacts.iter().any(|c| c.trim_ascii() == b"*");
    let all_zero = !contacts.is_empty()
        && contacts.iter().all(|c| {
            let text = std::str::from_utf8(c).unwrap_or("");
            match NameAddr::parse(text).ok().and_then(|a| a.param("expires")) {
                Some(Some(e)) => e.trim() == "0",
                _ => header_zero,
            }
        });
    if star || all_zero || (contacts.is_empty() && header_zero) {
        UserAuthorizationType::DeRegistration
    } else {
        UserAuthorizationType::Registration
    }
}

/// The P-Visited-Network-ID value without quotes, if any.
pub fn visited_network(request: &SipMessage) -> Option<String> {
    let v = request.headers.get_str(&HeaderName::PVisitedNetworkId)?;
    let first = v.split(';').next()?.trim();
    let unquoted = first
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(first);
    (!unquoted.is_empty()).then(|| unquoted.to_string())
}

/// The UAR for `request`, with `header` (session, origin, destination) and
/// `home_network` as Visited-Network-Identifier when the P-CSCF sent none.
pub fn uar_for(
    request: &SipMessage,
    header: RequestHeader,
    home_network: &str,
) -> Result<Uar, UarError> {
    let public_identity = request
        .headers
        .get_str(&HeaderName::To)
        .and_then(|v| NameAddr::parse(v).ok())
        .map(|a| a.uri.to_string())
        .ok_or(UarError::NoPublicIdentity)?;
    Ok(Uar {
        header,
        user_name: private_identity(request, &public_identity),
        supported_features: Vec::new(),
        visited_network_identifier: visited_network(request)
            .unwrap_or_else(|| home_network.to_string()),
        public_identity,
        user_authorization_type: Some(authorization_type(request)),
        uar_flags: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(extra: &str) -> SipMessage {
        SipMessage::parse(format!(
            "REGISTER sip:ims.example.net SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\n\
             From: <sip:alice@ims.example.net>;tag=1\r\nTo: \"Alice\" <sip:alice@ims.example.net>\r\n\
             Call-ID: c\r\nCSeq: 1 REGISTER\r\n{extra}Content-Length: 0\r\n\r\n"
        ))
        .unwrap()
    }

    #[test]
    fn uar_fields_come_from_the_register() {
        let r = register(
            "Contact: <sip:alice@127.0.0.1:5062>\r\nExpires: 600\r\n\
             Authorization: Digest username=\"alice.priv@ims.example.net\", realm=\"ims.example.net\", nonce=\"\", uri=\"sip:ims.example.net\", response=\"\"\r\n\
             P-Visited-Network-ID: \"visited.example.net\"\r\n",
        );
        let uar = uar_for(&r, RequestHeader::default(), "ims.example.net").unwrap();
        assert_eq!(uar.user_name, "alice.priv@ims.example.net");
        assert_eq!(uar.public_identity, "sip:alice@ims.example.net");
        assert_eq!(uar.visited_network_identifier, "visited.example.net");
        assert_eq!(
            uar.user_authorization_type,
            Some(UserAuthorizationType::Registration)
        );
    }

    #[test]
    fn impi_is_derived_and_home_network_used_when_absent() {
        let r = register("Contact: <sip:alice@127.0.0.1:5062>\r\n");
        let uar = uar_for(&r, RequestHeader::default(), "ims.example.net").unwrap();
        assert_eq!(uar.user_name, "alice@ims.example.net");
        assert_eq!(uar.visited_network_identifier, "ims.example.net");
    }

    #[test]
    fn expires_zero_is_de_registration() {
        for extra in [
            "Contact: <sip:alice@127.0.0.1:5062>\r\nExpires: 0\r\n",
            "Contact: <sip:alice@127.0.0.1:5062>;expires=0\r\nExpires: 600\r\n",
            "Contact: *\r\nExpires: 0\r\n",
        ] {
            assert_eq!(
                authorization_type(&register(extra)),
                UserAuthorizationType::DeRegistration,
                "{extra}"
            );
        }
        let r = register("Contact: <sip:a@h>;expires=0, <sip:b@h>;expires=60\r\n");
        assert_eq!(authorization_type(&r), UserAuthorizationType::Registration);
    }
}
