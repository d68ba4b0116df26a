//! The registrar's side of third-party registration ([`crate::thirdparty`]): binding the
//! sender, the network-initiated de-registration an application server's failure asks
//! for (TS 24.229 §5.4.1.7 with DefaultHandling SESSION_TERMINATED), and the
//! de-REGISTERs to the ASs a PPR's new profile no longer names
//! ([`crate::thirdparty::profile_change`]).

use std::sync::Arc;

use ims_diameter::cx::{ReasonCode, ServerAssignmentType};

use super::Registrar;
use crate::location::Registration;
use crate::regevent::Cause;
use crate::store::Change;
use crate::thirdparty::{AsFailure, ThirdParty};

impl Registrar {
    /// Sends third-party REGISTERs through `third_party` from now on, and de-registers
    /// the identities its `failures` name (a second sender is ignored).
    pub fn third_party_to(
        self: &Arc<Registrar>,
        third_party: Arc<ThirdParty>,
        mut failures: tokio::sync::mpsc::Receiver<AsFailure>,
    ) {
        if self.third_party.set(third_party).is_err() {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(failure) = failures.recv().await {
                let Some(r) = weak.upgrade() else { return };
                r.deregister_after_as_failure(&failure).await;
            }
        });
    }

    /// A PPR replaced the profile of registration `old`, now `new` (TS 29.228 §6.1.4):
    /// the ASs the new profile no longer notifies get a de-REGISTER.
    pub(super) fn profile_replaced(&self, old: &Registration, new: &Registration) {
        if let Some(tp) = self.third_party.get() {
            tp.profile_changed(old, new);
        }
    }

    /// Network-initiated de-registration of `failure.impu` (TS 24.229 §5.4.1.7, §5.4.1.5):
    /// an AS with SESSION_TERMINATED failed its third-party REGISTER. The registration
    /// goes from memory and store, the HSS is told (SAR ADMINISTRATIVE_DEREGISTRATION)
    /// and the reg event says `rejected`.
    async fn deregister_after_as_failure(&self, failure: &AsFailure) {
        let impu = failure.impu.as_str();
        let removed = {
            let _order = self.lock_registration(impu).await;
            let removed = self.location().remove(impu);
            if let Some(reg) = &removed {
                self.changed(
                    Some(reg),
                    None,
                    Cause::Network(ReasonCode::PermanentTermination),
                );
                self.written.forget(&reg.impu);
                if let Err(e) = self.writer.write(Change::Delete(reg.impu.clone())).await {
                    tracing::error!(%impu, error = %e, "cannot delete the registration from the store");
                }
            }
            removed
        };
        let Some(reg) = removed else { return };
        self.publish();
        tracing::info!(%impu, server = %failure.server, "de-registered: application server failed (SESSION_TERMINATED)");
        if let Err(e) = self
            .cx
            .sar(
                &reg.impi,
                std::slice::from_ref(&reg.impu),
                ServerAssignmentType::AdministrativeDeregistration,
                false,
            )
            .await
        {
            tracing::warn!(%impu, error = %e, "SAR ADMINISTRATIVE_DEREGISTRATION failed");
        }
    }
}
