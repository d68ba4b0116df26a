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
//! * a SUBSCRIBE to the reg event package (RFC 3680) for an identity registered here
//!   is answered by the notifier ([`crate::regevent`], TS 24.229 §5.4.2.1), and so is
//!   a SUBSCRIBE in one of its dialogs (refresh, unsubscribe);
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
use ims_sip::{HeaderName, Method, SipMessage};

use crate::cloud_auth::{check_session, in_dialog};
use crate::location::Registration;
use crate::regevent::authorize::{asserted_of, is_network_node};
use crate::regevent::subscription::is_reg_event;
use crate::regevent::Notifier;
use crate::registrar::{unix_now, Registrar};
use crate::session::as_routing::odi_of;
use crate::session::case::{is_originating, recognise};
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
    /// The reg event notifier.
    pub notifier: Arc<Notifier>,
}

impl ScscfPolicy {
    /// The notifier's answer to `req`, a SUBSCRIBE to the reg event package that passed
    /// the ingress filter as `kind`: in one of our dialogs (nothing left in its Route
    /// set: it is addressed to us), or initial for an identity registered here
    /// (checked by cloud authorization as any originating or terminating request, unless
    /// the subscriber is the user's P-CSCF or one of its application servers).
    /// `None`: not the notifier's (routed as any other request).
    async fn reg_event(
        &self,
        req: &SipMessage,
        kind: RequestKind,
        popped_route: Option<&Bytes>,
    ) -> Option<SipMessage> {
        let now = unix_now();
        match kind {
            RequestKind::InDialog => {
                if req.headers.get(&HeaderName::Route).is_some() {
                    return None;
                }
                let registration = |impu: &str| self.registrar.registration(impu);
                Some(self.notifier.in_dialog(req, registration, now))
            }
            RequestKind::Originating | RequestKind::Terminating => {
                let resource = std::str::from_utf8(&req.request()?.uri).ok()?.to_string();
                let reg = self.registrar.registration(&resource)?;
                // A phone's subscription is checked like any request it starts; the
                // P-CSCF's or an AS's own (node identities the ingress filter let
                // assert themselves) carries no token and needs none.
                let filter = self
                    .registrar
                    .cloud_auth()
                    .filter(|f| f.applies_to(req))
                    .filter(|_| !is_network_node(&asserted_of(req), &reg));
                if let (Some(filter), Ok(case)) = (filter, recognise(req, popped_route)) {
                    let served = self.registrar.registration(case.served_user());
                    if let Err(refusal) = check_session(filter, req, &case, served.as_ref()).await {
                        return Some(refusal);
                    }
                }
                Some(self.notifier.subscribe(req, &resource, &reg, now))
            }
            _ => None,
        }
    }
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
            if filtered.method() == Some(&Method::Subscribe) && is_reg_event(&filtered) {
                if let Some(answer) = self.reg_event(&filtered, kind, popped_route).await {
                    return Decision::Respond(answer);
                }
            }
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
