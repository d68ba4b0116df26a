//! The S-CSCF registrar (TS 24.229 §5.4.1, RFC 3261 §10.3, RFC 3327, RFC 3608): answers
//! REGISTER after authentication ([`crate::auth`]), informs the HSS with SAR
//! (REGISTRATION, RE_REGISTRATION, USER_DEREGISTRATION, TIMEOUT_DEREGISTRATION,
//! AUTHENTICATION_FAILURE; TS 29.228 §6.1.2), keeps the bindings ([`crate::location`])
//! in memory and in the store ([`crate::store`]), and serves the HSS's RTR (drop the
//! bindings, TS 29.228 §6.1.3) and PPR (replace the profile, §6.1.4). It also fetches
//! and keeps the profiles of identities served in the unregistered state
//! ([`crate::unregistered`]) and releases them at the HSS when they lapse.
//!
//! The 200 OK lists every current binding of the identity with its remaining expiry,
//! the Service-Route (RFC 3608) toward our originating entry point, the implicit
//! registration set as P-Associated-URI (RFC 7315 §4.1, TS 24.229 §5.4.1.2.2 step 8) and
//! the Path received (RFC 3327 §5.3).
//!
//! Each change of a registration is handed to the reg event notifier
//! ([`crate::regevent`], [`Registrar::notify_to`]) with its cause, once it is in memory,
//! and to the third-party registration ([`crate::thirdparty`],
//! [`Registrar::third_party_to`]): a REGISTER of the UE once its 200 OK is built, a
//! de-registration by the network when it happens. An AS whose failure de-registers the
//! user (SESSION_TERMINATED) makes a network-initiated de-registration here: SAR
//! ADMINISTRATIVE_DEREGISTRATION, reg event `rejected`.
//!
//! Every change of a registration (REGISTER, de-registration, expiry, RTR, PPR) runs
//! under the lock of the identities it touches ([`crate::identity_lock`]): two changes
//! of one identity apply one after the other, the others at the same time. The store
//! writes go through one group-commit writer ([`crate::store::writer`]), so concurrent
//! registrations share transactions; a 200 OK is sent only after the commit of its
//! registration.
//!
//! In a pool of S-CSCFs on one store ([`Settings::pool`], `docs/scale-out.md`), a
//! registration this S-CSCF does not hold in memory is read from the store: a REGISTER
//! of a user another S-CSCF served is a re-registration on the stored bindings, and a
//! request for such a user takes the registration over ([`Registrar::restore`]: SAR
//! with our Server-Name, then the row claimed), so the user is not asked to register
//! again (TS 23.380 §4). The registrations of a dead peer are taken over by
//! [`takeover`].

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use cloud_auth::filter::sip::SipFilter;
use ims_diameter::cx::{CxResult, Ppr, Rtr, ServerAssignmentType};
use ims_diameter::dict::{experimental, result};
use ims_diameter::peer::PeerState;
use ims_runtime::budget::Backoff;
use ims_runtime::NodeStatus;
use ims_sip::auth::decoy::Decoys;
use ims_sip::auth::{carries_response, digest_credentials, Algorithm, Credentials};
use ims_sip::message::addr::NameAddr;
use ims_sip::message::build::{reason_phrase, response_with};
use ims_sip::message::identity::public_identity;
use ims_sip::{HeaderName, SipMessage};
use tokio::time::Instant;

use crate::auth::{scheme_for, Challenges, VectorError, Verdict};
use crate::cloud_auth::check_registration;
use crate::cx::CxClient;
use crate::gruu::{supports_gruu, Gruus};
use crate::identity_lock::{IdentityGuard, IdentityLocks, SHARDS};
use crate::ifc::RegistrationType;
use crate::location::{
    apply, read_contacts, ContactError, ContactRequest, ExpiryLimits, Location, Registration,
    RequestMeta,
};
use crate::profile::UserProfile;
use crate::regevent::{Cause, Notifier};
use crate::store::writer::{StoreWriter, WriterStats, MAX_BATCH};
use crate::store::written::Written;
use crate::store::{BindingStore, Change};
use crate::thirdparty::ThirdParty;
use crate::unregistered::UnregisteredProfiles;

pub mod takeover;
mod third_party;

/// How often lapsed bindings are looked for.
pub const EXPIRY_TICK: Duration = Duration::from_secs(1);
/// How long the first expiry sweep waits for the Cx peer to open.
pub const EXPIRY_FIRST_WAIT: Duration = Duration::from_secs(10);

