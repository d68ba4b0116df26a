//! The S-CSCF's Diameter Cx client (TS 29.228 §6.1, TS 29.229 §6.1): MAR/MAA for
//! authentication vectors and SAR/SAA for the profile and registration state, over one
//! [`Peer`] to the HSS that reconnects by itself (RFC 6733 §5.6, RFC 3539). Requests the
//! HSS sends on the same connection (RTR, PPR) go to the registrar through
//! [`HssRequests`].
//!
//! Cx failures map to SIP answers failing closed: an HSS that cannot be reached gives
//! 503, a malformed answer 500, and the user errors of TS 29.229 §6.2.2 a 403
//! (TS 24.229 §5.4.1.2.1: "unknown user", "identities don't match", "auth scheme not
//! supported", "roaming not allowed").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use ims_config::CxClientSection;
use ims_diameter::cx::{
    AnswerHeader, CxError, CxRequest, CxResult, Maa, Mar, Ppa, RequestHeader, Rta, Saa, Sar,
    ServerAssignmentType, SipAuthDataItem, UserDataAlreadyAvailable,
};
use ims_diameter::dict::{experimental, result};
use ims_diameter::peer::{
    BoxFuture, Connector, Handler, Peer, PeerAddress, PeerAddresses, PeerConfig, PeerError,
    TlsClientError,
};
use ims_diameter::Message;

use crate::registrar::Registrar;

/// Why a Cx exchange did not give what the registrar needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CxFailure {
    /// No answer: the HSS is down, the connection not open, or the answer late.
    #[error("HSS unreachable: {0}")]
    Unreachable(#[from] PeerError),
    /// The answer does not decode, or lacks what the command needs.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// The HSS answered with an error result.
    #[error("HSS refused: {0:?}")]
    Refused(CxResult),
}

impl CxFailure {
    /// The SIP status answering the REGISTER that needed this exchange.
    pub fn sip_status(&self) -> u16 {
        match self {
            CxFailure::Unreachable(_) => 503,
            CxFailure::Malformed(_) => 500,
            CxFailure::Refused(CxResult::Experimental { code, .. }) => match *code {
                experimental::DIAMETER_ERROR_USER_UNKNOWN
                | experimental::DIAMETER_ERROR_IDENTITIES_DONT_MATCH
                | experimental::DIAMETER_ERROR_IDENTITY_NOT_REGISTERED
                | experimental::DIAMETER_ERROR_ROAMING_NOT_ALLOWED
                | experimental::DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED => 403,
                _ => 500,
            },
            // 3xxx protocol errors (busy, unable to deliver): try again later.
            CxFailure::Refused(CxResult::Base(c)) if (3000..4000).contains(c) => 503,
            CxFailure::Refused(CxResult::Base(_)) => 500,
        }
    }
}

/// The Cx client: our identities and the peer toward the HSS.
pub struct CxClient {
    peer: Peer,
    origin_host: String,
    origin_realm: String,
    destination_host: Option<String>,
    destination_realm: String,
    server_name: String,
    session: AtomicU64,
    session_base: u32,
}

impl std::fmt::Debug for CxClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CxClient")
            .field("origin_host", &self.origin_host)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn check(header: &AnswerHeader) -> Result<(), CxFailure> {
    if header.result.is_success() {
        Ok(())
    } else {
        tracing::info!(result = ?header.result, "Cx answer with an error result");
        Err(CxFailure::Refused(header.result))
    }
}

