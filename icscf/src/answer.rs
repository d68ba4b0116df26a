//! What the I-CSCF does with a UAA (TS 24.229 §5.3.1.2, TS 29.228 §6.1.1, TS 29.229
//! §6.2) or a LIA (TS 24.229 §5.3.2.1, TS 29.228 §6.1.4): forward the request to the
//! selected S-CSCF, or answer it.
//!
//! | UAA | SIP answer to the REGISTER |
//! |---|---|
//! | DIAMETER_FIRST_REGISTRATION / SUBSEQUENT_REGISTRATION / SUCCESS with Server-Name | forward to that S-CSCF |
//! | the same with Server-Capabilities | forward to the best match; none matches: 600 Busy Everywhere |
//! | DIAMETER_ERROR_USER_UNKNOWN, DIAMETER_ERROR_IDENTITIES_DONT_MATCH, DIAMETER_AUTHORIZATION_REJECTED, DIAMETER_ERROR_IDENTITY_NOT_REGISTERED | 403 Forbidden (the policy answers the first three with a decoy challenge before asking this table: [`crate::unknown`]) |
//! | DIAMETER_ERROR_ROAMING_NOT_ALLOWED | 403 Forbidden - Roaming not allowed |
//! | DIAMETER_UNABLE_TO_COMPLY, DIAMETER_TOO_BUSY, no answer, HSS unreachable | 480 Temporarily Unavailable |
//! | anything else | 500 Server Internal Error |
//!
//! | LIA | SIP answer to an initial request (TS 24.229 §5.3.2.1) |
//! |---|---|
//! | DIAMETER_SUCCESS with Server-Name | forward to that S-CSCF |
//! | DIAMETER_UNREGISTERED_SERVICE (or SUCCESS) with Server-Capabilities | forward to the best match, selected as for REGISTER; none matches: 600 Busy Everywhere |
//! | DIAMETER_ERROR_USER_UNKNOWN | 404 Not Found ("not a user of the home network") |
//! | DIAMETER_ERROR_IDENTITY_NOT_REGISTERED | 480 Temporarily Unavailable ("valid user, not registered, no services related to the unregistered state") |
//! | DIAMETER_UNABLE_TO_COMPLY, DIAMETER_TOO_BUSY, no answer, HSS unreachable | 480 Temporarily Unavailable |
//! | anything else | 500 Server Internal Error |

use ims_config::ScscfEntry;
use ims_diameter::cx::{CxResult, Lia, ServerCapabilities, Uaa};
use ims_diameter::dict::{experimental, result, VENDOR_3GPP};

use crate::selection::{by_capabilities, by_name, Selected};

/// The I-CSCF's next step for a REGISTER or an initial request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Forward to this S-CSCF.
    Forward(Selected),
    /// Answer with this status and reason phrase.
    Reject(u16, &'static str),
}

/// The answer when no UAA came back (HSS unreachable, peer not open, timeout).
pub const HSS_UNAVAILABLE: Outcome = Outcome::Reject(480, "Temporarily Unavailable");

