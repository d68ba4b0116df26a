//! Group commit of the bindings store: one task owns the writes. Callers queue a
//! [`Change`] and wait for its commit ([`StoreWriter::write`]); the task takes every
//! change pending (at most [`MAX_BATCH`]) into one transaction
//! ([`BindingStore::apply`]), commits, then answers each caller. While a transaction is
//! committing the next changes queue up, so the batches grow with the load and a
//! registration costs a fraction of a transaction, without any added wait at low load.
//!
//! Changes are applied in the order they were queued: of several changes of one identity
//! in a batch the last one is what the transaction stores. The callers that need more
//! than that (read, change, persist, update the memory of one identity as one step) hold
//! that identity's lock across the write (`crate::identity_lock`).
//!
//! When a batch of several changes fails, each of its changes is retried in a
//! transaction of its own and answered with its own result: a change the database
//! refuses fails alone, and the others are stored. When the database itself is down,
//! every change of the batch gets the error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{BindingStore, Change, StoreError};

/// Most changes in one transaction.
pub const MAX_BATCH: usize = 256;
/// Changes queued at most; a caller beyond waits for room.
const QUEUE: usize = 4 * MAX_BATCH;

/// A change and who waits for its commit.
struct Job {
    change: Change,
    done: oneshot::Sender<Result<(), StoreError>>,
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
#[derive(Debug, Clone)]
pub struct StoreWriter {
    queue: mpsc::Sender<Job>,
    counters: Arc<Counters>,
}

/// A change queued: [`Pending::committed`] waits for its transaction.
#[derive(Debug)]
pub struct Pending(Option<oneshot::Receiver<Result<(), StoreError>>>);

impl Pending {
    /// The result of the transaction that stored the change.
    pub async fn committed(self) -> Result<(), StoreError> {
        match self.0 {
            Some(rx) => rx.await.unwrap_or(Err(StoreError::WriterStopped)),
            None => Err(StoreError::WriterStopped),
        }
    }
}

impl StoreWriter {
    /// Starts the writer task over `store`, with at most `max_batch` changes per
    /// transaction (at least one).
    pub fn spawn(store: BindingStore, max_batch: usize) -> StoreWriter {
        let (queue, rx) = mpsc::channel(QUEUE.max(max_batch));
        let counters = Arc::new(Counters::default());
        tokio::spawn(run(store, rx, max_batch.max(1), counters.clone()));
        StoreWriter { queue, counters }
    }

    /// Queues `change` after every change queued before it (waits while the queue is
    /// full); the [`Pending`] returned waits for its commit.
    pub async fn submit(&self, change: Change) -> Pending {
        let (done, rx) = oneshot::channel();
        match self.queue.send(Job { change, done }).await {
            Ok(()) => Pending(Some(rx)),
            Err(_) => Pending(None),
        }
    }

