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
//!   asks again ([`Policy::on_failure`]) and the next iFC is tried.
//!
//! CANCEL and ACK never reach the policy: the engine handles them (§16.10, §16.11).

use std::sync::Arc;

use bytes::Bytes;
use cloud_auth::filter::sip::SipFilter;
use ims_sip::proxy::engine::{Decision, Policy};
use ims_sip::transport::Source;
use ims_sip::{Method, SipMessage};

use crate::cloud_auth::in_dialog;
use crate::location::Registration;
use crate::registrar::Registrar;
use crate::session::{decide, on_as_failure, SessionSettings, Subscribers};

/// Registrar for REGISTER, session routing for the rest.
#[derive(Debug, Clone)]
pub struct ScscfPolicy {
    /// The registrar (and the bindings terminating routing reads).
    pub registrar: Arc<Registrar>,
    /// Session routing settings.
    pub sessions: SessionSettings,
}

impl Subscribers for Registrar {
    fn registration(&self, impu: &str) -> Option<Registration> {
        Registrar::registration(self, impu)
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
        _source: &Source,
        popped_route: Option<&Bytes>,
    ) -> Decision {
        if request.method() == Some(&Method::Register) {
            return Decision::Respond(self.registrar.register(request).await);
        }
        if request.has_to_tag() {
            return in_dialog(request);
        }
        decide(&self.sessions, &*self.registrar, request, popped_route).await
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
