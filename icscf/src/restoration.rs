//! S-CSCF restoration at the I-CSCF (TS 23.380 §4, TS 24.229 §5.3.1.3 and §5.3.2.1):
//! every request the I-CSCF sends to an S-CSCF carries, as its
//! [`ims_sip::proxy::engine::Forward::on_failure`] tag, which leg it is and the name of
//! that S-CSCF ([`Leg::tag`]). When the S-CSCF fails the engine asks the policy again,
//! and the request goes to another S-CSCF of the configured ones:
//!
//! * REGISTER (§5.3.1.3): no answer at all within `[registration] scscf_silence_ms`,
//!   or 3xx, 408, 480, 503: a UAR with REGISTRATION_AND_CAPABILITIES
//!   (`IcscfPolicy::fall_back`);
//! * initial requests routed by LIR (§5.3.2.1, terminating, or originating for an AS):
//!   an INVITE with no answer at all (not even `100 Trying`, which an S-CSCF sends at
//!   once) within the same time, or 408 or 503 for any method: a LIR with
//!   REGISTRATION_AND_CAPABILITIES and the best other S-CSCF for the capabilities
//!   (`IcscfPolicy::restore_session`). In a pool on a shared store that S-CSCF takes
//!   the user over from the store (`scscf::registrar::takeover`); otherwise it serves
//!   the request as it can (unregistered services, or 480).
//!
//! Only one other S-CSCF is tried: its failure goes upstream. With no other S-CSCF
//! configured the HSS is not asked at all (its answer could only name the failed one):
//! the failure goes upstream at once.

use std::time::Duration;

use ims_config::ScscfEntry;
use ims_diameter::cx::UserAuthorizationType;
use ims_sip::proxy::engine::Decision;
use ims_sip::{Method, SipMessage};

use crate::answer::{location_outcome, Outcome};
use crate::lir::{lir_for, lir_originating};
use crate::policy::{forward_to, with_orig, IcscfPolicy};

/// Which kind of request an S-CSCF failed to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// A REGISTER (after UAR, or to the S-CSCF that challenged it).
    Register,
    /// An initial request toward a served user, after LIR.
    Terminating,
    /// An initial request an AS originated for a served user (`orig`), after LIR.
    Originating,
}

impl Leg {
    const ALL: [Leg; 3] = [Leg::Register, Leg::Terminating, Leg::Originating];

    fn word(self) -> &'static str {
        match self {
            Leg::Register => "register",
            Leg::Terminating => "terminating",
            Leg::Originating => "originating",
        }
    }

    /// The `on_failure` tag of this leg sent to the S-CSCF named `scscf`.
    pub fn tag(self, scscf: &str) -> String {
        format!("{} {scscf}", self.word())
    }

    /// The leg and the failed S-CSCF's name of a tag made by [`Leg::tag`].
    pub fn parse(tag: &str) -> Option<(Leg, &str)> {
        let (word, scscf) = tag.split_once(' ')?;
        let leg = Leg::ALL.into_iter().find(|l| l.word() == word)?;
        Some((leg, scscf))
    }

    /// How long the S-CSCF may stay silent before it counts as failed: `silence` for
    /// REGISTER and INVITE, nothing for other methods after LIR (they have no `100
    /// Trying`; a slow callee must not move the request).
    pub fn silence(self, request: &SipMessage, silence: Duration) -> Option<Duration> {
        let invite = request.method() == Some(&Method::Invite);
        (self == Leg::Register || invite).then_some(silence)
    }

    /// Whether a final response `status` of the S-CSCF counts as its failure.
    pub fn failed(self, status: u16) -> bool {
        match self {
            Leg::Register => matches!(status, 300..=399 | 408 | 480 | 503),
            Leg::Terminating | Leg::Originating => matches!(status, 408 | 503),
        }
    }
}

/// The configured S-CSCFs but the one named `failed`.
pub fn others(scscfs: &[ScscfEntry], failed: &str) -> Vec<ScscfEntry> {
    scscfs
        .iter()
        .filter(|s| !s.name.eq_ignore_ascii_case(failed))
        .cloned()
        .collect()
}

