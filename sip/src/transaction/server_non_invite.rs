//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).

use bytes::Bytes;

use super::{
    is_provisional, kept_encoding, Action, Actions, Delivery, Timer, TimerConfig, TransactionError,
};
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
    reliable: bool,
}

/// Proceeding: request retransmissions get the last provisional response again.
#[derive(Debug)]
pub struct Proceeding {
    last: Box<SipMessage>,
    reliable: bool,
}

/// Completed: request retransmissions get the final response again until Timer J. It
/// is kept as the bytes sent: that is all a retransmission needs.
#[derive(Debug)]
pub struct Completed {
    response: Bytes,
}

impl Trying {
    /// The transaction for a newly received request (the layer passes it to the TU).
    pub fn new(reliable: bool) -> Trying {
        Trying { reliable }
    }

    /// The TU sends a response.
    pub fn respond(self, response: SipMessage, config: &TimerConfig) -> (ServerNonInvite, Actions) {
        send_response(response, config, self.reliable)
    }
}

impl Proceeding {
    /// A retransmitted request re-sends the last provisional response.
    pub fn on_request(self) -> (ServerNonInvite, Actions) {
        let actions = vec![Action::Send((*self.last).clone())];
        (ServerNonInvite::Proceeding(self), actions)
    }

    /// The TU sends a response.
    pub fn respond(self, response: SipMessage, config: &TimerConfig) -> (ServerNonInvite, Actions) {
        send_response(response, config, self.reliable)
    }
}

impl Completed {
    /// A retransmitted request re-sends the final response.
    pub fn on_request(self) -> (ServerNonInvite, Actions) {
        let actions = vec![Action::Retransmit(self.response.clone())];
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
    config: &TimerConfig,
    reliable: bool,
) -> (ServerNonInvite, Actions) {
    if response.status().is_some_and(is_provisional) {
        let send = Action::Send(response.clone());
        let proceeding = Proceeding {
            last: Box::new(response),
            reliable,
        };
        return (ServerNonInvite::Proceeding(proceeding), vec![send]);
    }
    let j = config.j(reliable);
    if j.is_zero() {
        return (ServerNonInvite::Terminated, vec![Action::Send(response)]);
    }
    let bytes = kept_encoding(&response);
    (
        ServerNonInvite::Completed(Completed {
            response: bytes.clone(),
        }),
        vec![
            Action::SendFinal(response, bytes),
            Action::StartTimer(Timer::J, j),
        ],
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
        config: &TimerConfig,
    ) -> (ServerNonInvite, Result<Actions, TransactionError>) {
        match self {
            ServerNonInvite::Trying(s) => {
                let (next, actions) = s.respond(response, config);
                (next, Ok(actions))
            }
            ServerNonInvite::Proceeding(s) => {
                let (next, actions) = s.respond(response, config);
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
        let config = TimerConfig::default();
        let state = ServerNonInvite::Trying(Trying::new(false));
        let (state, discarded) = state.on_request();
        assert!(discarded.is_empty());
        let trying = response_to(&req, 100);
        let (state, _) = state.respond(trying.clone(), &config);
        let (state, resent) = state.on_request();
        assert_eq!(resent, vec![Action::Send(trying)]);
        let ok = response_to(&req, 200);
        let (state, result) = state.respond(ok.clone(), &config);
        assert_eq!(
            result,
            Ok(vec![
                Action::SendFinal(ok.clone(), ok.to_bytes()),
                Action::StartTimer(Timer::J, Duration::from_secs(32))
            ])
        );
        let (state, resent) = state.on_request();
        assert_eq!(resent, vec![Action::Retransmit(ok.to_bytes())]);
        let (state, refused) = state.respond(ok, &config);
        assert_eq!(refused, Err(TransactionError::NotAllowed("Completed")));
        let (state, _) = state.on_timer(Timer::J);
        assert!(matches!(state, ServerNonInvite::Terminated));
    }

    #[test]
    fn reliable_final_terminates_at_once() {
        let req = request("OPTIONS");
        let (state, actions) =
            Trying::new(true).respond(response_to(&req, 200), &TimerConfig::default());
        assert!(matches!(state, ServerNonInvite::Terminated));
        assert!(matches!(actions.as_slice(), [Action::Send(_)]));
    }
}
