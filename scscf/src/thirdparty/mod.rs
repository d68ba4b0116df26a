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
//! * A profile the HSS replaced (PPR): a de-REGISTER to each AS the new profile no
//!   longer notifies ([`profile_change`]).
//!
//! The REGISTERs of one event go to the matching ASs in iFC priority order, one after
//! the other ([`chain`]); a failure with DefaultHandling SESSION_TERMINATED stops them
//! and the identity is handed to the registrar over a bounded channel
//! ([`ThirdParty::new`]), which de-registers it as the network would (the ASs then get
//! that de-registration's de-REGISTERs). The events of one identity run one after the
//! other, those of different identities at the same time ([`lanes`]), in tasks of their
//! own: the 200 OK never waits for them. At most [`MAX_IN_FLIGHT`] identities have
//! REGISTERs on their way at once, past that an event is dropped with a warning.

pub mod body;
pub mod chain;
pub mod handling;
pub mod lanes;
pub mod profile_change;
pub mod request;

use std::sync::Arc;

use ims_sip::proxy::engine::Originator;
use ims_sip::SipMessage;
use tokio::sync::mpsc;

use crate::ifc::RegistrationType;
use crate::location::Registration;
use chain::{Chain, SendFuture, SendRequest};
use lanes::Lanes;
use request::ThirdPartyRegister;

/// Identities with third-party REGISTERs on their way at most (each has one REGISTER
/// waiting for its final response at a time).
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
    lanes: Arc<Lanes>,
}

impl ThirdParty {
    /// A sender whose requests name the S-CSCF as `own_uri` (e.g.
    /// `sip:scscf.ims.example.net:5080`) and leave through `originator`; the receiver
    /// gets the identities that failed ASs de-register.
    pub fn new(
        own_uri: String,
        originator: Originator,
    ) -> (Arc<ThirdParty>, mpsc::Receiver<AsFailure>) {
        let send: SendRequest = Arc::new(move |request: SipMessage| {
            let originator = originator.clone();
            Box::pin(async move { originator.send(request).await }) as SendFuture
        });
        ThirdParty::sending_through(own_uri, send)
    }