impl IcscfPolicy {
    /// The S-CSCF `failed` did not serve an initial request routed by LIR (`status`):
    /// a LIR with REGISTRATION_AND_CAPABILITIES, and the request goes to the best
    /// other S-CSCF for them (with `orig` on the originating leg). `None` when the
    /// status is no failure of the S-CSCF, the HSS does not answer, or no other
    /// S-CSCF fits: the failure goes upstream.
    pub(crate) async fn restore_session(
        &self,
        request: &SipMessage,
        leg: Leg,
        failed: &str,
        status: u16,
    ) -> Option<Decision> {
        if !leg.failed(status) {
            return None;
        }
        let candidates = others(&self.scscfs, failed);
        if candidates.is_empty() {
            // Nothing to restore to: a LIR could only name the S-CSCF that failed.
            tracing::debug!(scscf = %failed, status, "S-CSCF failed a request; no other S-CSCF configured");
            return None;
        }
        let header = self.cx.header();
        let mut lir = match leg {
            Leg::Originating => lir_originating(request, header),
            _ => lir_for(request, header),
        }
        .ok()?;
        lir.user_authorization_type = Some(UserAuthorizationType::RegistrationAndCapabilities);
        let lia = match self.cx.lir(&lir).await {
            Ok(lia) => lia,
            Err(error) => {
                tracing::warn!(%error, impu = %lir.public_identity, "LIR for restoration failed");
                return None;
            }
        };
        let Outcome::Forward(mut selected) =
            location_outcome(&lia, &lir.public_identity, &candidates)
        else {
            return None;
        };
        if selected.name.eq_ignore_ascii_case(failed) {
            return None;
        }
        tracing::info!(impu = %lir.public_identity, failed = %failed, status, to = %selected.name, "S-CSCF failed; request sent to another (restoration)");
        self.unknown.metrics.event("icscf_scscf_restoration");
        if leg == Leg::Originating {
            selected.route = with_orig(&selected.route);
        }
        Some(forward_to(
            request,
            selected,
            &lir.public_identity,
            None,
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str) -> SipMessage {
        SipMessage::parse(format!(
            "{method} sip:bob@ims.example.net SIP/2.0\r\nVia: SIP/2.0/UDP s;branch=z9hG4bK1\r\n\
             From: <sip:alice@ims.example.net>;tag=1\r\nTo: <sip:bob@ims.example.net>\r\n\
             Call-ID: c\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_tag_names_the_leg_and_the_s_cscf() {
        for leg in Leg::ALL {
            let tag = leg.tag("sip:scscf1.ims.example.net:5080");
            assert_eq!(
                Leg::parse(&tag),
                Some((leg, "sip:scscf1.ims.example.net:5080"))
            );
        }
        assert_eq!(Leg::parse("as-odi sip:x"), None);
        assert_eq!(Leg::parse("register"), None);
    }

    #[test]
    fn only_register_and_invite_have_a_silence_limit() {
        let s = Duration::from_secs(2);
        assert_eq!(Leg::Register.silence(&request("REGISTER"), s), Some(s));
        assert_eq!(Leg::Terminating.silence(&request("INVITE"), s), Some(s));
        assert_eq!(Leg::Terminating.silence(&request("MESSAGE"), s), None);
        assert_eq!(Leg::Originating.silence(&request("INVITE"), s), Some(s));
    }

    #[test]
    fn which_answers_count_as_a_failed_s_cscf() {
        assert!(Leg::Terminating.failed(408) && Leg::Terminating.failed(503));
        assert!(!Leg::Terminating.failed(480) && !Leg::Terminating.failed(486));
        assert!(!Leg::Originating.failed(404));
        assert!(Leg::Register.failed(302) && Leg::Register.failed(480));
        assert!(!Leg::Register.failed(401) && !Leg::Register.failed(403));
    }
}
