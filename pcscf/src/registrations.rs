//! What the P-CSCF remembers of each UE registration (TS 24.229 §5.2.2.1 on the 200
//! to REGISTER): the contacts and their expiry, the Service-Route (RFC 3608), the
//! P-Associated-URI list (RFC 7315 §4.1) and the flow the UE registered over, with its
//! flow token (RFC 5626). Entries go on de-registration (a 200 with no remaining
//! contact of the UE, or `Expires: 0`) and on expiry; the store is bounded.
//!
//! They survive a restart when `[pcscf] store` keeps them ([`crate::store`]): the
//! policy writes the state of a UDP flow after each 200 to REGISTER and relays the 200
//! once written, and the node [`Registrations::restore`]s them at start. This store in
//! memory is what every decision reads; the database is only its durable copy.
//!
//! One registration per flow: a UE that registers several public identities over one
//! flow keeps the last one's Service-Route and associated URIs (the implicit
//! registration set makes one REGISTER enough for the usual UE).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ims_sip::message::addr::NameAddr;
use ims_sip::message::delta_seconds::delta_seconds;
use ims_sip::message::uri::Uri;
use ims_sip::transport::Flow;
use ims_sip::{HeaderName, SipMessage};
use tokio::time::Instant;

use crate::flow_token::label;
use crate::reginfo::RegistrationEnd;

/// A UE's registration as learned from the 200 to its REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The flow the UE registered over.
    pub flow: Flow,
    /// The registered public identity (To of the REGISTER).
    pub public_identity: String,
    /// The UE's contact URIs accepted by the registrar.
    pub contacts: Vec<String>,
    /// When the last contact expires.
    pub expires: Instant,
    /// The expiry the registrar granted that contact, in seconds (what is left of it
    /// for a registration restored from the store): it bounds how far the stored
    /// expiry may lag ([`ims_runtime::expiry_lag`]).
    pub granted: u32,
    /// Service-Route values, topmost first (pre-loaded on the UE's requests).
    pub service_route: Vec<String>,
    /// P-Associated-URI URIs, the default public identity first.
    pub associated: Vec<String>,
}

/// What a 200 to REGISTER did to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// The registration is stored (new or refreshed).
    Registered,
    /// The UE de-registered: its entry is gone.
    Deregistered,
    /// The store is full: not remembered.
    Full,
    /// Not a 200 to REGISTER, or nothing usable in it.
    Ignored,
}

#[derive(Default)]
struct Inner {
    by_flow: HashMap<Flow, Registration>,
    by_label: HashMap<String, Flow>,
    /// Flows of registrations the network ended ([`Registrations::end`]), by label,
    /// still open to in-dialog requests from the core until the instant: the
    /// notifier's NOTIFY to the UE's own subscription, sent at the same moment as
    /// ours, still reaches it. At most as many as `by_flow` may hold.
    draining: HashMap<String, (Flow, Instant)>,
}

/// How long the flow of a registration the network ended stays open to in-dialog
/// requests from the core.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Registrations by flow, bounded.
pub struct Registrations {
    inner: Mutex<Inner>,
    max: usize,
}

impl std::fmt::Debug for Registrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrations")
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// The URI inside a name-addr or addr-spec header value.
pub fn uri_of(value: &str) -> Option<String> {
    NameAddr::parse(value).ok().map(|a| a.uri.to_string())
}

/// Two contact URIs name the same binding: same scheme, user, host and port
/// (RFC 3261 §10.2.4 compares URIs; parameters are not compared here).
fn same_contact(a: &str, b: &str) -> bool {
    match (Uri::parse(a), Uri::parse(b)) {
        (Ok(a), Ok(b)) => {
            a.scheme.eq_ignore_ascii_case(b.scheme)
                && a.user == b.user
                && a.host.eq_ignore_ascii_case(b.host)
                && a.port == b.port
        }
        _ => false,
    }
}

/// Two public identities are the same: for SIP URIs scheme, user, host and port
/// (case-insensitive host); anything else (tel URIs) as written.
fn same_identity(a: &str, b: &str) -> bool {
    match (Uri::parse(a), Uri::parse(b)) {
        (Ok(x), Ok(_)) if x.scheme.to_ascii_lowercase().starts_with("sip") => same_contact(a, b),
        _ => a == b,
    }
}

