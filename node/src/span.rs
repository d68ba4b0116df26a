//! The `tracing` span of a SIP request a CSCF handles: every line logged while its
//! policy decides carries the request's Call-ID and, when it has one, its IMS
//! charging identifier (the `icid-value` of P-Charging-Vector, RFC 7315 §4.6), so one
//! call's lines can be found on every node. Nothing else of the request goes into the
//! span: no credentials, no identities.

use ims_sip::{HeaderName, SipMessage};
use tracing::Span;

/// The `icid-value` parameter of a P-Charging-Vector value, unquoted.
pub fn icid(value: &str) -> Option<&str> {
    value.split(';').find_map(|param| {
        let (name, v) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("icid-value")
            .then(|| v.trim().trim_matches('"'))
            .filter(|v| !v.is_empty())
    })
}

/// The span `sip` of `request`: `call_id`, `method` and `icid` — the request's own
/// when `trusted_icid` (a P-CSCF does not believe a UE's: it records the one it
/// creates with `Span::current().record("icid", ...)`), else empty.
pub fn request_span(request: &SipMessage, trusted_icid: bool) -> Span {
    let call_id = request.headers.get_str(&HeaderName::CallId).unwrap_or("");
    let method = request.method().map(|m| m.as_str()).unwrap_or("");
    let span = tracing::info_span!("sip", call_id, method, icid = tracing::field::Empty);
    let charging = trusted_icid
        .then(|| request.headers.get_str(&HeaderName::PChargingVector))
        .flatten();
    if let Some(icid) = charging.and_then(icid) {
        span.record("icid", icid);
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icid_is_read_from_the_charging_vector() {
        assert_eq!(
            icid("icid-value=AyretyU0dm+6O2IrT5tAFrbHLso=;icid-generated-at=192.0.6.8"),
            Some("AyretyU0dm+6O2IrT5tAFrbHLso=")
        );
        assert_eq!(icid("orig-ioi=a; ICID-Value=\"x1\""), Some("x1"));
        assert_eq!(icid("orig-ioi=a"), None);
        assert_eq!(icid("icid-value="), None);
    }
}
