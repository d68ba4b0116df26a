//! The P-CSCF's decisions (TS 24.229 §5.2) on top of the proxy engine:
//!
//! * REGISTER (§5.2.2.1): forwarded to the I-CSCF of the home domain named by the
//!   Request-URI (static table), with Path carrying the UE's flow token (RFC 3327,
//!   RFC 5626), P-Visited-Network-ID and a new P-Charging-Vector; not record-routed.
//!   The 200 teaches the registration ([`Registrations::learn`]).
//! * Initial requests from a registered UE (§5.2.6.3): Route replaced by the
//!   Service-Route (RFC 3608), P-Asserted-Identity set (P-Preferred-Identity honoured
//!   only if associated; whatever P-Asserted-Identity the UE sent is dropped),
//!   P-Charging-Vector, record-routed with the UE's flow token as user part. From an
//!   unregistered UE: 403.
//! * Who may send what is the ingress filter's (`ims_node::ingress`, trust zones): a
//!   request from a UE (the access zone: any sender that is not in `[zones] core`, or
//!   that is registered over the flow it came over) is forwarded only if it is a
//!   REGISTER, an initial request of a registered UE over its registered flow, or an
//!   in-dialog request (ACK included) whose popped Route is our Record-Route value
//!   with the token of the flow it came over (or of an earlier flow of the same
//!   registered UE, which re-registered over a new connection since the dialog began).
//!   Anything else gets 403 and reaches nobody (an ACK is dropped). P-Asserted-Identity,
//!   P-Preferred-Identity, P-Served-User, P-Charging-* and P-Visited-Network-ID from UEs
//!   are removed from every request, in-dialog ones included.
//! * Requests toward a UE (our flow token in the popped Route) are taken only from the
//!   core zone (§5.2.6.4, RFC 5626 §5.3): the terminating initial request along the
//!   Path, and every later request of the dialog along the Record-Route (both
//!   originating and terminating dialogs carry the token there): sent over that flow,
//!   the initial one record-routed with the same token; a forged token gets 403, a flow
//!   no longer registered 430. ACKs for a 2xx likewise ([`Policy::ack_route`]).
//!
//! * Reg event (TS 24.229 §5.2.3, [`crate::regsub`]): the first 200 to a UE's REGISTER
//!   over a flow starts a subscription, its de-registration ends it; a NOTIFY to our
//!   `reg-event` Contact is answered here, only from the core zone (403) and in our
//!   dialogs (481); one saying the registration ended drops it and its stored row, its
//!   flow still open a moment ([`crate::registrations::DRAIN`]) to in-dialog requests
//!   from the core so the UE's own NOTIFY reaches it. The dialogs survive a restart
//!   with the registrations ([`crate::store`]).
//!
//! * Registrations survive a restart ([`crate::store`]): the 200 to a REGISTER over
//!   UDP is relayed once the registration is written ([`Policy::hold_response`]), but
//!   for a refresh that only moves the expiry within the bound (issue 12). After
//!   a restart a UDP UE is reached again over its flow (the token names its address,
//!   and the key survives); a TCP or TLS flow is gone with the process that held it, so
//!   requests toward it get 430 and the UE, which is bound to its flow, must register
//!   again over a new connection before it may send initial requests.
//!
//! * Cloud authorization (design brief §5, RFC 8898): initial requests from a UE whose
//!   method `[cloud_auth]` names (REGISTER and INVITE by default) need a valid Keystone
//!   Bearer token, else 401 with a Bearer challenge (`error="invalid_token"` for a
//!   refused one). The token travels on to our own core nodes, where the S-CSCF decides
//!   the policy questions with the subscriber's tenant; it is stripped from every request
//!   sent toward a UE. In-dialog requests were authorized with their dialog.

use std::sync::{Arc, OnceLock};
use tracing::Instrument;

