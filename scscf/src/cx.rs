//! The S-CSCF's side of Cx (TS 29.228 §6.1, TS 29.229 §6.1): the shared client
//! ([`ims_node::cx::CxClient`]) with our Server-Name on MAR/SAR, and the requests the
//! HSS sends on the same connections (RTR, PPR), handed to the registrar through
//! [`HssRequests`]. What Cx failures answer in SIP is the shared
//! [`CxFailure::sip_status`].

use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;
use ims_config::CxClientSection;
use ims_diameter::cx::{
    AnswerHeader, CxError, CxRequest, CxResult, Ppa, RequestHeader, Rta, Saa, ServerAssignmentType,
    SipAuthDataItem,
};
use ims_diameter::dict::result;
use ims_diameter::peer::{BoxFuture, Handler, PeerSet, TlsClientError};
use ims_diameter::Message;
pub use ims_node::cx::CxFailure;

use crate::registrar::Registrar;

/// The S-CSCF's Cx client: the shared client and our Server-Name.
#[derive(Debug)]
pub struct CxClient {
    client: ims_node::cx::CxClient,
    server_name: String,
}

impl CxClient {
    /// Starts the peer toward `[cx] hss` (it connects and reconnects in the
    /// background); `server_name` is our SIP URI for MAR/SAR. Requests from the HSS go
    /// to the registrar later bound to `handler`.
    pub fn start(
        cfg: &CxClientSection,
        server_name: &str,
        handler: Arc<HssRequests>,
    ) -> Result<CxClient, TlsClientError> {
        Ok(CxClient {
            client: ims_node::cx::CxClient::start(cfg, handler)?,
            server_name: server_name.to_string(),
        })
    }

    /// The peers toward the HSSs (their state, for health reporting).
    pub fn peers(&self) -> &PeerSet {
        self.client.peers()
    }

    /// Our Server-Name.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// MAR for one vector of `scheme` (TS 29.228 §6.3.1); `authorization` carries
    /// RAND ‖ AUTS on AKA re-synchronisation. Returns the first SIP-Auth-Data-Item.
    pub async fn mar(
        &self,
        impi: &str,
        impu: &str,
        scheme: &str,
        authorization: Option<Bytes>,
    ) -> Result<SipAuthDataItem, CxFailure> {
        let name = &self.server_name;
        self.client
            .mar(name, impi, impu, scheme, authorization)
            .await
    }

    /// SAR of `kind` for `impus` (TS 29.228 §6.1.2).
    pub async fn sar(
        &self,
        impi: &str,
        impus: &[String],
        kind: ServerAssignmentType,
        data_available: bool,
    ) -> Result<Saa, CxFailure> {
        let name = &self.server_name;
        self.client
            .sar(name, Some(impi), impus, kind, data_available)
            .await
    }

    /// SAR UNREGISTERED_USER for `impu`, whose private identity this S-CSCF does not
    /// know (TS 29.228 §6.1.2: User-Name is then absent): the HSS records us as the
    /// identity's S-CSCF in the unregistered state and returns its User-Data.
    pub async fn sar_unregistered(&self, impu: &str) -> Result<Saa, CxFailure> {
        let kind = ServerAssignmentType::UnregisteredUser;
        let impus = [impu.to_string()];
        self.client
            .sar(&self.server_name, None, &impus, kind, false)
            .await
    }

    /// SAR TIMEOUT_DEREGISTRATION for `impu`, served here unregistered until now
    /// (TS 29.228 §6.1.2): the HSS clears our assignment. `impi` as the SAA of
    /// UNREGISTERED_USER gave it, if it did.
    pub async fn release_unregistered(
        &self,
        impi: Option<&str>,
        impu: &str,
    ) -> Result<Saa, CxFailure> {
        let kind = ServerAssignmentType::TimeoutDeregistration;
        let impus = [impu.to_string()];
        self.client
            .sar(&self.server_name, impi, &impus, kind, false)
            .await
    }
}

/// Answers the requests the HSS sends (RTR, PPR) by handing them to the registrar,
/// bound after both exist ([`HssRequests::bind`]).
pub struct HssRequests {
    origin_host: String,
    origin_realm: String,
    registrar: OnceLock<Weak<Registrar>>,
}

impl HssRequests {
    /// A handler answering as `origin_host`/`origin_realm`.
    pub fn new(origin_host: &str, origin_realm: &str) -> Arc<HssRequests> {
        Arc::new(HssRequests {
            origin_host: origin_host.to_string(),
            origin_realm: origin_realm.to_string(),
            registrar: OnceLock::new(),
        })
    }

    /// Hands later RTR/PPR to `registrar`.
    pub fn bind(&self, registrar: &Arc<Registrar>) {
        let _ = self.registrar.set(Arc::downgrade(registrar));
    }

    fn answer_header(&self, req: &RequestHeader, result: CxResult) -> AnswerHeader {
        AnswerHeader::for_request(req, &self.origin_host, &self.origin_realm, result)
    }

    async fn dispatch(&self, msg: Message) -> Message {
        let req = match CxRequest::from_message(&msg) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "malformed request from the HSS");
                return e.answer(&msg, &self.origin_host, &self.origin_realm);
            }
        };
        let registrar = self.registrar.get().and_then(Weak::upgrade);
        match (req, registrar) {
            (CxRequest::Rtr(rtr), Some(r)) => {
                let code = r.terminate(&rtr);
                Rta {
                    header: self.answer_header(&rtr.header, code),
                    associated_identities: None,
                    supported_features: Vec::new(),
                }
                .to_answer(&msg)
            }
            (CxRequest::Ppr(ppr), Some(r)) => {
                let code = r.push_profile(&ppr);
                Ppa {
                    header: self.answer_header(&ppr.header, code),
                    supported_features: Vec::new(),
                }
                .to_answer(&msg)
            }
            (CxRequest::Rtr(_) | CxRequest::Ppr(_), None) => ims_diameter::Message::error_answer(
                &msg,
                &self.origin_host,
                &self.origin_realm,
                result::DIAMETER_UNABLE_TO_COMPLY,
                None,
            ),
            (other, _) => {
                tracing::warn!(
                    command = msg.command_code,
                    "Cx request the S-CSCF does not serve"
                );
                let _ = other;
                CxError::WrongCommand {
                    expected: msg.command_code,
                    found: msg.command_code,
                    request: true,
                }
                .answer(&msg, &self.origin_host, &self.origin_realm)
            }
        }
    }
}

impl Handler for HssRequests {
    fn handle(&self, request: Message) -> BoxFuture<'_, Message> {
        Box::pin(self.dispatch(request))
    }
}
