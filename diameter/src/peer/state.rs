//! The peer state machine of RFC 6733 §5.6, one type per state.
//!
//! ```text
//! Closed --connect--> WaitConnAck --conn_ack/send CER--> WaitICea --CEA ok--> Open (I-Open)
//! Closed --accept---> WaitCer     --CER ok/send CEA------------------------> Open (R-Open)
//! Open --DPR sent--> Closing --DPA / timeout--> Closed
//! Open --DPR received / watchdog expiry / connection lost--> Closed
//! ```
//! Election (§5.6.4) is not needed: this node either only initiates or only accepts a
//! connection for a given peer.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::codec::Framed;

use super::binding::{self, Refusal, Refusals, Remote};
use super::cer;
use super::conn::{BoxIo, Connector};
use super::shared::{CloseReason, PeerState, Shared};
use crate::codec::{DiameterCodec, Frame};
use crate::dict::{command, result};
use crate::message::Message;

/// A framed connection.
pub(crate) type Link = Framed<BoxIo, DiameterCodec>;

/// Closed: no transport connection.
pub struct Closed {
    pub(crate) shared: Arc<Shared>,
    /// Why the previous connection ended, if there was one.
    pub reason: Option<CloseReason>,
}

/// Wait-Conn-Ack: the transport connection is being established.
pub struct WaitConnAck {
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    connector: Connector,
}

/// Wait-I-CEA: CER sent, waiting for the CEA.
pub struct WaitICea {
    shared: Arc<Shared>,
    link: Link,
    cer: Message,
}

/// Responder side before R-Open: connection accepted, waiting for the CER.
pub struct WaitCer {
    shared: Arc<Shared>,
    link: Link,
}

/// I-Open or R-Open: capabilities exchanged, messages flow both ways.
pub struct Open {
    pub(crate) shared: Arc<Shared>,
    pub(crate) link: Link,
    /// The peer's Origin-Host.
    pub(crate) remote_host: String,
    /// The request commands the peer may send (its binding's, when it connected to
    /// us); `None`: any.
    pub(crate) commands: Option<Arc<[u32]>>,
}

/// Closing: DPR sent, waiting for the DPA.
pub struct Closing {
    pub(crate) shared: Arc<Shared>,
    pub(crate) link: Link,
    pub(crate) dpr: Message,
    pub(crate) reason: CloseReason,
}

fn link(shared: &Shared, io: BoxIo) -> Link {
    Framed::new(io, DiameterCodec::new(shared.cfg.max_message_size))
}

impl Closed {
    pub(crate) fn new(shared: Arc<Shared>) -> Closed {
        shared.set_state(PeerState::Closed);
        Closed {
            shared,
            reason: None,
        }
    }

    /// I-Snd-Conn-Req: start connecting to `addr`.
    pub fn connect(self, addr: std::net::SocketAddr, connector: Connector) -> WaitConnAck {
        self.shared.set_state(PeerState::WaitConnAck);
        WaitConnAck {
            shared: self.shared,
            addr,
            connector,
        }
    }

    /// R-Conn-CER path: a connection was accepted from a peer.
    pub(crate) fn accept(self, io: BoxIo) -> WaitCer {
        self.shared.set_state(PeerState::WaitCer);
        let link = link(&self.shared, io);
        WaitCer {
            shared: self.shared,
            link,
        }
    }
}

impl WaitConnAck {
    /// I-Rcv-Conn-Ack: the connection (and TLS handshake) completed; send the CER.
    pub async fn conn_ack(self) -> Result<WaitICea, Closed> {
        let shared = self.shared;
        let t = shared.cfg.exchange_timeout;
        let io = match timeout(t, connect(self.addr, &self.connector)).await {
            Ok(Ok(io)) => io,
            Ok(Err(e)) => return Err(Closed::after(shared, CloseReason::Connect(e.to_string()))),
            Err(_) => return Err(Closed::after(shared, CloseReason::Timeout)),
        };
        let mut link = link(&shared, io);
        let mut cer = cer::cer(&shared.cfg);
        cer.hop_by_hop = shared.ids.next_hop_by_hop();
        cer.end_to_end = shared.ids.next_end_to_end();
        if link.send(&cer).await.is_err() {
            return Err(Closed::after(shared, CloseReason::ConnectionLost));
        }
        shared.set_state(PeerState::WaitICea);
        Ok(WaitICea { shared, link, cer })
    }
}

async fn connect(addr: std::net::SocketAddr, connector: &Connector) -> std::io::Result<BoxIo> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    connector.wrap(tcp).await
}

