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
//! registrations). With `[pcscf] store` the dialog of each confirmed subscription of a
//! UDP flow (Call-ID, tags, CSeq, target, route set, expiry and refresh time) is kept
//! beside its registration ([`crate::store`]): written after each 2xx to a SUBSCRIBE,
//! deleted when the subscription ends, through the store's group-commit writer in a
//! task of its own (no SIP message waits for it), and [`Subscriber::restore`]d at start
//! with the registrations, so the S-CSCF's NOTIFYs in the old dialog are still matched
//! and its refreshes go on. The CSeq restored skips one number: a refresh the notifier
//! took just before a crash, whose 2xx was not written yet, is not repeated with the
//! same CSeq (RFC 3261 §12.2.2 refuses that). A restored registration whose
//! subscription was not stored (not confirmed yet, or a TCP/TLS flow's) is subscribed
//! again at its next 200 to REGISTER. Each write is queued from a task of its own, so
//! two changes of one dialog made within the same instant may commit in either order; a
//! row left behind that way names a dialog the notifier has ended, which the restarted
//! P-CSCF drops at its first refresh (481) or with its registration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use ims_sip::message::addr::NameAddr;
use ims_sip::message::build::new_tag;
use ims_sip::message::delta_seconds::delta_seconds;
use ims_sip::message::{Headers, Request, StartLine};
use ims_sip::proxy::engine::Originator;
use ims_sip::transport::{Flow, TransportKind};
use ims_sip::{HeaderName, Method, SipMessage};
use tokio::time::Instant;

use crate::flow_token::label;
use crate::registrations::{Registration, Registrations};
use crate::store::{Change, Persistence, StoredSubscription};

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
    /// When the notifier's last grant lapses; `None` before the first 2xx.
    expires: Option<Instant>,
}

/// Seconds since the UNIX epoch at `at`, given `now` is `unix`, rounded up.
fn unix_at(at: Instant, now: Instant, unix: u64) -> u64 {
    let left = at.saturating_duration_since(now);
    unix.saturating_add(left.as_secs() + u64::from(left.subsec_nanos() > 0))
}

