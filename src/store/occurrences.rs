//! Messages about one occurrence of a series already booked: the organiser
//! moved it (an exception) or cancelled it. They change that occurrence of
//! the stored series, in one transaction with the reply to send, instead of
//! becoming bookings of their own.
//!
//! A moved occurrence is decided again by the rule engine, as a request of
//! its own for the new time would be (`domain::decide` with the resource's
//! effective policy: opening hours, duration, horizon and notice, blackouts
//! and holidays, quotas, rights, a vehicle's licence, occupancy), the rest
//! of the series excluded from the occupancy it is checked against. When the
//! rules allow it, it keeps its buffers and takes its new slot when free (the
//! exclusion constraint decides, so a race is a conflict like any other);
//! when they ask for approval it holds the new slot and is answered
//! "tentative"; otherwise it is declined with the rule's reason and its old
//! slot freed. The rest of the series is left as it was decided.

use super::bookings::range;
use super::requests::{
    blackouts, effective_policy, grants_for, occupancy, quota_bookings, reasons_json, resource_context,
};
use super::{Result, Store, StoreError};
use crate::domain::reason::Lang;
use crate::domain::{
    BookingRequest, Decision, DecisionInput, Organiser, Outcome, Reason, RenderContext, ResourceInfo, When, decide,
};
use chrono::{DateTime, Duration, Utc};
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
    /// Moved and accepted (or held, waiting for approval), or declined
    /// because a rule refuses the new time or the slot is taken; the answer
    /// is queued.
    Moved {
        booking_id: Uuid,
        accepted: bool,
        held: bool,
    },
}

fn bounds(r: &PgRange<DateTime<Utc>>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    match (r.start, r.end) {
        (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) => Some((s, e)),
        _ => None,
    }
}

