//! Capabilities exchange (RFC 6733 §5.3): building CER/CEA and checking what the peer
//! advertises.

use crate::avp::Avp;
use crate::dict::{base, command, result, RELAY_APPLICATION_ID, VENDOR_3GPP};
use crate::message::{Message, FLAG_REQUEST};

use super::config::PeerConfig;

fn capability_avps(cfg: &PeerConfig, m: &mut Message) {
    m.avps.push(Avp::utf8(&base::ORIGIN_HOST, &cfg.origin_host));
    m.avps
        .push(Avp::utf8(&base::ORIGIN_REALM, &cfg.origin_realm));
    for ip in &cfg.host_ip_addresses {
        m.avps.push(Avp::address(&base::HOST_IP_ADDRESS, *ip));
    }
    m.avps.push(Avp::u32(&base::VENDOR_ID, cfg.vendor_id));
    m.avps
        .push(Avp::utf8(&base::PRODUCT_NAME, &cfg.product_name));
    m.avps
        .push(Avp::u32(&base::ORIGIN_STATE_ID, cfg.origin_state_id));
    m.avps
        .push(Avp::u32(&base::SUPPORTED_VENDOR_ID, VENDOR_3GPP));
    for app in &cfg.applications {
        m.avps.push(Avp::grouped(
            &base::VENDOR_SPECIFIC_APPLICATION_ID,
            &[
                Avp::u32(&base::VENDOR_ID, cfg.application_vendor()),
                Avp::u32(&base::AUTH_APPLICATION_ID, *app),
            ],
        ));
    }
    if let Some(f) = cfg.firmware_revision {
        m.avps.push(Avp::u32(&base::FIRMWARE_REVISION, f));
    }
}

/// The CER this node sends (RFC 6733 §5.3.1).
pub fn cer(cfg: &PeerConfig) -> Message {
    let mut m = Message::request(command::CAPABILITIES_EXCHANGE, 0);
    m.flags = FLAG_REQUEST;
    capability_avps(cfg, &mut m);
    m
}

/// The CEA to `req` with `code` (RFC 6733 §5.3.2); error answers carry no capability
/// AVPs beyond Origin-Host/Realm.
pub fn cea(cfg: &PeerConfig, req: &Message, code: u32) -> Message {
    if code != result::DIAMETER_SUCCESS {
        return Message::error_answer(req, &cfg.origin_host, &cfg.origin_realm, code, None);
    }
    let mut m = Message::answer_to(req, &cfg.origin_host, &cfg.origin_realm);
    m.avps.clear();
    m.avps.push(Avp::u32(&base::RESULT_CODE, code));
    capability_avps(cfg, &mut m);
    m
}

/// Application ids a CER/CEA advertises (Auth-/Acct-Application-Id, alone or inside
/// Vendor-Specific-Application-Id).
pub fn advertised_applications(m: &Message) -> Vec<u32> {
    let mut apps = Vec::new();
    for a in &m.avps {
        if a.is(&base::AUTH_APPLICATION_ID) || a.is(&base::ACCT_APPLICATION_ID) {
            apps.extend(a.as_u32().ok());
        } else if a.is(&base::VENDOR_SPECIFIC_APPLICATION_ID) {
            for i in a.grouped_avps().unwrap_or_default() {
                if i.is(&base::AUTH_APPLICATION_ID) || i.is(&base::ACCT_APPLICATION_ID) {
                    apps.extend(i.as_u32().ok());
                }
            }
        }
    }
    apps
}

/// The Result-Code with which a CEA is judged on the initiator side: success,
/// DIAMETER_UNKNOWN_PEER for an Origin-Host not in `allowed_peers`, or
/// DIAMETER_NO_COMMON_APPLICATION. (A responder binds the CER's Origin-Host to the
/// connection first, `super::binding`, then judges the applications with [`common`].)
pub fn judge(cfg: &PeerConfig, m: &Message) -> u32 {
    let Some(host) = m.origin_host() else {
        return result::DIAMETER_MISSING_AVP;
    };
    if !cfg
        .allowed_peers
        .iter()
        .any(|p| p.eq_ignore_ascii_case(host))
    {
        return result::DIAMETER_UNKNOWN_PEER;
    }
    common(cfg, m)
}

/// Success when `m` advertises an application of ours (or relay), else
/// DIAMETER_NO_COMMON_APPLICATION.
pub fn common(cfg: &PeerConfig, m: &Message) -> u32 {
    let theirs = advertised_applications(m);
    let common = theirs
        .iter()
        .any(|a| *a == RELAY_APPLICATION_ID || cfg.applications.contains(a));
    if !common {
        return result::DIAMETER_NO_COMMON_APPLICATION;
    }
    result::DIAMETER_SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dict::CX_APPLICATION_ID;

    fn cfg(host: &str, allowed: &str) -> PeerConfig {
        let mut c = PeerConfig::cx(host, "example");
        c.allowed_peers = vec![allowed.to_owned()];
        c
    }

    #[test]
    fn cer_advertises_cx_and_is_judged() {
        let a = cfg("a.example", "b.example");
        let b = cfg("b.example", "a.example");
        let req = cer(&a);
        assert_eq!(advertised_applications(&req), vec![CX_APPLICATION_ID]);
        assert_eq!(
            req.find(&base::SUPPORTED_VENDOR_ID)
                .unwrap()
                .as_u32()
                .unwrap(),
            10415
        );
        assert!(req.find(&base::HOST_IP_ADDRESS).is_some());
        assert!(req.find(&base::PRODUCT_NAME).is_some());
        assert!(req.find(&base::ORIGIN_STATE_ID).is_some());
        assert_eq!(judge(&b, &req), result::DIAMETER_SUCCESS);
        let ans = cea(&b, &req, result::DIAMETER_SUCCESS);
        assert_eq!(ans.result_code(), Some(2001));
        assert_eq!(judge(&a, &ans), result::DIAMETER_SUCCESS);

        let stranger = cfg("b.example", "c.example");
        assert_eq!(judge(&stranger, &req), result::DIAMETER_UNKNOWN_PEER);
        let mut other_app = cfg("b.example", "a.example");
        other_app.applications = vec![4];
        assert_eq!(
            judge(&other_app, &req),
            result::DIAMETER_NO_COMMON_APPLICATION
        );
        let err = cea(&stranger, &req, result::DIAMETER_UNKNOWN_PEER);
        assert!(err.is_error());
        assert_eq!(err.result_code(), Some(3010));
    }
}
