//! The INVITE client transaction (RFC 3261 §17.1.1, Figure 5, as corrected by
//! RFC 6026 §8.4: a 2xx moves it to Accepted, where Timer M runs and further 2xx
//! responses go to the TU), plus Timer C for proxies (RFC 3261 §16.6 step 11, §16.8).

use bytes::Bytes;
use std::time::Duration;

use super::{is_provisional, is_success, Action, Actions, Delivery, Timer, TimerConfig};
use crate::message::cseq::CSeq;
use crate::{HeaderName, Headers, Method, ParseError, Request, SipMessage, StartLine};

/// An INVITE client transaction in one of its states.
#[derive(Debug)]
pub enum ClientInvite {
    /// INVITE sent, nothing heard yet.
    Calling(Calling),
    /// A provisional response was received.
    Proceeding(Proceeding),
    /// A 300-699 was received and ACKed; absorbing retransmissions of it.
    Completed(Completed),
    /// A 2xx was received (RFC 6026); further 2xx go to the TU.
    Accepted(Accepted),
    /// Done; the owner drops the transaction.
    Terminated,
}

/// What Calling and Proceeding share: the request (for its retransmissions and the
/// ACK of a non-2xx) and the transport's reliability.
#[derive(Debug)]
struct Pending {
    request: Box<SipMessage>,
    reliable: bool,
}

/// Calling: the INVITE was sent; Timer A (unreliable only) and Timer B run.
#[derive(Debug)]
pub struct Calling {
    pending: Pending,
    interval_a: Duration,
}

/// Proceeding: a 1xx arrived; only Timer C (proxies) runs.
#[derive(Debug)]
pub struct Proceeding {
    pending: Pending,
}

/// Completed: a non-2xx final response was ACKed; Timer D runs.
#[derive(Debug)]
pub struct Completed {
    ack: Box<SipMessage>,
}

/// Accepted (RFC 6026 §8.4): a 2xx arrived; Timer M runs.
#[derive(Debug)]
pub struct Accepted;

impl Calling {
    /// Starts the transaction: sends the INVITE, starts Timer A (unreliable
    /// transports only), Timer B and, for a proxy, Timer C.
    pub fn start(request: SipMessage, config: &TimerConfig, reliable: bool) -> (Calling, Actions) {
        let mut actions = vec![Action::Send(request.clone())];
        if !reliable {
            actions.push(Action::StartTimer(Timer::A, config.t1));
        }
        actions.push(Action::StartTimer(Timer::B, config.t1x64()));
        if let Some(c) = config.timer_c {
            actions.push(Action::StartTimer(Timer::C, c));
        }
        let calling = Calling {
            pending: Pending {
                request: Box::new(request),
                reliable,
            },
            interval_a: config.t1,
        };
        (calling, actions)
    }

    /// A response arrived.
    pub fn on_response(
        self,
        response: SipMessage,
        config: &TimerConfig,
    ) -> (ClientInvite, Actions) {
        let Some(code) = response.status() else {
            return (ClientInvite::Calling(self), Vec::new());
        };
        let actions = vec![Action::CancelTimer(Timer::A), Action::CancelTimer(Timer::B)];
        self.pending.on_response(code, response, actions, config)
    }

    /// A timer fired: A retransmits with a doubled interval (§17.1.1.2), B times the
    /// transaction out, C is reported to the proxy.
    pub fn on_timer(self, timer: Timer) -> (ClientInvite, Actions) {
        match timer {
            Timer::A => {
                let interval_a = self.interval_a.saturating_mul(2);
                let actions = vec![
                    Action::Send((*self.pending.request).clone()),
                    Action::StartTimer(Timer::A, interval_a),
                ];
                (
                    ClientInvite::Calling(Calling { interval_a, ..self }),
                    actions,
                )
            }
            Timer::B => (
                ClientInvite::Terminated,
                vec![
                    Action::CancelTimer(Timer::C),
                    Action::Deliver(Delivery::Timeout(Timer::B)),
                ],
            ),
            Timer::C => (
                ClientInvite::Calling(self),
                vec![Action::Deliver(Delivery::TimerC {
                    provisional_received: false,
                })],
            ),
            _ => (ClientInvite::Calling(self), Vec::new()),
        }
    }
}

impl Proceeding {
    /// A response arrived.
    pub fn on_response(
        self,
        response: SipMessage,
        config: &TimerConfig,
    ) -> (ClientInvite, Actions) {
        let Some(code) = response.status() else {
            return (ClientInvite::Proceeding(self), Vec::new());
        };
        self.pending.on_response(code, response, Vec::new(), config)
    }

