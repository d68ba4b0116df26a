//! The Cx client of the I-CSCF and the S-CSCF toward the HSS (TS 29.228, TS 29.229
//! over RFC 6733): the HSS peers of `[cx] hss`, each kept connected with its own
//! watchdog (reconnecting with back-off), requests to the best open peer of their realm
//! with failover ([`PeerSet`]), fresh Session-Ids (RFC 6733 §8.8), the UAR, LIR, MAR and SAR exchanges, and what their
//! failures answer in SIP. Each node keeps only its own policy: the I-CSCF maps UAA and
//! LIA results itself (`icscf::answer`), the S-CSCF adds its Server-Name and serves the
//! HSS's RTR and PPR (`scscf::cx`).
//!
//! Cx failures map to SIP answers failing closed ([`CxFailure::sip_status`]): an HSS
//! that cannot be reached gives 503, a malformed answer 500, and the user errors of
//! TS 29.229 §6.2.2 a 403 (TS 24.229 §5.4.1.2.1: "unknown user", "identities don't
//! match", "auth scheme not supported", "roaming not allowed").

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ims_config::CxClientSection;
use ims_diameter::cx::{
    AnswerHeader, CxError, CxResult, Lia, Lir, Maa, Mar, RequestHeader, Saa, Sar,
    ServerAssignmentType, SipAuthDataItem, Uaa, Uar, UserDataAlreadyAvailable,
};
use ims_diameter::dict::{experimental, result};
use ims_diameter::peer::{
    BoxFuture, Connector, Handler, Peer, PeerAddress, PeerAddresses, PeerConfig, PeerError,
    PeerSet, RoutedPeer, TlsClientError,
};
use ims_diameter::Message;

/// Why a Cx exchange did not give what the node needs.
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
    /// The SIP status answering the request that needed this exchange.
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

fn malformed(e: CxError) -> CxFailure {
    tracing::warn!(error = %e, "malformed Cx answer");
    CxFailure::Malformed(e.to_string())
}

fn check(header: &AnswerHeader) -> Result<(), CxFailure> {
    if header.result.is_success() {
        Ok(())
    } else {
        tracing::info!(result = ?header.result, "Cx answer with an error result");
        Err(CxFailure::Refused(header.result))
    }
}

/// Answers the requests the HSS might send to a node that serves none (the I-CSCF:
/// TS 29.228 §6.1, RTR and PPR go to the S-CSCF): DIAMETER_COMMAND_UNSUPPORTED.
#[derive(Debug)]
pub struct RefuseRequests {
    host: String,
    realm: String,
}

impl RefuseRequests {
    /// A handler answering as `origin_host`/`origin_realm`.
    pub fn new(origin_host: &str, origin_realm: &str) -> Arc<RefuseRequests> {
        Arc::new(RefuseRequests {
            host: origin_host.to_string(),
            realm: origin_realm.to_string(),
        })
    }
}

impl Handler for RefuseRequests {
    fn handle(&self, request: Message) -> BoxFuture<'_, Message> {
        Box::pin(async move {
            tracing::info!(command = request.command_code, "Cx request refused");
            Message::error_answer(
                &request,
                &self.host,
                &self.realm,
                result::DIAMETER_COMMAND_UNSUPPORTED,
                None,
            )
        })
    }
}

/// The Cx client: our identities and the peers toward the HSS (cheap to clone: the
/// clones share the peers and the Session-Id counter).
#[derive(Clone)]
pub struct CxClient {
    peers: PeerSet,
    origin_host: String,
    origin_realm: String,
    destination_host: Option<String>,
    destination_realm: String,
    sessions: Arc<AtomicU64>,
    session_base: u32,
}

impl std::fmt::Debug for CxClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CxClient")
            .field("origin_host", &self.origin_host)
            .finish_non_exhaustive()
    }
}

impl CxClient {
    /// Starts a peer toward each HSS of `[cx] hss` (TCP, or TLS when `tls_ca` is set;
    /// each connects and reconnects in the background); requests the HSSs send go to
    /// `handler`.
    pub fn start(
        section: &CxClientSection,
        handler: Arc<dyn Handler>,
    ) -> Result<CxClient, TlsClientError> {
        let mut cfg = PeerConfig::cx(&section.origin_host, &section.origin_realm);
        cfg.watchdog_interval = Duration::from_secs(section.watchdog_secs);
        cfg.request_timeout = Duration::from_secs(section.request_timeout_secs);
        cfg.reconnect_max = Duration::from_secs(10);
        let mut peers = Vec::new();
        for hss in section.peers() {
            let connector = Connector::client(
                section.tls_ca.as_deref(),
                &hss.tls_name,
                section.client_identity(),
            )?;
            let mut cfg = cfg.clone();
            cfg.allowed_peers = vec![hss.host.clone()];
            let addresses = hss
                .addresses
                .iter()
                .map(|a| PeerAddress::new(&a.host, a.port));
            let peer = Peer::connect(
                cfg,
                PeerAddresses::new(addresses),
                connector,
                handler.clone(),
            );
            peers.push(RoutedPeer {
                host: hss.host,
                realm: hss.realm,
                priority: hss.priority,
                peer,
            });
        }
        let destination_host = section.request_destination_host().map(str::to_string);
        Ok(CxClient::over(
            PeerSet::new(peers),
            &cfg,
            destination_host,
            section.destination_realm.clone(),
        ))
    }

