//! Reading one `InitialFilterCriteria` element of an IMSSubscription (TS 29.228
//! Annex B.2.2, schema CxDataType.xsd in Annex E). Booleans are `0`/`1`/`false`/`true`,
//! enumerations by number. The `Extension` of an SPT is read for its `RegistrationType`
//! values (REGISTER triggers: initial, re- or de-registration).
//!
//! An iFC the schema does not allow (no `Priority`, no `ServerName`, a TriggerPoint
//! without `ConditionTypeCNF` or SPTs, an SPT with no condition or `Group`, an
//! enumerated value the standard does not define) is [`IfcReadError::Unusable`]: the
//! caller leaves it out with a warning rather than guess at its meaning. Past a limit
//! it is [`IfcReadError::Limit`], and the whole document is refused.

use ims_sip::message::HeaderName;

use super::model::{
    ApplicationServer, DefaultHandling, InitialFilterCriteria, Pattern, RegistrationState,
    RegistrationType, SessionCase, Spt, SptCondition, TriggerPoint, TriggerPointError,
};
use super::xml::Element;

/// Why an `InitialFilterCriteria` element was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IfcReadError {
    /// Not a valid iFC (what is wrong is named).
    #[error("unusable InitialFilterCriteria: {0}")]
    Unusable(&'static str),
    /// Past a bound ([`super::model::MAX_SPTS_PER_TRIGGER`],
    /// [`super::model::MAX_GROUPS_PER_SPT`]).
    #[error("InitialFilterCriteria exceeds the {0} limit")]
    Limit(&'static str),
}

use IfcReadError::Unusable;

/// Reads an `InitialFilterCriteria` element.
pub fn read_ifc(el: &Element) -> Result<InitialFilterCriteria, IfcReadError> {
    let priority = el
        .child_text("Priority")
        .ok_or(Unusable("no Priority"))?
        .parse()
        .map_err(|_| Unusable("Priority is not an integer"))?;
    let trigger_point = el
        .child("TriggerPoint")
        .map(read_trigger_point)
        .transpose()?;
    let application_server = read_application_server(
        el.child("ApplicationServer")
            .ok_or(Unusable("no ApplicationServer"))?,
    )?;
    let profile_part = match el.child_text("ProfilePartIndicator") {
        None => None,
        Some(v) => Some(
            number(v)
                .and_then(RegistrationState::from_code)
                .ok_or(Unusable("unknown ProfilePartIndicator"))?,
        ),
    };
    Ok(InitialFilterCriteria {
        priority,
        trigger_point,
        application_server,
        profile_part,
    })
}

fn read_trigger_point(el: &Element) -> Result<TriggerPoint, IfcReadError> {
    let cnf = el
        .child_text("ConditionTypeCNF")
        .and_then(boolean)
        .ok_or(Unusable("no ConditionTypeCNF"))?;
    let mut spts = Vec::new();
    for spt in el.children("SPT") {
        if spts.len() == super::model::MAX_SPTS_PER_TRIGGER {
            return Err(IfcReadError::Limit("SPTs per TriggerPoint"));
        }
        spts.push(read_spt(spt)?);
    }
    TriggerPoint::new(cnf, spts).map_err(|e| match e {
        TriggerPointError::NoSpt => Unusable("TriggerPoint without SPT"),
        TriggerPointError::NoGroup => Unusable("SPT without Group"),
        TriggerPointError::TooManySpts => IfcReadError::Limit("SPTs per TriggerPoint"),
        TriggerPointError::TooManyGroups => IfcReadError::Limit("Groups per SPT"),
    })
}

fn read_spt(el: &Element) -> Result<Spt, IfcReadError> {
    let negated = match el.child_text("ConditionNegated") {
        None => false,
        Some(v) => boolean(v).ok_or(Unusable("ConditionNegated is not a boolean"))?,
    };
    let mut groups = Vec::new();
    for g in el.children("Group") {
        if groups.len() == super::model::MAX_GROUPS_PER_SPT {
            return Err(IfcReadError::Limit("Groups per SPT"));
        }
        groups.push(number(g.text.trim()).ok_or(Unusable("Group is not an integer"))?);
    }
    let condition = el
        .children
        .iter()
        .find_map(|c| read_condition(c).transpose())
        .ok_or(Unusable("SPT without a condition"))??;
    let mut registration_types = Vec::new();
    if let Some(ext) = el.child("Extension") {
        for t in ext.children("RegistrationType") {
            let t = number(t.text.trim())
                .and_then(RegistrationType::from_code)
                .ok_or(Unusable("unknown RegistrationType"))?;
            // Three values exist: duplicates add nothing (and keep the list bounded).
            if !registration_types.contains(&t) {
                registration_types.push(t);
            }
        }
    }
    Ok(Spt {
        negated,
        groups,
        condition,
        registration_types,
    })
}

/// The condition an SPT child element states, `Ok(None)` for other children.
fn read_condition(el: &Element) -> Result<Option<SptCondition>, IfcReadError> {
    let text = el.text.trim();
    let content = |el: &Element| el.child_text("Content").map(|c| Pattern::new(c, false));
    Ok(Some(match el.name.as_str() {
        "RequestURI" if text.is_empty() => return Err(Unusable("empty RequestURI")),
        "RequestURI" => SptCondition::RequestUri(Pattern::new(text, true)),
        "Method" if text.is_empty() => return Err(Unusable("empty Method")),
        "Method" => SptCondition::Method(text.to_owned()),
        "SIPHeader" => {
            let header = el
                .child_text("Header")
                .filter(|h| !h.is_empty())
                .ok_or(Unusable("SIPHeader without Header"))?;
            SptCondition::SipHeader {
                header: HeaderName::from_bytes(header.as_bytes()),
                content: content(el),
            }
        }
        "SessionCase" => SptCondition::SessionCase(
            number(text)
                .and_then(SessionCase::from_code)
                .ok_or(Unusable("unknown SessionCase"))?,
        ),
        "SessionDescription" => {
            let line = el
                .child_text("Line")
                .filter(|l| !l.is_empty())
                .ok_or(Unusable("SessionDescription without Line"))?;
            SptCondition::SessionDescription {
                line: line.to_owned(),
                content: content(el),
            }
        }
        _ => return Ok(None),
    }))
}

fn read_application_server(el: &Element) -> Result<ApplicationServer, IfcReadError> {
    let server_name = el
        .child_text("ServerName")
        .filter(|s| !s.is_empty())
        .ok_or(Unusable("no ServerName"))?;
    let default_handling = match el.child_text("DefaultHandling") {
        None => DefaultHandling::default(),
        Some(v) => number(v)
            .and_then(DefaultHandling::from_code)
            .ok_or(Unusable("unknown DefaultHandling"))?,
    };
    let extension = el.child("Extension");
    let has = |name: &str| extension.is_some_and(|x| x.child(name).is_some());
    Ok(ApplicationServer {
        server_name: server_name.to_owned(),
        default_handling,
        service_info: el.child("ServiceInfo").map(|s| s.text.clone()),
        include_register_request: has("IncludeRegisterRequest"),
        include_register_response: has("IncludeRegisterResponse"),
    })
}

/// An xs:int-like value.
fn number(v: &str) -> Option<i64> {
    v.parse().ok()
}

/// An xs:boolean value.
fn boolean(v: &str) -> Option<bool> {
    match v {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}
