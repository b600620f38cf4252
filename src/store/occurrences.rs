//! Messages about one occurrence of a series already booked: the organiser
//! moved it (an exception) or cancelled it. They change that occurrence of
//! the stored series, in one transaction with the reply to send, instead of
//! becoming bookings of their own.
//!
//! A moved occurrence keeps its buffers and takes its new slot when it is
//! free (the exclusion constraint decides, so a race is a conflict like any
//! other); otherwise it is declined and its old slot freed. The rest of the
//! series is left as it was decided.

use super::bookings::range;
use super::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;
use sqlx::Row;
use sqlx::postgres::types::PgRange;
use std::ops::Bound;
use uuid::Uuid;

/// What a message about one occurrence did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OccurrenceChange {
    /// No series with this UID is booked on the resource (it was invited to
    /// that occurrence alone): the message is an ordinary request.
    NoSeries,
    /// The series has no such occurrence, or it is already as asked (a
    /// message read twice).
    Unchanged {
        booking_id: Uuid,
    },
    Cancelled {
        booking_id: Uuid,
    },
    /// Moved and accepted, or declined because the new slot is taken; the
    /// answer is queued.
    Moved {
        booking_id: Uuid,
        accepted: bool,
    },
}

fn bounds(r: &PgRange<DateTime<Utc>>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    match (r.start, r.end) {
        (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) => Some((s, e)),
        _ => None,
    }
}

/// The answer's text, in the organiser's language.
fn text(accepted: bool, english: bool, original: DateTime<Utc>, start: DateTime<Utc>, tz: Tz) -> String {
    let was = original.with_timezone(&tz);
    let now = start.with_timezone(&tz);
    match (accepted, english) {
        (true, false) => format!(
            "L'occurrence du {} est déplacée au {} : la ressource est réservée à ce nouvel horaire.",
            was.format("%d/%m/%Y à %H:%M"),
            now.format("%d/%m/%Y à %H:%M")
        ),
        (false, false) => format!(
            "L'occurrence du {} ne peut pas être déplacée au {} : la ressource est déjà réservée à ce moment. \
             Cette occurrence est refusée ; les autres restent réservées.",
            was.format("%d/%m/%Y à %H:%M"),
            now.format("%d/%m/%Y à %H:%M")
        ),
        (true, true) => format!(
            "The occurrence of {} is moved to {}: the resource is booked at the new time.",
            was.format("%Y-%m-%d %H:%M"),
            now.format("%Y-%m-%d %H:%M")
        ),
        (false, true) => format!(
            "The occurrence of {} cannot move to {}: the resource is already booked then. \
             This occurrence is declined; the others stay booked.",
            was.format("%Y-%m-%d %H:%M"),
            now.format("%Y-%m-%d %H:%M")
        ),
    }
}

