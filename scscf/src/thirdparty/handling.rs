//! What a failed third-party REGISTER means for the user (TS 24.229 §5.4.1.7,
//! TS 29.228 Annex B.2.3 `DefaultHandling`): no final response, or a 408, 5xx or 6xx,
//! from an AS whose iFC says SESSION_TERMINATED de-registers the user (a network-
//! initiated de-registration); SESSION_CONTINUED ignores it. A de-registration cannot
//! be undone, so a failed de-REGISTER changes nothing; nor does our own congestion
//! (the request never left).

use ims_sip::proxy::engine::OriginateError;
use ims_sip::SipMessage;

use crate::ifc::{DefaultHandling, RegistrationType};

/// Whether the outcome of a third-party REGISTER of kind `kind`, sent for an iFC with
/// `handling`, de-registers the user.
pub fn deregisters(
    kind: RegistrationType,
    handling: DefaultHandling,
    outcome: &Result<SipMessage, OriginateError>,
) -> bool {
    if kind == RegistrationType::De || handling != DefaultHandling::SessionTerminated {
        return false;
    }
    match outcome {
        Ok(r) => matches!(r.status(), Some(408 | 500..=699)),
        Err(OriginateError::Busy | OriginateError::NotRunning) => false,
        Err(
            OriginateError::Timeout | OriginateError::Transport | OriginateError::Unroutable(_),
        ) => true,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use RegistrationType::{De, Initial, Re};

    fn answer(code: u16) -> Result<SipMessage, OriginateError> {
        let raw = format!(
            "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@x>;tag=2\r\n\
             From: <sip:s>;tag=1\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
        );
        Ok(SipMessage::parse(Bytes::from(raw)).unwrap())
    }

    const TERM: DefaultHandling = DefaultHandling::SessionTerminated;
    const CONT: DefaultHandling = DefaultHandling::SessionContinued;

    #[test]
    fn session_terminated_deregisters_on_408_5xx_6xx_and_no_answer() {
        for kind in [Initial, Re] {
            for code in [408, 500, 503, 599, 600, 603] {
                assert!(deregisters(kind, TERM, &answer(code)), "{kind:?} {code}");
            }
            for code in [200, 202, 299, 400, 403, 404, 407, 480] {
                assert!(!deregisters(kind, TERM, &answer(code)), "{kind:?} {code}");
            }
            assert!(deregisters(kind, TERM, &Err(OriginateError::Timeout)));
            assert!(deregisters(kind, TERM, &Err(OriginateError::Transport)));
            assert!(deregisters(
                kind,
                TERM,
                &Err(OriginateError::Unroutable("x".into()))
            ));
            assert!(!deregisters(kind, TERM, &Err(OriginateError::Busy)));
            assert!(!deregisters(kind, TERM, &Err(OriginateError::NotRunning)));
        }
    }

    #[test]
    fn session_continued_and_deregistrations_ignore_failures() {
        for kind in [Initial, Re, De] {
            assert!(!deregisters(kind, CONT, &answer(500)));
            assert!(!deregisters(kind, CONT, &Err(OriginateError::Timeout)));
        }
        assert!(!deregisters(De, TERM, &answer(500)));
        assert!(!deregisters(De, TERM, &Err(OriginateError::Timeout)));
    }
}
