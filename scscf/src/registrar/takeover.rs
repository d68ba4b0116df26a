//! S-CSCF restoration in a pool on one store (TS 23.380 §4, `docs/scale-out.md`): the
//! registrations another S-CSCF served, taken over by this one.
//!
//! * On demand ([`Registrar::restore`]): a request for a user this S-CSCF does not hold
//!   (the I-CSCF sent it here because the user's S-CSCF did not answer) reads the
//!   registration from the store, sends SAR REGISTRATION with our Server-Name (the HSS
//!   names us from then on: the I-CSCF's next LIR and UAR come here) and claims the
//!   row, so the user is served without registering again.
//! * In the background ([`Registrar::spawn_pool`]): every third of `[registrar]
//!   lease_secs` this S-CSCF renews its lease in the store and takes over at most
//!   `takeover_batch` registrations of owners whose lease ran out, each with the same
//!   SAR; their expiry timers run here from then on (the expiry sweep de-registers
//!   them at the HSS when they lapse).

use std::sync::Arc;
use std::time::Duration;

use ims_diameter::cx::ServerAssignmentType;

use super::{unix_now, Registrar};
use crate::location::Registration;
use crate::profile::UserProfile;
use crate::store::{Change, Owned};

/// The lease and take-over settings of a pool member (`[registrar]`).
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// How long this S-CSCF's lease lasts, seconds.
    pub lease_secs: u64,
    /// Registrations taken over at most per sweep.
    pub takeover_batch: usize,
}

impl Registrar {
    /// The registration covering `impu` in the shared store, its lapsed bindings
    /// dropped, when this S-CSCF is in a pool; `None` otherwise, when there is none, or
    /// when the store fails (logged).
    pub(super) async fn stored(&self, impu: &str) -> Option<Registration> {
        if !self.settings.pool {
            return None;
        }
        match self.store.load_covering(impu).await {
            Ok(found) => found.and_then(|owned| live(owned.registration)),
            Err(error) => {
                tracing::warn!(%impu, %error, "cannot read the shared store");
                None
            }
        }
    }

    /// Takes over the registration covering `impu` from the shared store (a user
    /// whose S-CSCF failed): SAR REGISTRATION with our Server-Name, the row claimed,
    /// the registration held here. When the HSS cannot be told, the stored
    /// registration serves this request without being taken over.
    pub async fn restore(&self, impu: &str) -> Option<Registration> {
        let found = self.stored(impu).await?;
        let key = found.impu.clone();
        let _order = self.order.lock([impu, key.as_str()]).await;
        // Restored by a request that held the lock before us.
        if let Some(held) = self.registration(impu) {
            return Some(held);
        }
        let Some(registration) = self.assign_here(found).await else {
            return self.stored(impu).await;
        };
        tracing::info!(%impu, registered = %key, "registration taken over on demand");
        Some(registration)
    }

    /// SAR REGISTRATION for `reg` with our Server-Name (the profile from the answer),
    /// then `reg` stored as ours and held in memory. `None` when the HSS refuses or
    /// cannot be asked (logged).
    async fn assign_here(&self, mut reg: Registration) -> Option<Registration> {
        let kind = ServerAssignmentType::Registration;
        let impus = std::slice::from_ref(&reg.impu);
        match self.cx.sar(&reg.impi, impus, kind, false).await {
            Ok(saa) => {
                if let Some(profile) = saa.user_data.and_then(|d| UserProfile::parse(d).ok()) {
                    reg.profile = profile;
                }
            }
            Err(error) => {
                tracing::warn!(impu = %reg.impu, %error, "SAR for a take-over failed");
                return None;
            }
        }
        self.written.forget(&reg.impu);
        if let Err(error) = self.writer.write(Change::Save(reg.clone())).await {
            tracing::error!(impu = %reg.impu, %error, "cannot claim a taken-over registration");
        }
        self.location().put(reg.clone());
        self.publish();
        Some(reg)
    }

    /// Renews our lease until `now` + `settings.lease_secs`, then takes over at most
    /// `settings.takeover_batch` registrations of owners whose lease ended; returns how
    /// many were taken over.
    pub async fn sweep_pool(&self, settings: PoolSettings, now: u64) -> usize {
        let store = &self.store;
        if let Err(error) = store.renew_lease(now + settings.lease_secs).await {
            tracing::warn!(%error, "cannot renew the pool lease");
            return 0;
        }
        let orphans = match store.take_over_orphans(now, settings.takeover_batch).await {
            Ok(orphans) => orphans,
            Err(error) => {
                tracing::warn!(%error, "cannot look for registrations to take over");
                return 0;
            }
        };
        let taken = orphans.len();
        for Owned {
            registration,
            owner,
        } in orphans
        {
            let key = registration.impu.clone();
            let _order = self.order.lock([key.as_str()]).await;
            // Its row is no longer as this node may have written it.
            self.written.forget(&key);
            if owner.is_empty() {
                // Stored before owners were, by this node: the HSS already names us.
                self.location().put(registration);
                continue;
            }
            tracing::info!(impu = %key, from = %owner, "registration taken over from a peer whose lease ended");
            if self.assign_here(registration.clone()).await.is_none() {
                // Ours in the store all the same: held here, and its expiry runs here.
                self.location().put(registration);
            }
        }
        if taken > 0 {
            self.publish();
        }
        taken
    }

    /// Runs [`Registrar::sweep_pool`] every third of the lease until the registrar is
    /// dropped.
    pub fn spawn_pool(
        self: &Arc<Registrar>,
        settings: PoolSettings,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let every = Duration::from_millis(settings.lease_secs.max(1) * 1000 / 3);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(r) = weak.upgrade() else { return };
                r.sweep_pool(settings, unix_now()).await;
            }
        })
    }
}

/// `reg` without its bindings lapsed by now; `None` when none is left.
fn live(mut reg: Registration) -> Option<Registration> {
    reg.expire(unix_now());
    (!reg.bindings.is_empty()).then_some(reg)
}
