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
//! * Requests from the core whose Route carried our flow token (§5.2.6.4, RFC 5626
//!   §5.3): the terminating initial request along the Path, and every later request of
//!   the dialog along the Record-Route (both originating and terminating dialogs carry
//!   the token there): sent over that flow, the initial one record-routed with the
//!   same token; a forged token gets 403, a flow no longer registered 430. ACKs for a
//!   2xx likewise ([`Policy::ack_flow`]).
//! * Requests in a dialog from the UE (To tag; their first Route is ours, with the
//!   token of the flow they came over, or of an earlier flow of the same UE) follow
//!   their Route set.
//!
//! * Cloud authorization (design brief §5, RFC 8898): initial requests from a UE whose
//!   method `[cloud_auth]` names (REGISTER and INVITE by default) need a valid Keystone
//!   Bearer token, else 401 with a Bearer challenge (`error="invalid_token"` for a
//!   refused one). The token travels on to our own core nodes, where the S-CSCF decides
//!   the policy questions with the subscriber's tenant; it is stripped from every request
//!   sent toward a UE. In-dialog requests were authorized with their dialog.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use ims_sip::message::build::response_with;
use ims_sip::message::uri::Uri;
use ims_sip::message::via::split_host_port;
use ims_sip::proxy::engine::{Decision, Forward, Policy};
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
use crate::registrations::{Learned, Registrations};

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
}

/// The P-CSCF's state, shared by the policy and the node (health, purging).
#[derive(Debug)]
pub struct Pcscf {
    settings: PcscfSettings,
    /// Registrations learned from 200s to REGISTER.
    pub registrations: Registrations,
    /// `host[:port][;transport=x]` the core reaches us at: the host part of Path.
    core_address: OnceLock<String>,
}

impl Pcscf {
    /// A P-CSCF keeping at most `max_registrations`.
    pub fn new(settings: PcscfSettings, max_registrations: usize) -> Arc<Pcscf> {
        Arc::new(Pcscf {
            settings,
            registrations: Registrations::new(max_registrations),
            core_address: OnceLock::new(),
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

    fn register(&self, request: &SipMessage, source: &Source) -> Decision {
        let Some(icscf) = self.home_route(request) else {
            tracing::info!(remote = %source.remote, "REGISTER for a domain we do not serve");
            return refuse(request, 403, "Forbidden - unknown home network");
        };
        if !self.registrations.has_room(&source.flow, Instant::now()) {
            tracing::warn!(remote = %source.remote, "registration store full: REGISTER refused");
            return Decision::Respond(response_with(
                request,
                503,
                "Service Unavailable",
                None,
                &[(HeaderName::RetryAfter, "60")],
            ));
        }
        let mut edited = request.clone();
        edited.headers.remove_all(&HeaderName::Route);
        edited.headers.remove_all(&HeaderName::PAssertedIdentity);
        add_path(&mut edited, &self.path_value(source));
        set_visited_network(&mut edited, &self.settings.visited_network_id);
        set_charging_vector(&mut edited, &self.host(source));
        Decision::ForwardWith {
            request: edited,
            flow: None,
            forward: Forward {
                preload_routes: vec![icscf.to_string()],
                ..Forward::default()
            },
        }
    }

    fn originating(&self, request: &SipMessage, source: &Source) -> Decision {
        let Some(reg) = self.registrations.by_flow(&source.flow, Instant::now()) else {
            tracing::info!(remote = %source.remote, method = ?request.method(), "request from an unregistered UE refused");
            return refuse(request, 403, "Forbidden - not registered");
        };
        let mut edited = request.clone();
        let identity = asserted_identity(request, &reg);
        assert_identity(&mut edited, &identity);
        edited.headers.remove_all(&HeaderName::Route);
        set_charging_vector(&mut edited, &self.host(source));
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

    /// True when a request whose popped Route carried `token` came from the UE side:
    /// over the very flow the token names (our Record-Route value heads the UE's route
    /// set), or over another flow a UE is registered on (it re-registered over a new
    /// connection since the dialog began). Requests from the core come over neither.
    fn sent_by_ue(&self, token: &str, source: &Source) -> bool {
        self.settings
            .tokens
            .check(token)
            .is_ok_and(|l| l == label(&source.flow))
            || self
                .registrations
                .by_flow(&source.flow, Instant::now())
                .is_some()
    }

    /// The flow a live, authentic token names.
    fn flow_of(&self, token: &str) -> Option<Flow> {
        let label = self.settings.tokens.check(token).ok()?;
        Some(self.registrations.by_label(&label, Instant::now())?.flow)
    }

    fn toward_ue(&self, request: &SipMessage, token: &str) -> Decision {
        let label = match self.settings.tokens.check(token) {
            Ok(label) => label,
            Err(error) => {
                tracing::info!(%error, "request with a bad flow token refused");
                return refuse(request, 403, "Forbidden");
            }
        };
        let Some(reg) = self.registrations.by_label(&label, Instant::now()) else {
            return refuse(request, 430, "Flow Failed");
        };
        // The bearer credential never leaves our trust boundary toward a UE.
        let record_route = !request.has_to_tag();
        let mut request = request.clone();
        strip_bearer(&mut request);
        Decision::ForwardWith {
            request,
            flow: Some(reg.flow),
            forward: Forward {
                record_route,
                record_route_user: Some(token.to_string()),
                ..Forward::default()
            },
        }
    }
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
        let pcscf = &self.0;
        let token = popped_route.and_then(|v| route_user(std::str::from_utf8(v).ok()?));
        if let Some(token) = token.filter(|t| !pcscf.sent_by_ue(t, source)) {
            return pcscf.toward_ue(request, &token);
        }
        let registered = pcscf.registrations.by_flow(&source.flow, Instant::now());
        if let Some(busy) =
            pcscf
                .settings
                .budget
                .refuse(request, source.remote.ip(), registered.is_some())
        {
            return Decision::Respond(busy);
        }
        let in_dialog = request.has_to_tag();
        if let Some(filter) = &pcscf.settings.cloud_auth {
            if !in_dialog && filter.applies_to(request) {
                if let Err(refusal) = filter.authenticate(request).await {
                    return Decision::Respond(refusal);
                }
            }
        }
        if request.method() == Some(&Method::Register) {
            return pcscf.register(request, source);
        }
        if in_dialog {
            // In-dialog: the Route set decides (RFC 3261 §16.12).
            return Decision::Forward(Forward::default());
        }
        pcscf.originating(request, source)
    }

    /// An ACK from the core for a UE's 2xx carries the UE's flow token in the Route
    /// value of our Record-Route: it goes over that flow.
    fn ack_flow(
        &self,
        _ack: &SipMessage,
        source: &Source,
        popped_route: Option<&Bytes>,
    ) -> Option<Flow> {
        let token = popped_route.and_then(|v| route_user(std::str::from_utf8(v).ok()?))?;
        if self.0.sent_by_ue(&token, source) {
            return None;
        }
        self.0.flow_of(&token)
    }

    fn on_response(&self, request: &SipMessage, source: &Source, response: &mut SipMessage) {
        if request.method() != Some(&Method::Register) {
            return;
        }
        let ip = source.remote.ip();
        self.0.settings.budget.answered(request, ip, response);
        let learned = self
            .0
            .registrations
            .learn(request, source.flow, response, Instant::now());
        if learned != Learned::Ignored {
            tracing::debug!(flow = %source.flow, ?learned, "registration learned");
        }
    }
}