    /// A timer fired. Timer C is reported to the proxy, which sends CANCEL; Timer B is
    /// then started so that a UAS that never answers the CANCEL cannot keep the
    /// transaction alive (RFC 3261 §9.1: no final response within 64*T1 after
    /// CANCEL ends the transaction).
    pub fn on_timer(self, timer: Timer, config: &TimerConfig) -> (ClientInvite, Actions) {
        match timer {
            Timer::C => {
                let actions = vec![
                    Action::Deliver(Delivery::TimerC {
                        provisional_received: true,
                    }),
                    Action::StartTimer(Timer::B, config.t1x64()),
                ];
                (ClientInvite::Proceeding(self), actions)
            }
            Timer::B => (
                ClientInvite::Terminated,
                vec![Action::Deliver(Delivery::Timeout(Timer::B))],
            ),
            _ => (ClientInvite::Proceeding(self), Vec::new()),
        }
    }
}

impl Pending {
    /// Response handling common to Calling and Proceeding (Figure 5 / RFC 6026 Figure 3).
    fn on_response(
        self,
        code: u16,
        response: SipMessage,
        mut actions: Actions,
        config: &TimerConfig,
    ) -> (ClientInvite, Actions) {
        if is_provisional(code) {
            if code > 100 {
                if let Some(c) = config.timer_c {
                    actions.push(Action::StartTimer(Timer::C, c));
                }
            }
            actions.push(Action::Deliver(Delivery::Response(response)));
            return (
                ClientInvite::Proceeding(Proceeding { pending: self }),
                actions,
            );
        }
        actions.push(Action::CancelTimer(Timer::C));
        actions.push(Action::CancelTimer(Timer::B));
        if is_success(code) {
            actions.push(Action::Deliver(Delivery::Response(response)));
            actions.push(Action::StartTimer(Timer::M, config.t1x64()));
            return (ClientInvite::Accepted(Accepted), actions);
        }
        let ack = match build_ack(&self.request, &response) {
            Ok(ack) => ack,
            Err(e) => {
                tracing::warn!(error = %e, "cannot build ACK for non-2xx final response");
                actions.push(Action::Deliver(Delivery::Response(response)));
                return (ClientInvite::Terminated, actions);
            }
        };
        actions.push(Action::Send(ack.clone()));
        actions.push(Action::Deliver(Delivery::Response(response)));
        let d = config.d(self.reliable);
        if d.is_zero() {
            return (ClientInvite::Terminated, actions);
        }
        actions.push(Action::StartTimer(Timer::D, d));
        let ack = Box::new(ack);
        (ClientInvite::Completed(Completed { ack }), actions)
    }
}

impl Completed {
    /// A retransmitted final response is answered with the same ACK and not passed up
    /// (§17.1.1.2); anything else is dropped.
    pub fn on_response(self, response: SipMessage) -> (ClientInvite, Actions) {
        let actions = match response.status() {
            Some(code) if code >= 300 => vec![Action::Send((*self.ack).clone())],
            _ => Vec::new(),
        };
        (ClientInvite::Completed(self), actions)
    }

    /// Timer D ends the transaction.
    pub fn on_timer(self, timer: Timer) -> (ClientInvite, Actions) {
        match timer {
            Timer::D => (ClientInvite::Terminated, Vec::new()),
            _ => (ClientInvite::Completed(self), Vec::new()),
        }
    }
}

impl Accepted {
    /// RFC 6026 §8.4: further 2xx responses go to the TU (which ACKs them itself);
    /// anything else is discarded.
    pub fn on_response(self, response: SipMessage) -> (ClientInvite, Actions) {
        let actions = match response.status() {
            Some(code) if is_success(code) => vec![Action::Deliver(Delivery::Response(response))],
            _ => Vec::new(),
        };
        (ClientInvite::Accepted(self), actions)
    }

    /// Timer M ends the transaction.
    pub fn on_timer(self, timer: Timer) -> (ClientInvite, Actions) {
        match timer {
            Timer::M => (ClientInvite::Terminated, Vec::new()),
            _ => (ClientInvite::Accepted(self), Vec::new()),
        }
    }
}

impl ClientInvite {
    /// Dispatches a response to the current state.
    pub fn on_response(
        self,
        response: SipMessage,
        config: &TimerConfig,
    ) -> (ClientInvite, Actions) {
        match self {
            ClientInvite::Calling(s) => s.on_response(response, config),
            ClientInvite::Proceeding(s) => s.on_response(response, config),
            ClientInvite::Completed(s) => s.on_response(response),
            ClientInvite::Accepted(s) => s.on_response(response),
            ClientInvite::Terminated => (ClientInvite::Terminated, Vec::new()),
        }
    }

