//! Mailbox sync state, leases that share mailboxes and outbox rows between
//! instances, and the outbox itself.
//!
//! A lease is a row's `lease_owner` and `lease_expires_at`: an instance owns
//! the row until the expiry, renews it while it works, and any instance may
//! take it once it expired. Claims use `FOR UPDATE SKIP LOCKED`, so two
//! instances never claim the same row at once.

use super::{Result, Store};
use chrono::{DateTime, Duration, Utc};
use sqlx::Row;
use uuid::Uuid;

/// A resource mailbox that this instance serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub resource_id: Uuid,
    pub smtp: String,
    pub endpoint: String,
    pub time_zone: String,
    pub inbox_sync_state: Option<String>,
    /// An admin asked for a full resync from the web site.
    pub resync_requested: bool,
}

/// One command waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxCommand {
    pub id: i64,
    pub resource_id: Uuid,
    pub mailbox: String,
    pub endpoint: String,
    pub kind: String,
    pub payload: serde_json::Value,
    /// Earlier attempts: a previous one may have reached Exchange.
    pub attempts: i32,
}

const MAILBOX_SELECT: &str =
    "SELECT m.resource_id, r.mailbox_smtp, r.exchange_endpoint, s.time_zone, m.inbox_sync_state,
            m.resync_requested_at IS NOT NULL AS resync
     FROM mailbox_sync m JOIN resources r ON r.id = m.resource_id JOIN sites s ON s.id = r.site_id";

fn mailbox_of(r: &sqlx::postgres::PgRow) -> Result<Mailbox> {
    Ok(Mailbox {
        resource_id: r.try_get("resource_id")?,
        smtp: r.try_get("mailbox_smtp")?,
        endpoint: r.try_get("exchange_endpoint")?,
        time_zone: r.try_get("time_zone")?,
        inbox_sync_state: r.try_get("inbox_sync_state")?,
        resync_requested: r.try_get("resync")?,
    })
}

impl Store {
    /// Announces a running instance (and keeps it announced).
    pub async fn heartbeat(&self, instance: &str, hostname: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO instances (id, hostname, started_at, heartbeat_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at",
        )
        .bind(instance)
        .bind(hostname)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Instances seen within `within`.
    pub async fn live_instances(&self, now: DateTime<Utc>, within: Duration) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM instances WHERE heartbeat_at > $1")
                .bind(now - within)
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Gives every active resource its sync row, so new ones are picked up
    /// at run time without a restart.
    pub async fn register_mailboxes(&self) -> Result<u64> {
        let done = sqlx::query(
            "INSERT INTO mailbox_sync (resource_id) SELECT id FROM resources WHERE active
             ON CONFLICT (resource_id) DO NOTHING",
        )
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Renews this instance's leases and takes free or expired ones, up to
    /// `share` mailboxes in all. Returns the mailboxes now held.
    pub async fn claim_mailboxes(
        &self,
        instance: &str,
        share: i64,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Vec<Mailbox>> {
        let mut tx = self.pool().begin().await?;
        // Leases on resources that were deactivated are given up.
        sqlx::query(
            "UPDATE mailbox_sync m SET lease_owner = NULL, lease_expires_at = NULL
             FROM resources r WHERE r.id = m.resource_id AND NOT r.active AND m.lease_owner = $1",
        )
        .bind(instance)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE mailbox_sync m SET lease_expires_at = $2
             FROM resources r WHERE r.id = m.resource_id AND r.active AND m.lease_owner = $1",
        )
        .bind(instance)
        .bind(now + ttl)
        .execute(&mut *tx)
        .await?;
        let held: i64 = sqlx::query_scalar("SELECT count(*) FROM mailbox_sync WHERE lease_owner = $1")
            .bind(instance)
            .fetch_one(&mut *tx)
            .await?;
        if held < share {
            sqlx::query(
                "UPDATE mailbox_sync SET lease_owner = $1, lease_expires_at = $2
                 WHERE resource_id IN (
                     SELECT m.resource_id FROM mailbox_sync m JOIN resources r ON r.id = m.resource_id
                     WHERE r.active AND (m.lease_owner IS NULL OR m.lease_expires_at < $3)
                     ORDER BY m.resource_id
                     LIMIT $4
                     FOR UPDATE OF m SKIP LOCKED)",
            )
            .bind(instance)
            .bind(now + ttl)
            .bind(now)
            .bind(share - held)
            .execute(&mut *tx)
            .await?;
        } else if held > share {
            // Hand back the surplus so a newly started instance gets its part.
            sqlx::query(
                "UPDATE mailbox_sync SET lease_owner = NULL, lease_expires_at = NULL
                 WHERE resource_id IN (SELECT resource_id FROM mailbox_sync WHERE lease_owner = $1
                                       ORDER BY resource_id DESC LIMIT $2)",
            )
            .bind(instance)
            .bind(held - share)
            .execute(&mut *tx)
            .await?;
        }
        let rows = sqlx::query(&format!(
            "{MAILBOX_SELECT} WHERE m.lease_owner = $1 ORDER BY r.mailbox_smtp"
        ))
        .bind(instance)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(mailbox_of).collect()
    }

    /// Gives up every lease of an instance (graceful shutdown), so another
    /// instance takes over at once rather than at the expiry.
    pub async fn release_leases(&self, instance: &str) -> Result<()> {
        sqlx::query("UPDATE mailbox_sync SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = $1")
            .bind(instance)
            .execute(self.pool())
            .await?;
        sqlx::query("UPDATE outbox SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = $1")
            .bind(instance)
            .execute(self.pool())
            .await?;
        sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(instance)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Whether this instance still holds the mailbox (a lease lost during a
    /// long pause must stop the work).
    pub async fn holds_mailbox(&self, instance: &str, resource_id: Uuid, now: DateTime<Utc>) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM mailbox_sync WHERE resource_id = $1 AND lease_owner = $2 AND lease_expires_at > $3)",
        )
        .bind(resource_id)
        .bind(instance)
        .bind(now)
        .fetch_one(self.pool())
        .await?)
    }

