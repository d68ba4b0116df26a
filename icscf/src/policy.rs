//! The I-CSCF's decisions (TS 24.229 §5.3) on top of the proxy engine. It stays
//! transaction-stateful and does not record-route (§5.3.1.2, §5.3.2.1: the I-CSCF is
//! not on the dialog path).
//!
//! * REGISTER (§5.3.1.2): UAR ([`crate::uar`]), then [`crate::answer::outcome`]:
//!   forwarded to the selected S-CSCF as a pre-loaded Route, or answered; an identity
//!   that may not register gets a decoy challenge, then 403 ([`crate::unknown`]: no
//!   user enumeration, negative cache, UAR cap). The REGISTER answering an S-CSCF's
//!   challenge goes to that S-CSCF without a second UAR ([`crate::memory`]); if it
//!   fails to answer (silent, 3xx, 408, 480, 503), a UAR with
//!   REGISTRATION_AND_CAPABILITIES selects another one (§5.3.1.3); so does any other
//!   REGISTER whose S-CSCF fails ([`crate::restoration`]).
//! * Initial requests other than REGISTER (§5.3.2.1, terminating routing): LIR for
//!   the Request-URI ([`crate::lir`]), then [`crate::answer::location_outcome`]:
//!   forwarded to the S-CSCF the HSS names (or one selected by capabilities for an
//!   unregistered user with services), or answered (404 unknown user, 480 not
//!   registered). When that S-CSCF fails (an INVITE unanswered, 408, 503), another is
//!   selected by capabilities ([`crate::restoration`], TS 23.380 §4).
//! * Initial requests whose Route value for us carries `orig` (§5.3.2.1: an AS
//!   originating on behalf of a user who may not be registered, and does not know
//!   the user's S-CSCF): LIR with Originating-Request for the served user
//!   (P-Served-User, else P-Asserted-Identity), then forwarded to that S-CSCF with
//!   `orig` in its Route value, so that it runs the user's originating services.
//! * Who may send what is the ingress filter's (`ims_node::ingress`, `[zones]`; the
//!   I-CSCF faces other networks): `orig` only from the core and application servers;
//!   REGISTER from the core and interconnect (a visited network's P-CSCF); from
//!   interconnect and unclassified senders only terminating requests, their identity
//!   and charging headers removed (TS 24.229 §4.4); anything else 403.
//! * Requests inside a dialog (To tag) follow their Route set; they do not normally
//!   reach the I-CSCF, which does not record-route, and are taken from the core and
//!   application servers only (else the I-CSCF would relay anyone's requests).

use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use bytes::Bytes;
use ims_config::ScscfEntry;
use ims_diameter::cx::{Lir, Uar, UserAuthorizationType};
use ims_node::cx::CxClient;
use ims_node::ingress::forward_filtered;
use ims_node::{Ingress, RequestKind};
use ims_sip::auth::{carries_response, digest_credentials};
use ims_sip::message::addr::NameAddr;
use ims_sip::message::build::response_with;
use ims_sip::message::uri::Uri;
use ims_sip::proxy::engine::{Decision, Forward, Policy};
use ims_sip::transport::Source;
use ims_sip::{HeaderName, Method, SipMessage};

use crate::answer::{location_outcome, outcome, Outcome, HSS_UNAVAILABLE};
use crate::lir::{lir_for, lir_originating};
use crate::memory::{transaction_of, Registrant, ScscfMemory};
use crate::restoration::{others, Leg};
use crate::selection::Selected;
use crate::uar::uar_for;
use crate::unknown::{hides_identity, UnknownUsers};

/// The I-CSCF as a proxy-engine [`Policy`].
#[derive(Debug, Clone)]
pub struct IcscfPolicy {
    /// Cx toward the HSS.
    pub cx: CxClient,
    /// The S-CSCFs this I-CSCF may select.
    pub scscfs: Vec<ScscfEntry>,
    /// Our home network, the Visited-Network-Identifier when the P-CSCF sent none.
    pub home_network: String,
    /// Decoys for identities that may not register, and the UAR budget (`[budget]`).
    pub unknown: Arc<UnknownUsers>,
    /// The S-CSCF of each challenged REGISTER (`[registration]`): one UAR per
    /// registration.
    pub memory: Arc<ScscfMemory>,
    /// The ingress filter (`[zones]`): who may send what.
    pub ingress: Ingress,
}

