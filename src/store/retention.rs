//! Retention: the personal data of old bookings is anonymised, the figures
//! stay.
//!
//! A booking is old once its last occurrence (or, without any, its request)
//! ended more than the configured number of days ago. Its subject, body and
//! organiser's name and address are cleared and the link to the organiser is
//! dropped, but the organiser's organisation is kept first in
//! `organiser_organisation_id`, so every report gives the same figures after.
//! With it go the free texts that may name people: the trip's destination, the
//! return notes, damage photos, approvers' comments, the vehicle alerts' texts
//! and addresses, the messages queued for the organiser, and the details of
//! old calendar differences. The decisions of those bookings, append-only
//! otherwise, lose the organiser's address and directory references and the
//! name of whoever held a conflicting slot ([`super::anonymise`]).
//!
//! Not touched: `audit_log`, append-only, which records administrative
//! actions and who did them, not bookings.

use super::{Result, Store};
use chrono::{DateTime, Utc};

/// The address left in an anonymised booking.
pub const ANONYMISED_ADDRESS: &str = "anonyme@resa.invalid";

/// What one retention run changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionRun {
    pub bookings: u64,
    pub decisions: u64,
    pub outbox: u64,
    pub drift: u64,
}

impl Store {
    /// Anonymises the bookings whose use ended before `cutoff`, at `now`;
    /// running it again changes nothing.
    pub async fn apply_retention(&self, cutoff: DateTime<Utc>, now: DateTime<Utc>) -> Result<RetentionRun> {
        let mut tx = self.pool().begin().await?;
        // One instance at a time; the others find the work done next time.
        let ours: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext('resa.retention'))")
            .fetch_one(&mut *tx)
            .await?;
        if !ours {
            return Ok(RetentionRun::default());
        }
        sqlx::query(
            "CREATE TEMP TABLE retention_due ON COMMIT DROP AS
             SELECT b.id FROM bookings b
             WHERE b.anonymised_at IS NULL AND b.requested_at < $1
               AND coalesce((SELECT max(upper(o.period)) FROM occurrences o WHERE o.booking_id = b.id), b.requested_at) < $1",
        )
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
        let bookings = sqlx::query(
            "UPDATE bookings b SET
                 organiser_organisation_id = coalesce(b.organiser_organisation_id,
                     (SELECT d.organisation_id FROM people p JOIN directories d ON d.id = p.directory_id
                      WHERE p.id = b.organiser_person_id)),
                 organiser_person_id = NULL, organiser_address = $1, organiser_name = NULL,
                 subject = NULL, body = NULL, anonymised_at = $2
             WHERE b.id IN (SELECT id FROM retention_due) AND b.anonymised_at IS NULL",
        )
        .bind(ANONYMISED_ADDRESS)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("UPDATE trip_details SET destination = NULL WHERE booking_id IN (SELECT id FROM retention_due)")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE checkouts SET condition_notes = NULL, out_by = NULL, returned_by = NULL
             WHERE occurrence_id IN (SELECT o.id FROM occurrences o WHERE o.booking_id IN (SELECT id FROM retention_due))",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM damage_photos WHERE checkout_id IN (
                 SELECT c.id FROM checkouts c JOIN occurrences o ON o.id = c.occurrence_id
                 WHERE o.booking_id IN (SELECT id FROM retention_due))",
        )
        .execute(&mut *tx)
        .await?;
        // The alerts of the vehicle workflow quote the booking and address people.
        sqlx::query(
            "UPDATE vehicle_alerts SET recipient_address = NULL, body_fr = '', body_en = ''
             WHERE booking_id IN (SELECT id FROM retention_due) AND (body_fr <> '' OR recipient_address IS NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE approvals SET comment = NULL WHERE comment IS NOT NULL AND approval_request_id IN (
                 SELECT id FROM approval_requests WHERE booking_id IN (SELECT id FROM retention_due))",
        )
        .execute(&mut *tx)
        .await?;
        // Only finished commands: a pending one still has to be sent.
        let outbox = sqlx::query(
            "UPDATE outbox SET payload = '{\"anonymised\": true}'::jsonb, last_error = NULL
             WHERE status <> 'pending' AND payload <> '{\"anonymised\": true}'::jsonb
               AND (booking_id IN (SELECT id FROM retention_due) OR created_at < $1)",
        )
        .bind(cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let drift = sqlx::query(
            "UPDATE calendar_drift SET details = '{}'::jsonb WHERE found_at < $1 AND details <> '{}'::jsonb",
        )
        .bind(cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let decisions = super::anonymise::anonymise_decisions(&mut tx).await?;
        tx.commit().await?;
        Ok(RetentionRun {
            bookings,
            decisions,
            outbox,
            drift,
        })
    }
}

/// How often the daemon applies retention.
pub const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// The daemon's retention job: every [`RETENTION_EVERY`] (and once at start),
/// anonymises what is older than `days` days, until `shutdown` completes.
pub async fn retention_loop(
    store: Store,
    clock: crate::clock::SharedClock,
    days: u32,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut tick = tokio::time::interval(RETENTION_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        let now = clock.now();
        let cutoff = now - chrono::Duration::days(i64::from(days));
        match store.apply_retention(cutoff, now).await {
            Ok(run) if run == RetentionRun::default() => {}
            Ok(run) => tracing::info!(
                retention.days = days,
                retention.bookings = run.bookings,
                retention.decisions = run.decisions,
                retention.outbox = run.outbox,
                retention.drift = run.drift,
                "retention: personal data anonymised"
            ),
            Err(e) => tracing::warn!(error = %e, "retention: run failed, will retry"),
        }
    }
}
