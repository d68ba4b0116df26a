//! The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).

use std::time::Duration;

use super::{is_provisional, Action, Actions, Delivery, Timer, TimerConfig};
use crate::SipMessage;

/// A non-INVITE client transaction in one of its states.
#[derive(Debug)]
pub enum ClientNonInvite {
    /// Request sent, nothing heard yet.
    Trying(Trying),
    /// A provisional response was received.
    Proceeding(Proceeding),
    /// A final response was received; absorbing its retransmissions.
    Completed(Completed),
    /// Done; the owner drops the transaction.
    Terminated,
}

/// Trying: Timer E (unreliable only) retransmits with doubling intervals capped at T2;
/// Timer F times out.
#[derive(Debug)]
pub struct Trying {
    request: Box<SipMessage>,
    reliable: bool,
    interval_e: Duration,
}

/// Proceeding: Timer E retransmits every T2; Timer F still runs.
#[derive(Debug)]
pub struct Proceeding {
    request: Box<SipMessage>,
    reliable: bool,
}

/// Completed: Timer K runs out the response retransmissions.
#[derive(Debug)]
pub struct Completed;

impl Trying {
    /// Starts the transaction: sends the request, starts Timer E (unreliable only) and F.
    pub fn start(request: SipMessage, config: &TimerConfig, reliable: bool) -> (Trying, Actions) {
        let mut actions = vec![Action::Send(request.clone())];
        if !reliable {
            actions.push(Action::StartTimer(Timer::E, config.t1));
        }
        actions.push(Action::StartTimer(Timer::F, config.t1x64()));
        let trying = Trying {
            request: Box::new(request),
            reliable,
            interval_e: config.t1,
        };
        (trying, actions)
    }

    /// A response arrived: 1xx moves to Proceeding, 200-699 to Completed; both go to the TU.
    pub fn on_response(
        self,
        response: SipMessage,
        config: &TimerConfig,
    ) -> (ClientNonInvite, Actions) {
        match response.status() {
            Some(code) if is_provisional(code) => (
                ClientNonInvite::Proceeding(Proceeding {
                    request: self.request,
                    reliable: self.reliable,
                }),
                vec![Action::Deliver(Delivery::Response(response))],
            ),
            Some(_) => complete(response, config, self.reliable),
            None => (ClientNonInvite::Trying(self), Vec::new()),
        }
    }

    /// Timer E retransmits and doubles its interval up to T2; Timer F times out.
    pub fn on_timer(self, timer: Timer, config: &TimerConfig) -> (ClientNonInvite, Actions) {
        match timer {
            Timer::E => {
                let interval_e = config.backoff(self.interval_e);
                let actions = vec![
                    Action::Send((*self.request).clone()),
                    Action::StartTimer(Timer::E, interval_e),
                ];
                (
                    ClientNonInvite::Trying(Trying { interval_e, ..self }),
                    actions,
                )
            }
            Timer::F => timeout(),
            _ => (ClientNonInvite::Trying(self), Vec::new()),
        }
    }
}

impl Proceeding {
    /// A response arrived: 1xx goes to the TU, 200-699 completes.
    pub fn on_response(
        self,
        response: SipMessage,
        config: &TimerConfig,
    ) -> (ClientNonInvite, Actions) {
        match response.status() {
            Some(code) if is_provisional(code) => (
                ClientNonInvite::Proceeding(self),
                vec![Action::Deliver(Delivery::Response(response))],
            ),
            Some(_) => complete(response, config, self.reliable),
            None => (ClientNonInvite::Proceeding(self), Vec::new()),
        }
    }

    /// Timer E retransmits every T2; Timer F times out.
    pub fn on_timer(self, timer: Timer, config: &TimerConfig) -> (ClientNonInvite, Actions) {
        match timer {
            Timer::E => {
                let actions = vec![
                    Action::Send((*self.request).clone()),
                    Action::StartTimer(Timer::E, config.t2),
                ];
                (ClientNonInvite::Proceeding(self), actions)
            }
            Timer::F => timeout(),
            _ => (ClientNonInvite::Proceeding(self), Vec::new()),
        }
    }
}

impl Completed {
    /// Timer K ends the transaction; retransmitted responses are absorbed meanwhile.
    pub fn on_timer(self, timer: Timer) -> (ClientNonInvite, Actions) {
        match timer {
            Timer::K => (ClientNonInvite::Terminated, Vec::new()),
            _ => (ClientNonInvite::Completed(self), Vec::new()),
        }
    }
}