    /// Saves the Inbox sync state after its changes were processed; only
    /// while the lease is held, so a stale instance cannot move it back.
    pub async fn save_inbox_state(
        &self,
        instance: &str,
        resource_id: Uuid,
        state: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE mailbox_sync SET inbox_sync_state = $3, last_sync_at = $4, last_error = NULL,
                    resync_requested_at = NULL
             WHERE resource_id = $1 AND lease_owner = $2",
        )
        .bind(resource_id)
        .bind(instance)
        .bind(state)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn record_mailbox_error(&self, resource_id: Uuid, error: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE mailbox_sync SET last_error = $2, last_error_at = $3 WHERE resource_id = $1")
            .bind(resource_id)
            .bind(error)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Asks for a resync of one mailbox from scratch (web site action).
    pub async fn request_resync(&self, resource_id: Uuid, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE mailbox_sync SET resync_requested_at = $2 WHERE resource_id = $1")
            .bind(resource_id)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Takes up to `limit` due outbox commands for this instance.
    pub async fn claim_outbox(
        &self,
        instance: &str,
        limit: i64,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Vec<OutboxCommand>> {
        let rows = sqlx::query(
            "UPDATE outbox o SET lease_owner = $1, lease_expires_at = $2
             FROM resources r
             WHERE r.id = o.resource_id AND o.id IN (
                 SELECT id FROM outbox
                 WHERE status = 'pending' AND next_attempt_at <= $3
                   AND (lease_owner IS NULL OR lease_expires_at < $3)
                 ORDER BY next_attempt_at, id
                 LIMIT $4
                 FOR UPDATE SKIP LOCKED)
             RETURNING o.id, o.resource_id, r.mailbox_smtp, r.exchange_endpoint, o.kind, o.payload, o.attempts",
        )
        .bind(instance)
        .bind(now + ttl)
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut out: Vec<OutboxCommand> = rows
            .into_iter()
            .map(|r| {
                Ok(OutboxCommand {
                    id: r.try_get("id")?,
                    resource_id: r.try_get("resource_id")?,
                    mailbox: r.try_get("mailbox_smtp")?,
                    endpoint: r.try_get("exchange_endpoint")?,
                    kind: r.try_get("kind")?,
                    payload: r.try_get("payload")?,
                    attempts: r.try_get("attempts")?,
                })
            })
            .collect::<Result<_>>()?;
        out.sort_by_key(|c| c.id);
        Ok(out)
    }

    /// Marks a command done: its effect is in Exchange.
    pub async fn outbox_done(&self, id: i64, instance: &str, now: DateTime<Utc>, note: Option<&str>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'done', done_at = $3, attempts = attempts + 1, last_error = $4,
                    lease_owner = NULL, lease_expires_at = NULL
             WHERE id = $1 AND lease_owner = $2 AND status = 'pending'",
        )
        .bind(id)
        .bind(instance)
        .bind(now)
        .bind(note)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failed attempt: retried at `retry_at`, or given up (`dead`)
    /// when `retry_at` is `None`.
    pub async fn outbox_failed(
        &self,
        id: i64,
        instance: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $3,
                    status = CASE WHEN $4::timestamptz IS NULL THEN 'dead' ELSE 'pending' END,
                    next_attempt_at = coalesce($4, next_attempt_at),
                    lease_owner = NULL, lease_expires_at = NULL
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(instance)
        .bind(error)
        .bind(retry_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Commands waiting, for the metrics.
    pub async fn outbox_depth(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'pending'")
                .fetch_one(self.pool())
                .await?,
        )
    }
}

impl Store {
    /// Active resources, whose mailboxes the instances share.
    pub async fn active_mailbox_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM resources WHERE active")
            .fetch_one(self.pool())
            .await?)
    }

    /// One mailbox, if this instance's lease on it is still valid.
    pub async fn leased_mailbox(
        &self,
        instance: &str,
        resource_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<Mailbox>> {
        let row = sqlx::query(&format!(
            "{MAILBOX_SELECT} WHERE m.resource_id = $1 AND m.lease_owner = $2 AND m.lease_expires_at > $3"
        ))
        .bind(resource_id)
        .bind(instance)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(mailbox_of).transpose()
    }
}

/// A slot the store says a resource holds, for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldSlot {
    pub booking_id: Uuid,
    pub uid: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Its answer is still in the outbox: Exchange may not show it yet.
    pub reply_pending: bool,
}

/// A difference between a resource calendar and the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// `unknown_item`, `missing_item` or `time_mismatch`.
    pub kind: &'static str,
    pub uid: Option<String>,
    pub exchange_item_id: Option<String>,
    pub details: serde_json::Value,
}

impl Store {
    /// The slots a resource holds between two instants.
    pub async fn held_slots_detail(
        &self,
        resource_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HeldSlot>> {
        let rows = sqlx::query(
            "SELECT b.id, b.uid, lower(o.period) AS s, upper(o.period) AS e,
                    EXISTS (SELECT 1 FROM outbox x WHERE x.booking_id = b.id AND x.status = 'pending') AS pending
             FROM occurrences o JOIN bookings b ON b.id = o.booking_id
             WHERE o.resource_id = $1 AND o.status IN ('accepted', 'held')
               AND o.period && tstzrange($2, $3)
             ORDER BY lower(o.period)",
        )
        .bind(resource_id)
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(HeldSlot {
                    booking_id: r.try_get("id")?,
                    uid: r.try_get("uid")?,
                    start: r.try_get("s")?,
                    end: r.try_get("e")?,
                    reply_pending: r.try_get("pending")?,
                })
            })
            .collect()
    }

