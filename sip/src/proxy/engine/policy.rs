//! The CSCF's say in proxying: where a request goes (RFC 3261 §16.5), or that it is
//! answered here (a registrar's 401/200, a 403 from an authorization check).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use crate::transport::{Flow, Source};
use crate::SipMessage;

/// What to do with a request that passed §16.3 validation and §16.4 Route
/// preprocessing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answer the request with this response (built with
    /// [`crate::message::build::response_with`] from the request handed to
    /// [`Policy::decide`]). A provisional response leaves the transaction open: no
    /// further decision is asked, so a policy answers with a final response.
    Respond(SipMessage),
    /// Proxy the request.
    Forward(Forward),
    /// Proxy `request`, the policy's edited copy of the request it was given (RFC
    /// 3261 §16.6 step 1 lets a proxy change its copy: an IMS proxy adds Path,
    /// P-Asserted-Identity, P-Charging-Vector, removes what a UE may not send). The
    /// transaction identifiers (Via, Call-ID, CSeq, From, To) must stay as received.
    /// With `flow`, every branch goes over that flow whatever its next hop says (RFC
    /// 5626 §5.3: a request for a UE registered over a flow goes over that flow), and
    /// a branch whose flow has closed ends with `430 Flow Failed`.
    ForwardWith {
        /// The request to proxy.
        request: SipMessage,
        /// The flow every branch is sent over, if any.
        flow: Option<Flow>,
        /// Targets and per-branch changes, as for [`Decision::Forward`].
        forward: Forward,
    },
}

/// The target set and per-branch changes of a proxied request (§16.5, §16.6 steps 2,
/// 4, 5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forward {
    /// One branch per target URI, which becomes the Request-URI (§16.6 step 2). Empty:
    /// one branch that keeps the Request-URI (routed by its Route set, §16.5 "if the
    /// Request-URI is not ours, the target set is the Request-URI").
    pub targets: Vec<String>,
    /// Insert our Record-Route (§16.6 step 4): double record-routing (RFC 5658) when
    /// the request leaves on another transport or listener than it arrived on.
    pub record_route: bool,
    /// Route values to pre-load on every branch, topmost first (§16.6 step 5), e.g.
    /// `<sip:scscf.example.net;lr>`.
    pub preload_routes: Vec<String>,
    /// User part of our Record-Route value(s), e.g. a flow token naming the UE's
    /// connection (RFC 5626 §5.3, TS 24.229 §5.2.6.3.3: a P-CSCF puts it there, so the
    /// requests later in the dialog, which carry it in their Route, reach the UE over
    /// that flow).
    pub record_route_user: Option<String>,
    /// Route values to pre-load on one branch only, below `preload_routes`: entry `i`
    /// goes on the branch of `targets[i]`, topmost first. A registrar forking to its
    /// contacts sends each along the Path it registered with (RFC 3327 §5.3, TS 24.229
    /// §5.4.3.3). Missing entries pre-load nothing more.
    pub target_routes: Vec<Vec<String>>,
    /// Give up a branch that has had no response at all, not even `100 Trying`, this
    /// long after it was sent: it counts as having answered `408 Request Timeout`
    /// (§16.7 step 6), and its client transaction is left to run out. An S-CSCF gives
    /// an application server that long to answer (TS 24.229 §5.4.3.2, §5.4.3.3).
    /// `None`: only the transaction timers (B, F, C) end a silent branch.
    pub no_response_timeout: Option<Duration>,
    /// Serial forking: when every branch of this forward has ended without a 2xx,
    /// [`Policy::on_failure`] is asked, with this value, before the best final
    /// response goes upstream; it may send the request on elsewhere (the targets
    /// added to the same response context, §16.7 step 4 style). An S-CSCF goes on
    /// with the next iFC when an application server fails (TS 24.229 §5.4.3.2
    /// DefaultHandling SESSION_CONTINUED). `None`: the best response goes upstream.
    pub on_failure: Option<String>,
}