use bytes::Bytes;
use ims_node::{Ingress, RequestKind, Zone};
use ims_sip::message::build::response_with;
use ims_sip::message::uri::Uri;
use ims_sip::message::via::split_host_port;
use ims_sip::proxy::engine::{AckRoute, Decision, Forward, Originator, Policy};
use ims_sip::proxy::record_route::route_user;
use ims_sip::transport::{Flow, Source};
use ims_sip::{HeaderName, Method, SipMessage};
use tokio::time::Instant;

use cloud_auth::filter::sip::{strip_bearer, SipFilter};

use crate::budget::SourceBudget;
use crate::flow_token::{label, FlowTokens};
use crate::headers::{
    add_path, assert_identity, asserted_identity, set_charging_vector, set_visited_network,
};
use crate::reginfo;
use crate::registrations::{Learned, Registrations};
use crate::regsub::{Subscriber, CONTACT_USER};
use crate::store::{unix_now, Persistence, StoredRegistration};

/// What the P-CSCF is configured with.
#[derive(Debug, Clone)]
pub struct PcscfSettings {
    /// Home domain -> Route value of its I-CSCF (`<sip:...;lr>`).
    pub home_networks: Vec<(String, String)>,
    /// P-Visited-Network-ID value.
    pub visited_network_id: String,
    /// Flow-token key.
    pub tokens: FlowTokens,
    /// The cloud-authorization filter; `None` when `[cloud_auth]` is off.
    pub cloud_auth: Option<SipFilter>,
    /// Per-source budgets of unauthenticated traffic (`[budget]`).
    pub budget: Arc<SourceBudget>,
    /// The ingress filter (`[zones]`).
    pub ingress: Ingress,
    /// The registrations' durable copy (`[pcscf] store`); `None`: memory only.
    pub persistence: Option<Persistence>,
    /// Sends the P-CSCF's own requests (reg event SUBSCRIBEs); bound to the engine by
    /// the node.
    pub originator: Originator,
    /// Whether to subscribe to the UEs' reg event (`[pcscf] reg_event`).
    pub reg_event: bool,
}

/// The P-CSCF's state, shared by the policy and the node (health, purging).
#[derive(Debug)]
pub struct Pcscf {
    settings: PcscfSettings,
    /// Registrations learned from 200s to REGISTER.
    pub registrations: Registrations,
    /// Reg event subscriptions for the registered UEs (TS 24.229 §5.2.3).
    pub subscriptions: Subscriber,
    /// `host[:port][;transport=x]` the core reaches us at: the host part of Path.
    core_address: OnceLock<String>,
}

impl Pcscf {
    /// A P-CSCF keeping at most `max_registrations`.
    pub fn new(settings: PcscfSettings, max_registrations: usize) -> Arc<Pcscf> {
        Arc::new(Pcscf {
            registrations: Registrations::new(max_registrations),
            subscriptions: Subscriber::new(
                settings.originator.clone(),
                max_registrations,
                settings.persistence.clone(),
            ),
            core_address: OnceLock::new(),
            settings,
        })
    }

    /// Sets the address written into Path once the listeners are bound, as
    /// `host[:port]` with an optional `;transport=` parameter. Later calls are ignored.
    pub fn set_core_address(&self, address: String) {
        let _ = self.core_address.set(address);
    }

    /// Our Path value for a UE's flow: `<sip:TOKEN@core-address;lr>`.
    fn path_value(&self, source: &Source) -> String {
        let token = self.settings.tokens.issue(&source.flow);
        let host = self
            .core_address
            .get()
            .cloned()
            .unwrap_or_else(|| source.local.to_string());
        format!("<sip:{token}@{host};lr>")
    }

    /// Our node identity (`sip:HOST`, the host of our Path values: what the S-CSCF
    /// authorizes a P-CSCF subscriber by) and our Contact for reg event
    /// subscriptions, once the listeners are bound.
    fn subscriber_uris(&self) -> Option<(String, String)> {
        let address = self.core_address.get()?;
        let (host, _) = split_host_port(address.split(';').next()?)?;
        Some((
            format!("sip:{host}"),
            format!("sip:{CONTACT_USER}@{address}"),
        ))
    }

