//! What the store holds of each registration, as far as the P-CSCF's own writes tell
//! (issue 12): the row of the last write queued for each flow and whether it is known
//! committed. A refresh whose row is the stored one but for an expiry lagging within
//! [`ims_runtime::expiry_lag::bound`] is then not written ([`Written::plan`]), and its
//! 200 waits for no commit.
//!
//! A row is known stored only once its write committed with no other write of the same
//! flow in flight: the group-commit writer applies changes in the order they reach its
//! queue, and two writes held at once may reach it in either order, so after such an
//! overlap (or a failed write) the next change of the flow is written whatever it is.
//! Rows read back at start ([`Written::restored`]) are stored by definition. A row
//! whose expiry has passed is forgotten ([`Written::purge`]): the store's periodic
//! purge deletes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use ims_runtime::expiry_lag::needs_write;

use super::{Change, StoredRegistration};

/// One flow's row as the P-CSCF last wrote it.
#[derive(Debug, Default)]
struct Entry {
    /// The row of the last write queued; `None` when it deleted the registration.
    row: Option<StoredRegistration>,
    /// Writes queued and not answered yet.
    in_flight: u32,
    /// Another write of the flow was queued while one was in flight: their order in
    /// the store is not known.
    overlapped: bool,
    /// The store holds `row`: its write committed, alone.
    stored: bool,
}

/// The rows the store holds, by flow label, as written by this P-CSCF.
#[derive(Debug, Default)]
pub struct Written {
    rows: Mutex<HashMap<String, Entry>>,
}

impl Written {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Each update is a few statements: the map stays consistent.
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `rows` as stored (read back from the store at start).
    pub fn restored(&self, rows: impl IntoIterator<Item = StoredRegistration>) {
        let mut map = self.lock();
        for row in rows {
            let entry = Entry {
                row: Some(row.clone()),
                in_flight: 0,
                overlapped: false,
                stored: true,
            };
            map.insert(row.flow, entry);
        }
    }

    /// The change to write now that the registration over the flow labelled `flow` is
    /// `row` (`None`: it is gone), the registrar having granted it `granted_secs`:
    /// `None` when the store holds `row` already but for an expiry lagging by at most
    /// the bound ([`needs_write`]); the change, recorded as in flight, otherwise.
    /// Each change returned must be [`Written::answered`].
    pub fn plan(
        &self,
        flow: &str,
        row: Option<StoredRegistration>,
        granted_secs: u64,
    ) -> Option<Change> {
        let mut map = self.lock();
        if let (Some(new), Some(entry)) = (&row, map.get(flow)) {
            let unchanged = entry.stored
                && entry.in_flight == 0
                && entry.row.as_ref().is_some_and(|old| {
                    old.same_but_expiry(new)
                        && !needs_write(old.expires_at, new.expires_at, granted_secs)
                });
            if unchanged {
                return None;
            }
        }
        let entry = map.entry(flow.to_string()).or_default();
        entry.overlapped |= entry.in_flight > 0;
        entry.in_flight = entry.in_flight.saturating_add(1);
        entry.stored = false;
        entry.row.clone_from(&row);
        Some(match row {
            Some(row) => Change::Save(row),
            None => Change::Delete(flow.to_string()),
        })
    }

    /// A change [`Written::plan`] gave for `flow` was answered, `committed` or not.
    pub fn answered(&self, flow: &str, committed: bool) {
        let mut map = self.lock();
        let Some(entry) = map.get_mut(flow) else {
            return;
        };
        entry.in_flight = entry.in_flight.saturating_sub(1);
        if entry.in_flight > 0 {
            return;
        }
        entry.stored = committed && !entry.overlapped;
        entry.overlapped = false;
        if entry.row.is_none() {
            map.remove(flow);
        }
    }