/// Registrar settings, from `[registrar]` and `[node]`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Expiry bounds.
    pub limits: ExpiryLimits,
    /// The Service-Route value returned in the 200 OK, e.g.
    /// `<sip:orig@127.0.0.1:5080;lr>`.
    pub service_route: String,
    /// Realm of AKA challenges and the domain of identities derived from To.
    pub realm: String,
    /// The cloud-authorization filter; `None` when `[cloud_auth]` is off.
    pub cloud_auth: Option<SipFilter>,
    /// Seconds an unregistered identity's profile is kept (`[session]
    /// unregistered_ttl_secs`).
    pub unregistered_ttl_secs: u64,
    /// Most unregistered profiles kept at once (`[session] max_unregistered_profiles`).
    pub max_unregistered_profiles: usize,
    /// Failed authentications per private identity, with back-off (`[budget]`); `None`:
    /// no back-off.
    pub failures: Option<Arc<Backoff<String>>>,
    /// Several S-CSCFs share the store (`[registrar] pool`): a registration not in
    /// memory is looked for there.
    pub pool: bool,
    /// The GRUU key and host ([`crate::gruu`]), shared with session routing and the
    /// reg event notifier.
    pub gruus: Arc<Gruus>,
}

/// The registrar.
pub struct Registrar {
    settings: Settings,
    decoys: Decoys,
    challenges: Challenges,
    cx: CxClient,
    store: BindingStore,
    writer: StoreWriter,
    /// What the store holds of each registration, as last written ([`Written`]).
    written: Written,
    location: Mutex<Location>,
    unregistered: UnregisteredProfiles,
    order: IdentityLocks,
    status: OnceLock<NodeStatus>,
    outcomes: crate::auth_metrics::AuthOutcomes,
    /// The reg event notifier told of every change of a registration.
    notifier: OnceLock<Arc<Notifier>>,
    /// The sender of third-party REGISTERs.
    third_party: OnceLock<Arc<ThirdParty>>,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

pub use ims_sip::auth::nonce::unix_now;

fn reply(req: &SipMessage, code: u16, extra: &[(HeaderName, &str)]) -> SipMessage {
    response_with(req, code, reason_phrase(code), None, extra)
}

/// The URI of the To header (the public identity being registered).
fn to_uri(req: &SipMessage) -> Option<String> {
    let to = req.headers.get_str(&HeaderName::To)?;
    NameAddr::parse(to).ok().map(|a| a.uri.to_string())
}

impl Registrar {
    /// A registrar over `cx` and `store`, loaded with the registrations the store holds
    /// for its owner (those already lapsed are dropped by the first expiry run); starts
    /// the store's writer task.
    pub async fn new(
        settings: Settings,
        challenges: Challenges,
        cx: CxClient,
        store: BindingStore,
    ) -> Result<Arc<Registrar>, crate::store::StoreError> {
        let mut location = Location::default();
        let written = Written::new(settings.pool);
        for reg in store.load_owned().await? {
            written.saved(&reg);
            location.put(reg);
        }
        tracing::info!(
            contacts = location.contacts(),
            "bindings reloaded from the store"
        );
        let unregistered = UnregisteredProfiles::new(
            settings.unregistered_ttl_secs,
            settings.max_unregistered_profiles,
        );
        Ok(Arc::new(Registrar {
            decoys: Decoys::new(challenges.lifetime(), challenges.capacity()),
            settings,
            unregistered,
            challenges,
            cx,
            writer: StoreWriter::spawn(store.clone(), MAX_BATCH),
            written,
            store,
            location: Mutex::new(location),
            order: IdentityLocks::new(SHARDS),
            status: OnceLock::new(),
            outcomes: Default::default(),
            notifier: OnceLock::new(),
            third_party: OnceLock::new(),
        }))
    }

    /// Tells `notifier` of every change of a registration from now on (RFC 3680
    /// NOTIFYs); a second notifier is ignored.
    pub fn notify_to(&self, notifier: Arc<Notifier>) {
        let _ = self.notifier.set(notifier);
    }

    /// Hands a change of a registration to the notifier, if any, and a de-registration
    /// the network made to the third-party registration. Never called with the
    /// location's lock held.
    fn changed(&self, old: Option<&Registration>, new: Option<&Registration>, cause: Cause) {
        let now = unix_now();
        if let Some(n) = self.notifier.get() {
            n.registration_changed(old, new, cause, now);
        }
        if let (Some(tp), Some(old), None, Cause::Network(_) | Cause::Expiry) =
            (self.third_party.get(), old, new, cause)
        {
            tp.network_deregistered(old, now);
        }
    }

    /// Third-party REGISTERs for the UE's `req` answered with `ok` (TS 24.229 §5.4.1.7).
    fn third_party(
        &self,
        kind: RegistrationType,
        reg: &Registration,
        req: &SipMessage,
        ok: &SipMessage,
    ) {
        if let Some(tp) = self.third_party.get() {
            tp.registered(kind, reg, req, ok, unix_now());
        }
    }