    /// A NOTIFY to our reg event Contact (TS 24.229 §5.2.3): only from the core zone,
    /// only in one of our subscriptions' dialogs (else 481); a document saying the
    /// registration of the subscription's UE ended drops it, with its flow's stored
    /// copy, so the UE's requests are no longer those of a registered UE.
    fn reg_event_notify(&self, request: &SipMessage, source: &Source) -> Decision {
        let zone = self
            .settings
            .ingress
            .zone(source.remote.ip(), source.peer_names.as_ref());
        if zone != Zone::Core
            || self
                .registrations
                .by_flow(&source.flow, Instant::now())
                .is_some()
        {
            self.refused(source, "reg event NOTIFY from outside the core");
            return refuse(request, 403, "Forbidden");
        }
        let notified = match self.subscriptions.notify(request) {
            Ok(n) => n,
            Err(code) => {
                let reason = if code == 481 {
                    "Subscription Does Not Exist"
                } else {
                    "Bad Request"
                };
                return refuse(request, code, reason);
            }
        };
        let ends = if request.body().is_empty() {
            Vec::new()
        } else {
            match reginfo::parse(request.body()) {
                Ok(ends) => ends,
                Err(error) => {
                    tracing::info!(%error, "reg event NOTIFY with an unreadable body");
                    return refuse(request, 400, "Bad Request");
                }
            }
        };
        if self
            .registrations
            .end(&notified.flow, &ends, Instant::now())
        {
            tracing::info!(flow = %notified.flow, "registration ended by the S-CSCF's reg event NOTIFY: dropped");
            if let Some(write) = self
                .settings
                .persistence
                .as_ref()
                .and_then(|p| p.registration(label(&notified.flow), None))
            {
                tokio::spawn(write);
            }
            if !notified.ended {
                self.subscriptions.stop(&notified.flow);
            }
        }
        Decision::Respond(response_with(request, 200, "OK", None, &[]))
    }

    /// Our host without port, for `icid-generated-at` (RFC 7315 §4.6: a host).
    fn host(&self, source: &Source) -> String {
        self.core_address
            .get()
            .and_then(|a| a.split(';').next())
            .and_then(split_host_port)
            .map(|(host, _)| host.to_string())
            .unwrap_or_else(|| source.local.ip().to_string())
    }

