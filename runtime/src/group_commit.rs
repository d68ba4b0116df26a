//! Group commit: one task owns a store's writes. Callers queue a change and wait for its
//! commit ([`GroupCommit::write`]); the task takes every change pending (at most the
//! batch size) into one transaction ([`Batch::apply`]), commits, then answers each
//! caller. While a transaction is committing the next changes queue up, so the batches
//! grow with the load and a write costs a fraction of a transaction, without any added
//! wait at low load. The S-CSCF's bindings (`scscf/src/store/writer.rs`) and the
//! P-CSCF's registrations (`pcscf/src/store.rs`) are written this way.
//!
//! Changes are applied in the order they were queued; what a batch of several changes of
//! one key stores is the store's to say ([`Batch::apply`]: both stores keep the last).
//!
//! When a batch of several changes fails, each of its changes is retried in a
//! transaction of its own and answered with its own result: a change the database
//! refuses fails alone, and the others are stored. When the database itself is down,
//! every change of the batch gets the error.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

/// Most changes in one transaction by default.
pub const MAX_BATCH: usize = 256;

/// A store written in batches: one call, one transaction.
pub trait Batch: Send + Sync + 'static {
    /// One change of the store.
    type Change: Send + Sync + 'static;
    /// Why a batch failed.
    type Error: std::fmt::Display + Send + 'static;

    /// Applies `changes` in one transaction, all or nothing.
    fn apply(
        &self,
        changes: &[Self::Change],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The error a change gets when the writer task has stopped before answering (the
    /// process is shutting down).
    fn stopped() -> Self::Error;
}

/// A change and who waits for its commit.
struct Job<B: Batch> {
    change: B::Change,
    done: oneshot::Sender<Result<(), B::Error>>,
}

/// Counters of the writer since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Changes answered (committed or failed).
    pub changes: u64,
    /// Transactions run (batches, and the single-change ones after a failed batch).
    pub transactions: u64,
    /// Batches that failed and were retried change by change.
    pub retried_batches: u64,
}

#[derive(Debug, Default)]
struct Counters {
    changes: AtomicU64,
    transactions: AtomicU64,
    retried_batches: AtomicU64,
}

/// The handle to the writer task; the task ends when every handle is dropped. Cheap to
/// clone.
pub struct GroupCommit<B: Batch> {
    queue: mpsc::Sender<Job<B>>,
    counters: Arc<Counters>,
}

impl<B: Batch> Clone for GroupCommit<B> {
    fn clone(&self) -> Self {
        GroupCommit {
            queue: self.queue.clone(),
            counters: self.counters.clone(),
        }
    }
}

impl<B: Batch> std::fmt::Debug for GroupCommit<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A change queued: [`Pending::committed`] waits for its transaction.
pub struct Pending<B: Batch>(Option<oneshot::Receiver<Result<(), B::Error>>>);

impl<B: Batch> std::fmt::Debug for Pending<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pending")
    }
}

impl<B: Batch> Pending<B> {
    /// The result of the transaction that stored the change.
    pub async fn committed(self) -> Result<(), B::Error> {
        match self.0 {
            Some(rx) => rx.await.unwrap_or_else(|_| Err(B::stopped())),
            None => Err(B::stopped()),
        }
    }
}

impl<B: Batch> GroupCommit<B> {
    /// Starts the writer task over `store`, with at most `max_batch` changes per
    /// transaction (at least one) and `4 * MAX_BATCH` changes queued at most (a caller
    /// beyond waits for room).
    pub fn spawn(store: B, max_batch: usize) -> GroupCommit<B> {
        let max_batch = max_batch.max(1);
        let (queue, rx) = mpsc::channel((4 * MAX_BATCH).max(max_batch));
        let counters = Arc::new(Counters::default());
        tokio::spawn(run(store, rx, max_batch, counters.clone()));
        GroupCommit { queue, counters }
    }

    /// Queues `change` after every change queued before it (waits while the queue is
    /// full); the [`Pending`] returned waits for its commit.
    pub async fn submit(&self, change: B::Change) -> Pending<B> {
        let (done, rx) = oneshot::channel();
        match self.queue.send(Job { change, done }).await {
            Ok(()) => Pending(Some(rx)),
            Err(_) => Pending(None),
        }
    }

    /// Queues `change` and waits for its commit.
    pub async fn write(&self, change: B::Change) -> Result<(), B::Error> {
        self.submit(change).await.committed().await
    }

    /// The counters so far.
    pub fn stats(&self) -> WriterStats {
        let c = &self.counters;
        WriterStats {
            changes: c.changes.load(Ordering::Relaxed),
            transactions: c.transactions.load(Ordering::Relaxed),
            retried_batches: c.retried_batches.load(Ordering::Relaxed),
        }
    }
}

/// The writer task: a batch of everything pending, one transaction, the answers; until
/// every [`GroupCommit`] is dropped.
async fn run<B: Batch>(
    store: B,
    mut rx: mpsc::Receiver<Job<B>>,
    max_batch: usize,
    counters: Arc<Counters>,
) {
    let mut jobs = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        let (changes, waiting): (Vec<B::Change>, Vec<_>) =
            jobs.drain(..).map(|j| (j.change, j.done)).unzip();
        counters.transactions.fetch_add(1, Ordering::Relaxed);
        let results = match store.apply(&changes).await {
            Ok(()) => changes.iter().map(|_| Ok(())).collect(),
            Err(e) if changes.len() == 1 => vec![Err(e)],
            Err(e) => {
                tracing::warn!(changes = changes.len(), error = %e, "batch of store writes failed; retrying each change alone");
                counters.retried_batches.fetch_add(1, Ordering::Relaxed);
                let mut results = Vec::with_capacity(changes.len());
                for change in &changes {
                    counters.transactions.fetch_add(1, Ordering::Relaxed);
                    results.push(store.apply(std::slice::from_ref(change)).await);
                }
                results
            }
        };
        counters
            .changes
            .fetch_add(waiting.len() as u64, Ordering::Relaxed);
        for (done, result) in waiting.into_iter().zip(results) {
            // The caller may have gone (its request timed out): nothing to tell.
            let _ = done.send(result);
        }
    }
}
