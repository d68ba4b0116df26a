//! The connection table: open stream connections by flow id and by remote address
//! (for reuse, RFC 3261 §18.2.2 and RFC 5626 §5), with per-peer and total counters
//! enforcing the connection limits. A [`Slot`] is an RAII claim on the limits; dropping
//! it removes the connection from the table.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Flow, TransportKind, TransportLimits, TransportStats};

/// Outgoing bytes for one connection's writer.
pub(super) type WriteTx = mpsc::Sender<Bytes>;

#[derive(Default)]
struct Inner {
    by_id: HashMap<u64, (Flow, WriteTx)>,
    by_remote: HashMap<(TransportKind, SocketAddr), Flow>,
    per_peer: HashMap<IpAddr, usize>,
    total: usize,
}

/// Open connections and their counters.
pub(super) struct ConnectionTable {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    max_per_peer: usize,
    max_total: usize,
    queue_depth: usize,
    stats: Arc<TransportStats>,
}

/// Where a run's connection ids start: a random point below 2^62 (so that counting up
/// never wraps). A flow's text names its connection by id and outlives the process in
/// the flow tokens a P-CSCF put into Path and Record-Route: a connection of a later run
/// must not take the id of an earlier run's connection from the same address (it
/// would receive what the token's flow was sent), and with ids drawn afresh each run
/// two runs' ids meet with a probability of about (connections per run) / 2^62.
fn first_connection_id() -> u64 {
    (rand::random::<u64>() >> 2).max(1)
}

