//! A booking cancelled on the web site: the slots freed, the cancellation
//! logged, and what Exchange must do about it queued in the outbox, all in one
//! transaction, so the cancellation and its effect in Exchange are never
//! apart. The outbox worker (`sync::outbox`) sends the command.
//!
//! A meeting the site created (the resource organised it) is cancelled, so
//! its attendee gets a cancellation; one made in Outlook (the resource was
//! invited) is declined by the resource, so the organiser's calendar shows the
//! room is gone. When someone other than the organiser (a manager of the
//! resource, an admin) cancels, the organiser also gets the "cancelled by a
//! manager" message, in their language, from the resource mailbox.

use super::notify::{OutgoingMail, booking_facts, queue_mail, render_in};
use super::{Result, Store};
use crate::domain::reason::Lang;
use crate::notify::Event;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;
use uuid::Uuid;

/// Who cancels a booking on the site, and why.
#[derive(Debug, Clone)]
pub struct WebCancel<'a> {
    pub booking_id: Uuid,
    /// The person cancelling.
    pub by: Uuid,
    /// Their name, as the organiser will read it.
    pub by_name: &'a str,
    /// A manager's comment for the organiser; ignored when the organiser
    /// cancels their own booking.
    pub comment: &'a str,
    pub now: DateTime<Utc>,
}

/// What a cancellation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebCancelled {
    /// Nothing to cancel: unknown, already cancelled, declined or released.
    Nothing,
    /// Cancelled; `told_organiser` when the "cancelled by a manager" message
    /// was queued for the organiser.
    Done { told_organiser: bool },
}

/// How the resource stands in the meeting, which decides what it sends.
pub const ORGANISED_BY_RESOURCE: &str = "resource";
pub const ORGANISED_BY_ORGANISER: &str = "organiser";

/// The text sent with the cancellation or the refusal, in the organiser's
/// language.
fn cancel_text(lang: Lang, by: &str, comment: &str) -> String {
    let mut text = match lang {
        Lang::Fr => format!("Réservation annulée sur le site resa par {by}."),
        Lang::En => format!("Booking cancelled on the resa site by {by}."),
    };
    if !comment.is_empty() {
        text.push_str("\n\n");
        text.push_str(comment);
    }
    text
}

/// "30/11/2026 à 09:05" in the resource's zone.
fn moment(lang: Lang, tz: chrono_tz::Tz, at: DateTime<Utc>) -> String {
    let t = at.with_timezone(&tz);
    match lang {
        Lang::Fr => format!("le {} à {}", t.format("%d/%m/%Y"), t.format("%H:%M")),
        Lang::En => format!("on {} at {}", t.format("%d/%m/%Y"), t.format("%H:%M")),
    }
}

impl Store {
    /// Cancels a booking from the web site (see the module's documentation).
    pub async fn cancel_on_web(&self, c: &WebCancel<'_>) -> Result<WebCancelled> {
        let mut tx = self.pool().begin().await?;
        let Some(row) = sqlx::query(
            "SELECT resource_id, uid, sequence, source, organiser_person_id FROM bookings
             WHERE id = $1 AND status IN ('accepted', 'partially_accepted', 'held') FOR UPDATE",
        )
        .bind(c.booking_id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(WebCancelled::Nothing);
        };
        let resource_id: Uuid = row.try_get("resource_id")?;
        let uid: String = row.try_get("uid")?;
        let sequence: i32 = row.try_get("sequence")?;
        let source: String = row.try_get("source")?;
        let organiser: Option<Uuid> = row.try_get("organiser_person_id")?;
        let by_manager = organiser != Some(c.by);
        // Read before the occurrences are cancelled: the message names the
        // slots the organiser had.
        let facts = booking_facts(&mut tx, c.booking_id).await?;
        let span: (Option<DateTime<Utc>>, Option<DateTime<Utc>>) =
            sqlx::query_as("SELECT min(lower(period)), max(upper(period)) FROM occurrences WHERE booking_id = $1")
                .bind(c.booking_id)
                .fetch_one(&mut *tx)
                .await?;

        sqlx::query("UPDATE bookings SET status = 'cancelled', updated_at = $2 WHERE id = $1")
            .bind(c.booking_id)
            .bind(c.now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE occurrences SET status = 'cancelled' WHERE booking_id = $1 AND status IN ('accepted', 'held')",
        )
        .bind(c.booking_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO decisions (booking_id, resource_id, uid, sequence, decided_at, outcome, decided_by)
             VALUES ($1, $2, $3, $4, $5, 'cancel', $6)",
        )
        .bind(c.booking_id)
        .bind(resource_id)
        .bind(&uid)
        .bind(sequence)
        .bind(c.now)
        .bind(if by_manager { "manager" } else { "engine" })
        .execute(&mut *tx)
        .await?;
        super::circuits::close_run(&mut tx, c.booking_id, "cancelled", c.now).await?;

        let comment = if by_manager { c.comment.trim() } else { "" };
        let lang = facts.organiser_lang;
        if let (Some(start), Some(end)) = span {
            let organised = if source == "web" {
                ORGANISED_BY_RESOURCE
            } else {
                ORGANISED_BY_ORGANISER
            };
            // A series is one meeting in Exchange; resa keys an occurrence
            // decided on its own as `uid#date`.
            let calendar_uid = uid.split('#').next().unwrap_or(&uid);
            sqlx::query(
                "INSERT INTO outbox (resource_id, booking_id, kind, idempotency_key, payload, next_attempt_at, created_at)
                 VALUES ($1, $2, 'cancel_meeting', $3, $4, $5, $5) ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(resource_id)
            .bind(c.booking_id)
            .bind(format!("web-cancel:{}", c.booking_id))
            .bind(json!({
                "calendar_uid": calendar_uid,
                "start": start,
                "end": end,
                "organised": organised,
                "body": cancel_text(lang, c.by_name, comment),
            }))
            .bind(c.now)
            .execute(&mut *tx)
            .await?;
        }

        let mut told_organiser = false;
        if by_manager && let Some(to) = facts.organiser_smtp.clone() {
            let mut vars = facts.vars(lang);
            vars.insert("cancelled_by", c.by_name.to_owned());
            vars.insert("cancelled_at", moment(lang, facts.tz, c.now));
            vars.insert("comment", comment.to_owned());
            let rendered = render_in(&mut tx, Event::CancelledByManager, lang, &vars).await?;
            queue_mail(
                &mut tx,
                resource_id,
                Some(c.booking_id),
                &format!("cancelled-by-manager:{}", c.booking_id),
                &OutgoingMail {
                    to: vec![to],
                    rendered,
                    lang,
                    voting: false,
                    event: Event::CancelledByManager,
                },
                c.now,
            )
            .await?;
            told_organiser = true;
        }
        tx.commit().await?;
        Ok(WebCancelled::Done { told_organiser })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cancellation_text_names_who_and_keeps_a_comment() {
        assert_eq!(
            cancel_text(Lang::Fr, "Bob Durand", ""),
            "Réservation annulée sur le site resa par Bob Durand."
        );
        assert_eq!(
            cancel_text(Lang::En, "Bob Durand", "Salle réquisitionnée"),
            "Booking cancelled on the resa site by Bob Durand.\n\nSalle réquisitionnée"
        );
    }
}