    /// The I-CSCF Route for the home domain of a REGISTER's Request-URI.
    fn home_route(&self, request: &SipMessage) -> Option<&str> {
        let ruri = request.request()?.uri.clone();
        let text = std::str::from_utf8(&ruri).ok()?;
        let host = Uri::parse(text).ok()?.host.to_string();
        self.settings
            .home_networks
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(&host))
            .map(|(_, r)| r.as_str())
    }

    /// Counts a request from `source` refused for `reason` into the periodic summary
    /// of refusals (no log line each: a flood costs no log line per request).
    fn refused(&self, source: &Source, reason: &'static str) {
        self.settings
            .budget
            .refusals
            .refused(source.remote.ip(), reason);
    }

    /// `request` (already through the ingress filter) to the I-CSCF of its home domain.
    fn register(&self, request: SipMessage, source: &Source) -> Decision {
        let Some(icscf) = self.home_route(&request) else {
            self.refused(source, "unknown home network");
            return refuse(&request, 403, "Forbidden - unknown home network");
        };
        if !self.registrations.has_room(&source.flow, Instant::now()) {
            tracing::warn!(remote = %source.remote, "registration store full: REGISTER refused");
            return Decision::Respond(response_with(
                &request,
                503,
                "Service Unavailable",
                None,
                &[(HeaderName::RetryAfter, "60")],
            ));
        }
        let mut edited = request;
        edited.headers.remove_all(&HeaderName::Route);
        add_path(&mut edited, &self.path_value(source));
        set_visited_network(&mut edited, &self.settings.visited_network_id);
        let icid = set_charging_vector(&mut edited, &self.host(source));
        tracing::Span::current().record("icid", icid.as_str());
        Decision::ForwardWith {
            request: edited,
            flow: None,
            forward: Forward {
                preload_routes: vec![icscf.to_string()],
                ..Forward::default()
            },
        }
    }

    /// An initial request of a UE: `received` as it came (its P-Preferred-Identity is
    /// honoured when associated), `filtered` through the ingress filter.
    fn originating(
        &self,
        received: &SipMessage,
        filtered: SipMessage,
        source: &Source,
    ) -> Decision {
        let Some(reg) = self.registrations.by_flow(&source.flow, Instant::now()) else {
            self.refused(source, "not registered");
            return refuse(received, 403, "Forbidden - not registered");
        };
        let mut edited = filtered;
        let identity = asserted_identity(received, &reg);
        assert_identity(&mut edited, &identity);
        edited.headers.remove_all(&HeaderName::Route);
        let icid = set_charging_vector(&mut edited, &self.host(source));
        tracing::Span::current().record("icid", icid.as_str());
        Decision::ForwardWith {
            request: edited,
            flow: None,
            forward: Forward {
                record_route: true,
                record_route_user: Some(self.settings.tokens.issue(&source.flow)),
                preload_routes: reg.service_route,
                ..Forward::default()
            },
        }
    }

    /// True when a request whose popped Route carried an authentic token for the flow
    /// labelled `token_label` came from that flow's UE: over that very flow (our
    /// Record-Route value heads the UE's route set), or over another flow the same UE
    /// is registered on (it re-registered over a new connection since the dialog
    /// began; the token's flow has gone or is registered to the same identity). A
    /// request from the core, or from another UE, comes over neither.
    fn sent_by_token_ue(&self, token_label: &str, source: &Source, now: Instant) -> bool {
        if token_label == label(&source.flow) {
            return true;
        }
        let Some(sender) = self.registrations.by_flow(&source.flow, now) else {
            return false;
        };
        self.registrations
            .by_label(token_label, now)
            .is_none_or(|named| named.public_identity == sender.public_identity)
    }

    /// The sender's zone and what the request is (`ims_node::ingress`), and the flow
    /// token of our Route value the engine removed, if any.
    fn classify(
        &self,
        request: &SipMessage,
        source: &Source,
        popped_route: Option<&Bytes>,
    ) -> (Zone, RequestKind, Option<String>) {
        let now = Instant::now();
        let token = popped_route.and_then(|v| route_user(std::str::from_utf8(v).ok()?));
        if request.method() == Some(&Method::Register) {
            return (Zone::Access, RequestKind::Register, token);
        }
        let in_dialog = request.has_to_tag() || request.method() == Some(&Method::Ack);
        let own_token = token
            .as_deref()
            .and_then(|t| self.settings.tokens.check(t).ok())
            .is_some_and(|l| self.sent_by_token_ue(&l, source, now));
        if own_token {
            let kind = if in_dialog {
                RequestKind::InDialog
            } else {
                RequestKind::Originating
            };
            return (Zone::Access, kind, token);
        }
        // A UE registered over this flow is access even on a core address (the dev
        // core runs UEs and nodes on one host).
        let zone = if self.registrations.by_flow(&source.flow, now).is_some() {
            Zone::Access
        } else {
            self.settings
                .ingress
                .zone(source.remote.ip(), source.peer_names.as_ref())
        };
        let kind = match (&token, in_dialog) {
            (Some(_), _) => RequestKind::TowardUe,
            (None, true) => RequestKind::NotOurRoute,
            (None, false) => RequestKind::Originating,
        };
        (zone, kind, token)
    }

    /// The flow a live, authentic token names.
    fn flow_of(&self, token: &str) -> Option<Flow> {
        let label = self.settings.tokens.check(token).ok()?;
        Some(self.registrations.by_label(&label, Instant::now())?.flow)
    }

    fn toward_ue(&self, request: &SipMessage, source: &Source, token: &str) -> Decision {
        let label = match self.settings.tokens.check(token) {
            Ok(label) => label,
            Err(error) => {
                tracing::debug!(%error, "request with a bad flow token refused");
                self.refused(source, "bad flow token");
                return refuse(request, 403, "Forbidden");
            }
        };
        let now = Instant::now();
        let flow = match self.registrations.by_label(&label, now) {
            Some(reg) => reg.flow,
            // The NOTIFY that tells the UE the network ended its registration.
            None => match self.registrations.draining(&label, now) {
                Some(flow) if request.has_to_tag() => flow,
                _ => return refuse(request, 430, "Flow Failed"),
            },
        };
        // The bearer credential never leaves our trust boundary toward a UE.
        let record_route = !request.has_to_tag();
        let mut request = request.clone();
        strip_bearer(&mut request);
        Decision::ForwardWith {
            request,
            flow: Some(flow),
            forward: Forward {
                record_route,
                record_route_user: Some(token.to_string()),
                ..Forward::default()
            },
        }
    }
}