/// The instant of `at` (seconds since the UNIX epoch) given `now` is `unix`; `now`
/// when it has passed.
fn instant_at(at: u64, now: Instant, unix: u64) -> Option<Instant> {
    now.checked_add(Duration::from_secs(at.saturating_sub(unix)))
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

    /// The confirmed dialog for `flow` as stored, at `now` (`unix` seconds since the
    /// epoch); `None` before it is confirmed and granted.
    fn stored(&self, flow: &Flow, now: Instant, unix: u64) -> Option<StoredSubscription> {
        let remote_tag = self.remote_tag.clone()?;
        let expires = self.expires?;
        Some(StoredSubscription {
            flow: label(flow),
            call_id: self.call_id.clone(),
            local_tag: self.local_tag.clone(),
            remote_tag,
            resource: self.resource.clone(),
            identity: self.identity.clone(),
            contact: self.contact.clone(),
            target: self.target.clone(),
            route: self.route.clone(),
            cseq: self.cseq,
            expires_at: unix_at(expires, now, unix),
            refresh_at: self.refresh_at.map_or(unix, |at| unix_at(at, now, unix)),
        })
    }

    /// The dialog `stored` describes, to go on with at `now` (`unix` seconds since the
    /// epoch): none when its grant has lapsed or it names no UDP flow.
    fn restore(stored: StoredSubscription, now: Instant, unix: u64) -> Option<(Flow, Sub)> {
        let flow: Flow = stored.flow.parse().ok()?;
        if flow.kind() != TransportKind::Udp
            || stored.expires_at <= unix
            || stored.remote_tag.is_empty()
        {
            return None;
        }
        let sub = Sub {
            call_id: stored.call_id,
            local_tag: stored.local_tag,
            remote_tag: Some(stored.remote_tag),
            target: stored.target,
            route: stored.route,
            cseq: stored.cseq.saturating_add(1),
            resource: stored.resource,
            identity: stored.identity,
            contact: stored.contact,
            refresh_at: Some(instant_at(stored.refresh_at, now, unix)?),
            expires: Some(instant_at(stored.expires_at, now, unix)?),
        };
        Some((flow, sub))
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
    /// Where the dialogs are kept across restarts (`[pcscf] store`).
    persistence: Option<Persistence>,
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
    /// At most `max` subscriptions, sent through `originator`, their dialogs kept in
    /// `persistence` when there is one.
    pub fn new(originator: Originator, max: usize, persistence: Option<Persistence>) -> Subscriber {
        Subscriber {
            table: Arc::default(),
            originator,
            max,
            persistence,
        }
    }

    /// Writes `change` about `flow` to the store in a task of its own: only UDP flows'
    /// subscriptions are kept (a connection does not survive a restart).
    fn write(&self, flow: &Flow, change: Change) {
        if let Some(p) = self
            .persistence
            .as_ref()
            .filter(|_| flow.kind() == TransportKind::Udp)
        {
            tokio::spawn(p.write(change));
        }
    }

    /// Takes back the dialogs read from the store after a restart, for the flows
    /// `registrations` holds (restored just before), up to the bound; returns how many
    /// were taken. They are refreshed when due, at once when that time has passed.
    pub fn restore(
        &self,
        stored: Vec<StoredSubscription>,
        registrations: &Registrations,
        now: Instant,
        unix: u64,
    ) -> usize {
        let mut t = self.lock();
        let mut taken = 0;
        for (flow, sub) in stored
            .into_iter()
            .filter_map(|s| Sub::restore(s, now, unix))
        {
            if t.by_flow.len() >= self.max {
                break;
            }
            if t.by_flow.contains_key(&flow)
                || t.by_call.contains_key(&sub.call_id)
                || registrations.by_flow(&flow, now).is_none()
            {
                continue;
            }
            t.by_call.insert(sub.call_id.clone(), flow);
            t.by_flow.insert(flow, sub);
            taken += 1;
        }
        taken
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
        if let Some(request) = self.begin(reg, identity, contact) {
            self.spawn_send(reg.flow, request);
        }
    }

    /// [`Self::start`] up to the SUBSCRIBE to send: the new dialog in the table.
    fn begin(&self, reg: &Registration, identity: &str, contact: &str) -> Option<SipMessage> {
        let mut t = self.lock();
        if t.by_flow.contains_key(&reg.flow) {
            return None;
        }
        if t.by_flow.len() >= self.max {
            tracing::warn!(
                max = self.max,
                "reg event subscriptions full: not subscribing"
            );
            return None;
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
            expires: None,
        };
        let request = sub.request(EXPIRES);
        t.by_call.insert(sub.call_id.clone(), reg.flow);
        t.by_flow.insert(reg.flow, sub);
        Some(request)
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
        self.write(flow, Change::DeleteSubscription(label(flow)));
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
        let change = self.confirm(flow, call_id, response, now);
        if let Some(change) = change {
            self.write(flow, change);
        }
    }

    /// [`Self::answered`] on the table; the store's change it makes, if any.
    fn confirm(
        &self,
        flow: &Flow,
        call_id: &str,
        response: Option<&SipMessage>,
        now: Instant,
    ) -> Option<Change> {
        let mut t = self.lock();
        let sub = t.by_flow.get_mut(flow).filter(|s| s.call_id == call_id)?;
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
                let granted = Duration::from_secs(u64::from(secs));
                let refresh = Duration::from_secs(u64::from(secs) * 2 / 3).max(MIN_REFRESH);
                sub.refresh_at = now.checked_add(refresh);
                sub.expires = now.checked_add(granted);
                tracing::debug!(resource = %sub.resource, secs, "reg event subscription active");
                sub.stored(flow, now, crate::store::unix_now())
                    .map(Change::SaveSubscription)
            }
            _ => {
                tracing::info!(resource = %sub.resource, code, "reg event subscription refused or unanswered");
                t.remove(flow);
                Some(Change::DeleteSubscription(label(flow)))
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
            drop(t);
            self.write(&flow, Change::DeleteSubscription(label(&flow)));
        }
        Ok(Notified { flow, ended })
    }

    /// Forgets the subscription for `flow` without a SUBSCRIBE (its registration was
    /// dropped because the notifier said it ended).
    pub fn forget(&self, flow: &Flow) {
        if self.lock().remove(flow).is_some() {
            self.write(flow, Change::DeleteSubscription(label(flow)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RegistrationStore;
    use crate::testutil::{flows, register_200};

    fn subscriber_with(flow: Flow) -> (Subscriber, Registration) {
        let regs = Registrations::new(4);
        let (req, ok) = register_200(600);
        regs.learn(&req, flow, &ok, Instant::now());
        let reg = regs.by_flow(&flow, Instant::now()).unwrap();
        (Subscriber::new(Originator::default(), 1, None), reg)
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

    /// The notifier's 200 to the first SUBSCRIBE of the dialog `call_id`, for 600 s.
    fn subscribe_200(call_id: &str) -> SipMessage {
        SipMessage::parse(format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\n\
             From: <sip:127.0.0.1>;tag=a\r\nTo: <sip:alice@ims.example.net>;tag=scscf\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:scscf@127.0.0.1:5080>\r\n\
             Expires: 600\r\nContent-Length: 0\r\n\r\n"
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
        let ok = subscribe_200(&call_id);
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

    /// The stored subscriptions of `store`, once there are `n` (at most 5 s).
    async fn stored_once(store: &RegistrationStore, n: usize) -> Vec<StoredSubscription> {
        for _ in 0..500 {
            let rows = store.subscriptions().await.unwrap();
            if rows.len() == n {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "never {n} stored subscriptions: {:?}",
            store.subscriptions().await
        )
    }

    /// A confirmed dialog is written to the store; a P-CSCF restarted on that store
    /// matches the notifier's NOTIFYs in it (not 481), refreshes it with the next CSeq
    /// but one, and forgets it (in the store too) when it ends.
    #[tokio::test]
    async fn a_confirmed_dialog_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("r.db").display());
        let store = RegistrationStore::open(&url, "pcscf").await.unwrap();
        let fl = flows(1).await;
        let regs = Registrations::new(4);
        let (req, ok) = register_200(600);
        let now = Instant::now();
        regs.learn(&req, fl[0], &ok, now);
        let reg = regs.by_flow(&fl[0], now).unwrap();
        let before = Subscriber::new(
            Originator::default(),
            4,
            Some(Persistence::spawn(store.clone())),
        );
        // The SUBSCRIBE is not sent (the test answers it).
        before
            .begin(&reg, "sip:127.0.0.1", "sip:reg-event@127.0.0.1:5060")
            .unwrap();
        let call_id = before.lock().by_flow[&fl[0]].call_id.clone();
        let local_tag = before.lock().by_flow[&fl[0]].local_tag.clone();
        before.answered(&fl[0], &call_id, Some(&subscribe_200(&call_id)), now);
        let unix = crate::store::unix_now();
        let rows = stored_once(&store, 1).await;
        let row = &rows[0];
        assert_eq!(
            (
                row.call_id.as_str(),
                row.local_tag.as_str(),
                row.remote_tag.as_str()
            ),
            (call_id.as_str(), local_tag.as_str(), "scscf")
        );
        assert_eq!(row.target, "sip:scscf@127.0.0.1:5080");
        assert_eq!((row.flow.clone(), row.cseq), (label(&fl[0]), 1));
        assert!(
            (unix + 599..=unix + 601).contains(&row.expires_at),
            "{row:?}"
        );
        assert!(
            (unix + 399..=unix + 401).contains(&row.refresh_at),
            "{row:?}"
        );

        // Restarted: the registrations and then the dialogs come back.
        let after = Subscriber::new(
            Originator::default(),
            4,
            Some(Persistence::spawn(store.clone())),
        );
        let later = Instant::now();
        assert_eq!(
            after.restore(rows.clone(), &Registrations::new(4), later, unix),
            0
        );
        assert_eq!(after.restore(rows.clone(), &regs, later, unix), 1);
        assert_eq!(after.restore(rows, &regs, later, unix), 0, "already there");
        let state = notify(&call_id, &local_tag, "scscf", "active;expires=500");
        assert_eq!(after.notify(&state).map(|n| n.flow), Ok(fl[0]));
        let mut sub = after.lock().by_flow[&fl[0]].clone();
        let text = String::from_utf8(sub.request(EXPIRES).to_bytes().to_vec()).unwrap();
        assert!(
            text.starts_with("SUBSCRIBE sip:scscf@127.0.0.1:5080 SIP/2.0\r\n")
                && text.contains("CSeq: 3 SUBSCRIBE")
                && text.contains(";tag=scscf\r\n"),
            "{text}"
        );
        let ended = notify(
            &call_id,
            &local_tag,
            "scscf",
            "terminated;reason=deactivated",
        );
        assert!(after.notify(&ended).unwrap().ended);
        stored_once(&store, 0).await;
        store.close().await;
    }

    #[test]
    fn a_lapsed_dialog_or_a_connections_is_not_restored() {
        let now = Instant::now();
        let row = StoredSubscription {
            flow: "UDP#0:127.0.0.1:5062".into(),
            call_id: "c".into(),
            local_tag: "l".into(),
            remote_tag: "r".into(),
            resource: "sip:alice@ims.example.net".into(),
            identity: "sip:127.0.0.1".into(),
            contact: "sip:reg-event@127.0.0.1:5060".into(),
            target: "sip:scscf@127.0.0.1:5080".into(),
            route: Vec::new(),
            cseq: u32::MAX,
            expires_at: 1_600,
            refresh_at: 900,
        };
        let (_, sub) = Sub::restore(row.clone(), now, 1_000).unwrap();
        // Due already: refreshed at the next tick; the CSeq saturates.
        assert_eq!(sub.refresh_at, Some(now));
        assert_eq!(sub.expires, Some(now + Duration::from_secs(600)));
        assert_eq!(sub.cseq, u32::MAX);
        assert!(Sub::restore(row.clone(), now, 1_600).is_none());
        let tcp = StoredSubscription {
            flow: "TCP#4:127.0.0.1:40000".into(),
            ..row.clone()
        };
        assert!(Sub::restore(tcp, now, 1_000).is_none());
        let unconfirmed = StoredSubscription {
            remote_tag: String::new(),
            ..row
        };
        assert!(Sub::restore(unconfirmed, now, 1_000).is_none());
    }
}