/// How a moved occurrence is answered.
enum Answer<'a> {
    Accepted,
    /// Held for approval, for these reasons.
    Held(&'a [Reason]),
    /// Refused by these rules.
    Refused(&'a [Reason]),
    /// The slot was taken meanwhile (the exclusion constraint refused it).
    Taken,
}

/// The answer's text, in the organiser's language.
fn text(answer: &Answer, ctx: &RenderContext, original: DateTime<Utc>, start: DateTime<Utc>) -> String {
    let english = ctx.lang == Lang::En;
    let fmt = if english { "%Y-%m-%d %H:%M" } else { "%d/%m/%Y à %H:%M" };
    let was = original.with_timezone(&ctx.tz).format(fmt);
    let now = start.with_timezone(&ctx.tz).format(fmt);
    let why = |reasons: &[Reason]| {
        let texts: Vec<String> = reasons.iter().map(|r| r.render(ctx)).collect();
        texts.join(if english { "; " } else { " ; " })
    };
    match (answer, english) {
        (Answer::Accepted, false) => {
            format!("L'occurrence du {was} est déplacée au {now} : la ressource est réservée à ce nouvel horaire.")
        }
        (Answer::Accepted, true) => {
            format!("The occurrence of {was} is moved to {now}: the resource is booked at the new time.")
        }
        (Answer::Held(r), false) => format!(
            "L'occurrence du {was} est déplacée au {now} sous réserve de validation : {}. Le créneau vous est \
             gardé en attendant ; les autres occurrences restent réservées.",
            why(r)
        ),
        (Answer::Held(r), true) => format!(
            "The occurrence of {was} is moved to {now} subject to approval: {}. The slot is kept for you \
             meanwhile; the other occurrences stay booked.",
            why(r)
        ),
        (Answer::Refused(r), false) => format!(
            "L'occurrence du {was} ne peut pas être déplacée au {now} : {}. Cette occurrence est refusée ; \
             les autres restent réservées.",
            why(r)
        ),
        (Answer::Refused(r), true) => format!(
            "The occurrence of {was} cannot move to {now}: {}. This occurrence is declined; the others stay \
             booked.",
            why(r)
        ),
        (Answer::Taken, false) => format!(
            "L'occurrence du {was} ne peut pas être déplacée au {now} : la ressource est déjà réservée à ce moment. \
             Cette occurrence est refusée ; les autres restent réservées."
        ),
        (Answer::Taken, true) => format!(
            "The occurrence of {was} cannot move to {now}: the resource is already booked then. \
             This occurrence is declined; the others stay booked."
        ),
    }
}

/// Every reason of a decision: the request's, then its occurrence's.
fn all_reasons(decision: &Decision) -> Vec<Reason> {
    match &decision.outcome {
        Outcome::Accept => Vec::new(),
        Outcome::AcceptPartially { declined } => declined.iter().flat_map(|d| d.reasons.clone()).collect(),
        Outcome::Decline { reasons, declined } | Outcome::Hold { reasons, declined, .. } => reasons
            .iter()
            .cloned()
            .chain(declined.iter().flat_map(|d| d.reasons.clone()))
            .collect(),
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
            "SELECT b.id, b.time_zone, b.organiser_address, b.attendee_count
             FROM bookings b
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
        let organiser_address: String = row.try_get("organiser_address")?;
        let attendees: i32 = row.try_get("attendee_count")?;
        let Some(occ) = sqlx::query(
            "SELECT id, resource_id, period, blocked, status FROM occurrences
             WHERE booking_id = $1 AND original_start = $2",
        )
        .bind(booking_id)
        .bind(original_start)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(OccurrenceChange::Unchanged { booking_id });
        };
        let occurrence_id: Uuid = occ.try_get("id")?;
        // A pool's series holds its member's slots: the member is what the
        // rules and the occupancy are about.
        let target: Uuid = occ.try_get("resource_id")?;
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

        // The new time goes through the rules a request for it would.
        let (organiser, lang) = self.organiser_of(&organiser_address).await?;
        let resource = resource_context(&mut tx, target).await?;
        let policy = effective_policy(&mut tx, &resource.chain).await?;
        let margin_before = before.max(Duration::minutes(i64::from(policy.buffer_before_minutes.value)));
        let margin_after = after.max(Duration::minutes(i64::from(policy.buffer_after_minutes.value)));
        let occupied = occupancy(
            &mut tx,
            target,
            start - margin_before,
            end + margin_after,
            Some(booking_id),
        )
        .await?;
        let grants = match &organiser {
            Organiser::Known { person, groups } => grants_for(&mut tx, *person, groups, &resource.chain).await?,
            _ => Vec::new(),
        };
        let quota = match &organiser {
            Organiser::Known { person, groups } if !policy.quotas.value.is_empty() => {
                // The series' other occurrences count; this one's old slot
                // does not, as it moves.
                quota_bookings(
                    &mut tx,
                    *person,
                    groups,
                    start - Duration::days(32),
                    end + Duration::days(32),
                    None,
                )
                .await?
                .into_iter()
                .filter(|q| !(q.booking == booking_id && q.start == p_start && q.end == p_end))
                .collect()
            }
            _ => Vec::new(),
        };
        let blackouts = blackouts(&mut tx, start, end).await?;
        let licence = super::vehicles::licence_check(&mut tx, target, &organiser).await?;
        let input = DecisionInput {
            now,
            request: BookingRequest {
                organiser: organiser.clone(),
                attendees: u32::try_from(attendees).unwrap_or(0),
                when: When::Single { start, end },
                replaces: Some(booking_id),
            },
            resource: ResourceInfo {
                chain: resource.chain.clone(),
                kind: resource.kind,
                capacity: resource.capacity,
                tz: resource.tz,
            },
            policy,
            grants,
            occupancy: occupied,
            quota_bookings: quota,
            blackouts,
            licence,
        };
        let decision = decide(&input);
        let render = RenderContext {
            lang,
            tz,
            kind: resource.kind,
        };
        let reasons = all_reasons(&decision);
        // A held series stays held: its circuit decides this occurrence too.
        let holding = match &decision.outcome {
            Outcome::Decline { .. } => None,
            Outcome::Hold { .. } => Some("held"),
            Outcome::Accept | Outcome::AcceptPartially { .. } if status == "held" => Some("held"),
            Outcome::Accept | Outcome::AcceptPartially { .. } => Some("accepted"),
        };
        let mut answer = match (&decision.outcome, holding) {
            (Outcome::Hold { .. }, _) => Answer::Held(&reasons),
            (_, Some(_)) => Answer::Accepted,
            (_, None) => Answer::Refused(&reasons),
        };
        sqlx::query("SAVEPOINT move_occurrence").execute(&mut *tx).await?;
        let taken = match holding {
            Some(holding) => {
                sqlx::query("UPDATE occurrences SET period = $2, blocked = $3, status = $4 WHERE id = $1")
                    .bind(occurrence_id)
                    .bind(range(start, end))
                    .bind(new_blocked)
                    .bind(holding)
                    .execute(&mut *tx)
                    .await
            }
            None => Err(sqlx::Error::RowNotFound),
        };
        match taken {
            Ok(_) => {}
            Err(e) => {
                match e {
                    // The rules refused it, or another booking holds the
                    // new slot (a race the engine could not see).
                    sqlx::Error::RowNotFound => {}
                    sqlx::Error::Database(e) if e.code().as_deref() == Some("23P01") => {
                        sqlx::query("ROLLBACK TO SAVEPOINT move_occurrence")
                            .execute(&mut *tx)
                            .await?;
                        answer = Answer::Taken;
                    }
                    e => return Err(e.into()),
                }
                sqlx::query("UPDATE occurrences SET period = $2, blocked = $3, status = 'declined' WHERE id = $1")
                    .bind(occurrence_id)
                    .bind(range(start, end))
                    .bind(new_blocked)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let (accepted, held) = match answer {
            Answer::Accepted => (true, holding == Some("held")),
            Answer::Held(_) => (true, true),
            Answer::Refused(_) | Answer::Taken => (false, false),
        };
        let message = text(&answer, &render, original_start, start);
        let outcome = match answer {
            Answer::Accepted => "accept",
            Answer::Held(_) => "hold",
            Answer::Refused(_) | Answer::Taken => "decline",
        };
        let reasons_json = match answer {
            Answer::Taken => json!([{ "code": "conflict", "fr": message, "en": message }]),
            _ => reasons_json(&decision, &render),
        };
        let explanation = serde_json::to_value(&decision.checks).unwrap_or_else(|_| json!([]));
        let decision_id: i64 = sqlx::query_scalar(
            "INSERT INTO decisions (booking_id, resource_id, uid, sequence, decided_at, outcome, reasons, inputs,
                                    explanation, decided_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'engine') RETURNING id",
        )
        .bind(booking_id)
        .bind(resource_id)
        .bind(uid)
        .bind(sequence)
        .bind(now)
        .bind(outcome)
        .bind(&reasons_json)
        .bind(json!({ "occurrence": original_start, "start": start, "end": end, "policy": input.policy }))
        .bind(&explanation)
        .fetch_one(&mut *tx)
        .await?;
        let kind = match (accepted, held) {
            (false, _) => "decline",
            (true, true) => "tentative",
            (true, false) => "accept",
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
            "language": if lang == Lang::En { "en" } else { "fr" },
            "decision_id": decision_id,
        }))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(OccurrenceChange::Moved {
            booking_id,
            accepted,
            held,
        })
    }
}