    /// Starts connecting to one HSS at `hss` over TCP with a full peer configuration
    /// (its `allowed_peers` names the HSS; tests shorten the timers); requests carry
    /// `destination_host`, if any, and `destination_realm`; requests the HSS sends are
    /// refused.
    pub fn with_config(
        cfg: PeerConfig,
        hss: SocketAddr,
        destination_host: Option<String>,
        destination_realm: String,
    ) -> CxClient {
        let handler = RefuseRequests::new(&cfg.origin_host, &cfg.origin_realm);
        let host = cfg.allowed_peers.first().cloned().unwrap_or_default();
        let peer = RoutedPeer {
            host,
            realm: destination_realm.clone(),
            priority: 1,
            peer: Peer::connect(cfg.clone(), hss, Connector::Tcp, handler),
        };
        CxClient::over(
            PeerSet::new([peer]),
            &cfg,
            destination_host,
            destination_realm,
        )
    }

    fn over(
        peers: PeerSet,
        cfg: &PeerConfig,
        destination_host: Option<String>,
        destination_realm: String,
    ) -> CxClient {
        CxClient {
            peers,
            origin_host: cfg.origin_host.clone(),
            origin_realm: cfg.origin_realm.clone(),
            destination_host,
            destination_realm,
            sessions: Arc::new(AtomicU64::new(0)),
            session_base: rand::random(),
        }
    }

    /// The peers toward the HSSs (their state, statistics, metrics and readiness).
    pub fn peers(&self) -> &PeerSet {
        &self.peers
    }

    /// A request header with a fresh Session-Id
    /// (`<DiameterIdentity>;<high 32 bits>;<low 32 bits>`, RFC 6733 §8.8).
    pub fn header(&self) -> RequestHeader {
        let n = self.sessions.fetch_add(1, Ordering::Relaxed);
        RequestHeader {
            session_id: format!("{};{};{n}", self.origin_host, self.session_base),
            origin_host: self.origin_host.clone(),
            origin_realm: self.origin_realm.clone(),
            destination_host: self.destination_host.clone(),
            destination_realm: self.destination_realm.clone(),
        }
    }

    async fn exchange(&self, request: Message) -> Result<Message, CxFailure> {
        Ok(self.peers.request(request).await?)
    }

    /// Sends `uar` and decodes the UAA, whatever its result (TS 29.228 §6.1.1: the
    /// I-CSCF decides on it).
    pub async fn uar(&self, uar: &Uar) -> Result<Uaa, CxFailure> {
        let answer = self.exchange(uar.to_message()).await?;
        Uaa::from_message(&answer).map_err(malformed)
    }

    /// Sends `lir` and decodes the LIA, whatever its result (TS 29.228 §6.1.5).
    pub async fn lir(&self, lir: &Lir) -> Result<Lia, CxFailure> {
        let answer = self.exchange(lir.to_message()).await?;
        Lia::from_message(&answer).map_err(malformed)
    }

    /// MAR for one vector of `scheme` from the S-CSCF `server_name` (TS 29.228 §6.3.1);
    /// `authorization` carries RAND ‖ AUTS on AKA re-synchronisation. Returns the first
    /// SIP-Auth-Data-Item of a successful MAA.
    pub async fn mar(
        &self,
        server_name: &str,
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
            server_name: server_name.to_string(),
        };
        let answer = self.exchange(mar.to_message()).await?;
        let maa = Maa::from_message(&answer).map_err(malformed)?;
        check(&maa.header)?;
        maa.sip_auth_data_items
            .into_iter()
            .next()
            .ok_or_else(|| CxFailure::Malformed("MAA without SIP-Auth-Data-Item".into()))
    }

    /// SAR of `kind` for `impus` from the S-CSCF `server_name` (TS 29.228 §6.1.2);
    /// `impi` absent where the S-CSCF does not know it (UNREGISTERED_USER). Returns a
    /// successful SAA.
    pub async fn sar(
        &self,
        server_name: &str,
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
            server_name: server_name.to_string(),
            server_assignment_type: kind,
            user_data_already_available: if data_available {
                UserDataAlreadyAvailable::AlreadyAvailable
            } else {
                UserDataAlreadyAvailable::NotAvailable
            },
            sar_flags: None,
        };
        let answer = self.exchange(sar.to_message()).await?;
        let saa = Saa::from_message(&answer).map_err(malformed)?;
        check(&saa.header)?;
        Ok(saa)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn section(tls_ca: Option<&str>) -> CxClientSection {
        CxClientSection {
            hss: vec!["127.0.0.1:9".parse().unwrap()],
            origin_host: "icscf.ims.example.net".into(),
            origin_realm: "ims.example.net".into(),
            destination_host: "hss.ims.example.net".into(),
            destination_realm: "ims.example.net".into(),
            watchdog_secs: 30,
            request_timeout_secs: 5,
            tls_ca: tls_ca.map(Into::into),
            tls_server_name: None,
            tls_cert: None,
            tls_key: None,
            require_tls: false,
        }
    }

    #[tokio::test]
    async fn the_tls_ca_of_the_cx_section_is_used() {
        let refuse = || RefuseRequests::new("icscf.ims.example.net", "ims.example.net");
        assert!(CxClient::start(&section(None), refuse()).is_ok());
        let err = CxClient::start(&section(Some("/nonexistent/ca.pem")), refuse()).err();
        assert!(
            matches!(err, Some(TlsClientError::CaFile { .. })),
            "{err:?}"
        );
    }

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
