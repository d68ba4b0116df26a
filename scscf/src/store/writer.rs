//! Group commit of the bindings store: the shared writer
//! ([`ims_runtime::group_commit`]) over [`BindingStore::apply`]. Callers queue a
//! [`Change`] and wait for its commit ([`StoreWriter::write`]); every change pending (at
//! most [`MAX_BATCH`]) goes into one transaction, so the batches grow with the load and a
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

use ims_runtime::group_commit::{Batch, GroupCommit};

use super::{BindingStore, Change, StoreError};

pub use ims_runtime::group_commit::{WriterStats, MAX_BATCH};

/// The handle to the writer task of the bindings store.
pub type StoreWriter = GroupCommit<BindingStore>;

impl Batch for BindingStore {
    type Change = Change;
    type Error = StoreError;

    async fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        BindingStore::apply(self, changes).await
    }

    fn stopped() -> StoreError {
        StoreError::WriterStopped
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
