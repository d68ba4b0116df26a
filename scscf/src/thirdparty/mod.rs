//! Third-party registration (TS 24.229 §5.4.1.7, TS 29.228 Annex B/C): after a
//! registration changes, the S-CSCF sends a REGISTER of its own to each application
//! server whose REGISTER-method iFC matches (initial, re- or de-registration, as the
//! SPTs' `RegistrationType` say), built by [`request`] with the body of [`body`].
//!
//! * A REGISTER of the UE (initial, re-registration, de-registration): evaluated against
//!   the UE's REGISTER, after its 200 OK is built; the body may carry both
//!   (`IncludeRegisterRequest`, `IncludeRegisterResponse`).
//! * A de-registration the network made (expiry, RTR, a failed AS): evaluated against
//!   the de-REGISTER the S-CSCF sends (Expires 0), nothing of the UE to include.
//!
//! The sends run in tasks of their own (the 200 OK never waits for them), at most
//! [`MAX_IN_FLIGHT`] at once: past that a third-party REGISTER is dropped with a
//! warning. When the AS's failure calls for it ([`handling`]), the identity is handed
//! to the registrar over a bounded channel ([`ThirdParty::new`]), which de-registers it
//! as the network would.

pub mod body;
pub mod handling;
pub mod request;

use std::sync::Arc;

use ims_sip::proxy::engine::Originator;
use ims_sip::SipMessage;
use tokio::sync::{mpsc, Semaphore};

use crate::ifc::RegistrationType;
use crate::location::Registration;
use request::ThirdPartyRegister;

/// Third-party REGISTERs waiting for their final response at most.
pub const MAX_IN_FLIGHT: usize = 256;
/// De-registrations asked by failed ASs waiting for the registrar at most.
pub const FAILURE_QUEUE: usize = 256;

/// A public identity an application server's failure de-registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsFailure {
    /// The registered identity (the registration's key).
    pub impu: String,
    /// The AS that failed.
    pub server: String,
}

/// The sender of third-party REGISTERs. Shared (`Arc`) by the registrar.
#[derive(Debug)]
pub struct ThirdParty {
    own_uri: String,
    originator: Originator,
    slots: Arc<Semaphore>,
    failures: mpsc::Sender<AsFailure>,
}

impl ThirdParty {
    /// A sender whose requests name the S-CSCF as `own_uri` (e.g.
    /// `sip:scscf.ims.example.net:5080`) and leave through `originator`; the receiver
    /// gets the identities that failed ASs de-register.
    pub fn new(
        own_uri: String,
        originator: Originator,
    ) -> (Arc<ThirdParty>, mpsc::Receiver<AsFailure>) {
        let (failures, rx) = mpsc::channel(FAILURE_QUEUE);
        let me = ThirdParty {
            own_uri,
            originator,
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            failures,
        };
        (Arc::new(me), rx)
    }

    /// The UE's `register`, answered with `ok`, made the registration `reg` (`kind`
    /// initial or re-registration; `kind` de-registration with `reg` as it was).
    pub fn registered(
        &self,
        kind: RegistrationType,
        reg: &Registration,
        register: &SipMessage,
        ok: &SipMessage,
        now: u64,
    ) {
        self.send_all(kind, reg, Some((register, ok)), now);
    }

    /// The network de-registered `reg` (expiry, RTR, an AS's failure).
    pub fn network_deregistered(&self, reg: &Registration, now: u64) {
        self.send_all(RegistrationType::De, reg, None, now);
    }

    fn send_all(
        &self,
        kind: RegistrationType,
        reg: &Registration,
        ue: Option<(&SipMessage, &SipMessage)>,
        now: u64,
    ) {
        let expires = match kind {
            RegistrationType::De => 0,
            _ => reg
                .bindings
                .iter()
                .map(|b| b.expires_at.saturating_sub(now))
                .max()
                .unwrap_or(0),
        };
        let register = ue.map(|(r, _)| r);
        let ok = ue.map(|(_, o)| o);
        // Without a REGISTER of the UE the iFCs are evaluated on our own de-REGISTER.
        let probe;
        let evaluated = match register {
            Some(r) => r,
            None => {
                probe = ThirdPartyRegister {
                    server: &self.own_uri,
                    own_uri: &self.own_uri,
                    impu: &reg.impu,
                    expires,
                    register: None,
                    body: None,
                }
                .build();
                &probe
            }
        };
        for ifc in reg.profile.ifcs(&reg.impu) {
            if !ifc.matches_register(evaluated, kind) {
                continue;
            }
            let server = &ifc.application_server;
            let request = ThirdPartyRegister {
                server: &server.server_name,
                own_uri: &self.own_uri,
                impu: &reg.impu,
                expires,
                register,
                body: body::build(server, register, ok),
            }
            .build();
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                tracing::warn!(impu = %reg.impu, server = %server.server_name, "third-party REGISTER dropped: too many in flight");
                continue;
            };
            let originator = self.originator.clone();
            let failures = self.failures.clone();
            let handling = server.default_handling;
            let failure = AsFailure {
                impu: reg.impu.clone(),
                server: server.server_name.clone(),
            };
            tokio::spawn(async move {
                // The 200 OK to the UE is on its way first.
                tokio::task::yield_now().await;
                let outcome = originator.send(request).await;
                drop(slot);
                match &outcome {
                    Ok(r) => {
                        tracing::debug!(server = %failure.server, code = r.status(), ?kind, "third-party REGISTER answered")
                    }
                    Err(e) => {
                        tracing::info!(server = %failure.server, error = %e, ?kind, "third-party REGISTER failed")
                    }
                }
                if handling::deregisters(kind, handling, &outcome) {
                    if let Err(e) = failures.try_send(failure) {
                        tracing::warn!(error = %e, "de-registration after an AS failure not queued");
                    }
                }
            });
        }
    }
}