/// A NOTIFY addressed to our reg event Contact (its Request-URI's user part), not
/// routed by a flow token of ours (those go to UEs).
fn is_reg_event_notify(request: &SipMessage, popped_route: Option<&Bytes>) -> bool {
    if request.method() != Some(&Method::Notify)
        || popped_route.is_some_and(|r| std::str::from_utf8(r).ok().and_then(route_user).is_some())
    {
        return false;
    }
    request
        .request()
        .and_then(|r| std::str::from_utf8(&r.uri).ok())
        .and_then(|u| {
            Uri::parse(u)
                .ok()
                .and_then(|u| u.user.map(|x| x == CONTACT_USER))
        })
        .unwrap_or(false)
}

fn refuse(request: &SipMessage, code: u16, reason: &str) -> Decision {
    Decision::Respond(response_with(request, code, reason, None, &[]))
}

/// The P-CSCF as a proxy-engine [`Policy`].
#[derive(Debug, Clone)]
pub struct PcscfPolicy(pub Arc<Pcscf>);

impl Policy for PcscfPolicy {
    async fn decide(&self, request: &SipMessage, source: &Source) -> Decision {
        self.decide_routed(request, source, None).await
    }

    async fn decide_routed(
        &self,
        request: &SipMessage,
        source: &Source,
        popped_route: Option<&Bytes>,
    ) -> Decision {
        // Every line logged while deciding carries the Call-ID, and the icid once
        // this node made it (a UE's own is not believed).
        let span = ims_node::span::request_span(request, false);
        async move {
            let pcscf = &self.0;
            if is_reg_event_notify(request, popped_route) {
                return pcscf.reg_event_notify(request, source);
            }
            let (zone, kind, token) = pcscf.classify(request, source, popped_route);
            // Everything from the access side is charged to its source's budget, refused
            // requests too (they cost as much to answer).
            if zone == Zone::Access {
                let registered = pcscf.registrations.by_flow(&source.flow, Instant::now());
                if let Some(busy) =
                    pcscf
                        .settings
                        .budget
                        .refuse(request, source.remote.ip(), registered.is_some())
                {
                    return Decision::Respond(busy);
                }
            }
            let mut filtered = request.clone();
            if let Err(refused) =
                pcscf
                    .settings
                    .ingress
                    .admit(&mut filtered, source.remote, zone, kind)
            {
                return refused.response(request);
            }
            match (kind, token) {
                (RequestKind::TowardUe, Some(token)) => pcscf.toward_ue(&filtered, source, &token),
                (RequestKind::InDialog, _) => Decision::ForwardWith {
                    // In-dialog: the Route set decides (RFC 3261 §16.12).
                    request: filtered,
                    flow: None,
                    forward: Forward::default(),
                },
                (RequestKind::Register | RequestKind::Originating, _) => {
                    if let Some(filter) = &pcscf.settings.cloud_auth {
                        if filter.applies_to(request) {
                            if let Err(refusal) = filter.authenticate(request).await {
                                return Decision::Respond(refusal);
                            }
                        }
                    }
                    if kind == RequestKind::Register {
                        pcscf.register(filtered, source)
                    } else {
                        pcscf.originating(request, filtered, source)
                    }
                }
                // The filter admits nothing else from the access zone or the core.
                _ => refuse(request, 403, "Forbidden"),
            }
        }
        .instrument(span)
        .await
    }