    /// Records what a reconciliation pass found: new differences are added,
    /// differences no longer found are marked resolved.
    pub async fn record_drift(&self, resource_id: Uuid, found: &[Drift], now: DateTime<Utc>) -> Result<usize> {
        let mut tx = self.pool().begin().await?;
        let mut added = 0;
        let mut keys = Vec::new();
        for d in found {
            let key = format!(
                "{}|{}|{}",
                d.kind,
                d.uid.as_deref().unwrap_or_default(),
                d.details["start"].as_str().unwrap_or_default()
            );
            keys.push(key.clone());
            let exists: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM calendar_drift WHERE resource_id = $1 AND resolved_at IS NULL
                   AND kind || '|' || coalesce(uid, '') || '|' || coalesce(details->>'start', '') = $2)",
            )
            .bind(resource_id)
            .bind(&key)
            .fetch_one(&mut *tx)
            .await?;
            if !exists {
                sqlx::query(
                    "INSERT INTO calendar_drift (resource_id, kind, uid, exchange_item_id, details, found_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(resource_id)
                .bind(d.kind)
                .bind(&d.uid)
                .bind(&d.exchange_item_id)
                .bind(&d.details)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                added += 1;
            }
        }
        sqlx::query(
            "UPDATE calendar_drift SET resolved_at = $3 WHERE resource_id = $1 AND resolved_at IS NULL
               AND NOT (kind || '|' || coalesce(uid, '') || '|' || coalesce(details->>'start', '') = ANY($2))",
        )
        .bind(resource_id)
        .bind(&keys)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE mailbox_sync SET last_reconciled_at = $2 WHERE resource_id = $1")
            .bind(resource_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(added)
    }

    /// Unresolved differences of a resource, oldest first.
    pub async fn open_drift(&self, resource_id: Uuid) -> Result<Vec<Drift>> {
        let rows = sqlx::query(
            "SELECT kind, uid, exchange_item_id, details FROM calendar_drift
             WHERE resource_id = $1 AND resolved_at IS NULL ORDER BY found_at, kind",
        )
        .bind(resource_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok(Drift {
                    kind: match kind.as_str() {
                        "unknown_item" => "unknown_item",
                        "missing_item" => "missing_item",
                        _ => "time_mismatch",
                    },
                    uid: r.try_get("uid")?,
                    exchange_item_id: r.try_get("exchange_item_id")?,
                    details: r.try_get("details")?,
                })
            })
            .collect()
    }
}
