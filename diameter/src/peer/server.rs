//! The responder side: accepts connections from configured peers (RFC 6733 §5.6 R-Accept
//! and Process-CER), binds each one's Origin-Host to its connection
//! ([`super::binding`]) and serves it as a [`Peer`].
//!
//! A second connection proving the same Origin-Host replaces the first as the one
//! [`Server::peer`] returns (requests the server sends, RTR/PPR, go to the newest); the
//! first runs until it closes (its watchdog fails over a dead one). It is not refused:
//! the name is proven by the new connection as much as by the old, and a CSCF restarted
//! after a crash must not wait 2·Tw for its half-open connection to expire. Election
//! (RFC 6733 §5.6.4) does not apply: the HSS never initiates.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::binding::{Refusal, Refusals, Remote, RemoteTransport};
use super::conn::Acceptor;
use super::ids::IdGenerator;
use super::shared::{lock, Shared};
use super::state::Closed;
use super::{Handler, Peer, PeerConfig};

/// A listening Diameter node.
pub struct Server {
    local_addr: SocketAddr,
    peers: Arc<Mutex<HashMap<String, Peer>>>,
    refusals: Arc<Refusals>,
    metrics: super::DiameterMetrics,
    task: JoinHandle<()>,
}

impl Server {
    /// Listens on `addr`; each accepted connection goes through CER/CEA and then runs
    /// with `handler` answering its requests.
    pub async fn bind(
        cfg: PeerConfig,
        addr: SocketAddr,
        acceptor: Acceptor,
        handler: Arc<dyn Handler>,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let peers = Arc::new(Mutex::new(HashMap::new()));
        let refusals = Arc::new(Refusals::default());
        let metrics = cfg.metrics.clone();
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::new(cfg),
            acceptor,
            handler,
            peers.clone(),
            refusals.clone(),
        ));
        Ok(Server {
            local_addr,
            peers,
            refusals,
            metrics,
            task,
        })
    }

    /// Capabilities exchanges refused because the Origin-Host was missing, unknown or
    /// not proven by the connection.
    pub fn refusals(&self) -> &Refusals {
        &self.refusals
    }

    /// The counters of the requests and answers on this server's connections (its
    /// configuration's, shared with the other servers made from that configuration).
    pub fn metrics(&self) -> &super::DiameterMetrics {
        &self.metrics
    }

    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The open peer whose Origin-Host is `host`, to send it requests (RTR, PPR ...).
    pub fn peer(&self, host: &str) -> Option<Peer> {
        lock(&self.peers).get(&host.to_ascii_lowercase()).cloned()
    }

    /// Stops listening and drops every connection at once, without DPR (as a crash
    /// would).
    pub fn abort(self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    cfg: Arc<PeerConfig>,
    acceptor: Acceptor,
    handler: Arc<dyn Handler>,
    peers: Arc<Mutex<HashMap<String, Peer>>>,
    refusals: Arc<Refusals>,
) {
    let ids = Arc::new(IdGenerator::new());
    // Dropping the set (when this task is aborted) aborts every connection.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, remote) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "diameter: accept failed");
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let shared = Shared::new(cfg.clone(), ids.clone());
                let acceptor = acceptor.clone();
                let handler = handler.clone();
                let peers = peers.clone();
                let refusals = refusals.clone();
                conns.spawn(async move {
                    let t = shared.cfg.exchange_timeout;
                    let (io, transport) = match tokio::time::timeout(t, acceptor.wrap(tcp)).await {
                        Ok(Ok(io)) => io,
                        Ok(Err(e)) => {
                            let remote = Remote {
                                addr: remote.ip(),
                                transport: RemoteTransport::Tls { names: None },
                            };
                            refusals.refused("", &remote, Refusal::TlsHandshake, &e.to_string());
                            return;
                        }
                        Err(_) => return,
                    };
                    let remote = Remote { addr: remote.ip(), transport };
                    let open = match Closed::new(shared.clone()).accept(io).receive_cer(&remote, &refusals).await {
                        Ok(open) => open,
                        Err(_) => return,
                    };
                    let key = open.remote_host.to_ascii_lowercase();
                    lock(&peers).insert(key.clone(), Peer::from_shared(shared.clone()));
                    open.run(handler).await;
                    let mut map = lock(&peers);
                    if map.get(&key).is_some_and(|p| Arc::ptr_eq(&p.shared, &shared)) {
                        map.remove(&key);
                    }
                });
            }
            Some(_) = conns.join_next() => {}
        }
    }
}