    /// Dispatches a timer to the current state.
    pub fn on_timer(self, timer: Timer, config: &TimerConfig) -> (ClientInvite, Actions) {
        match self {
            ClientInvite::Calling(s) => s.on_timer(timer),
            ClientInvite::Proceeding(s) => s.on_timer(timer, config),
            ClientInvite::Completed(s) => s.on_timer(timer),
            ClientInvite::Accepted(s) => s.on_timer(timer),
            ClientInvite::Terminated => (ClientInvite::Terminated, Vec::new()),
        }
    }

    /// The transport could not send the INVITE (§17.1.4): Calling informs the TU and
    /// terminates. In the other states nothing is waiting on the transport (a lost
    /// ACK is re-sent on the next retransmitted response).
    pub fn on_transport_error(self) -> (ClientInvite, Actions) {
        match self {
            ClientInvite::Calling(_) => (
                ClientInvite::Terminated,
                vec![Action::Deliver(Delivery::TransportError)],
            ),
            other => (other, Vec::new()),
        }
    }

    /// The state's name, for logs and errors.
    pub fn state_name(&self) -> &'static str {
        match self {
            ClientInvite::Calling(_) => "Calling",
            ClientInvite::Proceeding(_) => "Proceeding",
            ClientInvite::Completed(_) => "Completed",
            ClientInvite::Accepted(_) => "Accepted",
            ClientInvite::Terminated => "Terminated",
        }
    }
}

/// Builds the ACK for a non-2xx final response (RFC 3261 §17.1.1.3): the INVITE's
/// Request-URI, top Via, From, Call-ID and Route headers, the response's To (with its
/// tag), and the INVITE's CSeq number with method ACK. Max-Forwards is copied from
/// the INVITE (70 if it had none) and the body is empty.
pub fn build_ack(invite: &SipMessage, response: &SipMessage) -> Result<SipMessage, ParseError> {
    let uri = invite
        .request()
        .map(|r| r.uri.clone())
        .ok_or(ParseError::StartLine("not a request"))?;
    let via = invite
        .headers
        .first_value(&HeaderName::Via)
        .ok_or(ParseError::MissingHeader("Via"))?;
    let cseq = CSeq::parse(
        invite
            .headers
            .get_value(&HeaderName::CSeq)
            .ok_or(ParseError::MissingHeader("CSeq"))?,
    )?;
    let from = required(&invite.headers, HeaderName::From, "From")?;
    let call_id = required(&invite.headers, HeaderName::CallId, "Call-ID")?;
    let to = match response.headers.get_value(&HeaderName::To) {
        Some(to) => to.clone(),
        None => required(&invite.headers, HeaderName::To, "To")?,
    };
    let mut headers = Headers::new();
    headers.push(HeaderName::Via, via);
    for route in invite.headers.get_all(&HeaderName::Route) {
        headers.push(HeaderName::Route, route.value().clone());
    }
    let max_forwards = invite
        .headers
        .get_value(&HeaderName::MaxForwards)
        .cloned()
        .unwrap_or_else(|| Bytes::from_static(b"70"));
    headers.push(HeaderName::MaxForwards, max_forwards);
    headers.push(HeaderName::From, from);
    headers.push(HeaderName::To, to);
    headers.push(HeaderName::CallId, call_id);
    headers.push(HeaderName::CSeq, format!("{} ACK", cseq.seq));
    headers.push(HeaderName::ContentLength, "0");
    Ok(SipMessage::new(
        StartLine::Request(Request::new(Method::Ack, uri)),
        headers,
        Bytes::new(),
    ))
}

