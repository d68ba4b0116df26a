//! The P-CSCF's subscriptions to the reg event package (TS 24.229 §5.2.3, RFC 3680,
//! RFC 6665): after the first 200 to a UE's REGISTER over a flow the P-CSCF sends
//! SUBSCRIBE for `reg` to the UE's public identity along the Service-Route, asserting
//! its own node identity (`sip:HOST`, the host of the Path it inserted: what the
//! S-CSCF's authorization of a P-CSCF subscriber checks); refreshes it when two thirds
//! of the granted time have gone; unsubscribes (`Expires: 0`) when the UE
//! de-registers. The NOTIFYs of a dialog are matched here ([`Subscriber::notify`]);
//! what they say is applied to the registrations by the policy.
//!
//! The table is bounded (one subscription per registered flow, at most as many as
//! registrations) and lives in memory only: after a restart the restored
//! registrations are subscribed again at their next 200 to REGISTER (their
//! re-registration), not at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use ims_sip::message::addr::NameAddr;
use ims_sip::message::build::new_tag;
use ims_sip::message::delta_seconds::delta_seconds;
use ims_sip::message::{Headers, Request, StartLine};
use ims_sip::proxy::engine::Originator;
use ims_sip::transport::Flow;
use ims_sip::{HeaderName, Method, SipMessage};
use tokio::time::Instant;

use crate::registrations::Registration;

/// The Expires the P-CSCF asks for (TS 24.229 §5.2.3: 600 000 seconds); the S-CSCF
/// grants at most its own maximum.
pub const EXPIRES: u32 = 600_000;
/// The user part of our Contact in the subscriptions: a NOTIFY whose Request-URI
/// carries it (and no flow token in its Route) is ours to answer.
pub const CONTACT_USER: &str = "reg-event";
/// A subscription is refreshed this long after the 2xx at the soonest.
const MIN_REFRESH: Duration = Duration::from_secs(5);

/// One subscription: the dialog of a SUBSCRIBE the P-CSCF sent for a flow's UE.
#[derive(Debug, Clone)]
struct Sub {
    call_id: String,
    local_tag: String,
    /// The notifier's tag: from the 2xx or the first NOTIFY.
    remote_tag: Option<String>,
    /// Request-URI of the next SUBSCRIBE: the resource, then the notifier's Contact.
    target: String,
    /// Route of the next SUBSCRIBE: the Service-Route, then the dialog's route set.
    route: Vec<String>,
    cseq: u32,
    /// The UE's public identity subscribed to (To).
    resource: String,
    /// Our identity (From and P-Asserted-Identity) and Contact.
    identity: String,
    contact: String,
    /// When to refresh; `None` while a SUBSCRIBE is under way.
    refresh_at: Option<Instant>,
}

impl Sub {
    /// The next SUBSCRIBE of the dialog with `expires`.
    fn request(&mut self, expires: u32) -> SipMessage {
        self.cseq = self.cseq.saturating_add(1);
        let mut h = Headers::new();
        for r in &self.route {
            h.push(HeaderName::Route, r.clone());
        }
        let own = |s: String| Bytes::from(s);
        h.push(HeaderName::MaxForwards, "70");
        h.push(
            HeaderName::From,
            own(format!("<{}>;tag={}", self.identity, self.local_tag)),
        );
        let to = match &self.remote_tag {
            Some(tag) => format!("<{}>;tag={tag}", self.resource),
            None => format!("<{}>", self.resource),
        };
        h.push(HeaderName::To, own(to));
        h.push(HeaderName::CallId, self.call_id.clone());
        h.push(HeaderName::CSeq, own(format!("{} SUBSCRIBE", self.cseq)));
        h.push(HeaderName::Contact, own(format!("<{}>", self.contact)));
        h.push(HeaderName::Event, "reg");
        h.push(
            HeaderName::Other(Bytes::from_static(b"Accept")),
            "application/reginfo+xml",
        );
        h.push(HeaderName::Expires, own(expires.to_string()));
        h.push(
            HeaderName::PAssertedIdentity,
            own(format!("<{}>", self.identity)),
        );
        h.push(HeaderName::ContentLength, "0");
        let start = StartLine::Request(Request::new(Method::Subscribe, self.target.clone()));
        SipMessage::new(start, h, Bytes::new())
    }
}

#[derive(Debug, Default)]
struct Table {
    by_flow: HashMap<Flow, Sub>,
    by_call: HashMap<String, Flow>,
}

impl Table {
    fn remove(&mut self, flow: &Flow) -> Option<Sub> {
        let sub = self.by_flow.remove(flow)?;
        self.by_call.remove(&sub.call_id);
        Some(sub)
    }
}