    fn sending_through(
        own_uri: String,
        send: SendRequest,
    ) -> (Arc<ThirdParty>, mpsc::Receiver<AsFailure>) {
        let (failures, rx) = mpsc::channel(FAILURE_QUEUE);
        let lanes = Lanes::new(own_uri.clone(), send, failures, MAX_IN_FLIGHT);
        (Arc::new(ThirdParty { own_uri, lanes }), rx)
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

    /// A PPR replaced the profile of registration `old`, now `new`: a de-REGISTER to
    /// each AS the new profile no longer notifies ([`profile_change`]).
    pub fn profile_changed(&self, old: &Registration, new: &Registration) {
        let servers = profile_change::dropped(old, new, &self.deregister(&old.impu));
        if servers.is_empty() {
            return;
        }
        tracing::info!(impu = %old.impu, servers = servers.len(), "profile changed: de-REGISTER to the ASs it no longer names");
        self.lanes.submit(Chain {
            impu: old.impu.clone(),
            kind: RegistrationType::De,
            expires: 0,
            register: None,
            ok: None,
            servers,
        });
    }

    /// Our de-REGISTER of `impu`: what the iFCs are evaluated on when the UE sent none.
    fn deregister(&self, impu: &str) -> SipMessage {
        ThirdPartyRegister {
            server: &self.own_uri,
            own_uri: &self.own_uri,
            impu,
            expires: 0,
            register: None,
            body: None,
        }
        .build()
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
                probe = self.deregister(&reg.impu);
                &probe
            }
        };
        // In priority order: the service profile keeps its iFCs sorted.
        let servers = reg
            .profile
            .ifcs(&reg.impu)
            .iter()
            .filter(|ifc| ifc.matches_register(evaluated, kind))
            .map(|ifc| ifc.application_server.clone())
            .collect();
        self.lanes.submit(Chain {
            impu: reg.impu.clone(),
            kind,
            expires,
            register: register.cloned(),
            ok: ok.cloned(),
            servers,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::location::Binding;
    use crate::profile::UserProfile;
    use chain::tests::recording_sender;

    const ALICE: &str = "sip:alice@ims.example.net";

    fn register_ifc(prio: i64, name: &str) -> String {
        format!(
            "<InitialFilterCriteria><Priority>{prio}</Priority><TriggerPoint>\
             <ConditionTypeCNF>1</ConditionTypeCNF><SPT><ConditionNegated>0\
             </ConditionNegated><Group>0</Group><Method>REGISTER</Method></SPT>\
             </TriggerPoint><ApplicationServer><ServerName>sip:{name}@x</ServerName>\
             </ApplicationServer></InitialFilterCriteria>"
        )
    }

    fn registration(ifcs: &[String]) -> Registration {
        let doc = format!(
            "<IMSSubscription><PrivateID>alice@ims.example.net</PrivateID><ServiceProfile>\
             <PublicIdentity><Identity>{ALICE}</Identity></PublicIdentity>{}\
             </ServiceProfile></IMSSubscription>",
            ifcs.concat()
        );
        Registration {
            impu: ALICE.into(),
            impi: "alice@ims.example.net".into(),
            profile: UserProfile::parse(Bytes::from(doc)).unwrap(),
            bindings: vec![Binding {
                key: "uri:sip:alice@192.0.2.1".into(),
                contact: "<sip:alice@192.0.2.1>".into(),
                path: Vec::new(),
                call_id: "c".into(),
                cseq: 1,
                expires_at: 1600,
                gruu_first_cseq: None,
            }],
        }
    }

    /// Waits (at most 5 s) until `n` requests went out; what went out.
    async fn sent_n(
        sent: &std::sync::Mutex<Vec<(String, String)>>,
        n: usize,
    ) -> Vec<(String, String)> {
        for _ in 0..500 {
            if sent.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Anything more would show up now.
        tokio::time::sleep(Duration::from_millis(50)).await;
        sent.lock().unwrap().clone()
    }

    fn pair(uri: &str, expires: &str) -> (String, String) {
        (uri.to_string(), expires.to_string())
    }

    #[tokio::test]
    async fn registers_go_in_ifc_priority_order_not_document_order() {
        let (send, sent) = recording_sender(|_| Ok(200));
        let (tp, _failures) = ThirdParty::sending_through("sip:scscf@x".into(), send);
        // Document order: 3, 1, 2.
        let reg = registration(&[
            register_ifc(3, "as3"),
            register_ifc(1, "as1"),
            register_ifc(2, "as2"),
        ]);
        tp.network_deregistered(&reg, 1000);
        assert_eq!(
            sent_n(&sent, 3).await,
            [
                pair("sip:as1@x", "0"),
                pair("sip:as2@x", "0"),
                pair("sip:as3@x", "0")
            ]
        );
    }

    #[tokio::test]
    async fn a_ppr_dropping_a_register_ifc_sends_that_as_a_deregister() {
        let (send, sent) = recording_sender(|_| Ok(200));
        let (tp, _failures) = ThirdParty::sending_through("sip:scscf@x".into(), send);
        let old = registration(&[register_ifc(1, "as1"), register_ifc(2, "as2")]);
        let mut new = registration(&[register_ifc(2, "as2"), register_ifc(3, "as3")]);
        new.bindings = old.bindings.clone();
        tp.profile_changed(&old, &new);
        // as2 kept, as3 added (the standard asks nothing for it): only as1 hears.
        assert_eq!(sent_n(&sent, 1).await, [pair("sip:as1@x", "0")]);
        tp.profile_changed(&new, &new);
        assert_eq!(sent_n(&sent, 2).await.len(), 1, "no change, nothing sent");
    }
}