    fn location(&self) -> std::sync::MutexGuard<'_, Location> {
        self.location.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The authentication outcomes counted so far (`/metrics`).
    pub fn auth_outcomes(&self) -> &crate::auth_metrics::AuthOutcomes {
        &self.outcomes
    }

    /// The cloud-authorization filter, when `[cloud_auth]` is on.
    pub fn cloud_auth(&self) -> Option<&SipFilter> {
        self.settings.cloud_auth.as_ref()
    }

    /// Publishes `registered_contacts` and `unregistered_profiles` on `/health` from now
    /// on.
    pub fn publish_to(&self, status: NodeStatus) {
        let _ = self.status.set(status);
        self.publish();
    }

    fn publish(&self) {
        let n = self.location().contacts();
        if let Some(s) = self.status.get() {
            s.set("registered_contacts", n as u64);
            s.set("unregistered_profiles", self.unregistered.len() as u64);
        }
    }

    /// The Diameter peers toward the HSSs (their metrics, the readiness).
    pub fn cx_peers(&self) -> &ims_diameter::peer::PeerSet {
        self.cx.peers()
    }

    /// State of Cx toward the HSSs: open while one peer is.
    pub fn cx_state(&self) -> PeerState {
        self.cx.peers().state()
    }

    /// Number of bindings held.
    pub fn contacts(&self) -> usize {
        self.location().contacts()
    }

    /// The counters of the store's writer (changes, transactions).
    pub fn store_stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// REGISTERs not written to the store: only their expiries (and CSeqs) changed,
    /// within the bound ([`Written`]).
    pub fn refreshes_unwritten(
        &self,
    ) -> &ims_runtime::prometheus_client::metrics::counter::Counter {
        &self.written.unwritten
    }

    /// The registered identity whose registration covers `impu`, if any.
    fn registered_key(&self, impu: &str) -> Option<String> {
        self.location().get(impu).map(|r| r.impu.clone())
    }

    /// Locks `impu` and the registered identity whose registration covers it (the
    /// record a REGISTER of `impu` reads and replaces), checked again once locked.
    async fn lock_registration(&self, impu: &str) -> IdentityGuard<'_> {
        loop {
            let key = self.registered_key(impu);
            let guard = self
                .order
                .lock(std::iter::once(impu).chain(key.as_deref()))
                .await;
            if self.registered_key(impu) == key {
                return guard;
            }
        }
    }

    /// Answers a REGISTER.
    pub async fn register(&self, req: &SipMessage) -> SipMessage {
        let Some(impu) = to_uri(req) else {
            tracing::info!("REGISTER without a readable To");
            return reply(req, 400, &[]);
        };
        // The UE may send several Authorization headers (Digest and an RFC 8898 Bearer
        // token, design brief §3): the registrar reads the Digest one.
        let (creds, raw_auth) = digest_credentials(req);
        let impi = creds.as_ref().map_or_else(
            || {
                impu.trim_start_matches("sips:")
                    .trim_start_matches("sip:")
                    .to_string()
            },
            |c| c.username.clone(),
        );
        let now = unix_now();
        if let Some(answer) = self.backed_off(req, &impi, creds.as_ref(), raw_auth, now) {
            return answer;
        }
        let verdict = creds.as_ref().map_or(Verdict::Challenge, |c| {
            self.challenges.verify(c, "REGISTER", &impu, now)
        });
        let realm = creds
            .as_ref()
            .map_or(self.settings.realm.as_str(), |c| c.realm.as_str())
            .to_string();
        self.count_outcome(&verdict, scheme_for(creds.as_ref(), raw_auth));
        match verdict {
            Verdict::Valid => {
                if let Some(f) = &self.settings.failures {
                    f.success(&impi);
                }
            }
            Verdict::Challenge | Verdict::Replay => {
                let scheme = scheme_for(creds.as_ref(), raw_auth);
                return self
                    .challenge(req, &impi, &impu, &realm, scheme, None, false)
                    .await;
            }
            Verdict::Stale => {
                let scheme = scheme_for(creds.as_ref(), raw_auth);
                return self
                    .challenge(req, &impi, &impu, &realm, scheme, None, true)
                    .await;
            }
            Verdict::Resync(rand_auts) => {
                let scheme = crate::auth::scheme::AKA;
                return self
                    .challenge(req, &impi, &impu, &realm, scheme, Some(rand_auts), false)
                    .await;
            }
            Verdict::Wrong => {
                if let Some(f) = &self.settings.failures {
                    if let Some(d) = f.failure(impi.clone(), Instant::now()) {
                        // One line per back-off window and identity at most.
                        tracing::info!(%impi, secs = d.as_secs(), "authentication back-off");
                    }
                }
                // TS 24.229 §5.4.1.2.3 (AKA) and §5.4.1.2.3A (SIP digest): an incorrect
                // response gets 403; the registration state stays as it was. An
                // unregistered user's S-CSCF assignment is released (TS 29.228 §6.1.2).
                if self.location().get(&impu).is_none() {
                    if let Err(e) = self
                        .cx
                        .sar(
                            &impi,
                            std::slice::from_ref(&impu),
                            ServerAssignmentType::AuthenticationFailure,
                            false,
                        )
                        .await
                    {
                        tracing::info!(error = %e, "SAR AUTHENTICATION_FAILURE failed");
                    }
                }
                return reply(req, 403, &[]);
            }
        }
        self.update(req, &impi, &impu, now).await
    }