impl Store {
    /// The organiser cancelled one occurrence of a booked series: its slot
    /// is freed.
    pub async fn cancel_occurrence(
        &self,
        resource_id: Uuid,
        uid: &str,
        original_start: DateTime<Utc>,
        sequence: i32,
        now: DateTime<Utc>,
    ) -> Result<OccurrenceChange> {
        let mut tx = self.pool().begin().await?;
        let Some(booking_id) = sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM bookings WHERE resource_id = $1 AND uid = $2 AND recurrence IS NOT NULL
               AND status <> 'cancelled' FOR UPDATE",
        )
        .bind(resource_id)
        .bind(uid)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(OccurrenceChange::NoSeries);
        };
        let changed = sqlx::query(
            "UPDATE occurrences SET status = 'cancelled'
             WHERE booking_id = $1 AND original_start = $2 AND status <> 'cancelled'",
        )
        .bind(booking_id)
        .bind(original_start)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(OccurrenceChange::Unchanged { booking_id });
        }
        sqlx::query(
            "INSERT INTO decisions (booking_id, resource_id, uid, sequence, decided_at, outcome, decided_by, inputs)
             VALUES ($1, $2, $3, $4, $5, 'cancel', 'engine', $6)",
        )
        .bind(booking_id)
        .bind(resource_id)
        .bind(uid)
        .bind(sequence)
        .bind(now)
        .bind(json!({ "occurrence": original_start }))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(OccurrenceChange::Cancelled { booking_id })
    }

    /// The organiser moved one occurrence of a booked series to
    /// `start`–`end`: it takes the new slot when free, or is declined; the
    /// answer to `item_id` (the occurrence's meeting request) is queued.
    #[allow(clippy::too_many_arguments)]
    pub async fn move_occurrence(
        &self,
        resource_id: Uuid,
        uid: &str,
        original_start: DateTime<Utc>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        sequence: i32,
        item_id: &str,
        now: DateTime<Utc>,
    ) -> Result<OccurrenceChange> {
        if end <= start {
            return Err(StoreError::Invalid("an occurrence must end after it starts".into()));
        }
        let mut tx = self.pool().begin().await?;
        let Some(row) = sqlx::query(
            "SELECT b.id, b.time_zone, coalesce(p.preferred_language, 'fr') AS lang
             FROM bookings b LEFT JOIN people p ON p.id = b.organiser_person_id
             WHERE b.resource_id = $1 AND b.uid = $2 AND b.recurrence IS NOT NULL AND b.status <> 'cancelled'
             FOR UPDATE OF b",
        )
        .bind(resource_id)
        .bind(uid)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(OccurrenceChange::NoSeries);
        };
        let booking_id: Uuid = row.try_get("id")?;
        let tz: Tz = row
            .try_get::<String, _>("time_zone")?
            .parse()
            .unwrap_or(chrono_tz::Europe::Paris);
        let english = row.try_get::<String, _>("lang")? == "en";
        let Some(occ) = sqlx::query(
            "SELECT id, period, blocked, status FROM occurrences WHERE booking_id = $1 AND original_start = $2",
        )
        .bind(booking_id)
        .bind(original_start)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(OccurrenceChange::Unchanged { booking_id });
        };
        let occurrence_id: Uuid = occ.try_get("id")?;
        let period: PgRange<DateTime<Utc>> = occ.try_get("period")?;
        let blocked: PgRange<DateTime<Utc>> = occ.try_get("blocked")?;
        let status: String = occ.try_get("status")?;
        let (Some((p_start, p_end)), Some((b_start, b_end))) = (bounds(&period), bounds(&blocked)) else {
            return Err(StoreError::Invalid("occurrence without bounds".into()));
        };
        if (p_start, p_end) == (start, end) && status != "cancelled" {
            return Ok(OccurrenceChange::Unchanged { booking_id });
        }
        // The buffers stay what the series was decided with.
        let (before, after) = (p_start - b_start, b_end - p_end);
        let new_blocked = range(start - before, end + after);
        // A held occurrence (waiting for approval) stays held at its new time.
        let holding = if status == "held" { "held" } else { "accepted" };
        sqlx::query("SAVEPOINT move_occurrence").execute(&mut *tx).await?;
        let taken = sqlx::query("UPDATE occurrences SET period = $2, blocked = $3, status = $4 WHERE id = $1")
            .bind(occurrence_id)
            .bind(range(start, end))
            .bind(new_blocked)
            .bind(holding)
            .execute(&mut *tx)
            .await;
        let accepted = match taken {
            Ok(_) => true,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23P01") => {
                // Another booking holds the new slot.
                sqlx::query("ROLLBACK TO SAVEPOINT move_occurrence")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE occurrences SET period = $2, blocked = $3, status = 'declined' WHERE id = $1")
                    .bind(occurrence_id)
                    .bind(range(start, end))
                    .bind(new_blocked)
                    .execute(&mut *tx)
                    .await?;
                false
            }
            Err(e) => return Err(e.into()),
        };
        let message = text(accepted, english, original_start, start, tz);
        let outcome = if accepted { "accept" } else { "decline" };
        let decision_id: i64 = sqlx::query_scalar(
            "INSERT INTO decisions (booking_id, resource_id, uid, sequence, decided_at, outcome, decided_by, inputs)
             VALUES ($1, $2, $3, $4, $5, $6, 'engine', $7) RETURNING id",
        )
        .bind(booking_id)
        .bind(resource_id)
        .bind(uid)
        .bind(sequence)
        .bind(now)
        .bind(outcome)
        .bind(json!({ "occurrence": original_start, "start": start, "end": end }))
        .fetch_one(&mut *tx)
        .await?;
        let kind = match (accepted, holding) {
            (false, _) => "decline",
            (true, "held") => "tentative",
            (true, _) => "accept",
        };
        sqlx::query(
            "INSERT INTO outbox (resource_id, booking_id, kind, idempotency_key, payload, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(resource_id)
        .bind(booking_id)
        .bind(kind)
        .bind(format!(
            "occurrence:{booking_id}:{}:{}",
            original_start.timestamp(),
            start.timestamp()
        ))
        .bind(json!({
            "reference_item_id": item_id,
            "body": message,
            "language": if english { "en" } else { "fr" },
            "decision_id": decision_id,
        }))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(OccurrenceChange::Moved { booking_id, accepted })
    }
}