fn reject(request: &SipMessage, code: u16, reason: &str) -> Decision {
    Decision::Respond(response_with(request, code, reason, None, &[]))
}

impl IcscfPolicy {
    async fn register(&self, request: &SipMessage, source: &Source) -> Decision {
        let started = tokio::time::Instant::now();
        let uar = match uar_for(request, self.cx.header(), &self.home_network) {
            Ok(uar) => uar,
            Err(error) => {
                tracing::info!(%error, "REGISTER refused");
                return reject(request, 400, "Bad Request");
            }
        };
        let unknown = &self.unknown;
        let pair = (uar.user_name.clone(), uar.public_identity.clone());
        if unknown.known_unknown(&pair) {
            let answer = unknown.answer(request, source.remote.ip(), started).await;
            return Decision::Respond(answer);
        }
        let answers_challenge = carries_response(digest_credentials(request).0.as_ref());
        // Only registrations are remembered: a de-registration always asks the HSS.
        let remembered = (uar.user_authorization_type == Some(UserAuthorizationType::Registration))
            .then(|| transaction_of(request))
            .flatten()
            .map(|(call_id, cseq)| (call_id, cseq, registrant(&uar, source)));
        if let Some((call_id, cseq, who)) = remembered.as_ref().filter(|_| answers_challenge) {
            if let Some(selected) = self.memory.recall(call_id, who, started) {
                unknown.delay.forwarded(request, started);
                self.memory
                    .forwarded(call_id, *cseq, who.clone(), selected.clone(), started);
                return self.forward_or_answer(
                    request,
                    Outcome::Forward(selected),
                    &uar.public_identity,
                    Leg::Register,
                );
            }
        }
        if !unknown.uar_allowed(answers_challenge) {
            unknown.refusals.refused(source.remote.ip(), "uar rate");
            let retry = [(HeaderName::RetryAfter, "1")];
            return Decision::Respond(response_with(
                request,
                503,
                "Service Unavailable",
                None,
                &retry,
            ));
        }
        unknown.metrics.event("icscf_uar_sent");
        let next = match self.cx.uar(&uar).await {
            Ok(uaa) if hides_identity(&uaa) => {
                unknown.remember(pair);
                let answer = unknown.answer(request, source.remote.ip(), started).await;
                return Decision::Respond(answer);
            }
            Ok(uaa) => outcome(&uaa, &uar.public_identity, &self.scscfs),
            Err(error) => {
                tracing::warn!(%error, impu = %uar.public_identity, "UAR failed");
                HSS_UNAVAILABLE
            }
        };
        if let Outcome::Forward(selected) = &next {
            unknown.delay.forwarded(request, started);
            if let Some((call_id, cseq, who)) = remembered {
                self.memory
                    .forwarded(call_id, cseq, who, selected.clone(), started);
            }
        }
        self.forward_or_answer(request, next, &uar.public_identity, Leg::Register)
    }

    /// The S-CSCF `failed` did not serve a REGISTER (no answer, 3xx, 408, 480, 503):
    /// a UAR with REGISTRATION_AND_CAPABILITIES, and the REGISTER goes to the best
    /// other S-CSCF for the capabilities (TS 24.229 §5.3.1.3, TS 29.228 §6.1.1); `None`
    /// when the HSS does not answer or no other S-CSCF fits (the failure goes upstream).
    async fn fall_back(
        &self,
        request: &SipMessage,
        source: &Source,
        failed: &str,
        status: u16,
    ) -> Option<Decision> {
        if !Leg::Register.failed(status) {
            return None;
        }
        let (call_id, cseq) = transaction_of(request)?;
        // Forgotten: only a new 401 makes a Call-ID recallable again.
        self.memory.failed(call_id);
        let candidates = others(&self.scscfs, failed);
        if candidates.is_empty() {
            // Nothing to restore to: a UAR could only name the S-CSCF that failed.
            tracing::debug!(scscf = %failed, status, "S-CSCF failed a REGISTER; no other S-CSCF configured");
            return None;
        }
        let mut uar = uar_for(request, self.cx.header(), &self.home_network).ok()?;
        uar.user_authorization_type = Some(UserAuthorizationType::RegistrationAndCapabilities);
        tracing::info!(impu = %uar.public_identity, scscf = %failed, status, "S-CSCF failed a REGISTER, asking the HSS again");
        self.unknown.metrics.event("icscf_uar_sent");
        let uaa = match self.cx.uar(&uar).await {
            Ok(uaa) => uaa,
            Err(error) => {
                tracing::warn!(%error, impu = %uar.public_identity, "UAR failed");
                return None;
            }
        };
        let Outcome::Forward(selected) = outcome(&uaa, &uar.public_identity, &candidates) else {
            return None;
        };
        if selected.name.eq_ignore_ascii_case(failed) {
            return None;
        }
        let who = registrant(&uar, source);
        self.memory.forwarded(
            call_id,
            cseq,
            who,
            selected.clone(),
            tokio::time::Instant::now(),
        );
        Some(forward_to(
            request,
            selected,
            &uar.public_identity,
            None,
            None,
        ))
    }

