//! The I-CSCF's decisions (TS 24.229 §5.3) on top of the proxy engine. It stays
//! transaction-stateful and does not record-route (§5.3.1.2: REGISTER is not
//! record-routed; the I-CSCF is not on the dialog path).
//!
//! * REGISTER (§5.3.1.2): UAR ([`crate::uar`]), then [`crate::answer::outcome`]:
//!   forwarded to the selected S-CSCF as a pre-loaded Route, or answered.
//! * Other requests: [`IcscfPolicy::terminating`]. Terminating routing by LIR
//!   (§5.3.2.1, TS 29.228 §6.1.4) is the sessions issue and lands there; until then
//!   such requests go to the configured `[route]` next hop, or by Request-URI.

use ims_config::ScscfEntry;
use ims_sip::message::build::response_with;
use ims_sip::proxy::engine::{Decision, Forward, Policy};
use ims_sip::transport::Source;
use ims_sip::{HeaderName, Method, SipMessage};

use crate::answer::{outcome, Outcome, HSS_UNAVAILABLE};
use crate::cx::CxClient;
use crate::uar::uar_for;

/// The I-CSCF as a proxy-engine [`Policy`].
#[derive(Debug, Clone)]
pub struct IcscfPolicy {
    /// Cx toward the HSS.
    pub cx: CxClient,
    /// The S-CSCFs this I-CSCF may select.
    pub scscfs: Vec<ScscfEntry>,
    /// Our home network, the Visited-Network-Identifier when the P-CSCF sent none.
    pub home_network: String,
    /// Route value for non-REGISTER requests until LIR exists.
    pub next_hop: Option<String>,
}

fn reject(request: &SipMessage, code: u16, reason: &str) -> Decision {
    Decision::Respond(response_with(request, code, reason, None, &[]))
}

impl IcscfPolicy {
    async fn register(&self, request: &SipMessage) -> Decision {
        let uar = match uar_for(request, self.cx.header(), &self.home_network) {
            Ok(uar) => uar,
            Err(error) => {
                tracing::info!(%error, "REGISTER refused");
                return reject(request, 400, "Bad Request");
            }
        };
        let next = match self.cx.uar(&uar).await {
            Ok(uaa) => outcome(&uaa, &self.scscfs),
            Err(error) => {
                tracing::warn!(%error, impu = %uar.public_identity, "UAR failed");
                HSS_UNAVAILABLE
            }
        };
        match next {
            Outcome::Forward(selected) => {
                tracing::debug!(impu = %uar.public_identity, scscf = %selected.name, "REGISTER to S-CSCF");
                // Any Route the REGISTER still carries is not for us to keep: the
                // S-CSCF chosen here is the next hop (§5.3.1.2).
                let mut edited = request.clone();
                edited.headers.remove_all(&HeaderName::Route);
                Decision::ForwardWith {
                    request: edited,
                    flow: None,
                    forward: Forward {
                        targets: Vec::new(),
                        record_route: false,
                        preload_routes: vec![selected.route],
                    },
                }
            }
            Outcome::Reject(code, reason) => {
                tracing::info!(impu = %uar.public_identity, code, "REGISTER answered");
                reject(request, code, reason)
            }
        }
    }

    /// Requests other than REGISTER: where LIR-based terminating routing
    /// (TS 24.229 §5.3.2.1) belongs. Today: the static next hop, if any, for requests
    /// without a Route; else the Route set / Request-URI.
    pub fn terminating(&self, request: &SipMessage) -> Decision {
        let has_route = request.headers.get(&HeaderName::Route).is_some();
        Decision::Forward(Forward {
            targets: Vec::new(),
            record_route: false,
            preload_routes: match &self.next_hop {
                Some(route) if !has_route => vec![route.clone()],
                _ => Vec::new(),
            },
        })
    }
}

impl Policy for IcscfPolicy {
    async fn decide(&self, request: &SipMessage, _source: &Source) -> Decision {
        if request.method() == Some(&Method::Register) {
            self.register(request).await
        } else {
            self.terminating(request)
        }
    }
}
