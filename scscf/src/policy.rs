//! The S-CSCF's proxy policy:
//!
//! * REGISTER is answered by the registrar (TS 24.229 §5.4.1);
//! * a request inside a dialog (To tag) follows its Route set (RFC 3261 §16.12): the
//!   S-CSCF record-routed the initial request, so ACK, BYE, re-INVITE, UPDATE and PRACK
//!   pass here on their way between the two P-CSCFs (and the application servers that
//!   record-routed), without a Bearer token ([`crate::cloud_auth::in_dialog`]);
//! * any other request starts a session or is a standalone request (MESSAGE, OPTIONS):
//!   [`crate::session::decide`] checks it with cloud authorization, recognises the
//!   originating or terminating case, and routes it through the served user's
//!   application servers to its destination (TS 24.229 §5.4.3); a request coming back
//!   from an application server carries our odi and is resumed where it was;
//! * when an application server fails and its iFC says SESSION_CONTINUED, the engine
//!   asks again ([`Policy::on_failure`]) and the next iFC is tried;
//! * before any of this, the ingress filter (`ims_node::ingress`, `[zones]`) decides
//!   who may send what: the originating case (`orig`), terminating requests and
//!   requests back from an AS (odi) only from the core (P-/I-CSCFs) and application
//!   servers; REGISTER only from the core; in-dialog requests from the core,
//!   application servers and interconnect; anything else 403, never a challenge.
//!   P-Served-User and P-Asserted-Identity are believed only from the core and
//!   application servers.
//!
//! CANCEL and ACK never reach the policy: the engine handles them (§16.10, §16.11).

use std::sync::Arc;
use tracing::Instrument;

use bytes::Bytes;
use cloud_auth::filter::sip::SipFilter;
use ims_node::ingress::forward_filtered;
use ims_node::{Ingress, RequestKind};
use ims_sip::proxy::engine::{Decision, Policy};
use ims_sip::transport::Source;
use ims_sip::{Method, SipMessage};

use crate::cloud_auth::in_dialog;
use crate::location::Registration;
use crate::registrar::Registrar;
use crate::session::as_routing::odi_of;
use crate::session::case::is_originating;
use crate::session::{decide, on_as_failure, SessionSettings, Subscribers};

/// Registrar for REGISTER, session routing for the rest.
#[derive(Debug, Clone)]
pub struct ScscfPolicy {
    /// The registrar (and the bindings terminating routing reads).
    pub registrar: Arc<Registrar>,
    /// Session routing settings.
    pub sessions: SessionSettings,
    /// The ingress filter (`[zones]`): who may send what.
    pub ingress: Ingress,
}

impl Subscribers for Registrar {
    fn registration(&self, impu: &str) -> Option<Registration> {
        Registrar::registration(self, impu)
    }

    async fn restore(&self, impu: &str) -> Option<Registration> {
        Registrar::restore(self, impu).await
    }

    async fn unregistered(&self, impu: &str) -> Option<Registration> {
        Registrar::unregistered(self, impu).await
    }

    fn cloud_auth(&self) -> Option<&SipFilter> {
        Registrar::cloud_auth(self)
    }
}

impl Policy for ScscfPolicy {
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
            } else if popped_route.is_some_and(|r| odi_of(r).is_some()) {
                RequestKind::FromApplicationServer
            } else if popped_route.is_some_and(is_originating) {
                RequestKind::Originating
            } else {
                RequestKind::Terminating
            };
            let (filtered, changed) = match self.ingress.filter(request, source, kind) {
                Ok(filtered) => filtered,
                Err(refused) => return refused.response(request),
            };
            let decision = match kind {
                RequestKind::Register => {
                    Decision::Respond(self.registrar.register(&filtered).await)
                }
                RequestKind::InDialog => in_dialog(&filtered),
                _ => decide(&self.sessions, &*self.registrar, &filtered, popped_route).await,
            };
            forward_filtered(decision, filtered, changed)
        }
        .instrument(span)
        .await
    }

    async fn on_failure(
        &self,
        request: &SipMessage,
        _source: &Source,
        tag: &str,
        response: &SipMessage,
    ) -> Option<Decision> {
        let code = response.status()?;
        on_as_failure(&self.sessions, &*self.registrar, request, tag, code).await
    }
}
