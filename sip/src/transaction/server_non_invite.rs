//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).

use super::{is_provisional, Action, Actions, Delivery, Timer, TimerConfig, TransactionError};
use crate::SipMessage;

/// A non-INVITE server transaction in one of its states.
#[derive(Debug)]
pub enum ServerNonInvite {
    /// The request was passed to the TU; nothing sent yet.
    Trying(Trying),
    /// A provisional response was sent.
    Proceeding(Proceeding),
    /// A final response was sent; Timer J absorbs request retransmissions.
    Completed(Completed),
    /// Done; the owner drops the transaction.
    Terminated,
}

/// Trying: request retransmissions are discarded.
#[derive(Debug)]
pub struct Trying {
    config: TimerConfig,
    reliable: bool,
}

/// Proceeding: request retransmissions get the last provisional response again.
#[derive(Debug)]
pub struct Proceeding {
    last: SipMessage,
    config: TimerConfig,
    reliable: bool,
}

/// Completed: request retransmissions get the final response again until Timer J.
#[derive(Debug)]
pub struct Completed {
    response: SipMessage,
}

impl Trying {
    /// The transaction for a newly received request (the layer passes it to the TU).
    pub fn new(config: TimerConfig, reliable: bool) -> Trying {
        Trying { config, reliable }
    }

    /// The TU sends a response.
    pub fn respond(self, response: SipMessage) -> (ServerNonInvite, Actions) {
        send_response(response, self.config, self.reliable)
    }
}

impl Proceeding {
    /// A retransmitted request re-sends the last provisional response.
    pub fn on_request(self) -> (ServerNonInvite, Actions) {
        let actions = vec![Action::Send(self.last.clone())];
        (ServerNonInvite::Proceeding(self), actions)
    }

    /// The TU sends a response.
    pub fn respond(self, response: SipMessage) -> (ServerNonInvite, Actions) {
        send_response(response, self.config, self.reliable)
    }
}

impl Completed {
    /// A retransmitted request re-sends the final response.
    pub fn on_request(self) -> (ServerNonInvite, Actions) {
        let actions = vec![Action::Send(self.response.clone())];
        (ServerNonInvite::Completed(self), actions)
    }

    /// Timer J ends the transaction.
    pub fn on_timer(self, timer: Timer) -> (ServerNonInvite, Actions) {
        match timer {
            Timer::J => (ServerNonInvite::Terminated, Vec::new()),
            _ => (ServerNonInvite::Completed(self), Vec::new()),
        }
    }
}

/// Trying and Proceeding: 1xx goes to Proceeding, 200-699 to Completed with Timer J
/// (zero, i.e. terminated at once, over reliable transports).
fn send_response(
    response: SipMessage,
    config: TimerConfig,
    reliable: bool,
) -> (ServerNonInvite, Actions) {
    let send = Action::Send(response.clone());
    if response.status().is_some_and(is_provisional) {
        let proceeding = Proceeding {
            last: response,
            config,
            reliable,
        };
        return (ServerNonInvite::Proceeding(proceeding), vec![send]);
    }
    let j = config.j(reliable);
    if j.is_zero() {
        return (ServerNonInvite::Terminated, vec![send]);
    }
    (
        ServerNonInvite::Completed(Completed { response }),
        vec![send, Action::StartTimer(Timer::J, j)],
    )
}

impl ServerNonInvite {
    /// A retransmission of the request arrived.
    pub fn on_request(self) -> (ServerNonInvite, Actions) {
        match self {
            ServerNonInvite::Proceeding(s) => s.on_request(),
            ServerNonInvite::Completed(s) => s.on_request(),
            other => (other, Vec::new()),
        }
    }

    /// Dispatches a response from the TU; refused once a final response was sent.
    pub fn respond(
        self,
        response: SipMessage,
    ) -> (ServerNonInvite, Result<Actions, TransactionError>) {
        match self {
            ServerNonInvite::Trying(s) => {
                let (next, actions) = s.respond(response);
                (next, Ok(actions))
            }
            ServerNonInvite::Proceeding(s) => {
                let (next, actions) = s.respond(response);
                (next, Ok(actions))
            }
            other => {
                let state = other.state_name();
                (other, Err(TransactionError::NotAllowed(state)))
            }
        }
    }

    /// Dispatches a timer to the current state.
    pub fn on_timer(self, timer: Timer) -> (ServerNonInvite, Actions) {
        match self {
            ServerNonInvite::Completed(s) => s.on_timer(timer),
            other => (other, Vec::new()),
        }
    }

    /// A response could not be sent (§17.2.4): the TU is told and the transaction ends.
    pub fn on_transport_error(self) -> (ServerNonInvite, Actions) {
        (
            ServerNonInvite::Terminated,
            vec![Action::Deliver(Delivery::TransportError)],
        )
    }

    /// The state's name, for logs and errors.
    pub fn state_name(&self) -> &'static str {
        match self {
            ServerNonInvite::Trying(_) => "Trying",
            ServerNonInvite::Proceeding(_) => "Proceeding",
            ServerNonInvite::Completed(_) => "Completed",
            ServerNonInvite::Terminated => "Terminated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::test_support::{request, response_to};
    use std::time::Duration;

    #[test]
    fn trying_discards_retransmissions_proceeding_and_completed_resend() {
        let req = request("REGISTER");
        let state = ServerNonInvite::Trying(Trying::new(TimerConfig::default(), false));
        let (state, discarded) = state.on_request();
        assert!(discarded.is_empty());
        let trying = response_to(&req, 100);
        let (state, _) = state.respond(trying.clone());
        let (state, resent) = state.on_request();
        assert_eq!(resent, vec![Action::Send(trying)]);
        let ok = response_to(&req, 200);
        let (state, result) = state.respond(ok.clone());
        assert_eq!(
            result,
            Ok(vec![
                Action::Send(ok.clone()),
                Action::StartTimer(Timer::J, Duration::from_secs(32))
            ])
        );
        let (state, resent) = state.on_request();
        assert_eq!(resent, vec![Action::Send(ok.clone())]);
        let (state, refused) = state.respond(ok);
        assert_eq!(refused, Err(TransactionError::NotAllowed("Completed")));
        let (state, _) = state.on_timer(Timer::J);
        assert!(matches!(state, ServerNonInvite::Terminated));
    }

    #[test]
    fn reliable_final_terminates_at_once() {
        let req = request("OPTIONS");
        let (state, actions) =
            Trying::new(TimerConfig::default(), true).respond(response_to(&req, 200));
        assert!(matches!(state, ServerNonInvite::Terminated));
        assert_eq!(actions.len(), 1);
    }
}
