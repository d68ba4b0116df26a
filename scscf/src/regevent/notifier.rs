//! The reg event notifier of the S-CSCF (RFC 3680, RFC 6665, TS 24.229 §5.4.2.1):
//! answers SUBSCRIBE for a registered identity (authorized by [`super::authorize`]),
//! refreshes and ends subscriptions, and sends the NOTIFYs: the full state right after
//! each SUBSCRIBE, then the partial state of every change the registrar reports
//! ([`Notifier::registration_changed`]), each with the next version.
//!
//! The table of subscriptions is bounded, overall and per identity subscribed to.
//! Every subscription is in the store ([`crate::store::subscriptions`]) before its
//! first NOTIFY leaves, and again after each SUBSCRIBE that refreshes it: the store
//! writes go through one task in the order the changes were made, which then hands
//! the NOTIFY to the SIP engine ([`Originator`]). A NOTIFY answered 481, or that times
//! out or cannot be sent, ends its subscription (RFC 6665 §4.2.2).
//!
//! The NOTIFYs of registration changes (one per re-registration of each subscribed
//! user) change only the dialog's CSeq and the document's version. Those are written
//! at most every [`NOTIFY_WRITE_LAG`]th NOTIFY, and a restarted S-CSCF restores both
//! that much higher: what it sends next is above whatever it sent before (RFC 3261
//! §12.2.1.1, RFC 3680 §5.4), and its first NOTIFY in each restored dialog carries the
//! full state, as a subscriber that sees the version jump expects. The NOTIFYs without
//! a write go through the same task, in order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ims_sip::message::build::{new_tag, reason_phrase, response_with};
use ims_sip::proxy::engine::{OriginateError, Originator};
use ims_sip::{HeaderName, SipMessage};
use tokio::sync::mpsc;

use super::authorize::{asserted_of, authorize};
use super::changes::{changes, full_state, Cause};
use super::reginfo::{ContactEvent, Reginfo, RegistrationInfo};
use super::subscription::{cseq_of, dialog_of, key, Subscription};
use crate::gruu::Gruus;
use crate::location::{expires_header, Registration};
use crate::store::BindingStore;

/// Store writes (and their NOTIFYs) waiting at most; beyond, a change is not notified
/// (logged).
const QUEUE: usize = 4096;

/// At most this many NOTIFYs of a subscription go out between writes of its row; a
/// restored subscription's CSeq and version are put this much higher.
pub const NOTIFY_WRITE_LAG: u32 = 32;

/// Notifier settings (`[regevent]`).
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    /// Shortest subscription accepted (seconds; shorter: 423).
    pub min_expires: u32,
    /// Longest subscription granted (seconds; longer ones are shortened).
    pub max_expires: u32,
    /// Granted when the SUBSCRIBE has no Expires (RFC 3680 §4.3: 3761).
    pub default_expires: u32,
    /// Subscriptions held at most.
    pub max_subscriptions: usize,
    /// Subscriptions per identity subscribed to at most.
    pub max_per_identity: usize,
    /// Our Contact in the 200 and the NOTIFYs, e.g. `<sip:127.0.0.1:5080>`.
    pub contact: String,
    /// End every subscription when the S-CSCF stops (else they are kept for its
    /// restart).
    pub terminate_on_shutdown: bool,
    /// The registrar's GRUUs, reported in each contact (RFC 5628).
    pub gruus: Arc<Gruus>,
}

/// The subscriptions in memory, by dialog and by identity subscribed to.
#[derive(Debug, Default)]
struct Table {
    by_key: HashMap<String, Subscription>,
    by_resource: HashMap<String, Vec<String>>,
}

impl Table {
    fn insert(&mut self, sub: Subscription) {
        let k = sub.key();
        let keys = self.by_resource.entry(sub.resource.clone()).or_default();
        if !keys.contains(&k) {
            keys.push(k.clone());
        }
        self.by_key.insert(k, sub);
    }

    fn remove(&mut self, k: &str) -> Option<Subscription> {
        let sub = self.by_key.remove(k)?;
        if let Some(keys) = self.by_resource.get_mut(&sub.resource) {
            keys.retain(|x| x != k);
            if keys.is_empty() {
                self.by_resource.remove(&sub.resource);
            }
        }
        Some(sub)
    }