fn malformed(e: CxError) -> CxFailure {
    tracing::warn!(error = %e, "malformed Cx answer");
    CxFailure::Malformed(e.to_string())
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
        let mut pc = PeerConfig::cx(&cfg.origin_host, &cfg.origin_realm);
        pc.watchdog_interval = Duration::from_secs(cfg.watchdog_secs);
        pc.request_timeout = Duration::from_secs(cfg.request_timeout_secs);
        pc.reconnect_max = Duration::from_secs(10);
        pc.allowed_peers = vec![cfg.destination_host.clone()];
        let connector = Connector::client(
            cfg.tls_ca.as_deref(),
            cfg.hss_tls_name(),
            cfg.client_identity(),
        )?;
        let hss = cfg.hss.iter().map(|h| PeerAddress::new(&h.host, h.port));
        let peer = Peer::connect(pc, PeerAddresses::new(hss), connector, handler);
        Ok(CxClient {
            peer,
            origin_host: cfg.origin_host.clone(),
            origin_realm: cfg.origin_realm.clone(),
            destination_host: Some(cfg.destination_host.clone()),
            destination_realm: cfg.destination_realm.clone(),
            server_name: server_name.to_string(),
            session: AtomicU64::new(0),
            session_base: rand::random(),
        })
    }

    /// The peer toward the HSS (its state, for health reporting).
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Our Server-Name.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// A request header with a fresh Session-Id (RFC 6733 §8.8).
    fn header(&self) -> RequestHeader {
        let n = self.session.fetch_add(1, Ordering::Relaxed);
        RequestHeader {
            session_id: format!("{};{};{n}", self.origin_host, self.session_base),
            origin_host: self.origin_host.clone(),
            origin_realm: self.origin_realm.clone(),
            destination_host: self.destination_host.clone(),
            destination_realm: self.destination_realm.clone(),
        }
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
        let mar = Mar {
            header: self.header(),
            user_name: impi.to_string(),
            supported_features: Vec::new(),
            public_identity: impu.to_string(),
            sip_auth_data_item: SipAuthDataItem {
                authentication_scheme: Some(scheme.to_string()),
                authorization,
                ..SipAuthDataItem::default()
            },
            sip_number_auth_items: 1,
            server_name: self.server_name.clone(),
        };
        let answer = self.peer.request(mar.to_message()).await?;
        let maa = Maa::from_message(&answer).map_err(malformed)?;
        check(&maa.header)?;
        maa.sip_auth_data_items
            .into_iter()
            .next()
            .ok_or_else(|| CxFailure::Malformed("MAA without SIP-Auth-Data-Item".into()))
    }

    /// SAR of `kind` for `impus` (TS 29.228 §6.1.2).
    pub async fn sar(
        &self,
        impi: &str,
        impus: &[String],
        kind: ServerAssignmentType,
        data_available: bool,
    ) -> Result<Saa, CxFailure> {
        self.sar_for(Some(impi), impus, kind, data_available).await
    }

    /// SAR UNREGISTERED_USER for `impu`, whose private identity this S-CSCF does not
    /// know (TS 29.228 §6.1.2: User-Name is then absent): the HSS records us as the
    /// identity's S-CSCF in the unregistered state and returns its User-Data.
    pub async fn sar_unregistered(&self, impu: &str) -> Result<Saa, CxFailure> {
        let kind = ServerAssignmentType::UnregisteredUser;
        self.sar_for(None, &[impu.to_string()], kind, false).await
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
        self.sar_for(impi, &[impu.to_string()], kind, false).await
    }

    async fn sar_for(
        &self,
        impi: Option<&str>,
        impus: &[String],
        kind: ServerAssignmentType,
        data_available: bool,
    ) -> Result<Saa, CxFailure> {
        let sar = Sar {
            header: self.header(),
            user_name: impi.map(str::to_string),
            supported_features: Vec::new(),
            public_identities: impus.to_vec(),
            wildcarded_public_identity: None,
            server_name: self.server_name.clone(),
            server_assignment_type: kind,
            user_data_already_available: if data_available {
                UserDataAlreadyAvailable::AlreadyAvailable
            } else {
                UserDataAlreadyAvailable::NotAvailable
            },
            sar_flags: None,
        };
        let answer = self.peer.request(sar.to_message()).await?;
        let saa = Saa::from_message(&answer).map_err(malformed)?;
        check(&saa.header)?;
        Ok(saa)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_sip_answers_failing_closed() {
        assert_eq!(CxFailure::Unreachable(PeerError::NotOpen).sip_status(), 503);
        assert_eq!(
            CxFailure::Unreachable(PeerError::Timeout(Duration::from_secs(1))).sip_status(),
            503
        );
        let exp = |c| CxFailure::Refused(CxResult::experimental(c)).sip_status();
        assert_eq!(exp(experimental::DIAMETER_ERROR_USER_UNKNOWN), 403);
        assert_eq!(exp(experimental::DIAMETER_ERROR_IDENTITIES_DONT_MATCH), 403);
        assert_eq!(
            exp(experimental::DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED),
            403
        );
        assert_eq!(exp(experimental::DIAMETER_ERROR_TOO_MUCH_DATA), 500);
        let base = |c| CxFailure::Refused(CxResult::Base(c)).sip_status();
        assert_eq!(base(result::DIAMETER_UNABLE_TO_DELIVER), 503);
        assert_eq!(base(result::DIAMETER_UNABLE_TO_COMPLY), 500);
        assert_eq!(CxFailure::Malformed("x".into()).sip_status(), 500);
    }
}