    /// An initial request toward a public identity of ours (§5.3.2.1): LIR, then
    /// forward to its S-CSCF or answer.
    pub async fn terminating(&self, request: &SipMessage) -> Decision {
        let lir = match lir_for(request, self.cx.header()) {
            Ok(lir) => lir,
            Err(error) => {
                tracing::info!(%error, "initial request refused");
                return reject(request, 416, "Unsupported URI Scheme");
            }
        };
        let next = self.locate(&lir).await;
        self.forward_or_answer(request, next, &lir.public_identity, Leg::Terminating)
    }

    /// Where the LIA for `lir` says the request goes.
    async fn locate(&self, lir: &Lir) -> Outcome {
        match self.cx.lir(lir).await {
            Ok(lia) => location_outcome(&lia, &lir.public_identity, &self.scscfs),
            Err(error) => {
                tracing::warn!(%error, impu = %lir.public_identity, "LIR failed");
                HSS_UNAVAILABLE
            }
        }
    }

    /// An initial request an AS sent on behalf of a served user (`orig` in our Route
    /// value): LIR with Originating-Request for that user, then forward to its S-CSCF
    /// with `orig`, or answer (403 without a served user).
    pub async fn originating(&self, request: &SipMessage) -> Decision {
        let lir = match lir_originating(request, self.cx.header()) {
            Ok(lir) => lir,
            Err(error) => {
                tracing::info!(%error, "originating request refused");
                return reject(request, 403, "Forbidden");
            }
        };
        let next = match self.locate(&lir).await {
            Outcome::Forward(mut selected) => {
                selected.route = with_orig(&selected.route);
                Outcome::Forward(selected)
            }
            other => other,
        };
        self.forward_or_answer(request, next, &lir.public_identity, Leg::Originating)
    }

    /// Forwards `request` to the selected S-CSCF as its only Route (any Route the
    /// request still carries is not ours to keep: the S-CSCF chosen here is the next
    /// hop, §5.3.1.2, §5.3.2.1), another one taking over if it fails
    /// ([`crate::restoration`]), or answers it.
    fn forward_or_answer(
        &self,
        request: &SipMessage,
        next: Outcome,
        impu: &str,
        leg: Leg,
    ) -> Decision {
        match next {
            Outcome::Forward(selected) => {
                let silence = leg.silence(request, self.memory.silence());
                let tag = leg.tag(&selected.name);
                forward_to(request, selected, impu, silence, Some(tag))
            }
            Outcome::Reject(code, reason) => {
                tracing::debug!(%impu, code, method = ?request.method(), "answered");
                reject(request, code, reason)
            }
        }
    }
}

/// True when the Route value the engine removed for us (§16.4) carries `orig`.
fn marks_originating(popped_route: Option<&Bytes>) -> bool {
    let Some(text) = popped_route.and_then(|r| std::str::from_utf8(r).ok()) else {
        return false;
    };
    NameAddr::parse(text)
        .ok()
        .and_then(|a| Uri::parse(a.uri).ok())
        .is_some_and(|u| u.param("orig").is_some())
}

/// `<uri;lr>` as `<uri;lr;orig>`.
pub(crate) fn with_orig(route: &str) -> String {
    let uri = route.trim().trim_start_matches('<').trim_end_matches('>');
    format!("<{uri};orig>")
}

