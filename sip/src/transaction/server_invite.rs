//! The INVITE server transaction (RFC 3261 §17.2.1, Figure 7, as corrected by
//! RFC 6026 §7.1 and §8.7: a 2xx from the TU moves it to Accepted, where 2xx
//! retransmissions from the TU pass through, INVITE retransmissions are absorbed,
//! ACKs go to the TU, and Timer L runs).

use std::time::Duration;

use bytes::Bytes;

use super::{
    is_provisional, is_success, kept_encoding, Action, Actions, Delivery, Timer, TimerConfig,
    TransactionError,
};

use crate::{Method, SipMessage};

/// An INVITE server transaction in one of its states.
#[derive(Debug)]
pub enum ServerInvite {
    /// The INVITE was passed to the TU; no final response yet.
    Proceeding(Proceeding),
    /// A 300-699 was sent; Timer G retransmits it until ACK, Timer H gives up.
    Completed(Completed),
    /// The ACK arrived; Timer I absorbs ACK retransmissions.
    Confirmed(Confirmed),
    /// A 2xx was sent (RFC 6026); Timer L runs.
    Accepted(Accepted),
    /// Done; the owner drops the transaction.
    Terminated,
}

/// Proceeding: the last provisional response is re-sent on each INVITE retransmission.
#[derive(Debug)]
pub struct Proceeding {
    last_provisional: Box<SipMessage>,
    reliable: bool,
}

/// Completed: the final non-2xx response is retransmitted on Timer G (unreliable only)
/// and on each INVITE retransmission; it is kept as the bytes sent.
#[derive(Debug)]
pub struct Completed {
    response: Bytes,
    reliable: bool,
    interval_g: Duration,
}

/// Confirmed: ACK received; further ACKs are absorbed until Timer I.
#[derive(Debug)]
pub struct Confirmed;

/// Accepted (RFC 6026 §7.1): a 2xx was sent.
#[derive(Debug)]
pub struct Accepted;

impl Proceeding {
    /// The transaction for a newly received INVITE (the layer hands the request to the
    /// TU). It answers `100 Trying` at once (§17.2.1: the server transaction sends it
    /// unless the TU answers within 200 ms, which a proxy forwarding the request
    /// cannot promise), so INVITE retransmissions stop and get that 100 meanwhile.
    pub fn start(invite: &SipMessage, reliable: bool) -> (Proceeding, Actions) {
        let trying = crate::message::build::trying(invite);
        let proceeding = Proceeding {
            last_provisional: Box::new(trying.clone()),
            reliable,
        };
        (proceeding, vec![Action::Send(trying)])
    }

    /// A retransmitted INVITE re-sends the last provisional response.
    pub fn on_request(self, request: SipMessage) -> (ServerInvite, Actions) {
        let actions = match request.method() {
            Some(Method::Invite) => vec![Action::Send((*self.last_provisional).clone())],
            _ => Vec::new(),
        };
        (ServerInvite::Proceeding(self), actions)
    }

    /// The TU sends a response: 1xx stays here, 2xx moves to Accepted (Timer L),
    /// 300-699 to Completed (Timers G and H).
    pub fn respond(self, response: SipMessage, config: &TimerConfig) -> (ServerInvite, Actions) {
        let Some(code) = response.status() else {
            return (ServerInvite::Proceeding(self), Vec::new());
        };
        if is_provisional(code) {
            let send = Action::Send(response.clone());
            return (
                ServerInvite::Proceeding(Proceeding {
                    last_provisional: Box::new(response),
                    ..self
                }),
                vec![send],
            );
        }
        if is_success(code) {
            return (
                ServerInvite::Accepted(Accepted),
                vec![
                    Action::Send(response),
                    Action::StartTimer(Timer::L, config.t1x64()),
                ],
            );
        }
        let bytes = kept_encoding(&response);
        let mut actions = vec![Action::SendFinal(response, bytes.clone())];
        if !self.reliable {
            actions.push(Action::StartTimer(Timer::G, config.t1));
        }
        actions.push(Action::StartTimer(Timer::H, config.t1x64()));
        (
            ServerInvite::Completed(Completed {
                response: bytes,
                reliable: self.reliable,
                interval_g: config.t1,
            }),
            actions,
        )
    }
}

impl Completed {
    /// An ACK confirms (Timer I, zero over reliable transports); a retransmitted
    /// INVITE re-sends the final response.
    pub fn on_request(self, request: SipMessage, config: &TimerConfig) -> (ServerInvite, Actions) {
        match request.method() {
            Some(Method::Ack) => {
                let mut actions =
                    vec![Action::CancelTimer(Timer::G), Action::CancelTimer(Timer::H)];
                let i = config.t4_unless_reliable(self.reliable);
                if i.is_zero() {
                    return (ServerInvite::Terminated, actions);
                }
                actions.push(Action::StartTimer(Timer::I, i));
                (ServerInvite::Confirmed(Confirmed), actions)
            }
            Some(Method::Invite) => {
                let actions = vec![Action::Retransmit(self.response.clone())];
                (ServerInvite::Completed(self), actions)
            }
            _ => (ServerInvite::Completed(self), Vec::new()),
        }
    }