fn required(headers: &Headers, name: HeaderName, label: &'static str) -> Result<Bytes, ParseError> {
    headers
        .get_value(&name)
        .cloned()
        .ok_or(ParseError::MissingHeader(label))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::test_support::{invite, response_to};

    fn sends(actions: &Actions) -> Vec<&SipMessage> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn ack_copies_the_rfc3261_17_1_1_3_fields() {
        let inv = invite();
        let resp = response_to(&inv, 486);
        let ack = build_ack(&inv, &resp).unwrap();
        let text = ack.to_string();
        assert_eq!(
            text,
            "ACK sip:bob@ims.example.net SIP/2.0\r\n\
Via: SIP/2.0/UDP pcscf.example.net:5060;branch=z9hG4bKabc123\r\n\
Route: <sip:scscf.ims.example.net;lr>\r\n\
Route: <sip:as.ims.example.net;lr>\r\n\
Max-Forwards: 69\r\n\
From: <sip:alice@ims.example.net>;tag=a1\r\n\
To: <sip:bob@ims.example.net>;tag=b2\r\n\
Call-ID: call-1@ue\r\n\
CSeq: 7 ACK\r\n\
Content-Length: 0\r\n\r\n"
        );
        // It parses back and keys to the INVITE's transaction (§17.2.3 matching).
        let reparsed = SipMessage::parse(ack.to_bytes()).unwrap();
        let key = crate::message::key::TransactionKey::of;
        assert_eq!(key(&reparsed).unwrap(), key(&inv).unwrap());
    }

    #[test]
    fn ack_takes_only_the_first_value_of_a_comma_joined_via() {
        let text = crate::transaction::test_support::INVITE.replace(
            "Via: SIP/2.0/UDP pcscf.example.net:5060;branch=z9hG4bKabc123\r\nVia: ",
            "Via: SIP/2.0/UDP pcscf.example.net:5060;branch=z9hG4bKabc123, ",
        );
        let inv = SipMessage::parse(text.into_bytes()).unwrap();
        let ack = build_ack(&inv, &response_to(&inv, 503)).unwrap();
        let vias: Vec<_> = ack.headers.values(&HeaderName::Via).collect();
        assert_eq!(vias.len(), 1);
        assert_eq!(
            &vias[0][..],
            b"SIP/2.0/UDP pcscf.example.net:5060;branch=z9hG4bKabc123"
        );
    }

    #[test]
    fn ack_without_route_or_max_forwards() {
        let text = crate::transaction::test_support::INVITE
            .replace("Route: <sip:scscf.ims.example.net;lr>\r\n", "")
            .replace("Route: <sip:as.ims.example.net;lr>\r\n", "")
            .replace("Max-Forwards: 69\r\n", "");
        let inv = SipMessage::parse(text.into_bytes()).unwrap();
        let ack = build_ack(&inv, &response_to(&inv, 404)).unwrap();
        assert_eq!(ack.headers.get_all(&HeaderName::Route).count(), 0);
        assert_eq!(ack.headers.get_str(&HeaderName::MaxForwards), Some("70"));
    }

    #[test]
    fn non_2xx_is_acked_passed_up_once_and_retransmissions_re_acked() {
        let config = TimerConfig::default();
        let (calling, start) = Calling::start(invite(), &config, false);
        assert_eq!(sends(&start).len(), 1);
        let resp = response_to(&invite(), 486);
        let (state, actions) = calling.on_response(resp.clone(), &config);
        let ClientInvite::Completed(completed) = state else {
            panic!("expected Completed");
        };
        let acks = sends(&actions);
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0].method(), Some(&Method::Ack));
        assert!(actions.contains(&Action::Deliver(Delivery::Response(resp.clone()))));
        assert!(actions.contains(&Action::StartTimer(Timer::D, Duration::from_secs(32))));
        let (state, again) = completed.on_response(resp);
        assert_eq!(sends(&again), acks);
        assert!(!again.iter().any(|a| matches!(a, Action::Deliver(_))));
        let (state, _) = state.on_timer(Timer::D, &config);
        assert!(matches!(state, ClientInvite::Terminated));
    }

    #[test]
    fn reliable_non_2xx_terminates_at_once() {
        let config = TimerConfig::default();
        let (calling, start) = Calling::start(invite(), &config, true);
        assert!(!start
            .iter()
            .any(|a| matches!(a, Action::StartTimer(Timer::A, _))));
        let (state, actions) = calling.on_response(response_to(&invite(), 603), &config);
        assert!(matches!(state, ClientInvite::Terminated));
        assert_eq!(sends(&actions).len(), 1);
    }

    #[test]
    fn timer_c_restarts_on_101_to_199_only() {
        let config = TimerConfig::default();
        let c = config.timer_c.unwrap();
        let (calling, _) = Calling::start(invite(), &config, false);
        let (state, a100) = calling.on_response(response_to(&invite(), 100), &config);
        assert!(!a100.contains(&Action::StartTimer(Timer::C, c)));
        let (state, a180) = state.on_response(response_to(&invite(), 180), &config);
        assert!(a180.contains(&Action::StartTimer(Timer::C, c)));
        let (state, fired) = state.on_timer(Timer::C, &config);
        assert!(fired.contains(&Action::Deliver(Delivery::TimerC {
            provisional_received: true
        })));
        let (state, fired) = state.on_timer(Timer::B, &config);
        assert!(fired.contains(&Action::Deliver(Delivery::Timeout(Timer::B))));
        assert!(matches!(state, ClientInvite::Terminated));
    }

    #[test]
    fn transport_error_in_calling_terminates() {
        let (calling, _) = Calling::start(invite(), &TimerConfig::default(), true);
        let (state, actions) = ClientInvite::Calling(calling).on_transport_error();
        assert!(matches!(state, ClientInvite::Terminated));
        assert_eq!(actions, vec![Action::Deliver(Delivery::TransportError)]);
    }
}
