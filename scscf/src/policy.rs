//! The S-CSCF's proxy policy: REGISTER addressed to us is answered by the registrar
//! (TS 24.229 §5.4.1); every other request is routed by its Route set or Request-URI
//! (RFC 3261 §16.5) as before.

use std::sync::Arc;

use ims_sip::proxy::engine::{Decision, DefaultRouting, Policy};
use ims_sip::transport::Source;
use ims_sip::{Method, SipMessage};

use crate::registrar::Registrar;

/// Registrar for REGISTER, plain routing for the rest.
#[derive(Debug, Clone)]
pub struct ScscfPolicy {
    /// The registrar.
    pub registrar: Arc<Registrar>,
    /// Routing of other requests.
    pub routing: DefaultRouting,
}

impl Policy for ScscfPolicy {
    async fn decide(&self, request: &SipMessage, source: &Source) -> Decision {
        if request.method() == Some(&Method::Register) {
            return Decision::Respond(self.registrar.register(request).await);
        }
        self.routing.decide(request, source).await
    }
}