    /// An ACK for a 2xx goes on like the requests of its dialog: from the UE along its
    /// Route set (identity headers removed), from the core over the flow our token
    /// names; anything else is dropped.
    fn ack_route(
        &self,
        ack: &mut SipMessage,
        source: &Source,
        popped_route: Option<&Bytes>,
    ) -> AckRoute {
        let pcscf = &self.0;
        let (zone, kind, token) = pcscf.classify(ack, source, popped_route);
        if pcscf
            .settings
            .ingress
            .admit(ack, source.remote, zone, kind)
            .is_err()
        {
            return AckRoute::Drop;
        }
        match (kind, token) {
            (RequestKind::InDialog, _) => AckRoute::NextHop,
            (RequestKind::TowardUe, Some(token)) => {
                pcscf.flow_of(&token).map_or(AckRoute::Drop, AckRoute::Over)
            }
            _ => AckRoute::Drop,
        }
    }

    /// The 200 to a REGISTER over UDP goes to the UE once the registration it taught
    /// (or its end) is written to the store: a registration the UE was told of
    /// survives a restart. A refresh that changes only the expiry, the stored one
    /// lagging within the bound, is not written and goes at once ([`crate::store`]).
    /// Over TCP and TLS nothing is written (the connection does not survive the
    /// process), and nothing waits.
    fn hold_response(
        &self,
        request: &SipMessage,
        source: &Source,
        response: &SipMessage,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let persistence = self.0.settings.persistence.as_ref()?;
        if request.method() != Some(&Method::Register)
            || response.status() != Some(200)
            || source.flow.kind().is_reliable()
        {
            return None;
        }
        let now = Instant::now();
        let row = self
            .0
            .registrations
            .by_flow(&source.flow, now)
            .map(|reg| (StoredRegistration::of(&reg, now, unix_now()), reg.granted));
        persistence.registration(label(&source.flow), row)
    }