    /// Timer G re-sends the response with a doubled interval capped at T2; Timer H
    /// gives up waiting for the ACK and tells the TU.
    pub fn on_timer(self, timer: Timer, config: &TimerConfig) -> (ServerInvite, Actions) {
        match timer {
            Timer::G => {
                let interval_g = config.backoff(self.interval_g);
                let actions = vec![
                    Action::Retransmit(self.response.clone()),
                    Action::StartTimer(Timer::G, interval_g),
                ];
                (
                    ServerInvite::Completed(Completed { interval_g, ..self }),
                    actions,
                )
            }
            Timer::H => (
                ServerInvite::Terminated,
                vec![
                    Action::CancelTimer(Timer::G),
                    Action::Deliver(Delivery::Timeout(Timer::H)),
                ],
            ),
            _ => (ServerInvite::Completed(self), Vec::new()),
        }
    }
}

impl Confirmed {
    /// Timer I ends the transaction.
    pub fn on_timer(self, timer: Timer) -> (ServerInvite, Actions) {
        match timer {
            Timer::I => (ServerInvite::Terminated, Vec::new()),
            _ => (ServerInvite::Confirmed(self), Vec::new()),
        }
    }
}

impl Accepted {
    /// RFC 6026 §7.1: an ACK goes to the TU; INVITE retransmissions are absorbed (the
    /// TU retransmits its 2xx itself).
    pub fn on_request(self, request: SipMessage) -> (ServerInvite, Actions) {
        let actions = match request.method() {
            Some(Method::Ack) => vec![Action::Deliver(Delivery::Ack(request))],
            _ => Vec::new(),
        };
        (ServerInvite::Accepted(self), actions)
    }

    /// A 2xx (retransmission) from the TU is sent; anything else is refused.
    pub fn respond(
        self,
        response: SipMessage,
    ) -> (ServerInvite, Result<Actions, TransactionError>) {
        match response.status() {
            Some(code) if is_success(code) => (
                ServerInvite::Accepted(self),
                Ok(vec![Action::Send(response)]),
            ),
            _ => (
                ServerInvite::Accepted(self),
                Err(TransactionError::NotAllowed("Accepted")),
            ),
        }
    }

    /// Timer L ends the transaction.
    pub fn on_timer(self, timer: Timer) -> (ServerInvite, Actions) {
        match timer {
            Timer::L => (ServerInvite::Terminated, Vec::new()),
            _ => (ServerInvite::Accepted(self), Vec::new()),
        }
    }
}

impl ServerInvite {
    /// Dispatches a request (retransmitted INVITE or ACK) to the current state.
    pub fn on_request(self, request: SipMessage, config: &TimerConfig) -> (ServerInvite, Actions) {
        match self {
            ServerInvite::Proceeding(s) => s.on_request(request),
            ServerInvite::Completed(s) => s.on_request(request, config),
            ServerInvite::Accepted(s) => s.on_request(request),
            other => (other, Vec::new()),
        }
    }

    /// Dispatches a response from the TU; refused once a non-2xx final was sent.
    pub fn respond(
        self,
        response: SipMessage,
        config: &TimerConfig,
    ) -> (ServerInvite, Result<Actions, TransactionError>) {
        match self {
            ServerInvite::Proceeding(s) => {
                let (next, actions) = s.respond(response, config);
                (next, Ok(actions))
            }
            ServerInvite::Accepted(s) => s.respond(response),
            other => {
                let state = other.state_name();
                (other, Err(TransactionError::NotAllowed(state)))
            }
        }
    }

    /// Dispatches a timer to the current state.
    pub fn on_timer(self, timer: Timer, config: &TimerConfig) -> (ServerInvite, Actions) {
        match self {
            ServerInvite::Completed(s) => s.on_timer(timer, config),
            ServerInvite::Confirmed(s) => s.on_timer(timer),
            ServerInvite::Accepted(s) => s.on_timer(timer),
            other => (other, Vec::new()),
        }
    }

    /// A response could not be sent (§17.2.4): the TU is told; Proceeding and
    /// Completed terminate, Accepted stays (RFC 6026 Figure 7).
    pub fn on_transport_error(self) -> (ServerInvite, Actions) {
        let inform = vec![Action::Deliver(Delivery::TransportError)];
        match self {
            ServerInvite::Proceeding(_) | ServerInvite::Completed(_) => {
                (ServerInvite::Terminated, inform)
            }
            ServerInvite::Accepted(s) => (ServerInvite::Accepted(s), inform),
            other => (other, Vec::new()),
        }
    }