/// Reads the next whole, valid message, within `t`.
async fn next_message(link: &mut Link, t: Duration) -> Result<Message, CloseReason> {
    match timeout(t, link.next()).await {
        Err(_) => Err(CloseReason::Timeout),
        Ok(None) => Err(CloseReason::ConnectionLost),
        Ok(Some(Err(_))) => Err(CloseReason::Framing),
        Ok(Some(Ok(Frame::Invalid { error, .. }))) => {
            tracing::warn!(%error, "diameter: invalid message during capabilities exchange");
            Err(CloseReason::Framing)
        }
        Ok(Some(Ok(Frame::Message(m)))) => Ok(m),
    }
}

impl WaitICea {
    /// I-Rcv-CEA: check the answer; success leads to I-Open, anything else to Closed.
    pub async fn receive_cea(mut self) -> Result<Open, Closed> {
        let shared = self.shared;
        let m = match next_message(&mut self.link, shared.cfg.exchange_timeout).await {
            Ok(m) => m,
            Err(r) => return Err(Closed::after(shared, r)),
        };
        let is_cea = m.command_code == command::CAPABILITIES_EXCHANGE
            && !m.is_request()
            && m.hop_by_hop == self.cer.hop_by_hop;
        if !is_cea {
            return Err(Closed::after(shared, CloseReason::Protocol("expected CEA")));
        }
        let code = match m.result_code() {
            Some(result::DIAMETER_SUCCESS) => cer::judge(&shared.cfg, &m),
            Some(other) => other,
            None => result::DIAMETER_MISSING_AVP,
        };
        if code != result::DIAMETER_SUCCESS {
            return Err(Closed::after(
                shared,
                CloseReason::CapabilitiesRejected(code),
            ));
        }
        let remote_host = m.origin_host().unwrap_or_default().to_owned();
        Ok(Open::new(shared, self.link, remote_host, None))
    }
}

impl WaitCer {
    /// R-Conn-CER / Process-CER: judge the CER, answer it; success leads to R-Open.
    /// A peer whose Origin-Host is not configured, or not proven by `remote` (its
    /// certificate or address, [`binding::check`]), gets DIAMETER_UNKNOWN_PEER (counted
    /// and logged in `refusals`) and a capability mismatch
    /// DIAMETER_NO_COMMON_APPLICATION, then the connection is closed.
    pub async fn receive_cer(
        mut self,
        remote: &Remote,
        refusals: &Refusals,
    ) -> Result<Open, Closed> {
        let shared = self.shared;
        let m = match next_message(&mut self.link, shared.cfg.exchange_timeout).await {
            Ok(m) => m,
            Err(r) => return Err(Closed::after(shared, r)),
        };
        if m.command_code != command::CAPABILITIES_EXCHANGE || !m.is_request() {
            return Err(Closed::after(shared, CloseReason::Protocol("expected CER")));
        }
        let cfg = &shared.cfg;
        let mut commands = None;
        let code = match m.origin_host() {
            None => {
                refusals.refused("", remote, Refusal::UnknownHost, "no Origin-Host");
                result::DIAMETER_MISSING_AVP
            }
            Some(host) => match binding::check(&cfg.bindings, cfg.require_tls, host, remote) {
                Ok(bound) => {
                    commands = bound.commands.as_deref().map(Arc::from);
                    cer::common(cfg, &m)
                }
                Err(why) => {
                    refusals.refused(host, remote, why, "");
                    result::DIAMETER_UNKNOWN_PEER
                }
            },
        };
        let cea = cer::cea(&shared.cfg, &m, code);
        if self.link.send(&cea).await.is_err() {
            return Err(Closed::after(shared, CloseReason::ConnectionLost));
        }
        if code != result::DIAMETER_SUCCESS {
            // Unproven peers were logged, rate-limited, by `refusals`.
            if code == result::DIAMETER_NO_COMMON_APPLICATION {
                tracing::warn!(host = ?m.origin_host(), code, "diameter: CER refused");
            }
            return Err(Closed::after(
                shared,
                CloseReason::CapabilitiesRejected(code),
            ));
        }
        let remote_host = m.origin_host().unwrap_or_default().to_owned();
        Ok(Open::new(shared, self.link, remote_host, commands))
    }
}

impl Closing {
    /// Waits for the DPA (answering nothing else), then closes.
    pub async fn receive_dpa(mut self) -> Closed {
        let shared = self.shared.clone();
        let deadline = tokio::time::Instant::now() + shared.cfg.exchange_timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match next_message(&mut self.link, left).await {
                Ok(m)
                    if m.command_code == command::DISCONNECT_PEER
                        && !m.is_request()
                        && m.hop_by_hop == self.dpr.hop_by_hop =>
                {
                    Shared::bump(&shared.counters.dpa_received);
                    break;
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        let t = shared.cfg.exchange_timeout;
        let _ = timeout(t, SinkExt::<&Message>::close(&mut self.link)).await;
        Closed::after(shared, self.reason)
    }
}
