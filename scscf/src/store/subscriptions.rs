//! The reg event subscriptions in the bindings database (`reg_subscription`,
//! migration 0002), so that a restarted S-CSCF goes on notifying in the same dialogs
//! with higher versions. One row per subscription, written whole when the dialog
//! changes (SUBSCRIBE, refresh, end) and at least every
//! [`crate::regevent::NOTIFY_WRITE_LAG`]th NOTIFY (each takes a CSeq and a version; the
//! notifier restores both that much higher): few and small writes, outside the
//! bindings' group commit.

use sqlx::Row;

use super::{i64_of, BindingStore, Params, StoreError};
use crate::regevent::subscription::{SubscriberKind, Subscription};

const COLUMNS: &str = "key, resource, subscriber, kind, call_id, local_tag, remote_tag, \
    local_uri, remote_uri, remote_target, route_set, local_cseq, remote_cseq, version, \
    expires_at, event_id";
const UPDATE: &str = " ON CONFLICT (key) DO UPDATE SET resource = excluded.resource, \
    subscriber = excluded.subscriber, kind = excluded.kind, \
    remote_target = excluded.remote_target, route_set = excluded.route_set, \
    local_cseq = excluded.local_cseq, remote_cseq = excluded.remote_cseq, \
    version = excluded.version, expires_at = excluded.expires_at";

fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

impl BindingStore {
    /// Stores `sub`, replacing what was stored for its dialog.
    pub async fn save_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO reg_subscription ({COLUMNS}) VALUES {}{UPDATE}",
            self.params.rows(1, 16)
        );
        sqlx::query(&sql)
            .bind(sub.key())
            .bind(sub.resource.as_str())
            .bind(sub.subscriber.as_str())
            .bind(sub.kind.as_str())
            .bind(sub.call_id.as_str())
            .bind(sub.local_tag.as_str())
            .bind(sub.remote_tag.as_str())
            .bind(sub.local_uri.as_str())
            .bind(sub.remote_uri.as_str())
            .bind(sub.remote_target.as_str())
            .bind(sub.route_set.join("\n"))
            .bind(i64::from(sub.local_cseq))
            .bind(i64::from(sub.remote_cseq))
            .bind(i64::from(sub.version))
            .bind(i64_of(sub.expires_at))
            .bind(sub.event_id.clone().unwrap_or_default())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes the subscription of dialog `key`.
    pub async fn delete_subscription(&self, key: &str) -> Result<(), StoreError> {
        let sql = format!(
            "DELETE FROM reg_subscription WHERE key = {}",
            match self.params {
                Params::Numbered => "$1",
                Params::Anonymous => "?",
            }
        );
        sqlx::query(&sql).bind(key).execute(&self.pool).await?;
        Ok(())
    }

    /// Every stored subscription.
    pub async fn load_subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM reg_subscription");
        let mut out = Vec::new();
        for row in sqlx::query(&sql).fetch_all(&self.pool).await? {
            let kind: String = row.try_get("kind")?;
            let Some(kind) = SubscriberKind::parse(&kind) else {
                tracing::warn!(%kind, "stored subscription of an unknown kind dropped");
                continue;
            };
            let route_set: String = row.try_get("route_set")?;
            let event_id: String = row.try_get("event_id")?;
            out.push(Subscription {
                resource: row.try_get("resource")?,
                subscriber: row.try_get("subscriber")?,
                kind,
                call_id: row.try_get("call_id")?,
                local_tag: row.try_get("local_tag")?,
                remote_tag: row.try_get("remote_tag")?,
                local_uri: row.try_get("local_uri")?,
                remote_uri: row.try_get("remote_uri")?,
                remote_target: row.try_get("remote_target")?,
                route_set: route_set
                    .split('\n')
                    .filter(|r| !r.is_empty())
                    .map(str::to_string)
                    .collect(),
                local_cseq: u32_of(row.try_get("local_cseq")?),
                remote_cseq: u32_of(row.try_get("remote_cseq")?),
                version: u32_of(row.try_get("version")?),
                expires_at: u64::try_from(row.try_get::<i64, _>("expires_at")?).unwrap_or(0),
                event_id: Some(event_id).filter(|e| !e.is_empty()),
                unwritten: 0,
                restored: false,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::on_both_backends;

    fn sub(n: u32) -> Subscription {
        Subscription {
            resource: "sip:alice@x".into(),
            subscriber: "sip:alice@x".into(),
            kind: SubscriberKind::User,
            call_id: format!("call-{n}"),
            local_tag: "s1".into(),
            remote_tag: "u1".into(),
            local_uri: "<sip:alice@x>".into(),
            remote_uri: "<sip:alice@x>".into(),
            remote_target: "sip:alice@10.0.0.1:5090".into(),
            route_set: vec!["<sip:tok@p;lr>".into(), "<sip:p2;lr>".into()],
            local_cseq: 3,
            remote_cseq: 9,
            version: 4,
            expires_at: 1_000_000,
            event_id: (n == 2).then(|| "7".to_string()),
            unwritten: 0,
            restored: false,
        }
    }

    async fn round_trip(url: &str) {
        let store = BindingStore::open(url).await.unwrap();
        store.save_subscription(&sub(1)).await.unwrap();
        store.save_subscription(&sub(2)).await.unwrap();
        let mut later = sub(1);
        later.version = 5;
        later.local_cseq = 4;
        store.save_subscription(&later).await.unwrap();
        store.close().await;
        let store = BindingStore::open(url).await.unwrap();
        let mut all = store.load_subscriptions().await.unwrap();
        all.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        assert_eq!(all, vec![later.clone(), sub(2)]);
        store.delete_subscription(&later.key()).await.unwrap();
        assert_eq!(store.load_subscriptions().await.unwrap(), vec![sub(2)]);
        store.close().await;
    }

    on_both_backends!(
        round_trip,
        sqlite_subscriptions_survive_reopen,
        postgres_subscriptions_survive_reopen
    );
}