    /// The state's name, for logs and errors.
    pub fn state_name(&self) -> &'static str {
        match self {
            ServerInvite::Proceeding(_) => "Proceeding",
            ServerInvite::Completed(_) => "Completed",
            ServerInvite::Confirmed(_) => "Confirmed",
            ServerInvite::Accepted(_) => "Accepted",
            ServerInvite::Terminated => "Terminated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::client_invite::build_ack;
    use crate::transaction::test_support::{invite, response_to};

    fn ack_for(invite: &SipMessage, response: &SipMessage) -> SipMessage {
        build_ack(invite, response).unwrap()
    }

    #[test]
    fn trying_copies_the_8_2_6_1_headers() {
        let text = crate::transaction::test_support::INVITE
            .replace("Contact:", "Timestamp: 54.2\r\nContact:");
        let inv = SipMessage::parse(text.into_bytes()).unwrap();
        let (_, actions) = Proceeding::start(&inv, false);
        let [Action::Send(trying)] = actions.as_slice() else {
            panic!("expected one send");
        };
        assert_eq!(
            trying.to_string(),
            "SIP/2.0 100 Trying\r\n\
Via: SIP/2.0/UDP pcscf.example.net:5060;branch=z9hG4bKabc123\r\n\
Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKue1;rport=5060\r\n\
From: <sip:alice@ims.example.net>;tag=a1\r\n\
To: <sip:bob@ims.example.net>\r\n\
Call-ID: call-1@ue\r\n\
CSeq: 7 INVITE\r\n\
Timestamp: 54.2\r\n\
Content-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn retransmitted_invite_gets_the_last_provisional() {
        let inv = invite();
        let ringing = response_to(&inv, 180);
        let config = TimerConfig::default();
        let (p, start) = Proceeding::start(&inv, false);
        let (state, resent) = p.on_request(inv.clone());
        assert_eq!(resent, start, "the automatic 100 Trying is re-sent");
        let (state, _) = state.respond(ringing.clone(), &config);
        let (_, actions) = state.on_request(inv, &config);
        assert_eq!(actions, vec![Action::Send(ringing)]);
    }

    #[test]
    fn non_2xx_then_ack_confirms_and_absorbs() {
        let inv = invite();
        let busy = response_to(&inv, 486);
        let config = TimerConfig::default();
        let (state, actions) = Proceeding::start(&inv, false)
            .0
            .respond(busy.clone(), &config);
        assert!(actions.contains(&Action::SendFinal(busy.clone(), busy.to_bytes())));
        assert!(actions.contains(&Action::StartTimer(Timer::G, Duration::from_millis(500))));
        let ServerInvite::Completed(completed) = state else {
            panic!("expected Completed");
        };
        let (state, resend) = completed.on_request(inv, &config);
        assert_eq!(resend, vec![Action::Retransmit(busy.to_bytes())]);
        let (state, timer_g) = state.on_timer(Timer::G, &config);
        assert_eq!(
            timer_g,
            vec![
                Action::Retransmit(busy.to_bytes()),
                Action::StartTimer(Timer::G, Duration::from_secs(1))
            ]
        );
        let ack = ack_for(&invite(), &busy);
        let (state, actions) = state.on_request(ack.clone(), &config);
        assert!(matches!(state, ServerInvite::Confirmed(_)));
        assert!(actions.contains(&Action::StartTimer(Timer::I, Duration::from_secs(5))));
        let (state, absorbed) = state.on_request(ack, &config);
        assert!(absorbed.is_empty());
        let (state, _) = state.on_timer(Timer::I, &config);
        assert!(matches!(state, ServerInvite::Terminated));
    }

    #[test]
    fn final_after_final_is_refused() {
        let inv = invite();
        let config = TimerConfig::default();
        let (state, _) = Proceeding::start(&inv, true)
            .0
            .respond(response_to(&inv, 404), &config);
        let (_, result) = state.respond(response_to(&inv, 200), &config);
        assert_eq!(result, Err(TransactionError::NotAllowed("Completed")));
    }

    #[test]
    fn accepted_passes_2xx_and_ack_through_and_absorbs_invites() {
        let inv = invite();
        let ok = response_to(&inv, 200);
        let config = TimerConfig::default();
        let (state, actions) = Proceeding::start(&inv, false)
            .0
            .respond(ok.clone(), &config);
        assert!(
            actions.contains(&Action::Send(ok.clone())),
            "a 2xx is not kept"
        );
        assert!(actions.contains(&Action::StartTimer(Timer::L, Duration::from_secs(32))));
        let (state, result) = state.respond(ok.clone(), &config);
        assert_eq!(result, Ok(vec![Action::Send(ok.clone())]));
        let (state, absorbed) = state.on_request(inv.clone(), &config);
        assert!(absorbed.is_empty());
        let ack = ack_for(&inv, &ok);
        let (state, up) = state.on_request(ack.clone(), &config);
        assert_eq!(up, vec![Action::Deliver(Delivery::Ack(ack))]);
        let (_, refused) = state.respond(response_to(&inv, 500), &config);
        assert_eq!(refused, Err(TransactionError::NotAllowed("Accepted")));
    }
}