    /// Queues `change` and waits for its commit.
    pub async fn write(&self, change: Change) -> Result<(), StoreError> {
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
/// every [`StoreWriter`] is dropped.
async fn run(
    store: BindingStore,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    counters: Arc<Counters>,
) {
    let mut jobs = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        let (changes, waiting): (Vec<Change>, Vec<_>) =
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{on_both_backends, refused, reg, stored};

    fn save(impu: &str, contact: &str) -> Change {
        Change::Save(reg(impu, &[(contact, 5000)]))
    }

    /// Queues `changes` from this task without letting the writer run in between (the
    /// test runtime has one thread; `unconstrained` keeps tokio's budget from making a
    /// send yield), then waits for every commit.
    async fn burst(writer: &StoreWriter, changes: Vec<Change>) -> Vec<Result<(), StoreError>> {
        let pending = tokio::task::unconstrained(async {
            let mut pending = Vec::new();
            for c in changes {
                pending.push(writer.submit(c).await);
            }
            pending
        })
        .await;
        let mut results = Vec::new();
        for p in pending {
            results.push(p.committed().await);
        }
        results
    }

    async fn batches(url: &str) {
        let store = BindingStore::open(url).await.unwrap();
        let writer = StoreWriter::spawn(store.clone(), MAX_BATCH);
        let changes = (0..300)
            .map(|i| save(&format!("sip:user{i:03}@x"), "sip:u@10.0.0.1"))
            .collect();
        let results = burst(&writer, changes).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let stats = writer.stats();
        assert_eq!(
            stats,
            WriterStats {
                changes: 300,
                transactions: 2,
                retried_batches: 0
            },
            "300 changes pending at once: a batch of {MAX_BATCH}, then the rest"
        );
        assert_eq!(stored(&store).await.len(), 300);
        store.close().await;
    }

    on_both_backends!(
        batches,
        sqlite_pending_changes_share_a_transaction,
        postgres_pending_changes_share_a_transaction
    );

    async fn order(url: &str) {
        let store = BindingStore::open(url).await.unwrap();
        let writer = StoreWriter::spawn(store.clone(), 2);
        // Batches of two: alice's changes span three transactions; the last one stays.
        let changes = vec![
            save("sip:alice@x", "sip:a@10.0.0.1"),
            save("sip:alice@x", "sip:a@10.0.0.2"),
            Change::Delete("sip:alice@x".into()),
            save("sip:bob@x", "sip:b@10.0.0.1"),
            save("sip:alice@x", "sip:a@10.0.0.3"),
        ];
        let last = changes[4].clone();
        let results = burst(&writer, changes).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(writer.stats().transactions, 3);
        let all = stored(&store).await;
        assert_eq!(Change::Save(all[0].clone()), last);
        assert_eq!(all[1].impu, "sip:bob@x");
        store.close().await;
    }

    on_both_backends!(
        order,
        sqlite_changes_are_stored_in_queue_order,
        postgres_changes_are_stored_in_queue_order
    );

    async fn failing_item(url: &str) {
        let store = BindingStore::open(url).await.unwrap();
        let writer = StoreWriter::spawn(store.clone(), MAX_BATCH);
        let changes = vec![
            save("sip:alice@x", "sip:a@10.0.0.1"),
            Change::Save(refused("sip:bob@x")),
            save("sip:carol@x", "sip:c@10.0.0.1"),
        ];
        let results = burst(&writer, changes).await;
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert!(matches!(results[1], Err(StoreError::Db(_))), "{results:?}");
        let stats = writer.stats();
        assert_eq!(stats.retried_batches, 1);
        assert_eq!(stats.transactions, 4, "the batch, then one per change");
        let impus: Vec<String> = stored(&store).await.into_iter().map(|r| r.impu).collect();
        assert_eq!(impus, ["sip:alice@x", "sip:carol@x"]);
        store.close().await;
    }

    on_both_backends!(
        failing_item,
        sqlite_a_refused_change_fails_alone,
        postgres_a_refused_change_fails_alone
    );

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_share_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let store = BindingStore::open(&crate::store::tests::sqlite_url(dir.path()))
            .await
            .unwrap();
        let writer = StoreWriter::spawn(store.clone(), MAX_BATCH);
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    writer
                        .write(save(&format!("sip:user{i:03}@x"), "sip:u@10.0.0.1"))
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let stats = writer.stats();
        assert_eq!(stats.changes, 200);
        assert!(
            stats.transactions < 200,
            "200 concurrent writers, {} transactions",
            stats.transactions
        );
        assert_eq!(stored(&store).await.len(), 200);
        store.close().await;
    }

    #[tokio::test]
    async fn a_closed_store_fails_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = BindingStore::open(&crate::store::tests::sqlite_url(dir.path()))
            .await
            .unwrap();
        let writer = StoreWriter::spawn(store.clone(), MAX_BATCH);
        store.close().await;
        let changes = vec![
            save("sip:alice@x", "sip:a@10.0.0.1"),
            save("sip:bob@x", "sip:b@10.0.0.1"),
        ];
        let results = burst(&writer, changes).await;
        assert!(results.iter().all(Result::is_err), "{results:?}");
    }
}
