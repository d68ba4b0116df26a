//! The response context of a stateful proxy (RFC 3261 §16.7-§16.10): one per server
//! transaction, tracking the client branches it forked, their states and final
//! responses, and deciding what to send upstream and which branches to cancel.
//!
//! The glue layer owns the transactions. It tells the context what happened on each
//! branch ([`ResponseContext::on_response`], [`ResponseContext::on_timeout`],
//! [`ResponseContext::on_transport_error`], [`ResponseContext::on_timer_c`]) and on the
//! server side ([`ResponseContext::cancel`]), and carries out the returned
//! [`Actions`]: a response to send on the server transaction, CANCELs to send on new
//! client transactions.
//!
//! Choices where RFC 3261 leaves room:
//! * A 503 received from downstream is never forwarded: it becomes 500 (§16.7 step 6).
//!   A 503 the proxy synthesizes for a transport failure (§16.9) is forwarded as 503:
//!   here the failure is this element's own inability to deliver the request.
//! * Once the context is cancelled (§16.10), responses the proxy synthesized (408, 503)
//!   are replaced by 487 Request Terminated; responses from downstream keep priority.
//! * Within a class, a response from downstream is preferred to a 408/503 the proxy
//!   synthesized: it says more about the target.
//! * Recursion on 3xx (§16.7 step 4) is not done: redirects compete like any other
//!   final response.
//! * Serial forking: a context told to [`ResponseContext::hold_final`] hands its best
//!   final response out in [`Actions::held`] instead of sending it, and stays open;
//!   the glue then either adds new branches after [`ResponseContext::retry`] (which
//!   forgets the failed round's responses) or sends the response after
//!   [`ResponseContext::release`]. A CANCEL while held is answered with 487 at once.

use crate::message::build::{cancel as build_cancel, new_tag, reason_phrase, response_with};
use crate::message::via::Via;
use crate::{HeaderName, Method, SipMessage};

use super::via::pop_via;

/// Index of a client branch within its [`ResponseContext`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BranchId(usize);

/// State of one client branch, as far as the proxy core is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchState {
    /// Request sent, no response yet.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived or was synthesized (timeout, transport error).
    Completed(u16),
}

/// A response or event that does not fit the context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// No branch has this id.
    #[error("unknown branch")]
    UnknownBranch,
    /// The message is not a response.
    #[error("not a response")]
    NotAResponse,
    /// A branch request has no usable top Via with a branch parameter.
    #[error("request has no Via branch")]
    NoBranch,
    /// The response's top Via is not the one this branch sent (§16.7 step 3).
    #[error("top Via does not match the branch")]
    BranchMismatch,
    /// No Via remains under ours: the response cannot be forwarded upstream.
    #[error("no Via left after removing ours")]
    NoUpstreamVia,
}

/// What the glue layer must do after an event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actions {
    /// A response to send upstream on the server transaction.
    pub forward: Option<SipMessage>,
    /// CANCEL requests to send, each on a new client transaction toward the same
    /// destination as the branch it cancels (§9.1).
    pub cancel: Vec<(BranchId, SipMessage)>,
    /// The best final response of a round that was to be held
    /// ([`ResponseContext::hold_final`]): not sent; the context is open for a retry.
    pub held: Option<SipMessage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Downstream,
    Local,
}

#[derive(Debug, Clone)]
struct StoredFinal {
    response: SipMessage,
    origin: Origin,
}

#[derive(Debug, Clone)]
struct Branch {
    request: SipMessage,
    branch: String,
    state: BranchState,
    /// A CANCEL is due as soon as a provisional arrives (§9.1).
    cancel_pending: bool,
    cancel_sent: bool,
}

/// The response context of one server transaction (§16.7).
#[derive(Debug, Clone)]
pub struct ResponseContext {
    request: SipMessage,
    is_invite: bool,
    branches: Vec<Branch>,
    finals: Vec<StoredFinal>,
    final_sent: bool,
    cancelled: bool,
    /// Hold the best final response of the current round.
    hold: bool,
    /// A round's final response was handed out held; nothing sent yet.
    held: bool,
    local_tag: String,
}

/// Codes that carry information for resubmitting the request, preferred within 4xx
/// (§16.7 step 6).
const RESUBMIT_INFO: [u16; 5] = [401, 407, 415, 420, 484];

