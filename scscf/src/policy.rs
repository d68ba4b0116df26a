//! The S-CSCF's proxy policy:
//!
//! * REGISTER is answered by the registrar (TS 24.229 §5.4.1);
//! * a request inside a dialog (To tag) follows its Route set (RFC 3261 §16.12): the
//!   S-CSCF record-routed the initial request, so ACK, BYE, re-INVITE, UPDATE and PRACK
//!   pass here on their way between the two P-CSCFs;
//! * any other request starts a session or is a standalone request (MESSAGE, OPTIONS):
//!   [`crate::session::decide`] recognises the originating or terminating case and
//!   routes it (TS 24.229 §5.4.3).
//!
//! With `[cloud_auth]` on, initial requests of the methods it names are first checked
//! against the token they carry and the policies ([`crate::cloud_auth::check_session`]).
//!
//! CANCEL and ACK never reach the policy: the engine handles them (§16.10, §16.11).

use std::sync::Arc;

use bytes::Bytes;
use ims_sip::proxy::engine::{Decision, Forward, Policy};
use ims_sip::transport::Source;
use ims_sip::{Method, SipMessage};

use crate::cloud_auth::check_session;
use crate::registrar::Registrar;
use crate::session::{decide, SessionSettings};

/// Registrar for REGISTER, session routing for the rest.
#[derive(Debug, Clone)]
pub struct ScscfPolicy {
    /// The registrar (and the bindings terminating routing reads).
    pub registrar: Arc<Registrar>,
    /// Session routing settings.
    pub sessions: SessionSettings,
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
            return Decision::Forward(Forward::default());
        }
        if let Some(filter) = self
            .registrar
            .cloud_auth()
            .filter(|f| f.applies_to(request))
        {
            let lookup = |impu: &str| self.registrar.registration(impu);
            if let Err(refusal) = check_session(filter, request, popped_route, lookup).await {
                return Decision::Respond(refusal);
            }
        }
        decide(&self.sessions, request, popped_route, |impu| {
            self.registrar.registration(impu)
        })
    }
}
