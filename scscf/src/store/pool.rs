//! The S-CSCFs of a pool on one store (`docs/scale-out.md`): each renews a lease
//! ([`BindingStore::renew_lease`]) while it runs, and the registrations of an owner
//! whose lease ran out (or that never held one: rows stored before owners were) are
//! taken over by another ([`BindingStore::take_over_orphans`]), a bounded number per
//! call. On PostgreSQL the rows taken are locked (`FOR UPDATE ... SKIP LOCKED`), so two
//! survivors sweeping at once take different registrations; SQLite has one writer at a
//! time.
//!
//! Lease times are the S-CSCFs' Unix clocks: the pool's hosts keep them in step (NTP),
//! and the lease is long against their skew (seconds against milliseconds).

use sqlx::Row;

use super::{BindingStore, Owned, StoreError, MAX_PARAMETERS};

impl BindingStore {
    /// Records that this S-CSCF runs until `until` (Unix seconds).
    pub async fn renew_lease(&self, until: u64) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO scscf_lease (owner, lease_until) VALUES {} \
             ON CONFLICT (owner) DO UPDATE SET lease_until = excluded.lease_until",
            self.params.rows(1, 2)
        );
        sqlx::query(&sql)
            .bind(self.owner.as_str())
            .bind(super::i64_of(until))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends this S-CSCF's lease at once (an orderly stop): the others take its
    /// registrations over at their next sweep.
    pub async fn release_lease(&self) -> Result<(), StoreError> {
        self.renew_lease(0).await
    }

    /// Takes over at most `limit` registrations whose owner's lease ended before `now`
    /// (or that have no owner with a lease): they are this S-CSCF's from the commit on.
    /// Returns them, each with the owner it had.
    pub async fn take_over_orphans(
        &self,
        now: u64,
        limit: usize,
    ) -> Result<Vec<Owned>, StoreError> {
        let limit = limit.clamp(1, MAX_PARAMETERS - 1);
        let lock = if self.postgres() {
            " FOR UPDATE OF r SKIP LOCKED"
        } else {
            ""
        };
        let sql = format!(
            "SELECT r.impu, r.owner FROM registration r \
             LEFT JOIN scscf_lease l ON l.owner = r.owner \
             WHERE r.owner <> {} AND (l.lease_until IS NULL OR l.lease_until < {}) \
             ORDER BY r.impu LIMIT {limit}{lock}",
            self.params.rows(1, 1),
            self.params.rows_after(1, 1, 1),
        );
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(&sql)
            .bind(self.owner.as_str())
            .bind(super::i64_of(now))
            .fetch_all(&mut *tx)
            .await?;
        let mut orphans: Vec<(String, String)> = Vec::with_capacity(rows.len());
        for row in rows {
            orphans.push((row.try_get("impu")?, row.try_get("owner")?));
        }
        if orphans.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        // The lease is checked again on the rows as they are now, locked: PostgreSQL
        // re-checks a row that a concurrent sweep changed and committed after our
        // SELECT's snapshot against that row's new version, but with the lease row the
        // join found for the old owner (none), so the SELECT alone can return a row a
        // live S-CSCF has just taken over.
        let sql = format!(
            "UPDATE registration SET owner = {} WHERE impu IN {} AND NOT EXISTS \
             (SELECT 1 FROM scscf_lease l WHERE l.owner = registration.owner \
             AND l.lease_until >= {}) RETURNING impu",
            self.params.rows(1, 1),
            self.params.rows_after(1, 1, orphans.len()),
            self.params.rows_after(1 + orphans.len(), 1, 1),
        );
        let mut q = sqlx::query(&sql).bind(self.owner.as_str());
        for (impu, _) in &orphans {
            q = q.bind(impu.as_str());
        }
        let updated = q.bind(super::i64_of(now)).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let mut moved = std::collections::HashSet::with_capacity(updated.len());
        for row in updated {
            moved.insert(row.try_get::<String, _>("impu")?);
        }
        orphans.retain(|(impu, _)| moved.contains(impu));
        let mut taken = Vec::with_capacity(orphans.len());
        for (impu, previous) in orphans {
            // Read after the commit: a REGISTER elsewhere may have claimed it since
            // (then it is no longer ours, and not returned).
            if let Some(mut owned) = self.load_covering(&impu).await? {
                if owned.registration.impu == impu && owned.owner == self.owner {
                    owned.owner = previous;
                    taken.push(owned);
                }
            }
        }
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{on_both_backends, reg};
    use crate::store::Change;

    /// Two S-CSCFs of a pool on one store.
    async fn pair(url: &str) -> (BindingStore, BindingStore) {
        let store = BindingStore::open(url).await.unwrap();
        let a = store.clone().owned_by("sip:a.ims.example.net");
        let b = store.owned_by("sip:b.ims.example.net");
        (a, b)
    }

    fn impus(owned: &[Owned]) -> Vec<&str> {
        owned.iter().map(|o| o.registration.impu.as_str()).collect()
    }

    /// A's registrations stay A's while its lease runs, and go to B (a bounded number
    /// per sweep, each once) when it has ended.
    async fn lease_expiry_hands_over(url: &str) {
        let (a, b) = pair(url).await;
        a.renew_lease(1_000).await.unwrap();
        b.renew_lease(1_000).await.unwrap();
        for i in 0..5 {
            let r = reg(&format!("sip:user{i}@x"), &[("sip:u@10.0.0.1", 5000)]);
            a.apply(&[Change::Save(r)]).await.unwrap();
        }
        let mine = reg("sip:bob@x", &[("sip:b@10.0.0.3", 5000)]);
        b.apply(&[Change::Save(mine)]).await.unwrap();
        assert!(b.take_over_orphans(999, 10).await.unwrap().is_empty());
        assert!(a.take_over_orphans(999, 10).await.unwrap().is_empty());
        // A's lease ended at 1000: at 1001 B takes its registrations, 3 then 2.
        let first = b.take_over_orphans(1_001, 3).await.unwrap();
        assert_eq!(impus(&first), ["sip:user0@x", "sip:user1@x", "sip:user2@x"]);
        assert!(first.iter().all(|o| o.owner == "sip:a.ims.example.net"));
        assert_eq!(first[0].registration.bindings.len(), 1);
        let rest = b.take_over_orphans(1_001, 3).await.unwrap();
        assert_eq!(impus(&rest), ["sip:user3@x", "sip:user4@x"]);
        assert!(b.take_over_orphans(1_001, 3).await.unwrap().is_empty());
        assert_eq!(b.load_owned().await.unwrap().len(), 6);
        assert!(a.load_owned().await.unwrap().is_empty());
        a.close().await;
    }

    on_both_backends!(
        lease_expiry_hands_over,
        sqlite_a_dead_owners_registrations_are_taken_over,
        postgres_a_dead_owners_registrations_are_taken_over
    );

    /// Once B owns a registration, A's expiry, de-registration or RTR of it change
    /// nothing; a REGISTER A answers (after a SAR naming A) claims it back.
    async fn fencing(url: &str) {
        let (a, b) = pair(url).await;
        let alice = reg("sip:alice@x", &[("sip:a@10.0.0.1", 5000)]);
        a.apply(&[Change::Save(alice.clone())]).await.unwrap();
        let mut moved = alice.clone();
        moved.bindings[0].expires_at = 9000;
        b.apply(&[Change::Save(moved.clone())]).await.unwrap();
        let lapsed = reg("sip:alice@x", &[("sip:a@10.0.0.9", 6000)]);
        a.apply(&[Change::Update(lapsed.clone())]).await.unwrap();
        a.apply(&[Change::Delete("sip:alice@x".into())])
            .await
            .unwrap();
        let stored = b.load_covering("sip:alice@x").await.unwrap().unwrap();
        assert_eq!(
            stored.registration, moved,
            "A's changes were not A's to make"
        );
        assert_eq!(stored.owner, "sip:b.ims.example.net");
        // B's own update applies; A's claim wins back.
        b.apply(&[Change::Update(lapsed.clone())]).await.unwrap();
        let stored = a.load_covering("sip:alice@x").await.unwrap().unwrap();
        assert_eq!(stored.registration, lapsed);
        a.apply(&[Change::Save(alice.clone())]).await.unwrap();
        assert_eq!(a.load_owned().await.unwrap(), vec![alice]);
        b.apply(&[Change::Delete("sip:alice@x".into())])
            .await
            .unwrap();
        assert_eq!(a.load_owned().await.unwrap().len(), 1, "not B's to delete");
        a.close().await;
    }

    on_both_backends!(
        fencing,
        sqlite_only_the_owner_updates_or_deletes,
        postgres_only_the_owner_updates_or_deletes
    );

    /// A registration is found by any identity of its implicit set, with its owner.
    async fn covering(url: &str) {
        let (a, b) = pair(url).await;
        let alice = reg("sip:alice@x", &[("sip:a@10.0.0.1", 5000)]);
        a.apply(&[Change::Save(alice.clone())]).await.unwrap();
        for id in ["sip:alice@x", "tel:+1555"] {
            let found = b.load_covering(id).await.unwrap().unwrap();
            assert_eq!(found.registration, alice, "{id}");
            assert_eq!(found.owner, "sip:a.ims.example.net");
        }
        assert_eq!(b.load_covering("sip:bob@x").await.unwrap(), None);
        a.apply(&[Change::Delete("sip:alice@x".into())])
            .await
            .unwrap();
        assert_eq!(b.load_covering("tel:+1555").await.unwrap(), None);
        a.close().await;
    }

    on_both_backends!(
        covering,
        sqlite_a_registration_is_found_by_its_implicit_set,
        postgres_a_registration_is_found_by_its_implicit_set
    );

    /// Two survivors sweeping the same dead owner's registrations at once take each
    /// registration once between them, and neither takes one from the other: rounds
    /// of small overlapping batches, so that one sweep's transaction often commits
    /// between the other's snapshot and its lock on the same row.
    async fn concurrent(url: &str) {
        let store = BindingStore::open(url).await.unwrap();
        let b = store.clone().owned_by("sip:b.ims.example.net");
        let c = store.clone().owned_by("sip:c.ims.example.net");
        b.renew_lease(1_000).await.unwrap();
        c.renew_lease(1_000).await.unwrap();
        for round in 0..25 {
            let dead = store
                .clone()
                .owned_by(&format!("sip:dead{round}.ims.example.net"));
            let changes: Vec<Change> = (0..40)
                .map(|i| {
                    let impu = format!("sip:r{round}u{i:02}@x");
                    Change::Save(reg(&impu, &[("sip:u@h", 5000)]))
                })
                .collect();
            dead.apply(&changes).await.unwrap();
            let mut total = 0;
            for _ in 0..40 {
                let (x, y) = tokio::join!(b.take_over_orphans(10, 3), c.take_over_orphans(10, 3));
                let (x, y) = (x.unwrap(), y.unwrap());
                total += x.len() + y.len();
                if x.is_empty() && y.is_empty() {
                    break;
                }
            }
            assert_eq!(total, 40, "round {round}: each registration taken once");
        }
        let owned = b.load_owned().await.unwrap().len() + c.load_owned().await.unwrap().len();
        assert_eq!(owned, 25 * 40);
        b.close().await;
    }

    on_both_backends!(
        concurrent,
        sqlite_concurrent_sweeps_take_each_registration_once,
        postgres_concurrent_sweeps_take_each_registration_once
    );
}