impl ResponseContext {
    /// A context for `request` as received (with its Vias, after
    /// [`super::via::stamp_received`]); responses the proxy generates are built from it.
    pub fn new(request: SipMessage) -> ResponseContext {
        ResponseContext {
            is_invite: request.method() == Some(&Method::Invite),
            request,
            branches: Vec::new(),
            finals: Vec::new(),
            final_sent: false,
            cancelled: false,
            hold: false,
            held: false,
            local_tag: new_tag(),
        }
    }

    /// The To tag of every response this context generates.
    pub fn local_tag(&self) -> &str {
        &self.local_tag
    }

    /// Registers a forwarded request (with our Via on top) as a new branch.
    pub fn add_branch(&mut self, request: &SipMessage) -> Result<BranchId, ResponseError> {
        let branch = top_branch(request).ok_or(ResponseError::NoBranch)?;
        self.branches.push(Branch {
            request: request.clone(),
            branch,
            state: BranchState::Calling,
            cancel_pending: self.cancelled,
            cancel_sent: false,
        });
        Ok(BranchId(self.branches.len() - 1))
    }

    /// The branch whose Via carries this branch parameter.
    pub fn branch_by_param(&self, branch: &str) -> Option<BranchId> {
        self.branches
            .iter()
            .position(|b| b.branch == branch)
            .map(BranchId)
    }

    /// A branch's state.
    pub fn branch_state(&self, id: BranchId) -> Option<BranchState> {
        self.branches.get(id.0).map(|b| b.state)
    }

    /// True once the request was cancelled (§16.10).
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// True once a final response has been sent upstream.
    pub fn final_sent(&self) -> bool {
        self.final_sent
    }

    /// Holds the best final response of the current round of branches: when every
    /// branch has completed without a 2xx, it comes out in [`Actions::held`] and is not
    /// counted as sent (unless the context was cancelled, then it goes as usual).
    pub fn hold_final(&mut self) {
        self.hold = true;
    }

    /// True while a held final response waits for [`ResponseContext::retry`] or
    /// [`ResponseContext::release`].
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// Starts a new round after a held response: the failed round's final responses
    /// are forgotten, so the branches added next decide the response alone. False
    /// (nothing changes) when no response is held.
    pub fn retry(&mut self) -> bool {
        if !self.held || self.final_sent {
            return false;
        }
        self.held = false;
        self.hold = false;
        self.finals.clear();
        true
    }

    /// The held response goes upstream after all: the context counts it as sent.
    /// False when none is held.
    pub fn release(&mut self) -> bool {
        if !self.held || self.final_sent {
            return false;
        }
        self.held = false;
        self.final_sent = true;
        true
    }

    /// A response arrived on a branch (§16.7). Our Via is removed; then:
    /// * 100 is absorbed (step 5: never forwarded); other provisionals are forwarded
    ///   at once while no final was sent;
    /// * 2xx is forwarded at once, every one of them for INVITE (step 5), and the
    ///   other pending branches are cancelled (step 10);
    /// * 3xx-6xx are stored; a 6xx cancels the pending branches (step 5); when every
    ///   branch is complete the best stored response is sent (steps 6-8).
    pub fn on_response(
        &mut self,
        id: BranchId,
        mut resp: SipMessage,
    ) -> Result<Actions, ResponseError> {
        let code = resp.status().ok_or(ResponseError::NotAResponse)?;
        let branch = self
            .branches
            .get(id.0)
            .ok_or(ResponseError::UnknownBranch)?;
        if top_branch(&resp).as_deref() != Some(branch.branch.as_str()) {
            tracing::debug!(code, "response Via does not match its branch");
            return Err(ResponseError::BranchMismatch);
        }
        pop_via(&mut resp).map_err(|_| ResponseError::BranchMismatch)?;
        if resp.headers.get(&HeaderName::Via).is_none() {
            tracing::debug!(code, "response has no Via below ours");
            return Err(ResponseError::NoUpstreamVia);
        }
        let state = branch.state;
        let mut actions = Actions::default();
        match code {
            100..=199 => {
                if state == BranchState::Calling {
                    self.set_state(id, BranchState::Proceeding);
                    actions.cancel.extend(self.cancel_if_pending(id));
                }
                let completed = matches!(state, BranchState::Completed(_));
                if code > 100 && !self.final_sent && !completed {
                    actions.forward = Some(resp);
                }
            }
            200..=299 => {
                if !matches!(state, BranchState::Completed(_)) {
                    self.set_state(id, BranchState::Completed(code));
                }
                if self.is_invite || !self.final_sent {
                    actions.forward = Some(resp);
                    self.final_sent = true;
                    actions.cancel = self.cancel_pending_branches();
                }
            }
            _ => {
                if matches!(state, BranchState::Completed(_)) {
                    return Ok(actions);
                }
                self.set_state(id, BranchState::Completed(code));
                self.finals.push(StoredFinal {
                    response: resp,
                    origin: Origin::Downstream,
                });
                if code >= 600 {
                    actions.cancel = self.cancel_pending_branches();
                }
                self.try_complete(&mut actions);
            }
        }
        Ok(actions)
    }