    fn count_outcome(&self, verdict: &Verdict, scheme: &str) {
        use crate::auth_metrics::Outcome;
        let (scheme, outcome) = match verdict {
            Verdict::Valid => (scheme, Outcome::Success),
            Verdict::Challenge | Verdict::Replay => (scheme, Outcome::Challenged),
            Verdict::Stale => (scheme, Outcome::Stale),
            Verdict::Resync(_) => (crate::auth::scheme::AKA, Outcome::Resync),
            Verdict::Wrong => (scheme, Outcome::Failure),
        };
        self.outcomes.count(scheme, outcome);
    }

    /// While `impi` is backed off after failed authentications: no MAR and no
    /// verification; a REGISTER without an answer gets a decoy challenge (the shape of
    /// a real one), any answer `403`, as a wrong one would. So the identity's password
    /// cannot be guessed meanwhile, and it looks like an identity we do not serve.
    fn backed_off(
        &self,
        req: &SipMessage,
        impi: &str,
        creds: Option<&Credentials>,
        raw_auth: Option<&str>,
        now: u64,
    ) -> Option<SipMessage> {
        let failures = self.settings.failures.as_ref()?;
        failures.blocked(&impi.to_string(), Instant::now())?;
        if carries_response(creds) {
            return Some(reply(req, 403, &[]));
        }
        let algorithm = if scheme_for(creds, raw_auth) == crate::auth::scheme::AKA {
            Algorithm::AkaV1Md5
        } else {
            Algorithm::Md5
        };
        let h = self
            .decoys
            .challenge(&self.settings.realm, algorithm, false, now);
        Some(reply(req, 401, &[(HeaderName::WwwAuthenticate, &h)]))
    }

    #[allow(clippy::too_many_arguments)]
    async fn challenge(
        &self,
        req: &SipMessage,
        impi: &str,
        impu: &str,
        realm: &str,
        scheme: &str,
        resync: Option<Bytes>,
        stale: bool,
    ) -> SipMessage {
        let item = match self.cx.mar(impi, impu, scheme, resync).await {
            Ok(item) => item,
            Err(e) => {
                tracing::info!(%impi, error = %e, "MAR failed");
                return reply(req, e.sip_status(), &[]);
            }
        };
        match self
            .challenges
            .issue(impi, impu, realm, &item, stale, unix_now())
        {
            Ok(h) => reply(req, 401, &[(HeaderName::WwwAuthenticate, &h)]),
            Err(VectorError::UnsupportedScheme) => reply(req, 403, &[]),
            Err(e) => {
                tracing::warn!(%impi, error = %e, "unusable authentication vector");
                reply(req, 500, &[])
            }
        }
    }

    fn contact_error(&self, req: &SipMessage, e: &ContactError) -> SipMessage {
        tracing::info!(error = %e, "REGISTER refused");
        match e {
            ContactError::BadRequest(_) => reply(req, 400, &[]),
            ContactError::TooBrief => {
                let min = self.settings.limits.min.to_string();
                reply(req, 423, &[(HeaderName::MinExpires, &min)])
            }
            ContactError::OutOfOrder => reply(req, 500, &[]),
            ContactError::TooMany => reply(req, 403, &[]),
        }
    }

