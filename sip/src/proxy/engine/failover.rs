//! Failover to the next server of a next hop (RFC 3263 §4.3): when a branch's request
//! meets a transport error, a timeout (Timer B/F, or no response within
//! [`super::EngineConfig::failover_after`]) or a 503, the same request goes to the
//! next server its next hop resolved to (SRV targets in priority and weight order, a
//! name's further addresses), on a new client transaction with a new Via branch, in
//! the same response context. The new branch is added before the failed one's outcome
//! is recorded, so the context waits for it; if every server fails, the context
//! answers with the best of their responses as usual (§16.7). A request sent over a
//! flow, cancelled, or already answered is not sent on.

use std::time::Duration;

use super::resolver::Servers;
use super::{BranchEvent, Core, Policy};
use crate::message::key::TransactionKey;
use crate::proxy::response_context::{BranchId, BranchState};
use crate::transport::Target;

/// What a branch was built from: enough to build it again toward another server.
pub(super) struct BranchSpec<'a> {
    /// The target (new Request-URI), `None` to keep the request's.
    pub target: Option<&'a str>,
    /// Preloaded Route values (the forward's, then the target's own).
    pub routes: &'a [String],
    /// Whether we record-route.
    pub record_route: bool,
    /// The user part of our Record-Route.
    pub record_route_user: Option<&'a str>,
    /// The forward's no-response limit.
    pub no_response_timeout: Option<Duration>,
}

/// A branch whose next hop has more servers to try.
pub(super) struct Failover {
    id: BranchId,
    target: Option<String>,
    routes: Vec<String>,
    record_route: bool,
    record_route_user: Option<String>,
    no_response_timeout: Option<Duration>,
    /// The servers left, in order.
    rest: Servers,
}

impl Failover {
    /// Branch `id`, built from `spec`, has `rest` left to try.
    pub(super) fn new(id: BranchId, spec: &BranchSpec<'_>, rest: Servers) -> Failover {
        Failover {
            id,
            target: spec.target.map(str::to_string),
            routes: spec.routes.to_vec(),
            record_route: spec.record_route,
            record_route_user: spec.record_route_user.map(str::to_string),
            no_response_timeout: spec.no_response_timeout,
            rest,
        }
    }

    fn spec(&self) -> BranchSpec<'_> {
        BranchSpec {
            target: self.target.as_deref(),
            routes: &self.routes,
            record_route: self.record_route,
            record_route_user: self.record_route_user.as_deref(),
            no_response_timeout: self.no_response_timeout,
        }
    }
}

/// Whether `event` on a branch in `state` sends its request on to the next server
/// (§4.3): a 503, a transport error (not over a flow: a closed flow is 430, RFC 5626),
/// Timer B/F, or no response at all within the limit. Timer C (a branch that has
/// answered provisionally) and other responses do not.
pub(super) fn fails_over(event: &BranchEvent, state: Option<BranchState>, over_flow: bool) -> bool {
    match event {
        BranchEvent::Response(response) => response.status() == Some(503),
        BranchEvent::TransportError => !over_flow,
        BranchEvent::Timeout => true,
        BranchEvent::NoResponse => state == Some(BranchState::Calling),
        BranchEvent::TimerC => false,
    }
}

impl<P: Policy> Core<P> {
    /// Sends branch `id` of `key`'s request to its next server, if it has one and the
    /// request is still open (not answered, not cancelled). With `down` (it timed out
    /// or could not be reached, not a 503) the failed server goes last in the lists
    /// of later requests for a while ([`super::HostCache::mark_down`]).
    pub(super) fn fail_over(&mut self, key: &TransactionKey, id: BranchId, down: bool) {
        let Some(ctx) = self.contexts.get_mut(key) else {
            return;
        };
        if down {
            let failed = ctx.dests.iter().find_map(|(branch, target)| match target {
                Target::Destination(dest) if *branch == id => Some(dest.addr),
                _ => None,
            });
            if let Some(addr) = failed {
                self.config.names.mark_down(addr);
            }
        }
        let Some(at) = ctx.failovers.iter().position(|f| f.id == id) else {
            return;
        };
        let mut failover = ctx.failovers.swap_remove(at);
        if ctx.rc.final_sent() || ctx.rc.is_cancelled() {
            return;
        }
        let servers = std::mem::take(&mut failover.rest);
        let Some(next) = servers.first() else {
            return;
        };
        tracing::info!(next = %next.addr, transport = %next.kind, down, "next hop's server failed: trying the next one (RFC 3263 §4.3)");
        super::EngineStats::inc(&self.stats.failovers);
        if let Err(error) = self.start_branch(key, &failover.spec(), None, Some(servers)) {
            tracing::info!(%error, "cannot fail over");
        }
    }
}