    /// The branch's client transaction timed out (Timer B/F): as if it returned
    /// 408 Request Timeout (§16.8, §16.7 step 6 "no response ... 408").
    pub fn on_timeout(&mut self, id: BranchId) -> Result<Actions, ResponseError> {
        self.local_final(id, 408)
    }

    /// The branch had no response at all within the time its forwarder allowed: as if
    /// it returned 408 (§16.7 step 6); a branch that has seen any response is left
    /// alone.
    pub fn on_no_response(&mut self, id: BranchId) -> Result<Actions, ResponseError> {
        match self.branch_state(id).ok_or(ResponseError::UnknownBranch)? {
            BranchState::Calling => self.local_final(id, 408),
            _ => Ok(Actions::default()),
        }
    }

    /// The transport could not deliver the branch's request: as if it returned
    /// 503 Service Unavailable (§16.9).
    pub fn on_transport_error(&mut self, id: BranchId) -> Result<Actions, ResponseError> {
        self.local_final(id, 503)
    }

    /// The branch's request was meant for a flow (RFC 5626 §5.3) that has closed: as
    /// if it returned 430 Flow Failed (RFC 5626 §5.3, §11.6).
    pub fn on_flow_failed(&mut self, id: BranchId) -> Result<Actions, ResponseError> {
        self.local_final(id, 430)
    }

    /// Timer C fired for an INVITE branch (§16.8): a branch that has seen a provisional
    /// is cancelled; one that has not is treated as having returned 408. The glue
    /// starts Timer C when it sends the INVITE (§16.6 step 11) and restarts it on every
    /// provisional response of that branch (§16.7 step 2).
    pub fn on_timer_c(&mut self, id: BranchId) -> Result<Actions, ResponseError> {
        let state = self.branch_state(id).ok_or(ResponseError::UnknownBranch)?;
        match state {
            BranchState::Calling => self.local_final(id, 408),
            BranchState::Proceeding => {
                if let Some(b) = self.branches.get_mut(id.0) {
                    b.cancel_pending = true;
                }
                Ok(Actions {
                    cancel: self.cancel_if_pending(id).into_iter().collect(),
                    ..Actions::default()
                })
            }
            BranchState::Completed(_) => Ok(Actions::default()),
        }
    }

    /// The server transaction was cancelled (§16.10): every pending branch is
    /// cancelled (at once if it has seen a provisional, else as soon as it does, §9.1);
    /// completed branches are left alone. The final response follows when the
    /// branches complete, 487 unless something better arrived. Has no effect on a
    /// non-INVITE request (§9.2) or once a final response was sent.
    pub fn cancel(&mut self) -> Actions {
        if !self.is_invite || self.final_sent {
            return Actions::default();
        }
        self.cancelled = true;
        let cancel = self.cancel_pending_branches();
        let forward = if self.branches.is_empty() || self.held {
            self.held = false;
            self.final_sent = true;
            Some(self.local_response(487))
        } else {
            None
        };
        Actions {
            forward,
            cancel,
            held: None,
        }
    }

    fn set_state(&mut self, id: BranchId, state: BranchState) {
        if let Some(b) = self.branches.get_mut(id.0) {
            b.state = state;
        }
    }

    fn local_response(&self, code: u16) -> SipMessage {
        response_with(
            &self.request,
            code,
            reason_phrase(code),
            Some(&self.local_tag),
            &[],
        )
    }