/// Maps a UAA to the next step for a REGISTER of the public identity `user`.
pub fn outcome(uaa: &Uaa, user: &str, scscfs: &[ScscfEntry]) -> Outcome {
    match uaa.header.result {
        r if r.is_success() => select(
            uaa.server_name.as_deref(),
            uaa.server_capabilities.as_ref(),
            user,
            scscfs,
        ),
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

/// Maps a LIA to the next step for an initial request toward the served user `user`.
pub fn location_outcome(lia: &Lia, user: &str, scscfs: &[ScscfEntry]) -> Outcome {
    match lia.header.result {
        r if r.is_success() => select(
            lia.server_name.as_deref(),
            lia.server_capabilities.as_ref(),
            user,
            scscfs,
        ),
        CxResult::Experimental { vendor_id, code } if vendor_id == VENDOR_3GPP => match code {
            experimental::DIAMETER_ERROR_USER_UNKNOWN => Outcome::Reject(404, "Not Found"),
            experimental::DIAMETER_ERROR_IDENTITY_NOT_REGISTERED => {
                Outcome::Reject(480, "Temporarily Unavailable")
            }
            _ => Outcome::Reject(500, "Server Internal Error"),
        },
        CxResult::Base(result::DIAMETER_UNABLE_TO_COMPLY | result::DIAMETER_TOO_BUSY) => {
            HSS_UNAVAILABLE
        }
        _ => Outcome::Reject(500, "Server Internal Error"),
    }
}

/// The S-CSCF named by `server_name`, else the best match for the capabilities to
/// serve `user`.
fn select(
    server_name: Option<&str>,
    caps: Option<&ServerCapabilities>,
    user: &str,
    scscfs: &[ScscfEntry],
) -> Outcome {
    if let Some(name) = server_name.filter(|n| !n.is_empty()) {
        return Outcome::Forward(by_name(name, scscfs));
    }
    let caps = caps.cloned().unwrap_or_default();
    match by_capabilities(&caps, user, scscfs) {
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
    use ims_diameter::cx::AnswerHeader;

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
            "sip:u@x",
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
            outcome(
                &uaa(subsequent, None, Some(caps.clone())),
                "sip:u@x",
                &list()
            ),
            Outcome::Forward(_)
        ));
        let unmatched = ServerCapabilities {
            mandatory: vec![7],
            ..caps
        };
        assert_eq!(
            outcome(&uaa(first, None, Some(unmatched)), "sip:u@x", &list()),
            Outcome::Reject(600, "Busy Everywhere")
        );
    }

    fn lia(result: CxResult, name: Option<&str>, caps: Option<ServerCapabilities>) -> Lia {
        let u = uaa(result, name, caps);
        Lia {
            header: u.header,
            supported_features: Vec::new(),
            server_name: u.server_name,
            server_capabilities: u.server_capabilities,
            wildcarded_public_identity: None,
            lia_flags: None,
        }
    }

    #[test]
    fn lia_forwards_to_the_serving_or_a_capable_scscf() {
        let ok = CxResult::Base(result::DIAMETER_SUCCESS);
        assert_eq!(
            location_outcome(
                &lia(ok, Some("sip:scscf.ims.example.net:5080"), None),
                "sip:u@x",
                &list()
            ),
            Outcome::Forward(Selected {
                name: "sip:scscf.ims.example.net:5080".into(),
                route: "<sip:127.0.0.1:5080;lr>".into()
            })
        );
        // Unregistered user with services: the I-CSCF picks an S-CSCF as for REGISTER.
        let unreg = CxResult::experimental(experimental::DIAMETER_UNREGISTERED_SERVICE);
        let caps = ServerCapabilities {
            mandatory: vec![1],
            optional: vec![],
            server_names: vec![],
        };
        assert!(matches!(
            location_outcome(&lia(unreg, None, Some(caps)), "sip:u@x", &list()),
            Outcome::Forward(Selected { ref name, .. }) if name == "sip:scscf.ims.example.net:5080"
        ));
        let none = ServerCapabilities {
            mandatory: vec![9],
            optional: vec![],
            server_names: vec![],
        };
        assert_eq!(
            location_outcome(&lia(unreg, None, Some(none)), "sip:u@x", &list()),
            Outcome::Reject(600, "Busy Everywhere")
        );
    }

    #[test]
    fn lia_errors_map_to_sip_answers() {
        let exp = |c| lia(CxResult::experimental(c), None, None);
        let l = list();
        assert_eq!(
            location_outcome(
                &exp(experimental::DIAMETER_ERROR_USER_UNKNOWN),
                "sip:u@x",
                &l
            ),
            Outcome::Reject(404, "Not Found")
        );
        assert_eq!(
            location_outcome(
                &exp(experimental::DIAMETER_ERROR_IDENTITY_NOT_REGISTERED),
                "sip:u@x",
                &l
            ),
            Outcome::Reject(480, "Temporarily Unavailable")
        );
        assert_eq!(
            location_outcome(
                &lia(CxResult::Base(result::DIAMETER_TOO_BUSY), None, None),
                "sip:u@x",
                &l
            ),
            HSS_UNAVAILABLE
        );
        assert_eq!(
            location_outcome(
                &lia(CxResult::Base(result::DIAMETER_MISSING_AVP), None, None),
                "sip:u@x",
                &l
            ),
            Outcome::Reject(500, "Server Internal Error")
        );
    }

    #[test]
    fn errors_map_to_sip_answers() {
        let exp = |c| uaa(CxResult::experimental(c), None, None);
        let base = |c| uaa(CxResult::Base(c), None, None);
        let l = list();
        assert_eq!(
            outcome(
                &exp(experimental::DIAMETER_ERROR_USER_UNKNOWN),
                "sip:u@x",
                &l
            ),
            Outcome::Reject(403, "Forbidden")
        );
        assert_eq!(
            outcome(
                &exp(experimental::DIAMETER_ERROR_IDENTITIES_DONT_MATCH),
                "sip:u@x",
                &l
            ),
            Outcome::Reject(403, "Forbidden")
        );
        assert_eq!(
            outcome(
                &exp(experimental::DIAMETER_ERROR_ROAMING_NOT_ALLOWED),
                "sip:u@x",
                &l
            ),
            Outcome::Reject(403, "Forbidden - Roaming not allowed")
        );
        assert_eq!(
            outcome(
                &base(result::DIAMETER_AUTHORIZATION_REJECTED),
                "sip:u@x",
                &l
            ),
            Outcome::Reject(403, "Forbidden")
        );
        assert_eq!(
            outcome(&base(result::DIAMETER_UNABLE_TO_COMPLY), "sip:u@x", &l),
            HSS_UNAVAILABLE
        );
        assert_eq!(
            outcome(&base(result::DIAMETER_MISSING_AVP), "sip:u@x", &l),
            Outcome::Reject(500, "Server Internal Error")
        );
    }
}