/// The policy a proxy engine asks for each new request (not for ACK and CANCEL, which
/// the engine handles per §16.10 and §16.11).
pub trait Policy: Send + Sync + 'static {
    /// Decides what to do with `request` (already stamped with `received`/`rport`,
    /// validated and Route-preprocessed), received from `source`.
    fn decide(
        &self,
        request: &SipMessage,
        source: &Source,
    ) -> impl Future<Output = Decision> + Send;

    /// What the engine calls: [`Policy::decide`], also given the Route value that
    /// §16.4 preprocessing removed because it named this element, as written (it may
    /// carry a flow token this element put into a Path or Record-Route, RFC 5626
    /// §5.3). By default the value is ignored.
    fn decide_routed(
        &self,
        request: &SipMessage,
        source: &Source,
        popped_route: Option<&Bytes>,
    ) -> impl Future<Output = Decision> + Send {
        let _ = popped_route;
        self.decide(request, source)
    }

    /// Sees each response before it is forwarded upstream on the server transaction of
    /// `request` (as received after Route preprocessing, or as edited by a
    /// [`Decision::ForwardWith`]) from `source`, and may change
    /// it: e.g. a P-CSCF learns a registration from the 200 to a REGISTER (TS 24.229
    /// §5.2.2). This includes the 408/430/503/487 the engine synthesizes for a
    /// branch, not the response of a [`Decision::Respond`]. By default nothing happens.
    fn on_response(&self, request: &SipMessage, source: &Source, response: &mut SipMessage) {
        let _ = (request, source, response);
    }

    /// A final response about to go upstream (after [`Policy::on_response`]): `Some`
    /// holds it until the future completes, then it goes upstream as it is; `None`
    /// (the default) lets it go at once. The engine's task goes on meanwhile, and the
    /// held response counts among the decisions waiting ([`super::EngineConfig::queue`]).
    /// A P-CSCF relays the 200 to a REGISTER only once the registration it learned
    /// from it is written to its store, so that no registration a UE was told of is
    /// lost by a restart. A future that panics lets the response go.
    fn hold_response(
        &self,
        request: &SipMessage,
        source: &Source,
        response: &SipMessage,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        let _ = (request, source, response);
        None::<std::future::Ready<()>>
    }

    /// Every branch of a request forwarded with [`Forward::on_failure`] set to `tag`
    /// has ended without a 2xx, and `response` is the best final response (§16.7
    /// step 6, our Via removed) that would go upstream. A new [`Decision`] to forward
    /// sends `request` (as the failed branches were built from it, after Route
    /// preprocessing or as edited by [`Decision::ForwardWith`]) on with new branches
    /// in the same response context; `None` (the default) lets `response` go upstream
    /// (through [`Policy::on_response`]). Not asked once the request was cancelled.
    fn on_failure(
        &self,
        request: &SipMessage,
        source: &Source,
        tag: &str,
        response: &SipMessage,
    ) -> impl Future<Output = Option<Decision>> + Send {
        let _ = (request, source, tag, response);
        std::future::ready(None)
    }

    /// Where an ACK for a 2xx (forwarded statelessly, §16.11: no decision is asked
    /// for it) goes, given the Route value §16.4 removed because it named this element:
    /// toward its next hop, over a flow instead (RFC 5626 §5.3: the ACK of a dialog
    /// with a UE registered over a flow goes over that flow), or nowhere (a sender not
    /// allowed to send it; an ACK has no response, so it is dropped). `ack` is the copy
    /// about to be sent (Route preprocessed, our Via not yet added): the policy may
    /// remove headers its sender may not send. By default: toward its next hop.
    fn ack_route(
        &self,
        ack: &mut SipMessage,
        source: &Source,
        popped_route: Option<&Bytes>,
    ) -> AckRoute {
        let _ = (ack, source, popped_route);
        AckRoute::NextHop
    }
}

/// Where a statelessly forwarded ACK goes ([`Policy::ack_route`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckRoute {
    /// Toward its next hop (Route, else Request-URI; §16.11).
    NextHop,
    /// Over this flow.
    Over(Flow),
    /// Nowhere: dropped.
    Drop,
}

/// Plain routing (RFC 3261 §16.5-§16.6): forward to the Request-URI, or to the
/// remaining Route set if any. When an outbound proxy is configured it is pre-loaded
/// as Route for requests without Route.
#[derive(Debug, Clone)]
pub struct DefaultRouting {
    /// A Route value (e.g. `<sip:edge.example.net;transport=tcp;lr>`) pre-loaded on
    /// requests whose Route set is empty after preprocessing.
    pub outbound: Option<String>,
    /// Record-Route every forwarded request (on by default).
    pub record_route: bool,
}

impl Default for DefaultRouting {
    fn default() -> Self {
        DefaultRouting {
            outbound: None,
            record_route: true,
        }
    }
}

impl Policy for DefaultRouting {
    async fn decide(&self, request: &SipMessage, _source: &Source) -> Decision {
        let has_route = request.headers.get(&crate::HeaderName::Route).is_some();
        let preload_routes = match &self.outbound {
            Some(route) if !has_route => vec![route.clone()],
            _ => Vec::new(),
        };
        Decision::Forward(Forward {
            record_route: self.record_route,
            preload_routes,
            ..Forward::default()
        })
    }
}