fn complete(
    response: SipMessage,
    config: &TimerConfig,
    reliable: bool,
) -> (ClientNonInvite, Actions) {
    let mut actions = vec![
        Action::CancelTimer(Timer::E),
        Action::CancelTimer(Timer::F),
        Action::Deliver(Delivery::Response(response)),
    ];
    let k = config.t4_unless_reliable(reliable);
    if k.is_zero() {
        return (ClientNonInvite::Terminated, actions);
    }
    actions.push(Action::StartTimer(Timer::K, k));
    (ClientNonInvite::Completed(Completed), actions)
}

fn timeout() -> (ClientNonInvite, Actions) {
    (
        ClientNonInvite::Terminated,
        vec![
            Action::CancelTimer(Timer::E),
            Action::Deliver(Delivery::Timeout(Timer::F)),
        ],
    )
}

impl ClientNonInvite {
    /// Dispatches a response to the current state (Completed absorbs it).
    pub fn on_response(
        self,
        response: SipMessage,
        config: &TimerConfig,
    ) -> (ClientNonInvite, Actions) {
        match self {
            ClientNonInvite::Trying(s) => s.on_response(response, config),
            ClientNonInvite::Proceeding(s) => s.on_response(response, config),
            other => (other, Vec::new()),
        }
    }

    /// Dispatches a timer to the current state.
    pub fn on_timer(self, timer: Timer, config: &TimerConfig) -> (ClientNonInvite, Actions) {
        match self {
            ClientNonInvite::Trying(s) => s.on_timer(timer, config),
            ClientNonInvite::Proceeding(s) => s.on_timer(timer, config),
            ClientNonInvite::Completed(s) => s.on_timer(timer),
            ClientNonInvite::Terminated => (ClientNonInvite::Terminated, Vec::new()),
        }
    }

    /// The transport could not send the request (§17.1.4): the TU is told and the
    /// transaction ends, unless a final response was already received.
    pub fn on_transport_error(self) -> (ClientNonInvite, Actions) {
        match self {
            ClientNonInvite::Trying(_) | ClientNonInvite::Proceeding(_) => (
                ClientNonInvite::Terminated,
                vec![Action::Deliver(Delivery::TransportError)],
            ),
            other => (other, Vec::new()),
        }
    }

    /// The state's name, for logs and errors.
    pub fn state_name(&self) -> &'static str {
        match self {
            ClientNonInvite::Trying(_) => "Trying",
            ClientNonInvite::Proceeding(_) => "Proceeding",
            ClientNonInvite::Completed(_) => "Completed",
            ClientNonInvite::Terminated => "Terminated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::test_support::{request, response_to};

    #[test]
    fn final_response_goes_up_once_then_is_absorbed() {
        let req = request("OPTIONS");
        let config = TimerConfig::default();
        let (trying, _) = Trying::start(req.clone(), &config, false);
        let ok = response_to(&req, 200);
        let (state, actions) = trying.on_response(ok.clone(), &config);
        assert!(actions.contains(&Action::Deliver(Delivery::Response(ok.clone()))));
        assert!(actions.contains(&Action::StartTimer(Timer::K, Duration::from_secs(5))));
        let (state, again) = state.on_response(ok, &config);
        assert!(again.is_empty());
        let (state, _) = state.on_timer(Timer::K, &config);
        assert!(matches!(state, ClientNonInvite::Terminated));
    }

    #[test]
    fn reliable_final_terminates_at_once_without_timer_e() {
        let req = request("MESSAGE");
        let config = TimerConfig::default();
        let (trying, start) = Trying::start(req.clone(), &config, true);
        assert!(!start
            .iter()
            .any(|a| matches!(a, Action::StartTimer(Timer::E, _))));
        let (state, _) = trying.on_response(response_to(&req, 404), &config);
        assert!(matches!(state, ClientNonInvite::Terminated));
    }

    #[test]
    fn proceeding_retransmits_every_t2() {
        let req = request("REGISTER");
        let config = TimerConfig::default();
        let (trying, _) = Trying::start(req.clone(), &config, false);
        let (state, _) = trying.on_response(response_to(&req, 100), &config);
        let (_, actions) = state.on_timer(Timer::E, &config);
        assert_eq!(
            actions,
            vec![Action::Send(req), Action::StartTimer(Timer::E, config.t2)]
        );
    }
}
