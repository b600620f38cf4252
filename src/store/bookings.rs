//! Bookings and their occurrences: the slots held on each resource.

use super::{Result, Store};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::types::PgRange;
use std::ops::Bound;
use uuid::Uuid;

/// Where a booking came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Exchange,
    Web,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Exchange => "exchange",
            Source::Web => "web",
        }
    }
}

/// The state of a whole booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingStatus {
    Accepted,
    PartiallyAccepted,
    Declined,
    Held,
    Cancelled,
    Released,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Accepted => "accepted",
            BookingStatus::PartiallyAccepted => "partially_accepted",
            BookingStatus::Declined => "declined",
            BookingStatus::Held => "held",
            BookingStatus::Cancelled => "cancelled",
            BookingStatus::Released => "released",
        }
    }
}

/// The state of one occurrence; `Accepted` and `Held` hold the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OccurrenceStatus {
    Accepted,
    Held,
    Declined,
    Cancelled,
    Released,
}

impl OccurrenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OccurrenceStatus::Accepted => "accepted",
            OccurrenceStatus::Held => "held",
            OccurrenceStatus::Declined => "declined",
            OccurrenceStatus::Cancelled => "cancelled",
            OccurrenceStatus::Released => "released",
        }
    }

    pub fn holds_slot(self) -> bool {
        matches!(self, OccurrenceStatus::Accepted | OccurrenceStatus::Held)
    }
}

#[derive(Debug, Clone)]
pub struct NewBooking<'a> {
    pub resource_id: Uuid,
    pub uid: &'a str,
    pub source: Source,
    pub organiser_person_id: Option<Uuid>,
    pub organiser_address: &'a str,
    pub organiser_name: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub attendee_count: Option<i32>,
    pub sequence: i32,
    pub time_zone: &'a str,
    pub status: BookingStatus,
    pub requested_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOccurrence {
    pub original_start: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Start of the held slot: `start` minus the buffer before.
    pub blocked_start: DateTime<Utc>,
    /// End of the held slot: `end` plus the buffer after.
    pub blocked_end: DateTime<Utc>,
    pub status: OccurrenceStatus,
}

impl NewOccurrence {
    /// An occurrence without buffers.
    pub fn plain(start: DateTime<Utc>, end: DateTime<Utc>, status: OccurrenceStatus) -> Self {
        NewOccurrence {
            original_start: start,
            start,
            end,
            blocked_start: start,
            blocked_end: end,
            status,
        }
    }
}

/// A half-open period, as the `occurrences` ranges are stored.
pub(super) fn range(start: DateTime<Utc>, end: DateTime<Utc>) -> PgRange<DateTime<Utc>> {
    PgRange {
        start: Bound::Included(start),
        end: Bound::Excluded(end),
    }
}

impl Store {
    /// Inserts a booking and its occurrences in one transaction. If one
    /// occurrence collides with a slot already held, nothing is written and
    /// [`super::StoreError::SlotTaken`] is returned.
    pub async fn insert_booking(&self, booking: &NewBooking<'_>, occurrences: &[NewOccurrence]) -> Result<Uuid> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "INSERT INTO bookings (resource_id, uid, source, organiser_person_id, organiser_address, organiser_name,
                                   subject, attendee_count, sequence, time_zone, status, requested_at)
             VALUES ($1, $2, $3, $4, lower($5), $6, $7, $8, $9, $10, $11, $12) RETURNING id",
        )
        .bind(booking.resource_id)
        .bind(booking.uid)
        .bind(booking.source.as_str())
        .bind(booking.organiser_person_id)
        .bind(booking.organiser_address)
        .bind(booking.organiser_name)
        .bind(booking.subject)
        .bind(booking.attendee_count)
        .bind(booking.sequence)
        .bind(booking.time_zone)
        .bind(booking.status.as_str())
        .bind(booking.requested_at)
        .fetch_one(&mut *tx)
        .await?;
        let id: Uuid = row.try_get("id")?;
        for o in occurrences {
            sqlx::query(
                "INSERT INTO occurrences (booking_id, resource_id, original_start, period, blocked, status)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(booking.resource_id)
            .bind(o.original_start)
            .bind(range(o.start, o.end))
            .bind(range(o.blocked_start, o.blocked_end))
            .bind(o.status.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// The slots held on a resource that overlap `[from, to)`, in start order.
    pub async fn held_slots(
        &self,
        resource_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>> {
        let rows = sqlx::query(
            "SELECT lower(period) AS s, upper(period) AS e FROM occurrences
             WHERE resource_id = $1 AND status IN ('accepted', 'held') AND blocked && $2
             ORDER BY lower(period)",
        )
        .bind(resource_id)
        .bind(range(from, to))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| Ok((r.try_get("s")?, r.try_get("e")?)))
            .collect()
    }
}
