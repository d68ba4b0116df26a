//! The registrar's side of third-party registration ([`crate::thirdparty`]): binding the
//! sender, and the network-initiated de-registration an application server's failure
//! asks for (TS 24.229 §5.4.1.7 with DefaultHandling SESSION_TERMINATED).

use std::sync::Arc;

use ims_diameter::cx::{ReasonCode, ServerAssignmentType};

use super::Registrar;
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