/// What a NOTIFY in one of our dialogs is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notified {
    /// The flow whose UE's registration the subscription watches.
    pub flow: Flow,
    /// `Subscription-State: terminated`: the subscription ended (and left the table).
    pub ended: bool,
}

/// The P-CSCF's reg event subscriptions, bounded, with the [`Originator`] that sends
/// them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Subscriber {
    table: Arc<Mutex<Table>>,
    originator: Originator,
    max: usize,
}

/// The tag parameter of a From/To value.
fn tag_of(value: &str) -> Option<String> {
    NameAddr::parse(value).ok()?.tag().map(str::to_string)
}

/// The first value of `name` in `msg`, as text.
fn header(msg: &SipMessage, name: &HeaderName) -> Option<String> {
    msg.headers.get_str(name).map(str::to_string)
}

/// Whether `value` (Subscription-State) says terminated.
fn terminated(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("terminated"))
}

impl Subscriber {
    /// At most `max` subscriptions, sent through `originator`.
    pub fn new(originator: Originator, max: usize) -> Subscriber {
        Subscriber {
            table: Arc::default(),
            originator,
            max,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Every update is a short statement sequence: the maps stay consistent.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many subscriptions there are.
    pub fn len(&self) -> usize {
        self.lock().by_flow.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the UE over `flow` is subscribed to (or a SUBSCRIBE is under way).
    pub fn has(&self, flow: &Flow) -> bool {
        self.lock().by_flow.contains_key(flow)
    }

    /// Subscribes to the registration `reg` (just learned over a flow not subscribed
    /// to yet) as `identity` (our node identity URI) with `contact` (our Contact
    /// URI); the SUBSCRIBE goes in a task of its own. Nothing when the flow is
    /// subscribed to already or the table is full.
    pub fn start(&self, reg: &Registration, identity: &str, contact: &str) {
        let request = {
            let mut t = self.lock();
            if t.by_flow.contains_key(&reg.flow) {
                return;
            }
            if t.by_flow.len() >= self.max {
                tracing::warn!(
                    max = self.max,
                    "reg event subscriptions full: not subscribing"
                );
                return;
            }
            let mut sub = Sub {
                call_id: format!("{}{}", new_tag(), new_tag()),
                local_tag: new_tag(),
                remote_tag: None,
                target: reg.public_identity.clone(),
                route: reg.service_route.clone(),
                cseq: 0,
                resource: reg.public_identity.clone(),
                identity: identity.to_string(),
                contact: contact.to_string(),
                refresh_at: None,
            };
            let request = sub.request(EXPIRES);
            t.by_call.insert(sub.call_id.clone(), reg.flow);
            t.by_flow.insert(reg.flow, sub);
            request
        };
        self.spawn_send(reg.flow, request);
    }

    /// Unsubscribes (`Expires: 0`) for the UE over `flow`, which de-registered
    /// (when the notifier has not ended the subscription already: it usually has,
    /// its NOTIFY of the de-registration arriving before the 200 to REGISTER).
    pub fn stop(&self, flow: &Flow) {
        let Some(request) = self.unsubscribe(flow) else {
            return;
        };
        let originator = self.originator.clone();
        tokio::spawn(async move {
            if let Err(error) = originator.send(request).await {
                tracing::info!(%error, "reg event unsubscription not answered");
            }
        });
    }

    /// Forgets the subscription for `flow` and returns the SUBSCRIBE that ends it, if
    /// its dialog was confirmed (without one the notifier ends it when its NOTIFY
    /// gets 481).
    fn unsubscribe(&self, flow: &Flow) -> Option<SipMessage> {
        let mut sub = self.lock().remove(flow)?;
        sub.remote_tag.as_ref()?;
        Some(sub.request(0))
    }

    /// Refreshes the subscriptions due at `now`.
    pub fn refresh(&self, now: Instant) {
        let due: Vec<(Flow, SipMessage)> = {
            let mut t = self.lock();
            t.by_flow
                .iter_mut()
                .filter(|(_, s)| s.refresh_at.is_some_and(|at| at <= now))
                .map(|(flow, s)| {
                    s.refresh_at = None;
                    (*flow, s.request(EXPIRES))
                })
                .collect()
        };
        for (flow, request) in due {
            self.spawn_send(flow, request);
        }
    }

    fn spawn_send(&self, flow: Flow, request: SipMessage) {
        let this = self.clone();
        tokio::spawn(async move {
            let call_id = header(&request, &HeaderName::CallId).unwrap_or_default();
            let outcome = this.originator.send(request).await;
            this.answered(&flow, &call_id, outcome.ok().as_ref(), Instant::now());
        });
    }

    /// The final response (`None`: none came) to a SUBSCRIBE of the dialog `call_id`
    /// for `flow`: a 2xx confirms the dialog and sets the refresh; anything else ends
    /// the subscription (RFC 6665 §4.1.2.1: the UE is subscribed again at its next
    /// initial registration).
    fn answered(&self, flow: &Flow, call_id: &str, response: Option<&SipMessage>, now: Instant) {
        let mut t = self.lock();
        let Some(sub) = t.by_flow.get_mut(flow).filter(|s| s.call_id == call_id) else {
            return;
        };
        let code = response.and_then(SipMessage::status).unwrap_or(0);
        let granted = response
            .and_then(|r| r.headers.get_str(&HeaderName::Expires))
            .and_then(delta_seconds);
        match (response, granted) {
            (Some(r), Some(secs)) if (200..300).contains(&code) && secs > 0 => {
                if sub.remote_tag.is_none() {
                    sub.remote_tag = header(r, &HeaderName::To).as_deref().and_then(tag_of);
                    let mut route: Vec<String> = r
                        .headers
                        .values(&HeaderName::RecordRoute)
                        .filter_map(|v| std::str::from_utf8(&v).ok().map(str::to_string))
                        .collect();
                    route.reverse();
                    sub.route = route;
                }
                if let Some(target) = header(r, &HeaderName::Contact)
                    .and_then(|c| NameAddr::parse(&c).ok().map(|a| a.uri.to_string()))
                {
                    sub.target = target;
                }
                let refresh = Duration::from_secs(u64::from(secs) * 2 / 3).max(MIN_REFRESH);
                sub.refresh_at = now.checked_add(refresh);
                tracing::debug!(resource = %sub.resource, secs, "reg event subscription active");
            }
            _ => {
                tracing::info!(resource = %sub.resource, code, "reg event subscription refused or unanswered");
                t.remove(flow);
            }
        }
    }

    /// Matches a NOTIFY (already known to be addressed to our Contact) to one of our
    /// dialogs: by Call-ID, our tag in To and the notifier's tag in From. `Err(481)`
    /// for no such subscription (RFC 6665 §4.1.3).
    pub fn notify(&self, req: &SipMessage) -> Result<Notified, u16> {
        let call_id = header(req, &HeaderName::CallId).ok_or(400u16)?;
        let to_tag = header(req, &HeaderName::To)
            .as_deref()
            .and_then(tag_of)
            .ok_or(481u16)?;
        let from_tag = header(req, &HeaderName::From)
            .as_deref()
            .and_then(tag_of)
            .ok_or(400u16)?;
        let mut t = self.lock();
        let flow = *t.by_call.get(&call_id).ok_or(481u16)?;
        let sub = t.by_flow.get_mut(&flow).ok_or(481u16)?;
        if sub.local_tag != to_tag {
            return Err(481);
        }
        match &sub.remote_tag {
            Some(tag) if *tag != from_tag => return Err(481),
            Some(_) => {}
            // RFC 6665 §4.1.2.4: the NOTIFY may come before the 2xx.
            None => sub.remote_tag = Some(from_tag),
        }
        let ended = header(
            req,
            &HeaderName::Other(Bytes::from_static(b"Subscription-State")),
        )
        .is_some_and(|s| terminated(&s));
        if ended {
            t.remove(&flow);
        }
        Ok(Notified { flow, ended })
    }

    /// Forgets the subscription for `flow` without a SUBSCRIBE (its registration was
    /// dropped because the notifier said it ended).
    pub fn forget(&self, flow: &Flow) {
        self.lock().remove(flow);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrations::Registrations;
    use crate::testutil::{flows, register_200};

    fn subscriber_with(flow: Flow) -> (Subscriber, Registration) {
        let regs = Registrations::new(4);
        let (req, ok) = register_200(600);
        regs.learn(&req, flow, &ok, Instant::now());
        let reg = regs.by_flow(&flow, Instant::now()).unwrap();
        (Subscriber::new(Originator::default(), 1), reg)
    }

    fn notify(call_id: &str, to_tag: &str, from_tag: &str, state: &str) -> SipMessage {
        SipMessage::parse(format!(
            "NOTIFY sip:reg-event@127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKn\r\n\
             From: <sip:alice@ims.example.net>;tag={from_tag}\r\n\
             To: <sip:127.0.0.1>;tag={to_tag}\r\nCall-ID: {call_id}\r\nCSeq: 1 NOTIFY\r\n\
             Event: reg\r\nSubscription-State: {state}\r\nMax-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn the_subscribe_and_the_dialogs_notifies() {
        let fl = flows(2).await;
        let (s, reg) = subscriber_with(fl[0]);
        s.start(&reg, "sip:127.0.0.1", "sip:reg-event@127.0.0.1:5060");
        // Bounded: a second flow does not fit.
        let mut other = reg.clone();
        other.flow = fl[1];
        s.start(&other, "sip:127.0.0.1", "sip:reg-event@127.0.0.1:5060");
        assert_eq!(s.len(), 1);
        let sub = s.lock().by_flow.get(&fl[0]).cloned().unwrap();
        let mut copy = sub.clone();
        copy.cseq = 0;
        let req = copy.request(EXPIRES);
        let text = String::from_utf8(req.to_bytes().to_vec()).unwrap();
        assert!(text.starts_with("SUBSCRIBE sip:alice@ims.example.net SIP/2.0\r\n"));
        for line in [
            "Route: <sip:orig@scscf.ims.example.net:5080;lr>",
            "Event: reg",
            "Expires: 600000",
            "P-Asserted-Identity: <sip:127.0.0.1>",
            "Contact: <sip:reg-event@127.0.0.1:5060>",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        // A NOTIFY of another dialog, or with another tag: 481.
        let (c, l) = (sub.call_id.as_str(), sub.local_tag.as_str());
        assert_eq!(s.notify(&notify("other", l, "n1", "active")), Err(481));
        assert_eq!(s.notify(&notify(c, "forged", "n1", "active")), Err(481));
        // The first NOTIFY sets the notifier's tag; another tag then is refused.
        let ok = s.notify(&notify(c, l, "n1", "active;expires=600")).unwrap();
        assert_eq!((ok.flow, ok.ended), (fl[0], false));
        assert_eq!(s.notify(&notify(c, l, "n2", "active")), Err(481));
        // Terminated ends the subscription.
        let ok = s
            .notify(&notify(c, l, "n1", "terminated;reason=deactivated"))
            .unwrap();
        assert!(ok.ended);
        assert!(s.is_empty());
        assert_eq!(s.notify(&notify(c, l, "n1", "active")), Err(481));
    }

    #[tokio::test]
    async fn a_2xx_sets_the_refresh_and_a_failure_ends_it() {
        let fl = flows(1).await;
        let (s, reg) = subscriber_with(fl[0]);
        s.start(&reg, "sip:127.0.0.1", "sip:reg-event@127.0.0.1:5060");
        let call_id = s.lock().by_flow[&fl[0]].call_id.clone();
        let ok = SipMessage::parse(format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\n\
             From: <sip:127.0.0.1>;tag=a\r\nTo: <sip:alice@ims.example.net>;tag=scscf\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:scscf@127.0.0.1:5080>\r\n\
             Expires: 600\r\nContent-Length: 0\r\n\r\n"
        ))
        .unwrap();
        let now = Instant::now();
        s.answered(&fl[0], &call_id, Some(&ok), now);
        let sub = s.lock().by_flow[&fl[0]].clone();
        assert_eq!(sub.remote_tag.as_deref(), Some("scscf"));
        assert_eq!(sub.target, "sip:scscf@127.0.0.1:5080");
        assert!(sub.route.is_empty());
        assert_eq!(sub.refresh_at, Some(now + Duration::from_secs(400)));
        // The refresh is in the dialog.
        let mut next = sub.clone();
        let text = String::from_utf8(next.request(EXPIRES).to_bytes().to_vec()).unwrap();
        assert!(text.starts_with("SUBSCRIBE sip:scscf@127.0.0.1:5080 SIP/2.0\r\n"));
        assert!(text.contains(";tag=scscf\r\n") && text.contains("CSeq: 2 SUBSCRIBE"));
        // The UE de-registers: the dialog's SUBSCRIBE with Expires 0.
        let text = String::from_utf8(s.unsubscribe(&fl[0]).unwrap().to_bytes().to_vec()).unwrap();
        assert!(
            text.contains("Expires: 0\r\n") && text.contains("CSeq: 2 SUBSCRIBE"),
            "{text}"
        );
        assert!(!s.has(&fl[0]));
        // No answer: gone.
        s.start(&reg, "sip:127.0.0.1", "sip:reg-event@127.0.0.1:5060");
        let call_id = s.lock().by_flow[&fl[0]].call_id.clone();
        s.answered(&fl[0], &call_id, None, now);
        assert!(!s.has(&fl[0]));
        assert_eq!(s.unsubscribe(&fl[0]), None);
    }
}