    fn of(&self, resource: &str) -> &[String] {
        self.by_resource.get(resource).map_or(&[], Vec::as_slice)
    }
}

/// What the store task does, then the NOTIFY it sends.
enum Job {
    Save(Box<Subscription>, Option<SipMessage>),
    Delete(String, Option<SipMessage>),
    /// A NOTIFY whose CSeq and version need no write yet (its subscription's key).
    Send(String, SipMessage),
    /// Answered once every job queued before it is done.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The notifier. Shared (`Arc`) by the policy and the registrar.
pub struct Notifier {
    settings: NotifierSettings,
    table: Mutex<Table>,
    jobs: mpsc::Sender<Job>,
    originator: Originator,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn reply(
    req: &SipMessage,
    code: u16,
    tag: Option<&str>,
    extra: &[(HeaderName, &str)],
) -> SipMessage {
    response_with(req, code, reason_phrase(code), tag, extra)
}

/// A subscription's listing entry (`imsctl registrations`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionView {
    /// The identity subscribed to.
    pub resource: String,
    /// Who subscribed.
    pub subscriber: String,
    /// As what (`user`, `pcscf`, `application_server`).
    pub kind: &'static str,
    /// When it lapses (Unix seconds).
    pub expires_at: u64,
}

impl Notifier {
    /// A notifier over `store` (loaded with the subscriptions it holds) sending through
    /// `originator`; starts its store task.
    pub async fn new(
        settings: NotifierSettings,
        store: BindingStore,
        originator: Originator,
    ) -> Result<Arc<Notifier>, crate::store::StoreError> {
        let mut table = Table::default();
        for sub in store.load_subscriptions().await? {
            table.insert(restored(sub));
        }
        tracing::info!(
            subscriptions = table.by_key.len(),
            "reg event subscriptions reloaded from the store"
        );
        let (jobs, rx) = mpsc::channel(QUEUE);
        let notifier = Arc::new(Notifier {
            settings,
            table: Mutex::new(table),
            jobs,
            originator,
        });
        tokio::spawn(run(Arc::downgrade(&notifier), store, rx));
        Ok(notifier)
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of subscriptions held.
    pub fn len(&self) -> usize {
        self.table().by_key.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The subscriptions to the identities `resources`.
    pub fn list(&self, resources: &[String]) -> Vec<SubscriptionView> {
        let t = self.table();
        resources
            .iter()
            .flat_map(|r| t.of(r).iter().filter_map(|k| t.by_key.get(k)))
            .map(|s| SubscriptionView {
                resource: s.resource.clone(),
                subscriber: s.subscriber.clone(),
                kind: s.kind.as_str(),
                expires_at: s.expires_at,
            })
            .collect()
    }

    /// Queues `notify`, the NOTIFY `sub` just took, with the write of `sub` when
    /// [`NOTIFY_WRITE_LAG`] NOTIFYs would otherwise go unwritten; keeps `sub` in `t`.
    fn notify_in(&self, t: &mut Table, mut sub: Subscription, notify: SipMessage) {
        if write_due(&mut sub) {
            t.insert(sub.clone());
            self.queue(Job::Save(Box::new(sub), Some(notify)));
        } else {
            let key = sub.key();
            t.insert(sub);
            self.queue(Job::Send(key, notify));
        }
    }

    fn queue(&self, job: Job) {
        if let Err(e) = self.jobs.try_send(job) {
            let what = match e {
                mpsc::error::TrySendError::Full(_) => "queue full",
                mpsc::error::TrySendError::Closed(_) => "notifier stopped",
            };
            tracing::warn!(what, "reg event change not notified");
        }
    }

    /// The NOTIFY of `sub` carrying `registrations` (the full state when `full`),
    /// taking its next version and CSeq; `state` is its Subscription-State.
    fn notify_of(
        &self,
        sub: &mut Subscription,
        registrations: Vec<RegistrationInfo>,
        full: bool,
        state: &str,
    ) -> SipMessage {
        let doc = Reginfo {
            version: sub.version,
            full,
            registrations,
        };
        sub.version = sub.version.saturating_add(1);
        sub.restored &= !full;
        sub.notify(&self.settings.contact, state, &doc.to_xml())
    }

    /// The subscription's Expires asked by `req`, bounded; `Err` with the status of
    /// the answer when too brief (423) or malformed (400).
    fn expires(&self, req: &SipMessage) -> Result<u32, u16> {
        match expires_header(req) {
            Err(_) => Err(400),
            Ok(None) => Ok(self.settings.default_expires),
            Ok(Some(0)) => Ok(0),
            Ok(Some(e)) if e < self.settings.min_expires => Err(423),
            Ok(Some(e)) => Ok(e.min(self.settings.max_expires)),
        }
    }

    /// The answer refusing `req` with `code` from [`Notifier::expires`] (423 carries
    /// Min-Expires, RFC 6665 §4.2.1.1).
    fn refuse_expires(&self, req: &SipMessage, code: u16) -> SipMessage {
        let min = self.settings.min_expires.to_string();
        let extra: &[(HeaderName, &str)] = if code == 423 {
            &[(HeaderName::MinExpires, &min)]
        } else {
            &[]
        };
        reply(req, code, None, extra)
    }

    /// Answers an initial SUBSCRIBE to the reg event of `resource` (its Request-URI),
    /// registered here as `reg`: authorization, the dialog, the 200, and the first
    /// NOTIFY with the full state.
    pub fn subscribe(
        &self,
        req: &SipMessage,
        resource: &str,
        reg: &Registration,
        now: u64,
    ) -> SipMessage {
        let asserted = asserted_of(req);
        let kind = match authorize(&asserted, reg) {
            Ok(kind) => kind,
            Err(refused) => {
                tracing::info!(%resource, %refused, "reg event subscription refused");
                return reply(req, 403, None, &[]);
            }
        };
        let expires = match self.expires(req) {
            Ok(e) => e,
            Err(code) => return self.refuse_expires(req, code),
        };
        let subscriber = asserted.first().cloned().unwrap_or_default();
        let local_tag = new_tag();
        let expires_at = now.saturating_add(u64::from(expires));
        let mut sub = match Subscription::from_subscribe(
            req,
            resource,
            &subscriber,
            kind,
            &local_tag,
            expires_at,
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(error = %e, "SUBSCRIBE cannot make a dialog");
                return reply(req, 400, None, &[]);
            }
        };
        let full = full_state(Some(reg), resource, now, Some(&self.settings.gruus));
        if expires == 0 {
            // A fetch (RFC 6665 §4.4.3): one NOTIFY, no subscription kept.
            let n = self.notify_of(&mut sub, full, true, "terminated;reason=timeout");
            self.queue(Job::Delete(sub.key(), Some(n)));
            return self.ok(req, &local_tag, 0);
        }
        {
            let mut t = self.table();
            if t.by_key.len() >= self.settings.max_subscriptions {
                tracing::warn!(%resource, "reg event subscription table full");
                return reply(req, 503, None, &[(HeaderName::RetryAfter, "60")]);
            }
            if t.of(resource).len() >= self.settings.max_per_identity {
                // The subscriber's own oldest one goes (a UE that restarted without
                // unsubscribing); anybody else's stay and this one is refused.
                let oldest = t
                    .of(resource)
                    .iter()
                    .filter_map(|k| t.by_key.get(k))
                    .filter(|s| s.subscriber == subscriber)
                    .min_by_key(|s| s.expires_at)
                    .map(Subscription::key);
                let Some(oldest) = oldest.and_then(|k| t.remove(&k)) else {
                    tracing::info!(%resource, "too many reg event subscriptions for the identity");
                    return reply(req, 403, None, &[]);
                };
                let mut old = oldest;
                let gone = full_state(Some(reg), resource, now, Some(&self.settings.gruus));
                let n = self.notify_of(&mut old, gone, true, "terminated;reason=rejected");
                self.queue(Job::Delete(old.key(), Some(n)));
            }
            let n = self.notify_of(&mut sub, full, true, &format!("active;expires={expires}"));
            t.insert(sub.clone());
            self.queue(Job::Save(Box::new(sub), Some(n)));
        }
        tracing::info!(%resource, %subscriber, kind = kind.as_str(), expires, "reg event subscription");
        self.ok(req, &local_tag, expires)
    }

    fn ok(&self, req: &SipMessage, local_tag: &str, expires: u32) -> SipMessage {
        let mut extra: Vec<(HeaderName, String)> = req
            .headers
            .get_all(&HeaderName::RecordRoute)
            .filter_map(|h| {
                h.value_str()
                    .map(|v| (HeaderName::RecordRoute, v.to_string()))
            })
            .collect();
        extra.push((HeaderName::Contact, self.settings.contact.clone()));
        extra.push((HeaderName::Expires, expires.to_string()));
        let refs: Vec<(HeaderName, &str)> =
            extra.iter().map(|(n, v)| (n.clone(), v.as_str())).collect();
        reply(req, 200, Some(local_tag), &refs)
    }

    /// Answers a SUBSCRIBE inside a dialog of ours (refresh, or Expires 0: unsubscribe,
    /// RFC 6665 §4.1.2.2-3) with a NOTIFY of the full state (`registration` looks up
    /// what is registered for an identity). 481 when the dialog is not (or no longer)
    /// a subscription here.
    pub fn in_dialog(
        &self,
        req: &SipMessage,
        registration: impl Fn(&str) -> Option<Registration>,
        now: u64,
    ) -> SipMessage {
        let Some((call_id, local, remote)) = dialog_of(req) else {
            return reply(req, 481, None, &[]);
        };
        let k = key(&call_id, &local, &remote);
        let expires = match self.expires(req) {
            Ok(e) => e,
            Err(code) => return self.refuse_expires(req, code),
        };
        let Some(cseq) = cseq_of(req) else {
            return reply(req, 400, None, &[]);
        };
        let mut t = self.table();
        let Some(sub) = t.by_key.get_mut(&k) else {
            return reply(req, 481, None, &[]);
        };
        // RFC 3261 §12.2.2: a lower CSeq than the last one is out of order.
        if cseq <= sub.remote_cseq {
            return reply(req, 500, None, &[]);
        }
        sub.remote_cseq = cseq;
        let reg = registration(&sub.resource);
        let full = full_state(reg.as_ref(), &sub.resource, now, Some(&self.settings.gruus));
        if expires == 0 {
            if let Some(mut sub) = t.remove(&k) {
                let n = self.notify_of(&mut sub, full, true, "terminated;reason=timeout");
                self.queue(Job::Delete(k, Some(n)));
                tracing::info!(resource = %sub.resource, subscriber = %sub.subscriber, "reg event unsubscribed");
            }
            return self.ok(req, &local, 0);
        }
        sub.expires_at = now.saturating_add(u64::from(expires));
        let mut sub = sub.clone();
        let n = self.notify_of(&mut sub, full, true, &format!("active;expires={expires}"));
        sub.unwritten = 0;
        t.insert(sub.clone());
        drop(t);
        self.queue(Job::Save(Box::new(sub), Some(n)));
        self.ok(req, &local, expires)
    }

    /// A registration changed from `old` to `new` (either `None`: not registered)
    /// because of `cause`: the subscribers to any identity of its implicit set get the
    /// partial state; those whose identity is no longer registered get it with their
    /// subscription terminated (RFC 6665 `deactivated` when the network expects the
    /// user to register again, else `noresource`).
    pub fn registration_changed(
        &self,
        old: Option<&Registration>,
        new: Option<&Registration>,
        cause: Cause,
        now: u64,
    ) {
        let infos = changes(old, new, cause, now, Some(&self.settings.gruus));
        if infos.is_empty() {
            return;
        }
        let ids = |r: Option<&Registration>| -> Vec<String> {
            r.map(|r| {
                std::iter::once(r.impu.clone())
                    .chain(r.profile.associated.iter().cloned())
                    .chain(r.profile.barred.iter().cloned())
                    .collect()
            })
            .unwrap_or_default()
        };
        let still = ids(new);
        let mut resources = ids(old);
        resources.extend(still.iter().cloned());
        resources.sort();
        resources.dedup();
        let reason = if cause.removal() == ContactEvent::Deactivated {
            "deactivated"
        } else {
            "noresource"
        };
        let mut t = self.table();
        let keys: Vec<String> = resources.iter().flat_map(|r| t.of(r).to_vec()).collect();
        for k in keys {
            let Some(sub) = t.by_key.get(&k) else {
                continue;
            };
            if still.contains(&sub.resource) {
                let mut sub = sub.clone();
                let left = sub.expires_at.saturating_sub(now);
                let state = format!("active;expires={left}");
                let n = if sub.restored {
                    let full = full_state(new, &sub.resource, now, Some(&self.settings.gruus));
                    self.notify_of(&mut sub, full, true, &state)
                } else {
                    self.notify_of(&mut sub, infos.clone(), false, &state)
                };
                self.notify_in(&mut t, sub, n);
            } else if let Some(mut sub) = t.remove(&k) {
                let n = self.notify_of(
                    &mut sub,
                    infos.clone(),
                    false,
                    &format!("terminated;reason={reason}"),
                );
                self.queue(Job::Delete(k, Some(n)));
            }
        }
    }

    /// Ends the subscriptions lapsed at `now` with a last NOTIFY (RFC 6665 §4.2.2:
    /// `terminated;reason=timeout`) of the full state (`registration` looks it up).
    pub fn expire(&self, registration: impl Fn(&str) -> Option<Registration>, now: u64) {
        let mut t = self.table();
        let lapsed: Vec<String> = t
            .by_key
            .iter()
            .filter(|(_, s)| s.expires_at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in lapsed {
            if let Some(mut sub) = t.remove(&k) {
                let full = full_state(
                    registration(&sub.resource).as_ref(),
                    &sub.resource,
                    now,
                    Some(&self.settings.gruus),
                );
                let n = self.notify_of(&mut sub, full, true, "terminated;reason=timeout");
                self.queue(Job::Delete(k, Some(n)));
            }
        }
    }

    /// The S-CSCF stops for good (`[regevent] terminate_on_shutdown`): every
    /// subscription ends with a last NOTIFY of the full state and
    /// `terminated;reason=deactivated` (RFC 6665 §4.2.2: the subscriber may subscribe
    /// again at once, and reaches the S-CSCF that serves the user then), and leaves the
    /// store. Waits at most `wait` for the NOTIFYs' answers.
    pub async fn terminate_all(
        &self,
        registration: impl Fn(&str) -> Option<Registration>,
        now: u64,
        wait: std::time::Duration,
    ) {
        let all: Vec<Subscription> = {
            let mut t = self.table();
            let keys: Vec<String> = t.by_key.keys().cloned().collect();
            keys.iter().filter_map(|k| t.remove(k)).collect()
        };
        let mut sends = tokio::task::JoinSet::new();
        for mut sub in all {
            let full = full_state(
                registration(&sub.resource).as_ref(),
                &sub.resource,
                now,
                Some(&self.settings.gruus),
            );
            let n = self.notify_of(&mut sub, full, true, "terminated;reason=deactivated");
            self.queue(Job::Delete(sub.key(), None));
            let originator = self.originator.clone();
            sends.spawn(async move { originator.send(n).await });
        }
        // The deletions after every write queued before them.
        let (done, flushed) = tokio::sync::oneshot::channel();
        self.queue(Job::Flush(done));
        let _ = tokio::time::timeout(wait, flushed).await;
        let count = sends.len();
        let _ =
            tokio::time::timeout(wait, async { while sends.join_next().await.is_some() {} }).await;
        tracing::info!(
            subscriptions = count,
            "reg event subscriptions terminated at shutdown"
        );
    }

    /// Sends `notify` of subscription `key`; a failure response (but 491, 500, 503,
    /// 504), a timeout or a transport failure ends the subscription (RFC 6665 §4.2.2).
    async fn send(self: Arc<Self>, key: String, notify: SipMessage) {
        let outcome = self.originator.send(notify).await;
        let gone = match &outcome {
            Ok(r) => {
                let code = r.status().unwrap_or(0);
                if (200..300).contains(&code) {
                    return;
                }
                tracing::info!(code, "NOTIFY refused");
                // RFC 6665 §4.2.2, RFC 5057: a failure ends the subscription unless it
                // says to try again later.
                !matches!(code, 491 | 500 | 503 | 504)
            }
            Err(OriginateError::Busy) => {
                tracing::warn!("NOTIFY not sent: SIP engine busy");
                false
            }
            Err(e) => {
                tracing::info!(error = %e, "NOTIFY failed");
                true
            }
        };
        if gone && self.table().remove(&key).is_some() {
            tracing::info!("reg event subscription ended by its NOTIFY's failure");
            self.queue(Job::Delete(key, None));
        }
    }
}

/// Whether the NOTIFY `sub` just took must be written with it: when
/// [`NOTIFY_WRITE_LAG`] would otherwise go unwritten. Counts it either way.
fn write_due(sub: &mut Subscription) -> bool {
    if sub.unwritten.saturating_add(1) >= NOTIFY_WRITE_LAG {
        sub.unwritten = 0;
        true
    } else {
        sub.unwritten += 1;
        false
    }
}

/// `sub` as loaded from the store: its CSeq and version [`NOTIFY_WRITE_LAG`] higher
/// than written (NOTIFYs may have gone out unwritten before the restart), its next
/// NOTIFY of the full state and written.
fn restored(mut sub: Subscription) -> Subscription {
    sub.local_cseq = sub.local_cseq.saturating_add(NOTIFY_WRITE_LAG);
    sub.version = sub.version.saturating_add(NOTIFY_WRITE_LAG);
    sub.unwritten = NOTIFY_WRITE_LAG;
    sub.restored = true;
    sub
}

/// The store task: each job's write, in order, then its NOTIFY sent in a task of its
/// own; until the notifier is dropped.
async fn run(
    notifier: std::sync::Weak<Notifier>,
    store: BindingStore,
    mut rx: mpsc::Receiver<Job>,
) {
    while let Some(job) = rx.recv().await {
        let (key, written, notify) = match job {
            Job::Flush(done) => {
                let _ = done.send(());
                continue;
            }
            Job::Save(sub, n) => (sub.key(), store.save_subscription(&sub).await, n),
            Job::Send(key, n) => (key, Ok(()), Some(n)),
            Job::Delete(key, n) => {
                let r = store.delete_subscription(&key).await;
                (key, r, n)
            }
        };
        if let Err(e) = written {
            tracing::error!(error = %e, "cannot persist a reg event subscription");
        }
        let Some(notify) = notify else { continue };
        let Some(me) = notifier.upgrade() else { return };
        tokio::spawn(me.send(key, notify));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{reg, sqlite_url};

    const ALICE: &str = "sip:alice@x";

    fn settings(max_subscriptions: usize, max_per_identity: usize) -> NotifierSettings {
        NotifierSettings {
            min_expires: 60,
            max_expires: 600_000,
            default_expires: 3761,
            max_subscriptions,
            max_per_identity,
            contact: "<sip:127.0.0.1:5080>".into(),
            terminate_on_shutdown: false,
            gruus: Arc::new(crate::gruu::Gruus::random("127.0.0.1:5080")),
        }
    }

    fn subscribe(pai: &str, call_id: &str, extra: &str) -> SipMessage {
        let text = format!(
            "SUBSCRIBE {ALICE} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{call_id}\r\n\
             From: <{pai}>;tag=ue\r\nTo: <{ALICE}>\r\nCall-ID: {call_id}\r\nCSeq: 1 SUBSCRIBE\r\n\
             Contact: <sip:ue@10.0.0.1>\r\nEvent: reg\r\nP-Asserted-Identity: <{pai}>\r\n\
             {extra}Content-Length: 0\r\n\r\n"
        );
        SipMessage::parse(text.into_bytes()).unwrap()
    }

    fn in_dialog(call_id: &str, to_tag: &str, cseq: u32, extra: &str) -> SipMessage {
        let text = format!(
            "SUBSCRIBE sip:127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx{cseq}\r\n\
             From: <{ALICE}>;tag=ue\r\nTo: <{ALICE}>;tag={to_tag}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} SUBSCRIBE\r\nEvent: reg\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        SipMessage::parse(text.into_bytes()).unwrap()
    }

    fn to_tag(r: &SipMessage) -> String {
        let to = r.headers.get_str(&HeaderName::To).unwrap();
        NameAddr::parse(to).unwrap().tag().unwrap().to_string()
    }

    async fn notifier(dir: &std::path::Path, total: usize, per: usize) -> Arc<Notifier> {
        let store = BindingStore::open(&sqlite_url(dir)).await.unwrap();
        Notifier::new(settings(total, per), store, Originator::default())
            .await
            .unwrap()
    }

    use ims_sip::message::addr::NameAddr;

    // The store task and the NOTIFYs (which fail: no engine) run only when the test
    // awaits, so the table is checked between synchronous calls.
    #[tokio::test]
    async fn expiry_bounds_refresh_and_dialog_checks() {
        let dir = tempfile::tempdir().unwrap();
        let n = notifier(dir.path(), 10, 4).await;
        let alice = reg(ALICE, &[("sip:a@10.0.0.1", 5000)]);
        let brief = n.subscribe(
            &subscribe(ALICE, "c1", "Expires: 30\r\n"),
            ALICE,
            &alice,
            1000,
        );
        assert_eq!(brief.status(), Some(423));
        assert_eq!(brief.headers.get_str(&HeaderName::MinExpires), Some("60"));
        let ok = n.subscribe(
            &subscribe(ALICE, "c1", "Expires: 9999999\r\n"),
            ALICE,
            &alice,
            1000,
        );
        assert_eq!(ok.status(), Some(200));
        assert_eq!(ok.headers.get_str(&HeaderName::Expires), Some("600000"));
        let default = n.subscribe(&subscribe(ALICE, "c2", ""), ALICE, &alice, 1000);
        assert_eq!(default.headers.get_str(&HeaderName::Expires), Some("3761"));
        assert_eq!(n.len(), 2);
        let tag = to_tag(&ok);
        let lookup = |_: &str| Some(alice.clone());
        let refresh = n.in_dialog(&in_dialog("c1", &tag, 2, "Expires: 120\r\n"), lookup, 1000);
        assert_eq!(refresh.status(), Some(200));
        let ends: Vec<u64> = n
            .list(&[ALICE.to_string()])
            .iter()
            .map(|s| s.expires_at)
            .collect();
        assert!(ends.contains(&1120), "refreshed for 120 s: {ends:?}");
        let stale = n.in_dialog(&in_dialog("c1", &tag, 2, ""), lookup, 1000);
        assert_eq!(stale.status(), Some(500), "CSeq not above the last one");
        let unknown = n.in_dialog(&in_dialog("c1", "other", 3, ""), lookup, 1000);
        assert_eq!(unknown.status(), Some(481));
        let gone = n.in_dialog(&in_dialog("c1", &tag, 3, "Expires: 0\r\n"), lookup, 1000);
        assert_eq!(gone.status(), Some(200));
        assert_eq!(n.len(), 1);
        n.expire(lookup, 1000 + 3761);
        assert!(n.is_empty(), "the default-length one lapsed");
    }

    /// The one subscription of `n`.
    fn only(n: &Notifier) -> Subscription {
        let t = n.table();
        assert_eq!(t.by_key.len(), 1);
        t.by_key.values().next().unwrap().clone()
    }

    #[tokio::test]
    async fn a_notify_is_written_every_lag_th_time_and_a_restart_resumes_above_all_sent() {
        let dir = tempfile::tempdir().unwrap();
        let n = notifier(dir.path(), 10, 4).await;
        let alice = reg(ALICE, &[("sip:a@10.0.0.1", 5000)]);
        let refreshed = reg(ALICE, &[("sip:a@10.0.0.1", 6000)]);
        let ok = n.subscribe(&subscribe(ALICE, "c1", ""), ALICE, &alice, 1000);
        assert_eq!(ok.status(), Some(200));
        // The SUBSCRIBE's full-state NOTIFY (CSeq 1, version 0) is written with the row.
        let mut stored = only(&n);
        assert_eq!(
            (stored.local_cseq, stored.version, stored.unwritten),
            (1, 1, 0)
        );
        // Re-registrations: one NOTIFY each; the row is written every NOTIFY_WRITE_LAG-th.
        let (mut writes, mut sent) = (0, (0, 0));
        for i in 0..3 * NOTIFY_WRITE_LAG - 5 {
            n.registration_changed(Some(&alice), Some(&refreshed), Cause::Register, 1000);
            let sub = only(&n);
            sent = (sub.local_cseq, sub.version - 1);
            assert_eq!(sent, (i + 2, i + 1), "one CSeq and one version per NOTIFY");
            assert!(sub.unwritten < NOTIFY_WRITE_LAG);
            if sub.unwritten == 0 {
                writes += 1;
                stored = sub;
            }
        }
        assert_eq!(
            writes, 2,
            "written every {NOTIFY_WRITE_LAG}th NOTIFY, not each"
        );
        assert!(stored.unwritten == 0 && stored.local_cseq < sent.0);

        // A restart finds the last written row: it goes on above every CSeq and
        // version sent, with the full state, written at once.
        let dir = tempfile::tempdir().unwrap();
        let store = BindingStore::open(&sqlite_url(dir.path())).await.unwrap();
        store.save_subscription(&stored).await.unwrap();
        store.close().await;
        let n = notifier(dir.path(), 10, 4).await;
        let back = only(&n);
        assert!(back.restored);
        assert!(
            back.local_cseq >= sent.0 && back.version > sent.1,
            "{back:?} {sent:?}"
        );
        n.registration_changed(Some(&alice), Some(&refreshed), Cause::Register, 1000);
        let next = only(&n);
        assert!(next.local_cseq > sent.0 && next.version - 1 > sent.1);
        assert!(
            !next.restored,
            "the first NOTIFY after the restart is the full state"
        );
        assert_eq!(next.unwritten, 0, "and is written");
    }

    #[tokio::test]
    async fn shutdown_ends_every_subscription_in_memory_and_store() {
        let dir = tempfile::tempdir().unwrap();
        let n = notifier(dir.path(), 10, 4).await;
        let alice = reg(ALICE, &[("sip:a@10.0.0.1", 5000)]);
        for c in ["c1", "c2"] {
            let r = n.subscribe(&subscribe(ALICE, c, ""), ALICE, &alice, 1000);
            assert_eq!(r.status(), Some(200));
        }
        let lookup = |_: &str| Some(alice.clone());
        n.terminate_all(lookup, 1000, std::time::Duration::from_secs(5))
            .await;
        assert!(n.is_empty());
        let store = BindingStore::open(&sqlite_url(dir.path())).await.unwrap();
        assert!(store.load_subscriptions().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn subscriptions_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let n = notifier(dir.path(), 3, 2).await;
        let alice = reg(ALICE, &[("sip:a@10.0.0.1", 5000)]);
        let tel = "tel:+1555";
        for c in ["c1", "c2"] {
            let r = n.subscribe(&subscribe(ALICE, c, ""), ALICE, &alice, 1000);
            assert_eq!(r.status(), Some(200));
        }
        // The same subscriber again: its oldest subscription makes room.
        let r = n.subscribe(&subscribe(ALICE, "c3", ""), ALICE, &alice, 1001);
        assert_eq!(r.status(), Some(200));
        assert_eq!(n.len(), 2);
        // Another subscriber (the user's other identity) finds the identity full.
        let r = n.subscribe(&subscribe(tel, "c4", ""), ALICE, &alice, 1001);
        assert_eq!(r.status(), Some(403));
        // Overall bound: a third subscription to another identity fits, a fourth not.
        let r = n.subscribe(&subscribe(ALICE, "c5", ""), tel, &alice, 1001);
        assert_eq!(r.status(), Some(200));
        let r = n.subscribe(&subscribe(ALICE, "c6", ""), tel, &alice, 1001);
        assert_eq!(r.status(), Some(503));
    }
}