impl ConnectionTable {
    pub(super) fn new(limits: &TransportLimits, stats: Arc<TransportStats>) -> Self {
        ConnectionTable {
            inner: Mutex::new(Inner::default()),
            next_id: AtomicU64::new(first_connection_id()),
            max_per_peer: limits.max_connections_per_peer,
            max_total: limits.max_connections,
            queue_depth: limits.queue_depth.max(1),
            stats,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The table stays consistent across a panic elsewhere: every update is a
        // single statement sequence without await points.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims room for one more connection with `ip`, or `None` if a limit forbids it.
    pub(super) fn reserve(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut inner = self.lock();
        let peer = inner.per_peer.get(&ip).copied().unwrap_or(0);
        if inner.total >= self.max_total || peer >= self.max_per_peer {
            TransportStats::inc(&self.stats.connections_refused);
            return None;
        }
        inner.total += 1;
        inner.per_peer.insert(ip, peer + 1);
        TransportStats::inc(&self.stats.connections_open);
        Some(Slot {
            table: self.clone(),
            ip,
            flow: None,
        })
    }

    /// The writer of an open stream flow (all of kind, remote and id must match).
    pub(super) fn writer(&self, flow: &Flow) -> Option<WriteTx> {
        let inner = self.lock();
        let (open, tx) = inner.by_id.get(&flow.id)?;
        (open == flow).then(|| tx.clone())
    }

    /// The most recent open connection to `addr` over `kind`, and its writer.
    pub(super) fn by_remote(
        &self,
        kind: TransportKind,
        addr: SocketAddr,
    ) -> Option<(Flow, WriteTx)> {
        let inner = self.lock();
        let flow = *inner.by_remote.get(&(kind, addr))?;
        let (_, tx) = inner.by_id.get(&flow.id)?;
        Some((flow, tx.clone()))
    }
}

/// A claim on the connection limits; once registered, the table entry of one
/// connection. Dropping it releases both.
pub(super) struct Slot {
    table: Arc<ConnectionTable>,
    ip: IpAddr,
    flow: Option<Flow>,
}

impl Slot {
    /// Enters the connection in the table (the newest connection to a remote address
    /// is the one reused) and returns its flow and the two ends of its write queue.
    pub(super) fn register(
        &mut self,
        kind: TransportKind,
        remote: SocketAddr,
    ) -> (Flow, WriteTx, mpsc::Receiver<Bytes>) {
        let id = self.table.next_id.fetch_add(1, Ordering::Relaxed);
        let flow = Flow { kind, remote, id };
        let (tx, rx) = mpsc::channel(self.table.queue_depth);
        let mut inner = self.table.lock();
        inner.by_id.insert(id, (flow, tx.clone()));
        inner.by_remote.insert((kind, remote), flow);
        self.flow = Some(flow);
        (flow, tx, rx)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.table.lock();
        if let Some(flow) = self.flow {
            inner.by_id.remove(&flow.id);
            if inner.by_remote.get(&(flow.kind, flow.remote)) == Some(&flow) {
                inner.by_remote.remove(&(flow.kind, flow.remote));
            }
        }
        inner.total = inner.total.saturating_sub(1);
        if let Some(n) = inner.per_peer.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inner.per_peer.remove(&self.ip);
            }
        }
        self.table
            .stats
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(per_peer: usize, total: usize) -> Arc<ConnectionTable> {
        let limits = TransportLimits {
            max_connections_per_peer: per_peer,
            max_connections: total,
            ..TransportLimits::default()
        };
        Arc::new(ConnectionTable::new(&limits, Arc::default()))
    }

    #[test]
    fn per_peer_limit_applies_per_ip_and_frees_on_drop() {
        let t = table(2, 10);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = t.reserve(a).unwrap();
        let _s2 = t.reserve(a).unwrap();
        assert!(t.reserve(a).is_none());
        assert!(t.reserve(b).is_some());
        drop(s1);
        assert!(t.reserve(a).is_some());
        assert_eq!(t.stats.connections_refused.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn total_limit_applies_across_peers() {
        let t = table(5, 2);
        let _a = t.reserve("192.0.2.1".parse().unwrap()).unwrap();
        let _b = t.reserve("192.0.2.2".parse().unwrap()).unwrap();
        assert!(t.reserve("192.0.2.3".parse().unwrap()).is_none());
        assert_eq!(t.stats.connections_open.load(Ordering::Relaxed), 2);
    }

    /// Two runs (two tables): the first connection from one address gets different
    /// ids, so a flow token of the first run's connection names nothing in the second
    /// (with ids from 1 each run, both were `TCP#1:192.0.2.1:5060`).
    #[test]
    fn each_run_numbers_its_connections_afresh() {
        let remote: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let first = |t: Arc<ConnectionTable>| {
            let mut slot = t.reserve(remote.ip()).unwrap();
            slot.register(TransportKind::Tcp, remote).0
        };
        let (before, after) = (first(table(5, 5)), first(table(5, 5)));
        assert_ne!(before, after);
        assert_ne!(before.to_string(), after.to_string());
        // Round trip of the text form a P-CSCF stores.
        assert_eq!(before.to_string().parse::<Flow>(), Ok(before));
    }

    #[test]
    fn newest_connection_is_reused_and_entries_go_on_drop() {
        let t = table(5, 5);
        let remote: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let mut s1 = t.reserve(remote.ip()).unwrap();
        let (f1, _, _r1) = s1.register(TransportKind::Tcp, remote);
        let mut s2 = t.reserve(remote.ip()).unwrap();
        let (f2, _, _r2) = s2.register(TransportKind::Tcp, remote);
        assert_ne!(f1, f2);
        assert_eq!(t.by_remote(TransportKind::Tcp, remote).unwrap().0, f2);
        assert!(t.by_remote(TransportKind::Tls, remote).is_none());
        assert!(t.writer(&f2).is_some());
        let forged = Flow {
            remote: "192.0.2.9:5060".parse().unwrap(),
            ..f2
        };
        assert!(t.writer(&forged).is_none());
        drop(s1);
        assert!(t.writer(&f1).is_none());
        assert_eq!(t.by_remote(TransportKind::Tcp, remote).unwrap().0, f2);
        drop(s2);
        assert!(t.by_remote(TransportKind::Tcp, remote).is_none());
        assert_eq!(t.stats.connections_open.load(Ordering::Relaxed), 0);
    }
}