    /// Forgets the rows expired at `unix` (seconds since the epoch) with no write in
    /// flight: the store's purge deletes them, and the next change of their flow is
    /// written.
    pub fn purge(&self, unix: u64) {
        self.lock()
            .retain(|_, e| e.in_flight > 0 || e.row.as_ref().is_some_and(|r| r.expires_at > unix));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Answers a change [`Written::plan`] gave when dropped: committed once
/// [`Answer::commit`] said so, else as failed (a write abandoned before its answer).
#[derive(Debug)]
pub struct Answer {
    written: Arc<Written>,
    flow: String,
    committed: bool,
}

impl Answer {
    /// The answer, not committed yet, to the change planned for the flow labelled `flow`.
    pub fn new(written: Arc<Written>, flow: String) -> Answer {
        Answer {
            written,
            flow,
            committed: false,
        }
    }

    /// Whether the change was committed.
    pub fn commit(&mut self, committed: bool) {
        self.committed = committed;
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.written.answered(&self.flow, self.committed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW: &str = "UDP#0:127.0.0.1:5062";

    fn row(expires_at: u64) -> StoredRegistration {
        StoredRegistration {
            flow: FLOW.into(),
            public_identity: "sip:bob@ims.example.net".into(),
            contacts: vec!["sip:bob@127.0.0.1:5062".into()],
            expires_at,
            service_route: vec!["<sip:orig@scscf.ims.example.net:5080;lr>".into()],
            associated: vec!["sip:bob@ims.example.net".into()],
        }
    }

    /// Plans `row` and answers it `committed`; whether it was to be written.
    fn write(w: &Written, row: StoredRegistration, committed: bool) -> bool {
        let planned = w.plan(FLOW, Some(row), 3_600).is_some();
        if planned {
            w.answered(FLOW, committed);
        }
        planned
    }

    #[test]
    fn a_committed_row_spares_refreshes_within_the_bound_only() {
        let w = Written::default();
        assert!(write(&w, row(10_000), true), "new: written");
        assert!(!write(&w, row(10_060), true), "60 s of lag for 3 600 s");
        assert!(write(&w, row(10_061), true), "61 s");
        assert!(write(&w, row(10_000), true), "shortened");
        let mut moved = row(10_001);
        moved.contacts = vec!["sip:bob@127.0.0.1:5099".into()];
        assert!(write(&w, moved, true), "another contact");
        // Gone: written, and forgotten once answered.
        assert_eq!(w.plan(FLOW, None, 0), Some(Change::Delete(FLOW.into())));
        w.answered(FLOW, true);
        assert_eq!(w.len(), 0);
        assert!(write(&w, row(10_000), true), "registered again");
    }

    #[test]
    fn failed_or_overlapping_writes_leave_the_row_unknown() {
        let w = Written::default();
        assert!(write(&w, row(10_000), false));
        assert!(write(&w, row(10_001), true), "the last write failed");
        assert!(!write(&w, row(10_002), true));
        // Two writes in flight at once, both committed: in either order.
        let first = w.plan(FLOW, Some(row(10_100)), 3_600);
        assert!(w.plan(FLOW, Some(row(10_101)), 3_600).is_some());
        assert!(first.is_some());
        w.answered(FLOW, true);
        assert!(
            w.plan(FLOW, Some(row(10_101)), 3_600).is_some(),
            "one still in flight"
        );
        w.answered(FLOW, true);
        w.answered(FLOW, true);
        assert!(write(&w, row(10_102), true), "after an overlap: written");
        assert!(!write(&w, row(10_103), true));
    }

    #[test]
    fn an_abandoned_write_counts_as_failed() {
        let w = Arc::new(Written::default());
        assert!(write(&w, row(10_000), true));
        assert!(w.plan(FLOW, Some(row(10_100)), 3_600).is_some());
        drop(Answer::new(w.clone(), FLOW.into()));
        assert!(write(&w, row(10_101), true), "not known stored");
        assert!(w.plan(FLOW, Some(row(10_200)), 3_600).is_some());
        Answer::new(w.clone(), FLOW.into()).commit(true);
        assert!(!write(&w, row(10_201), true));
    }

    #[test]
    fn restored_rows_are_stored_and_expired_ones_forgotten() {
        let w = Written::default();
        w.restored([row(10_000)]);
        assert!(!write(&w, row(10_030), true));
        w.purge(9_999);
        assert_eq!(w.len(), 1);
        w.purge(10_000);
        assert_eq!(w.len(), 0);
        assert!(write(&w, row(10_030), true));
    }
}