    /// RFC 3261 §10.3 steps 6-8 after authentication.
    async fn update(&self, req: &SipMessage, impi: &str, impu: &str, now: u64) -> SipMessage {
        let asked = match read_contacts(req, self.settings.limits) {
            Ok(a) => a,
            Err(e) => return self.contact_error(req, &e),
        };
        let meta = match RequestMeta::of(req) {
            Ok(m) => m,
            Err(e) => return self.contact_error(req, &e),
        };
        let in_memory = self.location().get(impu).cloned();
        let restored = match in_memory {
            Some(_) => None,
            None => self.stored(impu).await,
        };
        let existing = in_memory.or_else(|| restored.clone());
        let updates = match asked {
            ContactRequest::Fetch => return self.ok(req, existing.as_ref(), now),
            ContactRequest::RemoveAll => Vec::new(),
            ContactRequest::Update(u) => u,
        };
        let current = existing
            .as_ref()
            .map(|r| r.bindings.clone())
            .unwrap_or_default();
        let planned = match apply(&current, &updates, &meta, now) {
            Ok(b) => b,
            Err(e) => return self.contact_error(req, &e),
        };
        if planned.is_empty() {
            return self.deregister(req, impi, impu, existing).await;
        }
        let kind = if existing.is_some() {
            ServerAssignmentType::ReRegistration
        } else {
            ServerAssignmentType::Registration
        };
        let saa = match self
            .cx
            .sar(impi, &[impu.to_string()], kind, existing.is_some())
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(%impu, error = %e, "SAR failed");
                return reply(req, e.sip_status(), &[]);
            }
        };
        let profile = match (saa.user_data, &existing) {
            (Some(data), _) => match UserProfile::parse(data) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(%impu, error = %e, "unreadable User-Data in SAA");
                    return reply(req, 500, &[]);
                }
            },
            (None, Some(reg)) => reg.profile.clone(),
            (None, None) => {
                tracing::warn!(%impu, "SAA without User-Data for a first registration");
                return reply(req, 500, &[]);
            }
        };
        if !profile.contains(impu) {
            tracing::warn!(%impu, "registered identity is not in its own implicit set");
        }
        if let Some(filter) = &self.settings.cloud_auth {
            if let Err(refusal) = check_registration(filter, req, impu, &profile).await {
                if existing.is_none() {
                    // Release the assignment the SAR just made (TS 29.228 §6.1.2).
                    let dereg = ServerAssignmentType::UserDeregistration;
                    if let Err(e) = self.cx.sar(impi, &[impu.to_string()], dereg, false).await {
                        tracing::info!(%impu, error = %e, "SAR USER_DEREGISTRATION failed");
                    }
                }
                return refusal;
            }
        }
        let _order = self.lock_registration(impu).await;
        // Re-read under the identity's lock: another REGISTER may have changed the
        // bindings while the SAR was out.
        let current = self
            .location()
            .get(impu)
            .or(restored.as_ref())
            .map(|r| r.bindings.clone())
            .unwrap_or_default();
        let bindings = match apply(&current, &updates, &meta, now) {
            Ok(b) => b,
            Err(e) => return self.contact_error(req, &e),
        };
        let reg = Registration {
            impu: impu.to_string(),
            impi: impi.to_string(),
            profile,
            bindings,
        };
        // The registration this one replaces in memory when `impu` was registered as
        // part of another identity's implicit set: its rows go from the store too, or a
        // restart would load both.
        let replaced = self
            .location()
            .get(impu)
            .map(|r| r.impu.clone())
            .filter(|key| key != impu);
        // The 200 OK only after the commit: an acknowledged registration survives a
        // restart. Not written when the store holds it but for expiries lagging within
        // the bound ([`Written`]).
        if replaced.is_some() || !self.written.holds(&reg, now) {
            self.written.forget(impu);
            if let Err(e) = self.writer.write(Change::Save(reg.clone())).await {
                tracing::error!(%impu, error = %e, "cannot persist the registration");
                return reply(req, 500, &[]);
            }
            self.written.saved(&reg);
        }
        if let Some(old) = replaced {
            self.written.forget(&old);
            if let Err(e) = self.writer.write(Change::Delete(old.clone())).await {
                tracing::error!(%impu, replaced = %old, error = %e, "cannot delete the replaced registration from the store");
            }
        }
        let before = self.location().get(impu).cloned();
        self.location().put(reg.clone());
        self.changed(before.as_ref(), Some(&reg), Cause::Register);
        // The HSS now holds the implicit set registered here: any of it served
        // unregistered until now is no longer.
        self.unregistered.forget_covered_by(&reg.profile);
        self.publish();
        tracing::info!(%impu, contacts = reg.bindings.len(), ?kind, "registered");
        let ok = self.ok(req, Some(&reg), now);
        let kind = match kind {
            ServerAssignmentType::ReRegistration => RegistrationType::Re,
            _ => RegistrationType::Initial,
        };
        self.third_party(kind, &reg, req, &ok);
        ok
    }

    async fn deregister(
        &self,
        req: &SipMessage,
        impi: &str,
        impu: &str,
        existing: Option<Registration>,
    ) -> SipMessage {
        if let Some(reg) = existing {
            // TS 24.229 §5.4.1.4: the UE de-registers; tell the HSS (TS 29.228 §6.1.2).
            if let Err(e) = self
                .cx
                .sar(
                    impi,
                    std::slice::from_ref(&reg.impu),
                    ServerAssignmentType::UserDeregistration,
                    false,
                )
                .await
            {
                tracing::warn!(%impu, error = %e, "SAR USER_DEREGISTRATION failed; bindings dropped anyway");
            }
            let key = reg.impu.clone();
            let _order = self.order.lock([impu, key.as_str()]).await;
            let removed = self.location().remove(&key);
            self.changed(removed.as_ref(), None, Cause::Register);
            // Deleted whoever owns it (a user taken over from a failed S-CSCF): the UE
            // de-registered here.
            let gone = Registration {
                bindings: Vec::new(),
                ..reg
            };
            self.written.forget(&key);
            if let Err(e) = self.writer.write(Change::Save(gone)).await {
                tracing::error!(%impu, error = %e, "cannot delete the registration from the store");
            }
            self.publish();
            tracing::info!(%impu, "de-registered by the UE");
            let ok = reply(req, 200, &[]);
            if let Some(old) = &removed {
                self.third_party(RegistrationType::De, old, req, &ok);
            }
            return ok;
        }
        reply(req, 200, &[])
    }

    /// The 200 OK to a REGISTER: bindings (with their GRUUs for a UE that supports
    /// them, RFC 5627 §5.3, TS 24.229 §5.4.1.2.2), Service-Route, P-Associated-URI, Path.
    fn ok(&self, req: &SipMessage, reg: Option<&Registration>, now: u64) -> SipMessage {
        let mut extra: Vec<(HeaderName, String)> = Vec::new();
        if let Some(reg) = reg {
            // The GRUUs of the identity registered (the To), for a UE that asks.
            let gruu_aor = supports_gruu(req).then(|| {
                to_uri(req)
                    .and_then(|u| public_identity(&u))
                    .unwrap_or_else(|| reg.impu.clone())
            });
            for b in &reg.bindings {
                let left = b.expires_at.saturating_sub(now);
                let mut contact = format!("{};expires={left}", b.contact);
                if let Some(g) = gruu_aor
                    .as_ref()
                    .and_then(|a| self.settings.gruus.of(reg, a, b))
                {
                    contact.push_str(&format!(
                        ";pub-gruu=\"{}\";temp-gruu=\"{}\"",
                        g.public, g.temporary
                    ));
                }
                extra.push((HeaderName::Contact, contact));
            }
            extra.push((
                HeaderName::ServiceRoute,
                self.settings.service_route.clone(),
            ));
            let assoc: Vec<String> = reg
                .associated_uris()
                .iter()
                .map(|u| format!("<{u}>"))
                .collect();
            extra.push((HeaderName::PAssociatedUri, assoc.join(", ")));
        }
        for p in req.headers.get_all(&HeaderName::Path) {
            if let Some(v) = p.value_str() {
                extra.push((HeaderName::Path, v.to_string()));
            }
        }
        let refs: Vec<(HeaderName, &str)> =
            extra.iter().map(|(n, v)| (n.clone(), v.as_str())).collect();
        reply(req, 200, &refs)
    }

    /// Removes the bindings lapsed at `now`; sends SAR TIMEOUT_DEREGISTRATION for the
    /// identities left without any (TS 24.229 §5.4.1.7, TS 29.228 §6.1.2), and for the
    /// unregistered identities whose kept profile lapsed.
    pub async fn expire(&self, now: u64) {
        if let Some(n) = self.notifier.get() {
            n.expire(|impu| self.registration(impu), now);
        }
        self.release_unregistered(now).await;
        let lapsed = self.location().lapsed(now);
        if lapsed.is_empty() {
            return;
        }
        let (gone, changed) = {
            let _order = self.order.lock(lapsed.iter().map(String::as_str)).await;
            // Under the locks: a REGISTER may have refreshed some of them meanwhile.
            let before: Vec<Registration> = {
                let loc = self.location();
                lapsed
                    .iter()
                    .filter_map(|i| loc.registered(i).cloned())
                    .collect()
            };
            let (gone, changed) = self.location().expire(&lapsed, now);
            let old = |impu: &str| before.iter().find(|r| r.impu == impu);
            for reg in &gone {
                self.changed(old(&reg.impu), None, Cause::Expiry);
            }
            for reg in &changed {
                self.changed(old(&reg.impu), Some(reg), Cause::Expiry);
            }
            let changes: Vec<Change> = changed
                .iter()
                .map(|reg| Change::Update(reg.clone()))
                .chain(gone.iter().map(|reg| Change::Delete(reg.impu.clone())))
                .collect();
            self.write_all(changes, "cannot persist an expiry").await;
            (gone, changed)
        };
        if gone.is_empty() && changed.is_empty() {
            return;
        }
        self.publish();
        for reg in gone {
            tracing::info!(impu = %reg.impu, "registration expired");
            if let Err(e) = self
                .cx
                .sar(
                    &reg.impi,
                    std::slice::from_ref(&reg.impu),
                    ServerAssignmentType::TimeoutDeregistration,
                    false,
                )
                .await
            {
                tracing::warn!(impu = %reg.impu, error = %e, "SAR TIMEOUT_DEREGISTRATION failed");
            }
        }
    }

    /// Releases at the HSS (SAR TIMEOUT_DEREGISTRATION) the unregistered identities
    /// whose kept profile lapsed at `now`: the HSS stops sending their requests here.
    async fn release_unregistered(&self, now: u64) {
        let lapsed = self.unregistered.take_lapsed(now);
        if lapsed.is_empty() {
            return;
        }
        self.publish();
        for reg in lapsed {
            if self.registration(&reg.impu).is_some() {
                // Registered here since: the HSS holds it registered, nothing to release.
                continue;
            }
            let impi = Some(reg.impi.as_str()).filter(|i| !i.is_empty());
            match self.cx.release_unregistered(impi, &reg.impu).await {
                Ok(_) => tracing::debug!(impu = %reg.impu, "unregistered profile released"),
                Err(e) => {
                    tracing::warn!(impu = %reg.impu, error = %e, "SAR TIMEOUT_DEREGISTRATION of an unregistered identity failed")
                }
            }
        }
    }

    /// Runs [`Registrar::expire`] every [`EXPIRY_TICK`] until the registrar is dropped.
    pub fn spawn_expiry(self: &Arc<Registrar>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let peers = self.cx.peers().clone();
        tokio::spawn(async move {
            // After a restart, bindings that lapsed while we were down go at the first
            // sweep: give the Cx peer a moment to open so that their SAR reaches the HSS.
            let _ = tokio::time::timeout(EXPIRY_FIRST_WAIT, peers.wait_open()).await;
            drop(peers);
            let mut tick = tokio::time::interval(EXPIRY_TICK);
            loop {
                tick.tick().await;
                let Some(r) = weak.upgrade() else { return };
                r.expire(unix_now()).await;
            }
        })
    }

    /// RTR (TS 29.228 §6.1.3): drops the registrations of the identities named, or of
    /// every identity of the private identities named when none is. Answers
    /// DIAMETER_SUCCESS (the bindings are gone whatever the store says).
    pub fn terminate(self: &Arc<Registrar>, rtr: &Rtr) -> CxResult {
        let mut impis = vec![rtr.user_name.clone()];
        if let Some(a) = &rtr.associated_identities {
            impis.extend(a.user_names.iter().cloned());
        }
        let mut removed = Vec::new();
        {
            let mut loc = self.location();
            let impus: Vec<String> = if rtr.public_identities.is_empty() {
                impis.iter().flat_map(|i| loc.impus_of(i)).collect()
            } else {
                rtr.public_identities.clone()
            };
            for impu in impus {
                if let Some(reg) = loc.remove(&impu) {
                    removed.push(reg);
                }
            }
        }
        let cause = Cause::Network(rtr.deregistration_reason.reason_code);
        for reg in &removed {
            self.changed(Some(reg), None, cause);
        }
        let removed: Vec<String> = removed.into_iter().map(|r| r.impu).collect();
        let unregistered: usize = impis
            .iter()
            .map(|i| self.unregistered.forget(i, &rtr.public_identities))
            .sum();
        tracing::info!(removed = ?removed, unregistered, reason = ?rtr.deregistration_reason.reason_code, "network-initiated de-registration (RTR)");
        self.publish();
        self.spawn_persist(removed);
        CxResult::Base(result::DIAMETER_SUCCESS)
    }

    /// PPR (TS 29.228 §6.1.4): replaces the profile of the registrations and kept
    /// unregistered profiles of the private identity. DIAMETER_ERROR_USER_UNKNOWN when it
    /// has neither here.
    pub fn push_profile(self: &Arc<Registrar>, ppr: &Ppr) -> CxResult {
        let Some(data) = ppr.user_data.clone() else {
            // Only charging or auth data changed: nothing the registrar keeps.
            return CxResult::Base(result::DIAMETER_SUCCESS);
        };
        let profile = match UserProfile::parse(data) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "PPR with unreadable User-Data");
                return CxResult::Base(result::DIAMETER_UNABLE_TO_COMPLY);
            }
        };
        let updated: Vec<(Registration, Registration)> = {
            let mut loc = self.location();
            let impus = loc.impus_of(&ppr.user_name);
            let mut out = Vec::new();
            for impu in impus {
                if let Some(old) = loc.remove(&impu) {
                    let mut reg = old.clone();
                    reg.profile = profile.clone();
                    loc.put(reg.clone());
                    out.push((old, reg));
                }
            }
            out
        };
        // Identities added to or removed from an implicit set change their
        // registration state (RFC 3680 `created`, `rejected`).
        for (old, new) in &updated {
            self.changed(Some(old), Some(new), Cause::Profile);
            self.profile_replaced(old, new);
        }
        let unregistered = self.unregistered.push_profile(&ppr.user_name, &profile);
        if updated.is_empty() && unregistered == 0 {
            return CxResult::experimental(experimental::DIAMETER_ERROR_USER_UNKNOWN);
        }
        tracing::info!(impi = %ppr.user_name, registrations = updated.len(), unregistered, "profile replaced (PPR)");
        self.spawn_persist(updated.into_iter().map(|(_, r)| r.impu).collect());
        CxResult::Base(result::DIAMETER_SUCCESS)
    }

    /// Queues `changes` one after the other, then waits for all their commits (they
    /// share transactions); failures are logged with `what`. The callers hold the
    /// identities' locks.
    async fn write_all(&self, changes: Vec<Change>, what: &str) {
        let mut pending = Vec::new();
        for change in changes {
            let impu = change.impu().to_string();
            self.written.forget(&impu);
            pending.push((impu, self.writer.submit(change).await));
        }
        for (impu, p) in pending {
            if let Err(e) = p.committed().await {
                tracing::error!(%impu, error = %e, "{what}");
            }
        }
    }

    /// Persists, under their locks, what the memory holds for the registered identities
    /// `impus` (changed in memory by an RTR or a PPR, answered at once): the registration
    /// of each, or its deletion when it has none. Whatever changed an identity since
    /// (a REGISTER) is what gets stored, so the store ends as the memory.
    fn spawn_persist(self: &Arc<Registrar>, impus: Vec<String>) {
        if impus.is_empty() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let _order = me.order.lock(impus.iter().map(String::as_str)).await;
            let changes: Vec<Change> = {
                let loc = me.location();
                impus
                    .iter()
                    .map(|impu| match loc.registered(impu) {
                        Some(reg) => Change::Update(reg.clone()),
                        None => Change::Delete(impu.clone()),
                    })
                    .collect()
            };
            me.write_all(changes, "cannot persist an RTR or PPR").await;
        });
    }

    /// The registration covering `impu` (for terminating routing later, and tests).
    pub fn registration(&self, impu: &str) -> Option<Registration> {
        self.location().get(impu).cloned()
    }

    /// The profile of `impu`, not registered here, for the unregistered session cases
    /// (TS 24.229 §5.4.3.2-3, TS 29.228 §6.1.2): the one kept from an earlier request,
    /// else SAR UNREGISTERED_USER, whose answer makes the HSS send further requests for
    /// the identity here (kept from then on); a registration without bindings. `None`
    /// when the HSS does not know the identity, cannot be asked, or answers without a
    /// readable profile (logged).
    pub async fn unregistered(&self, impu: &str) -> Option<Registration> {
        // Registered meanwhile (a request resumed from an AS after the user registered):
        // the registration holds the profile, and nothing may be kept as unregistered
        // (its release would de-register the user at the HSS).
        if let Some(registered) = self.registration(impu) {
            return Some(registered);
        }
        let now = unix_now();
        if let Some(kept) = self.unregistered.get(impu, now) {
            return Some(kept);
        }
        let saa = match self.cx.sar_unregistered(impu).await {
            Ok(saa) => saa,
            Err(error) => {
                tracing::info!(%impu, %error, "SAR UNREGISTERED_USER failed");
                return None;
            }
        };
        let data = saa.user_data?;
        let profile = match UserProfile::parse(data) {
            Ok(profile) => profile,
            Err(error) => {
                tracing::warn!(%impu, %error, "unreadable User-Data in SAA");
                return None;
            }
        };
        let registration = Registration {
            impu: impu.to_string(),
            impi: saa.user_name.unwrap_or_default(),
            profile,
            bindings: Vec::new(),
        };
        if self.unregistered.put(registration.clone(), now) {
            self.publish();
        } else {
            tracing::debug!(%impu, "unregistered profile store full: not kept");
        }
        Some(registration)
    }
}