/// Forwards `request` to `selected` as its only Route; an S-CSCF silent for `silence`
/// counts as failed, and a failed one is given up on through [`Policy::on_failure`]
/// with `on_failure` ([`crate::restoration::Leg::tag`]).
pub(crate) fn forward_to(
    request: &SipMessage,
    selected: Selected,
    impu: &str,
    silence: Option<Duration>,
    on_failure: Option<String>,
) -> Decision {
    tracing::debug!(%impu, scscf = %selected.name, method = ?request.method(), "to S-CSCF");
    let mut edited = request.clone();
    edited.headers.remove_all(&HeaderName::Route);
    Decision::ForwardWith {
        request: edited,
        flow: None,
        forward: Forward {
            preload_routes: vec![selected.route],
            no_response_timeout: silence,
            on_failure,
            ..Forward::default()
        },
    }
}

/// Who sent the REGISTER `uar` was made for, from `source`.
fn registrant(uar: &Uar, source: &Source) -> Registrant {
    Registrant {
        impi: uar.user_name.clone(),
        impu: uar.public_identity.clone(),
        visited: uar.visited_network_identifier.clone(),
        source: source.remote.ip(),
    }
}

impl Policy for IcscfPolicy {
    async fn decide(&self, request: &SipMessage, source: &Source) -> Decision {
        self.decide_routed(request, source, None).await
    }

    async fn decide_routed(
        &self,
        request: &SipMessage,
        source: &Source,
        popped_route: Option<&Bytes>,
    ) -> Decision {
        // Every line logged while deciding carries the Call-ID and icid.
        let span = ims_node::span::request_span(request, true);
        async move {
            let kind = if request.method() == Some(&Method::Register) {
                RequestKind::Register
            } else if request.has_to_tag() {
                RequestKind::InDialog
            } else if marks_originating(popped_route) {
                RequestKind::Originating
            } else {
                RequestKind::Terminating
            };
            let (filtered, changed) = match self.ingress.filter(request, source, kind) {
                Ok(filtered) => filtered,
                Err(refused) => return refused.response(request),
            };
            match kind {
                RequestKind::Register => self.register(&filtered, source).await,
                // In a dialog: the Route set decides (RFC 3261 §16.12).
                RequestKind::InDialog => {
                    forward_filtered(Decision::Forward(Forward::default()), filtered, changed)
                }
                RequestKind::Originating => self.originating(&filtered).await,
                _ => self.terminating(&filtered).await,
            }
        }
        .instrument(span)
        .await
    }

    /// Times the S-CSCF's answers to REGISTER (the delay decoys mimic), and remembers
    /// the S-CSCF of a challenged one ([`crate::memory`]).
    fn on_response(&self, request: &SipMessage, _source: &Source, response: &mut SipMessage) {
        if request.method() == Some(&Method::Register) {
            let now = tokio::time::Instant::now();
            self.unknown.delay.answered(request, response, now);
            if let (Some((call_id, cseq)), Some(status)) =
                (transaction_of(request), response.status())
            {
                self.memory.answered(call_id, cseq, status, now);
            }
        }
    }

    async fn on_failure(
        &self,
        request: &SipMessage,
        source: &Source,
        tag: &str,
        response: &SipMessage,
    ) -> Option<Decision> {
        let (leg, failed) = Leg::parse(tag)?;
        let status = response.status()?;
        match leg {
            Leg::Register => self.fall_back(request, source, failed, status).await,
            _ => self.restore_session(request, leg, failed, status).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_orig_parameter_in_our_route_value_marks_an_originating_request() {
        let popped = |s: &'static str| Bytes::from_static(s.as_bytes());
        assert!(marks_originating(Some(&popped(
            "<sip:127.0.0.1:5070;lr;orig>"
        ))));
        assert!(marks_originating(Some(&popped(
            "<sip:icscf.ims.example.net;orig;lr>"
        ))));
        assert!(!marks_originating(Some(&popped("<sip:127.0.0.1:5070;lr>"))));
        assert!(!marks_originating(Some(&popped(
            "<sip:orig@127.0.0.1:5070;lr>"
        ))));
        assert!(!marks_originating(Some(&popped("\u{1}<"))));
        assert!(!marks_originating(None));
        assert_eq!(
            with_orig("<sip:127.0.0.1:5080;lr>"),
            "<sip:127.0.0.1:5080;lr;orig>"
        );
    }
}