    fn on_response(&self, request: &SipMessage, source: &Source, response: &mut SipMessage) {
        if request.method() != Some(&Method::Register) {
            return;
        }
        let ip = source.remote.ip();
        self.0.settings.budget.answered(request, ip, response);
        let pcscf = &self.0;
        let now = Instant::now();
        let learned = pcscf
            .registrations
            .learn(request, source.flow, response, now);
        if learned != Learned::Ignored {
            tracing::debug!(flow = %source.flow, ?learned, "registration learned");
        }
        // TS 24.229 §5.2.3: subscribe after the UE's first registration over a flow;
        // unsubscribe when it de-registers.
        match learned {
            Learned::Registered
                if pcscf.settings.reg_event && !pcscf.subscriptions.has(&source.flow) =>
            {
                let reg = pcscf.registrations.by_flow(&source.flow, now);
                if let (Some(reg), Some((identity, contact))) = (reg, pcscf.subscriber_uris()) {
                    pcscf.subscriptions.start(&reg, &identity, &contact);
                }
            }
            Learned::Deregistered => pcscf.subscriptions.stop(&source.flow),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::on_both_backends;
    use crate::store::RegistrationStore;
    use crate::testutil::{flows, register_200, sip};
    use ims_config::ZonesSection;
    use ims_node::Role;

    fn pcscf() -> Arc<Pcscf> {
        pcscf_with(None, true)
    }

    /// A P-CSCF writing to `persistence`, subscribing to the reg event or not.
    fn pcscf_with(persistence: Option<Persistence>, reg_event: bool) -> Arc<Pcscf> {
        let zones = ZonesSection {
            core: vec!["127.0.0.1/32".parse().unwrap()],
            ..ZonesSection::default()
        };
        Pcscf::new(
            PcscfSettings {
                home_networks: Vec::new(),
                visited_network_id: "v".into(),
                tokens: FlowTokens::new(vec![7; 32]),
                cloud_auth: None,
                ingress: Ingress::new(Role::Pcscf, &zones),
                budget: Arc::new(SourceBudget::new(
                    &ims_config::BudgetSection::default(),
                    ims_runtime::budget::BudgetMetrics::default(),
                )),
                persistence,
                originator: Originator::default(),
                reg_event,
            },
            10,
        )
    }

    fn source(flow: Flow) -> Source {
        Source {
            flow,
            local: "127.0.0.1:5060".parse().unwrap(),
            remote: flow.remote(),
            peer_names: None,
        }
    }

    /// Registers `user` (alice's 200 with the name replaced) over `flow`.
    fn register(p: &Pcscf, user: &str, flow: Flow) {
        let (req, ok) = register_200(3600);
        let swap = |m: &SipMessage| {
            let text = String::from_utf8(m.to_bytes().to_vec()).unwrap();
            SipMessage::parse(text.replace("alice", user)).unwrap()
        };
        p.registrations
            .learn(&swap(&req), flow, &swap(&ok), Instant::now());
    }

    #[tokio::test]
    async fn a_flow_token_is_the_ues_own_only_over_its_flow_or_another_flow_of_the_same_identity() {
        let p = pcscf();
        let f = flows(4).await;
        let (alice_old, alice_new, bob, core) = (f[0], f[1], f[2], f[3]);
        register(&p, "alice", alice_old);
        register(&p, "alice", alice_new);
        register(&p, "bob", bob);
        let token = p.settings.tokens.issue(&alice_old);
        let popped = Bytes::from(format!("<sip:{token}@127.0.0.1:5060;lr>"));
        let bye = sip("BYE sip:x@127.0.0.1:5999 SIP/2.0\r\n").to_bytes();
        let bye = String::from_utf8(bye.to_vec()).unwrap().replace(
            "To: <sip:alice@ims.example.net>",
            "To: <sip:alice@ims.example.net>;tag=t",
        );
        let bye = SipMessage::parse(bye).unwrap();
        let kind_from = |flow| {
            let (zone, kind, _) = p.classify(&bye, &source(flow), Some(&popped));
            (zone, kind)
        };
        // Alice over the flow the token names, or over her new connection: her dialog.
        assert_eq!(kind_from(alice_old), (Zone::Access, RequestKind::InDialog));
        assert_eq!(kind_from(alice_new), (Zone::Access, RequestKind::InDialog));
        // Bob, registered on a core address, with Alice's token: toward her UE, from
        // the access zone, which may not send that.
        assert_eq!(kind_from(bob), (Zone::Access, RequestKind::TowardUe));
        // An unregistered sender on a core address: the core, toward Alice's UE.
        assert_eq!(kind_from(core), (Zone::Core, RequestKind::TowardUe));
        // Without our Route value, an in-dialog request is on nobody's route.
        let (zone, kind, _) = p.classify(&bye, &source(bob), None);
        assert_eq!((zone, kind), (Zone::Access, RequestKind::NotOurRoute));
        // REGISTER is the access zone's whatever its Route says.
        let reg = sip("REGISTER sip:ims.example.net SIP/2.0\r\n");
        let (zone, kind, _) = p.classify(&reg, &source(core), Some(&popped));
        assert_eq!((zone, kind), (Zone::Access, RequestKind::Register));
    }

    /// The 200 `ok` to `req` from `source` through the policy as the engine passes it
    /// (learned, then held until its write commits); whether it was held.
    async fn relay(
        policy: &PcscfPolicy,
        req: &SipMessage,
        source: &Source,
        ok: &SipMessage,
    ) -> bool {
        let mut ok = ok.clone();
        policy.on_response(req, source, &mut ok);
        match policy.hold_response(req, source, &ok) {
            Some(write) => {
                write.await;
                true
            }
            None => false,
        }
    }

    /// Issue 12. A 200 to REGISTER is written before it goes; a refresh that changes
    /// only the expiry, the stored one lagging by at most min(3 630 / 20, 60) s, is not
    /// written nor held, and a restart (the store reopened) restores it no earlier than
    /// the acknowledged expiry less that bound, and knows what is stored (a refresh
    /// within the bound is not written there either); a refresh beyond the bound is written,
    /// as is one with another Service-Route within it, and the de-registration.
    async fn refreshes(url: &str) {
        let store = RegistrationStore::open(url, "pcscf").await.unwrap();
        let persistence = Persistence::spawn(store.clone());
        let p = pcscf_with(Some(persistence.clone()), false);
        let policy = PcscfPolicy(p.clone());
        let flow = flows(1).await[0];
        let src = source(flow);
        let rows = || store.load(0);
        let acknowledged = || {
            let now = Instant::now();
            let reg = p.registrations.by_flow(&flow, now).unwrap();
            StoredRegistration::of(&reg, now, unix_now())
        };

        let (req, ok) = register_200(3600);
        assert!(relay(&policy, &req, &src, &ok).await, "new: written");
        let written = rows().await.unwrap();
        assert_eq!(written.len(), 1);
        assert_eq!(persistence.stats().changes, 1);

        // Within the bound: not written, not held.
        let (req, ok) = register_200(3630);
        assert!(!relay(&policy, &req, &src, &ok).await, "not held");
        let refreshed = acknowledged();
        assert_eq!(persistence.stats().changes, 1, "not written");
        assert_eq!(persistence.unwritten.get(), 1);
        assert_eq!(rows().await.unwrap(), written);
        assert!(refreshed.expires_at > written[0].expires_at);

        // Restarted: the store reopened, what it restores.
        let reopened = RegistrationStore::open(url, "pcscf").await.unwrap();
        let unix = unix_now();
        let restored = reopened.load(unix).await.unwrap();
        assert_eq!(restored.len(), 1);
        let bound = ims_runtime::expiry_lag::bound(3_630);
        assert!(restored[0].expires_at >= refreshed.expires_at - bound);
        let reg = restored[0].clone().restore(Instant::now(), unix).unwrap();
        assert_eq!(reg.contacts, refreshed.contacts);
        // The restarted P-CSCF knows what the store holds: a refresh within the bound of
        // the stored expiry is not written either.
        let again = Persistence::spawn(reopened.clone());
        again.restored(restored.clone());
        let restarted = pcscf_with(Some(again.clone()), false);
        assert_eq!(
            restarted.registrations.restore(vec![reg], Instant::now()),
            1
        );
        let (req, ok) = register_200(3630);
        assert!(
            !relay(&PcscfPolicy(restarted), &req, &src, &ok).await,
            "not held"
        );
        assert_eq!(again.stats().changes, 0);
        assert_eq!(again.unwritten.get(), 1);
        assert_eq!(rows().await.unwrap(), written);

        // Beyond the bound: written.
        let (req, ok) = register_200(3700);
        assert!(relay(&policy, &req, &src, &ok).await, "written");
        assert_eq!(persistence.stats().changes, 2);
        let beyond = rows().await.unwrap();
        assert!(beyond[0].same_but_expiry(&written[0]));
        assert!(beyond[0].expires_at > written[0].expires_at + bound);

        // Another Service-Route, within the bound: written.
        let (req, ok) = register_200(3700);
        let text = String::from_utf8(ok.to_bytes().to_vec()).unwrap();
        let ok = SipMessage::parse(text.replace("orig@scscf", "orig2@scscf")).unwrap();
        assert!(relay(&policy, &req, &src, &ok).await, "written");
        assert_eq!(persistence.stats().changes, 3);
        assert_eq!(
            rows().await.unwrap()[0].service_route,
            ["<sip:orig2@scscf.ims.example.net:5080;lr>"]
        );

        // De-registered: written.
        let (req, ok) = register_200(0);
        assert!(relay(&policy, &req, &src, &ok).await, "written");
        assert_eq!(persistence.stats().changes, 4);
        assert!(rows().await.unwrap().is_empty());
        assert_eq!(persistence.unwritten.get(), 1);
        store.close().await;
        reopened.close().await;
    }

    on_both_backends!(
        refreshes,
        sqlite_a_refresh_within_the_bound_is_not_written,
        postgres_a_refresh_within_the_bound_is_not_written
    );
}