/// The Expires header of a message as seconds (saturated at 2^32-1, RFC 3261 §20.19),
/// if present and numeric.
fn expires_header(msg: &SipMessage) -> Option<u32> {
    msg.headers
        .get_str(&HeaderName::Expires)
        .and_then(delta_seconds)
}

impl Registrations {
    /// An empty store holding at most `max` registrations.
    pub fn new(max: usize) -> Registrations {
        Registrations {
            inner: Mutex::new(Inner::default()),
            max,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update is a short statement sequence: the maps stay consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Learns from `response` to `request` (a REGISTER received over `flow`) at `now`.
    pub fn learn(
        &self,
        request: &SipMessage,
        flow: Flow,
        response: &SipMessage,
        now: Instant,
    ) -> Learned {
        if response.status() != Some(200) || request.method() != Some(&ims_sip::Method::Register) {
            return Learned::Ignored;
        }
        let Some(public_identity) = request.headers.get_str(&HeaderName::To).and_then(uri_of)
        else {
            return Learned::Ignored;
        };
        let default_expiry = expires_header(response);
        let ours: Vec<String> = request
            .headers
            .values(&HeaderName::Contact)
            .filter_map(|v| std::str::from_utf8(&v).ok().and_then(uri_of))
            .collect();
        // Each of the UE's contacts with the expiry the registrar granted it.
        let mut contacts = Vec::new();
        let mut longest = 0u32;
        for value in response.headers.values(&HeaderName::Contact) {
            let Ok(text) = std::str::from_utf8(&value) else {
                continue;
            };
            let Ok(addr) = NameAddr::parse(text) else {
                continue;
            };
            if !ours.iter().any(|c| same_contact(c, addr.uri)) {
                continue;
            }
            let secs = addr
                .param("expires")
                .flatten()
                .and_then(delta_seconds)
                .or(default_expiry)
                .unwrap_or(0);
            if secs > 0 {
                contacts.push(addr.uri.to_string());
                longest = longest.max(secs);
            }
        }
        // The registrar's number is at most 2^32-1 s (about 136 years); a clock that
        // cannot go that far ignores the 200 instead of panicking.
        let Some(expires) = now.checked_add(Duration::from_secs(u64::from(longest))) else {
            tracing::warn!(
                secs = longest,
                "registration expiry out of the clock's range"
            );
            return Learned::Ignored;
        };
        let mut inner = self.lock();
        if contacts.is_empty() {
            let removed = inner.by_flow.remove(&flow).is_some();
            inner.by_label.remove(&label(&flow));
            tracing::debug!(%flow, removed, "UE de-registered");
            return Learned::Deregistered;
        }
        if !inner.by_flow.contains_key(&flow) && inner.by_flow.len() >= self.max {
            // Make room from expired entries before refusing.
            purge(&mut inner, now);
            if inner.by_flow.len() >= self.max {
                tracing::warn!(max = self.max, "registration store full");
                return Learned::Full;
            }
        }
        let service_route = response
            .headers
            .values(&HeaderName::ServiceRoute)
            .filter_map(|v| std::str::from_utf8(&v).ok().map(str::to_string))
            .collect();
        let associated = response
            .headers
            .values(&HeaderName::PAssociatedUri)
            .filter_map(|v| std::str::from_utf8(&v).ok().and_then(uri_of))
            .collect();
        let registration = Registration {
            flow,
            public_identity,
            contacts,
            expires,
            granted: longest,
            service_route,
            associated,
        };
        inner.by_label.insert(label(&flow), flow);
        inner.by_flow.insert(flow, registration);
        Learned::Registered
    }

    /// The live registration over `flow` at `now`.
    pub fn by_flow(&self, flow: &Flow, now: Instant) -> Option<Registration> {
        let mut inner = self.lock();
        let reg = inner.by_flow.get(flow)?;
        if reg.expires > now {
            return Some(reg.clone());
        }
        inner.by_flow.remove(flow);
        inner.by_label.remove(&label(flow));
        None
    }

    /// The live registration whose flow has this label (from a flow token).
    pub fn by_label(&self, flow_label: &str, now: Instant) -> Option<Registration> {
        let flow = *self.lock().by_label.get(flow_label)?;
        self.by_flow(&flow, now)
    }

    /// Whether a registration over `flow` fits at `now`: the flow is known, or there is
    /// room (after dropping expired entries).
    pub fn has_room(&self, flow: &Flow, now: Instant) -> bool {
        let mut inner = self.lock();
        if inner.by_flow.contains_key(flow) || inner.by_flow.len() < self.max {
            return true;
        }
        purge(&mut inner, now);
        inner.by_flow.len() < self.max
    }

    /// Takes back registrations read from the store after a restart
    /// ([`crate::store::StoredRegistration::restore`]), up to the store's bound, in the
    /// order given, skipping those expired at `now` and flows already known; returns
    /// how many were taken.
    pub fn restore(&self, restored: Vec<Registration>, now: Instant) -> usize {
        let mut inner = self.lock();
        let mut taken = 0;
        for reg in restored {
            if inner.by_flow.len() >= self.max {
                break;
            }
            if reg.expires <= now || inner.by_flow.contains_key(&reg.flow) {
                continue;
            }
            inner.by_label.insert(label(&reg.flow), reg.flow);
            inner.by_flow.insert(reg.flow, reg);
            taken += 1;
        }
        taken
    }

    /// Applies what a reg event NOTIFY said ([`crate::reginfo::parse`]) to the
    /// registration over `flow`: a `<registration>` of its public identity (or one of
    /// its associated URIs) in state terminated drops it; its contacts the document
    /// lists as terminated go, and it is dropped when none is left. True when it was
    /// dropped.
    pub fn end(&self, flow: &Flow, ends: &[RegistrationEnd], now: Instant) -> bool {
        let mut inner = self.lock();
        let Some(reg) = inner.by_flow.get_mut(flow) else {
            return false;
        };
        let identities: Vec<&str> = std::iter::once(reg.public_identity.as_str())
            .chain(reg.associated.iter().map(String::as_str))
            .collect();
        let mut drop_all = false;
        for end in ends {
            if !identities.iter().any(|i| same_identity(i, &end.aor)) {
                continue;
            }
            drop_all |= end.terminated;
            reg.contacts
                .retain(|c| !end.ended_contacts.iter().any(|e| same_contact(c, e)));
        }
        if !drop_all && !reg.contacts.is_empty() {
            return false;
        }
        inner.by_flow.remove(flow);
        let flow_label = label(flow);
        inner.by_label.remove(&flow_label);
        if inner.draining.len() < self.max {
            if let Some(until) = now.checked_add(DRAIN) {
                inner.draining.insert(flow_label, (*flow, until));
            }
        }
        true
    }

    /// The flow of a registration the network ended less than [`DRAIN`] ago, by
    /// label: for in-dialog requests toward its UE only.
    pub fn draining(&self, flow_label: &str, now: Instant) -> Option<Flow> {
        let inner = self.lock();
        let (flow, until) = inner.draining.get(flow_label)?;
        (*until > now).then_some(*flow)
    }

    /// Drops expired registrations; returns how many remain.
    pub fn purge(&self, now: Instant) -> usize {
        let mut inner = self.lock();
        purge(&mut inner, now);
        inner.by_flow.len()
    }
}

fn purge(inner: &mut Inner, now: Instant) {
    inner.draining.retain(|_, (_, until)| *until > now);
    let expired: Vec<Flow> = inner
        .by_flow
        .values()
        .filter(|r| r.expires <= now)
        .map(|r| r.flow)
        .collect();
    for flow in expired {
        inner.by_flow.remove(&flow);
        inner.by_label.remove(&label(&flow));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{flows, register_200, register_200_raw, sip};
    use proptest::prelude::*;

    #[tokio::test(start_paused = true)]
    async fn a_200_to_register_is_learned_and_expires() {
        let flow = flows(1).await[0];
        let regs = Registrations::new(10);
        let (req, ok) = register_200(600);
        let now = Instant::now();
        assert_eq!(regs.learn(&req, flow, &ok, now), Learned::Registered);
        let reg = regs.by_flow(&flow, now).unwrap();
        // Only the UE's own contact, with the expiry the registrar granted.
        assert_eq!(reg.contacts, vec!["sip:alice@127.0.0.1:5062"]);
        assert_eq!(reg.expires, now + Duration::from_secs(600));
        assert_eq!(
            reg.service_route,
            vec!["<sip:orig@scscf.ims.example.net:5080;lr>"]
        );
        assert_eq!(
            reg.associated,
            vec!["sip:alice@ims.example.net", "tel:+15551230001"]
        );
        assert_eq!(reg.public_identity, "sip:alice@ims.example.net");
        assert_eq!(regs.by_label(&label(&flow), now), Some(reg));
        assert_eq!(regs.purge(now + Duration::from_secs(599)), 1);
        assert_eq!(regs.by_flow(&flow, now + Duration::from_secs(600)), None);
        assert_eq!(regs.purge(now + Duration::from_secs(600)), 0);
    }

    #[tokio::test]
    async fn deregistration_and_failures_are_handled() {
        let flow = flows(1).await[0];
        let regs = Registrations::new(10);
        let now = Instant::now();
        let (req, ok) = register_200(600);
        regs.learn(&req, flow, &ok, now);
        // A 401 teaches nothing.
        let text = String::from_utf8(ok.to_bytes().to_vec()).unwrap();
        let unauthorized =
            SipMessage::parse(text.replacen("200 OK", "401 Unauthorized", 1)).unwrap();
        assert_eq!(regs.learn(&req, flow, &unauthorized, now), Learned::Ignored);
        assert!(regs.by_flow(&flow, now).is_some());
        // The registrar's 200 to `Expires: 0` lists no contact of this UE.
        let (_, dereg) = register_200(0);
        assert_eq!(regs.learn(&req, flow, &dereg, now), Learned::Deregistered);
        assert_eq!(regs.by_flow(&flow, now), None);
        assert_eq!(regs.by_label(&label(&flow), now), None);
        // A MESSAGE's 200 is not a registration.
        let msg = sip("MESSAGE sip:b@x SIP/2.0\r\n");
        assert_eq!(regs.learn(&msg, flow, &ok, now), Learned::Ignored);
    }

    #[tokio::test]
    async fn the_store_is_bounded() {
        let fl = flows(3).await;
        let regs = Registrations::new(2);
        let now = Instant::now();
        let (req, ok) = register_200(600);
        assert_eq!(regs.learn(&req, fl[0], &ok, now), Learned::Registered);
        assert_eq!(regs.learn(&req, fl[1], &ok, now), Learned::Registered);
        assert_eq!(regs.learn(&req, fl[2], &ok, now), Learned::Full);
        assert!(!regs.has_room(&fl[2], now));
        assert!(regs.has_room(&fl[1], now));
        // A refresh of a known flow still fits.
        assert_eq!(regs.learn(&req, fl[1], &ok, now), Learned::Registered);
        // Expired entries make room.
        let later = now + Duration::from_secs(601);
        assert!(regs.has_room(&fl[2], later));
        assert_eq!(regs.learn(&req, fl[2], &ok, later), Learned::Registered);
        assert_eq!(regs.purge(later), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn restored_registrations_are_found_by_flow_and_label_within_the_bound() {
        let fl = flows(3).await;
        let now = Instant::now();
        let (req, ok) = register_200(600);
        let learned = Registrations::new(10);
        for f in &fl {
            learned.learn(&req, *f, &ok, now);
        }
        let all: Vec<Registration> = fl.iter().filter_map(|f| learned.by_flow(f, now)).collect();
        let mut expired = all[2].clone();
        expired.expires = now;
        // A store of two: the expired one is skipped, the third does not fit.
        let regs = Registrations::new(2);
        let taken = regs.restore(
            vec![expired, all[0].clone(), all[1].clone(), all[2].clone()],
            now,
        );
        assert_eq!(taken, 2);
        assert_eq!(regs.by_label(&label(&fl[0]), now), Some(all[0].clone()));
        assert_eq!(regs.by_flow(&fl[1], now), Some(all[1].clone()));
        assert_eq!(regs.by_flow(&fl[2], now), None);
    }

    /// Expiries no registrar should send, in the `expires` parameter and in Expires:
    /// each was once `Instant + Duration` overflowing in the engine's task (a panic
    /// that stopped the P-CSCF's proxying). Now saturated at 2^32-1 s (RFC 3261
    /// §20.19) and added with checked arithmetic.
    #[tokio::test]
    async fn hostile_expiries_are_capped_not_panicking() {
        let flow = flows(1).await[0];
        let regs = Registrations::new(10);
        let now = Instant::now();
        let cap = now + Duration::from_secs(u64::from(u32::MAX));
        for value in [
            "4294967295",
            "4294967296",
            "18446744073709551615",
            "18446744073709551616",
            "9223372036854775808",
            "99999999999999999999",
        ] {
            for (params, extra) in [
                (format!(";expires={value}"), String::new()),
                (String::new(), format!("Expires: {value}\r\n")),
            ] {
                let (req, ok) = register_200_raw(&params, &extra);
                assert_eq!(regs.learn(&req, flow, &ok, now), Learned::Registered);
                assert_eq!(regs.by_flow(&flow, now).unwrap().expires, cap, "{value}");
            }
        }
        // Not a number: no expiry, so no registration.
        let (req, ok) = register_200_raw(";expires=-1", "");
        assert_eq!(regs.learn(&req, flow, &ok, now), Learned::Deregistered);
    }

    #[tokio::test]
    async fn a_notify_that_ends_the_registration_drops_it() {
        let fl = flows(3).await;
        let regs = Registrations::new(10);
        let now = Instant::now();
        let (req, ok) = register_200(600);
        for f in &fl {
            regs.learn(&req, *f, &ok, now);
        }
        let end = |aor: &str, terminated, contacts: &[&str]| RegistrationEnd {
            aor: aor.into(),
            terminated,
            ended_contacts: contacts.iter().map(|c| c.to_string()).collect(),
        };
        // Another user's registration, or another contact of Alice's, ends nothing.
        assert!(!regs.end(&fl[0], &[end("sip:bob@ims.example.net", true, &[])], now));
        assert!(!regs.end(
            &fl[0],
            &[end(
                "sip:alice@ims.example.net",
                false,
                &["sip:alice@10.9.9.9:5062"]
            )],
            now
        ));
        assert!(regs.by_flow(&fl[0], now).is_some());
        // Her contact deactivated; her registration terminated (by an associated URI).
        assert!(regs.end(
            &fl[0],
            &[end(
                "sip:alice@IMS.example.net",
                false,
                &["sip:alice@127.0.0.1:5062"]
            )],
            now
        ));
        assert!(regs.end(&fl[1], &[end("tel:+15551230001", true, &[])], now));
        assert_eq!(regs.by_flow(&fl[0], now), None);
        assert_eq!(regs.by_label(&label(&fl[1]), now), None);
        assert_eq!(regs.purge(now), 1);
        assert!(!regs.end(&fl[0], &[end("sip:alice@ims.example.net", true, &[])], now));
        // Their flows stay open to in-dialog requests a moment.
        assert_eq!(regs.draining(&label(&fl[0]), now), Some(fl[0]));
        assert_eq!(regs.draining(&label(&fl[2]), now), None);
        regs.purge(now + DRAIN);
        assert_eq!(regs.draining(&label(&fl[1]), now), None);
    }

    /// One UDP flow for every proptest case (the store only keys on it).
    fn one_flow() -> Flow {
        static FLOW: std::sync::OnceLock<Flow> = std::sync::OnceLock::new();
        *FLOW.get_or_init(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(flows(1))[0]
        })
    }

    proptest! {
        /// Whatever a registrar writes as expiry, learning never panics, and a stored
        /// registration never outlives 2^32-1 seconds.
        #[test]
        fn learning_never_panics_on_hostile_expiries(
            param in "[0-9]{1,40}|[0-9a-zA-Z.+-]{0,40}",
            header in "[0-9]{1,40}|[0-9a-zA-Z.+-]{0,40}",
            with_param in any::<bool>(),
            with_header in any::<bool>(),
        ) {
            let flow = one_flow();
            let regs = Registrations::new(10);
            let params = if with_param { format!(";expires={param}") } else { String::new() };
            let extra = if with_header { format!("Expires: {header}\r\n") } else { String::new() };
            let (req, ok) = register_200_raw(&params, &extra);
            let now = Instant::now();
            let _ = regs.learn(&req, flow, &ok, now);
            if let Some(reg) = regs.by_flow(&flow, now) {
                prop_assert!(reg.expires <= now + Duration::from_secs(u64::from(u32::MAX)));
            }
        }
    }
}
