//! The I-CSCF's Cx client toward the HSS (TS 29.228, TS 29.229 over RFC 6733): one
//! Diameter peer kept connected (reconnecting with backoff), fresh Session-Ids
//! (RFC 6733 §8.8), and the UAR and LIR exchanges.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ims_config::CxClientSection;
use ims_diameter::cx::{CxError, Lia, Lir, RequestHeader, Uaa, Uar};
use ims_diameter::dict::result;
use ims_diameter::peer::{
    BoxFuture, Connector, Handler, Peer, PeerAddress, PeerAddresses, PeerConfig, PeerError,
    TlsClientError,
};
use ims_diameter::Message;

/// Why a Cx exchange produced no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum CxFailure {
    /// The HSS did not answer (not connected, connection lost, timeout).
    #[error("HSS unreachable: {0}")]
    Peer(#[from] PeerError),
    /// The answer is not a valid UAA or LIA.
    #[error("invalid answer: {0}")]
    Invalid(#[from] CxError),
}

/// Answers what the HSS might send us: the I-CSCF serves no Cx requests (TS 29.228
/// §6.1: RTR and PPR go to the S-CSCF), so DIAMETER_COMMAND_UNSUPPORTED.
struct NoRequests {
    host: String,
    realm: String,
}

impl Handler for NoRequests {
    fn handle(&self, request: Message) -> BoxFuture<'_, Message> {
        Box::pin(async move {
            tracing::info!(
                command = request.command_code,
                "Cx request to the I-CSCF refused"
            );
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

/// A Cx client.
#[derive(Clone)]
pub struct CxClient {
    peer: Peer,
    origin_host: String,
    origin_realm: String,
    destination_host: Option<String>,
    destination_realm: String,
    sessions: Arc<AtomicU64>,
    epoch: u64,
}

impl std::fmt::Debug for CxClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CxClient")
            .field("origin_host", &self.origin_host)
            .finish_non_exhaustive()
    }
}

impl CxClient {
    /// Starts connecting to the HSS per `section` (TCP, or TLS when `tls_ca` is set).
    pub fn connect(section: &CxClientSection) -> Result<CxClient, TlsClientError> {
        let mut cfg = PeerConfig::cx(&section.origin_host, &section.origin_realm);
        cfg.watchdog_interval = Duration::from_secs(section.watchdog_secs);
        cfg.request_timeout = Duration::from_secs(section.request_timeout_secs);
        cfg.allowed_peers = vec![section.destination_host.clone()];
        let connector = Connector::client(
            section.tls_ca.as_deref(),
            section.hss_tls_name(),
            section.client_identity(),
        )?;
        let hss = section
            .hss
            .iter()
            .map(|h| PeerAddress::new(&h.host, h.port));
        Ok(CxClient::with_connector(
            cfg,
            PeerAddresses::new(hss),
            connector,
            Some(section.destination_host.clone()),
            section.destination_realm.clone(),
        ))
    }

    /// Starts connecting to `hss` over TCP with a full peer configuration (its
    /// `allowed_peers` names the HSS; tests shorten the timers); requests carry
    /// `destination_host`, if any, and `destination_realm`.
    pub fn with_config(
        cfg: PeerConfig,
        hss: SocketAddr,
        destination_host: Option<String>,
        destination_realm: String,
    ) -> CxClient {
        CxClient::with_connector(
            cfg,
            hss,
            Connector::Tcp,
            destination_host,
            destination_realm,
        )
    }

    fn with_connector(
        cfg: PeerConfig,
        hss: impl Into<PeerAddresses>,
        connector: Connector,
        destination_host: Option<String>,
        destination_realm: String,
    ) -> CxClient {
        let (origin_host, origin_realm) = (cfg.origin_host.clone(), cfg.origin_realm.clone());
        let handler = Arc::new(NoRequests {
            host: origin_host.clone(),
            realm: origin_realm.clone(),
        });
        let peer = Peer::connect(cfg, hss, connector, handler);
        CxClient {
            peer,
            destination_host,
            destination_realm,
            origin_host,
            origin_realm,
            sessions: Arc::new(AtomicU64::new(0)),
            epoch: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// The peer (state, statistics).
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// A request header with a fresh Session-Id
    /// (`<DiameterIdentity>;<high 32 bits>;<low 32 bits>`, RFC 6733 §8.8).
    pub fn header(&self) -> RequestHeader {
        let n = self.sessions.fetch_add(1, Ordering::Relaxed);
        RequestHeader {
            session_id: format!("{};{};{}", self.origin_host, self.epoch, n),
            origin_host: self.origin_host.clone(),
            origin_realm: self.origin_realm.clone(),
            destination_host: self.destination_host.clone(),
            destination_realm: self.destination_realm.clone(),
        }
    }

    /// Sends `uar` and decodes the UAA.
    pub async fn uar(&self, uar: &Uar) -> Result<Uaa, CxFailure> {
        let answer = self.peer.request(uar.to_message()).await?;
        Ok(Uaa::from_message(&answer)?)
    }

    /// Sends `lir` and decodes the LIA.
    pub async fn lir(&self, lir: &Lir) -> Result<Lia, CxFailure> {
        let answer = self.peer.request(lir.to_message()).await?;
        Ok(Lia::from_message(&answer)?)
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
        assert!(CxClient::connect(&section(None)).is_ok());
        let err = CxClient::connect(&section(Some("/nonexistent/ca.pem"))).err();
        assert!(
            matches!(err, Some(TlsClientError::CaFile { .. })),
            "{err:?}"
        );
    }
}
