//! What the I-CSCF does with a UAA (TS 24.229 §5.3.1.2, TS 29.228 §6.1.1, TS 29.229
//! §6.2): forward the REGISTER to the selected S-CSCF, or answer it.
//!
//! | UAA | SIP answer |
//! |---|---|
//! | DIAMETER_FIRST_REGISTRATION / SUBSEQUENT_REGISTRATION / SUCCESS with Server-Name | forward to that S-CSCF |
//! | the same with Server-Capabilities | forward to the best match; none matches: 600 Busy Everywhere |
//! | DIAMETER_ERROR_USER_UNKNOWN, DIAMETER_ERROR_IDENTITIES_DONT_MATCH, DIAMETER_AUTHORIZATION_REJECTED, DIAMETER_ERROR_IDENTITY_NOT_REGISTERED | 403 Forbidden |
//! | DIAMETER_ERROR_ROAMING_NOT_ALLOWED | 403 Forbidden - Roaming not allowed |
//! | DIAMETER_UNABLE_TO_COMPLY, DIAMETER_TOO_BUSY, no answer, HSS unreachable | 480 Temporarily Unavailable |
//! | anything else | 500 Server Internal Error |

use ims_config::ScscfEntry;
use ims_diameter::cx::{CxResult, Uaa};
use ims_diameter::dict::{experimental, result, VENDOR_3GPP};

use crate::selection::{by_capabilities, by_name, Selected};

/// The I-CSCF's next step for a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Forward to this S-CSCF.
    Forward(Selected),
    /// Answer with this status and reason phrase.
    Reject(u16, &'static str),
}

/// The answer when no UAA came back (HSS unreachable, peer not open, timeout).
pub const HSS_UNAVAILABLE: Outcome = Outcome::Reject(480, "Temporarily Unavailable");

/// Maps a UAA to the next step.
pub fn outcome(uaa: &Uaa, scscfs: &[ScscfEntry]) -> Outcome {
    match uaa.header.result {
        r if r.is_success() => select(uaa, scscfs),
        CxResult::Experimental { vendor_id, code } if vendor_id == VENDOR_3GPP => match code {
            experimental::DIAMETER_ERROR_USER_UNKNOWN
            | experimental::DIAMETER_ERROR_IDENTITIES_DONT_MATCH
            | experimental::DIAMETER_ERROR_IDENTITY_NOT_REGISTERED => {
                Outcome::Reject(403, "Forbidden")
            }
            experimental::DIAMETER_ERROR_ROAMING_NOT_ALLOWED => {
                Outcome::Reject(403, "Forbidden - Roaming not allowed")
            }
            _ => Outcome::Reject(500, "Server Internal Error"),
        },
        CxResult::Base(result::DIAMETER_AUTHORIZATION_REJECTED) => {
            Outcome::Reject(403, "Forbidden")
        }
        CxResult::Base(result::DIAMETER_UNABLE_TO_COMPLY | result::DIAMETER_TOO_BUSY) => {
            HSS_UNAVAILABLE
        }
        _ => Outcome::Reject(500, "Server Internal Error"),
    }
}

fn select(uaa: &Uaa, scscfs: &[ScscfEntry]) -> Outcome {
    if let Some(name) = uaa.server_name.as_deref().filter(|n| !n.is_empty()) {
        return Outcome::Forward(by_name(name, scscfs));
    }
    let caps = uaa.server_capabilities.clone().unwrap_or_default();
    match by_capabilities(&caps, scscfs) {
        Some(selected) => Outcome::Forward(selected),
        None => {
            tracing::warn!(?caps, "no configured S-CSCF has the required capabilities");
            Outcome::Reject(600, "Busy Everywhere")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ims_diameter::cx::{AnswerHeader, ServerCapabilities};

    fn uaa(result: CxResult, name: Option<&str>, caps: Option<ServerCapabilities>) -> Uaa {
        Uaa {
            header: AnswerHeader {
                session_id: "s".into(),
                origin_host: "hss".into(),
                origin_realm: "r".into(),
                result,
                error_message: None,
            },
            supported_features: Vec::new(),
            server_name: name.map(str::to_string),
            server_capabilities: caps,
        }
    }

    fn list() -> Vec<ScscfEntry> {
        vec![ScscfEntry {
            name: "sip:scscf.ims.example.net:5080".into(),
            uri: "sip:127.0.0.1:5080;lr".into(),
            capabilities: vec![1],
        }]
    }

    #[test]
    fn success_forwards_by_name_or_capabilities() {
        let first = CxResult::experimental(experimental::DIAMETER_FIRST_REGISTRATION);
        let o = outcome(
            &uaa(first, Some("sip:scscf.ims.example.net:5080"), None),
            &list(),
        );
        assert_eq!(
            o,
            Outcome::Forward(Selected {
                name: "sip:scscf.ims.example.net:5080".into(),
                route: "<sip:127.0.0.1:5080;lr>".into()
            })
        );
        let caps = ServerCapabilities {
            mandatory: vec![1],
            optional: vec![],
            server_names: vec![],
        };
        let subsequent = CxResult::experimental(experimental::DIAMETER_SUBSEQUENT_REGISTRATION);
        assert!(matches!(
            outcome(&uaa(subsequent, None, Some(caps.clone())), &list()),
            Outcome::Forward(_)
        ));
        let unmatched = ServerCapabilities {
            mandatory: vec![7],
            ..caps
        };
        assert_eq!(
            outcome(&uaa(first, None, Some(unmatched)), &list()),
            Outcome::Reject(600, "Busy Everywhere")
        );
    }

    #[test]
    fn errors_map_to_sip_answers() {
        let exp = |c| uaa(CxResult::experimental(c), None, None);
        let base = |c| uaa(CxResult::Base(c), None, None);
        let l = list();
        assert_eq!(
            outcome(&exp(experimental::DIAMETER_ERROR_USER_UNKNOWN), &l),
            Outcome::Reject(403, "Forbidden")
        );
        assert_eq!(
            outcome(&exp(experimental::DIAMETER_ERROR_IDENTITIES_DONT_MATCH), &l),
            Outcome::Reject(403, "Forbidden")
        );
        assert_eq!(
            outcome(&exp(experimental::DIAMETER_ERROR_ROAMING_NOT_ALLOWED), &l),
            Outcome::Reject(403, "Forbidden - Roaming not allowed")
        );
        assert_eq!(
            outcome(&base(result::DIAMETER_AUTHORIZATION_REJECTED), &l),
            Outcome::Reject(403, "Forbidden")
        );
        assert_eq!(
            outcome(&base(result::DIAMETER_UNABLE_TO_COMPLY), &l),
            HSS_UNAVAILABLE
        );
        assert_eq!(
            outcome(&base(result::DIAMETER_MISSING_AVP), &l),
            Outcome::Reject(500, "Server Internal Error")
        );
    }
}