    fn local_final(&mut self, id: BranchId, code: u16) -> Result<Actions, ResponseError> {
        let branch = self
            .branches
            .get(id.0)
            .ok_or(ResponseError::UnknownBranch)?;
        if matches!(branch.state, BranchState::Completed(_)) {
            return Ok(Actions::default());
        }
        self.set_state(id, BranchState::Completed(code));
        self.finals.push(StoredFinal {
            response: self.local_response(code),
            origin: Origin::Local,
        });
        let mut actions = Actions::default();
        self.try_complete(&mut actions);
        Ok(actions)
    }

    /// Marks every unfinished branch for cancellation and returns the CANCELs that can
    /// be sent now (INVITE only: CANCEL has no meaning for other methods, §9.1).
    fn cancel_pending_branches(&mut self) -> Vec<(BranchId, SipMessage)> {
        if !self.is_invite {
            return Vec::new();
        }
        let mut out = Vec::new();
        for i in 0..self.branches.len() {
            if let Some(b) = self.branches.get_mut(i) {
                if !matches!(b.state, BranchState::Completed(_)) {
                    b.cancel_pending = true;
                }
            }
            out.extend(self.cancel_if_pending(BranchId(i)));
        }
        out
    }

    /// The CANCEL for a branch marked for cancellation that has seen a provisional.
    fn cancel_if_pending(&mut self, id: BranchId) -> Option<(BranchId, SipMessage)> {
        let b = self.branches.get_mut(id.0)?;
        if !b.cancel_pending || b.cancel_sent || b.state != BranchState::Proceeding {
            return None;
        }
        match build_cancel(&b.request) {
            Ok(c) => {
                b.cancel_sent = true;
                Some((id, c))
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot build CANCEL for branch");
                None
            }
        }
    }

    /// The best response once every branch is complete and nothing final was sent or
    /// held: in `forward`, or in `held` when the round is held.
    fn try_complete(&mut self, actions: &mut Actions) {
        if self.final_sent
            || self.held
            || self.branches.is_empty()
            || self
                .branches
                .iter()
                .any(|b| !matches!(b.state, BranchState::Completed(_)))
        {
            return;
        }
        if self.hold && !self.cancelled {
            self.hold = false;
            self.held = true;
            actions.held = Some(self.best_response());
            return;
        }
        self.final_sent = true;
        actions.forward = Some(self.best_response());
    }

    /// §16.7 steps 6-7: a 6xx if any; else the lowest class, preferring within it
    /// 401/407/415/420/484, then anything over a 503, then a downstream response over
    /// one the proxy synthesized, then the earliest; a downstream 503 becomes 500;
    /// challenges of every 401/407 are gathered into a chosen 401/407.
    fn best_response(&self) -> SipMessage {
        let class = |f: &StoredFinal| f.response.status().unwrap_or(500) / 100;
        let rank = |f: &StoredFinal| {
            let code = f.response.status().unwrap_or(500);
            let c = class(f);
            // 6xx outranks all (step 6); then class; then preferences within it.
            let c_rank = if c == 6 { 0 } else { c };
            (
                c_rank,
                u8::from(!RESUBMIT_INFO.contains(&code)),
                u8::from(code == 503),
                u8::from(f.origin == Origin::Local),
            )
        };
        let Some(best) = self.finals.iter().min_by_key(|f| rank(f)) else {
            return self.local_response(if self.cancelled { 487 } else { 408 });
        };
        let code = best.response.status().unwrap_or(500);
        if best.origin == Origin::Local && self.cancelled {
            return self.local_response(487);
        }
        if code == 503 && best.origin == Origin::Downstream {
            return self.local_response(500);
        }
        let mut chosen = best.response.clone();
        if code == 401 || code == 407 {
            let challenges = [HeaderName::WwwAuthenticate, HeaderName::ProxyAuthenticate];
            for other in &self.finals {
                if std::ptr::eq(other, best) || !matches!(other.response.status(), Some(401 | 407))
                {
                    continue;
                }
                for name in &challenges {
                    for h in other.response.headers.get_all(name) {
                        chosen.headers.push(name.clone(), h.value().clone());
                    }
                }
            }
        }
        chosen
    }
}

/// The branch parameter of a message's top Via.
fn top_branch(msg: &SipMessage) -> Option<String> {
    let top = msg.headers.first_value(&HeaderName::Via)?;
    let text = std::str::from_utf8(&top).ok()?;
    let branch = Via::parse(text).ok()?.branch().map(str::to_string);
    branch
}
