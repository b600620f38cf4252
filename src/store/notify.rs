//! Message templates (admins' versions over the built-in defaults), the data
//! of a booking that messages are rendered with, and messages queued in the
//! outbox to be sent from the resource mailbox.

use super::{Result, Store};
use crate::domain::reason::Lang;
use crate::notify::{self, Event, Rendered, Template};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;
use sqlx::{Postgres, Row, Transaction};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A template as the editor shows it.
#[derive(Debug, Clone)]
pub struct TemplateRow {
    pub event: Event,
    pub language: Lang,
    pub template: Template,
    /// False while the built-in default applies.
    pub customised: bool,
    pub updated_at: Option<DateTime<Utc>>,
}

/// What messages say about a booking.
#[derive(Debug, Clone)]
pub struct BookingFacts {
    pub booking_id: Uuid,
    pub resource_id: Uuid,
    pub resource: String,
    pub mailbox: String,
    pub category: String,
    pub subject: String,
    pub organiser: String,
    /// Where the organiser is written to, when known.
    pub organiser_smtp: Option<String>,
    pub organiser_lang: Lang,
    pub uid: String,
    pub tz: Tz,
    pub first: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub last_end: Option<DateTime<Utc>>,
    pub occurrences: i64,
    pub exchange_item_id: Option<String>,
}

pub fn lang_code(lang: Lang) -> &'static str {
    match lang {
        Lang::Fr => "fr",
        Lang::En => "en",
    }
}

pub fn parse_lang(s: &str) -> Lang {
    if s == "en" { Lang::En } else { Lang::Fr }
}

impl BookingFacts {
    /// "le 01/12/2026 de 15:00 à 16:00", in the resource's zone.
    pub fn when(&self, lang: Lang) -> String {
        let Some((s, e)) = self.first else {
            return String::new();
        };
        let (s, e) = (s.with_timezone(&self.tz), e.with_timezone(&self.tz));
        let same_day = s.date_naive() == e.date_naive();
        let mut out = match (lang, same_day) {
            (Lang::Fr, true) => format!(
                "le {} de {} à {}",
                s.format("%d/%m/%Y"),
                s.format("%H:%M"),
                e.format("%H:%M")
            ),
            (Lang::En, true) => format!(
                "on {} from {} to {}",
                s.format("%d/%m/%Y"),
                s.format("%H:%M"),
                e.format("%H:%M")
            ),
            (Lang::Fr, false) => format!("du {} au {}", s.format("%d/%m/%Y %H:%M"), e.format("%d/%m/%Y %H:%M")),
            (Lang::En, false) => format!("from {} to {}", s.format("%d/%m/%Y %H:%M"), e.format("%d/%m/%Y %H:%M")),
        };
        if self.occurrences > 1 {
            let more = self.occurrences - 1;
            out.push_str(&match lang {
                Lang::Fr => format!(" (et {more} autres occurrences)"),
                Lang::En => format!(" (and {more} more occurrences)"),
            });
        }
        out
    }

    /// The variables every message about this booking has.
    pub fn vars(&self, lang: Lang) -> BTreeMap<&'static str, String> {
        let mut v = BTreeMap::new();
        v.insert("resource", self.resource.clone());
        v.insert("mailbox", self.mailbox.clone());
        v.insert("subject", self.subject.clone());
        v.insert("organiser", self.organiser.clone());
        v.insert("when", self.when(lang));
        v.insert("reference", notify::reference(self.booking_id));
        v
    }
}

/// The facts of a booking, read in a transaction.
pub async fn booking_facts(tx: &mut Transaction<'_, Postgres>, booking_id: Uuid) -> Result<BookingFacts> {
    let r = sqlx::query(
        "SELECT b.id, b.resource_id, r.name AS resource, r.mailbox_smtp, t.category, b.subject, b.uid,
                coalesce(p.display_name, b.organiser_name, b.organiser_address) AS organiser,
                coalesce((SELECT a.address FROM person_addresses a WHERE a.person_id = b.organiser_person_id
                          ORDER BY a.is_primary DESC, a.address LIMIT 1),
                         CASE WHEN b.organiser_address LIKE '%@%' AND b.organiser_address NOT LIKE 'ex:%'
                              THEN b.organiser_address END) AS organiser_smtp,
                coalesce(p.preferred_language, 'fr') AS lang, s.time_zone, b.exchange_item_id,
                (SELECT min(lower(o.period)) FROM occurrences o WHERE o.booking_id = b.id) AS first_start,
                (SELECT upper(o.period) FROM occurrences o WHERE o.booking_id = b.id ORDER BY lower(o.period) LIMIT 1)
                    AS first_end,
                (SELECT max(upper(o.period)) FROM occurrences o WHERE o.booking_id = b.id) AS last_end,
                (SELECT count(*) FROM occurrences o WHERE o.booking_id = b.id
                   AND o.status IN ('accepted', 'held')) AS n
         FROM bookings b JOIN resources r ON r.id = b.resource_id
         JOIN resource_types t ON t.id = r.resource_type_id JOIN sites s ON s.id = r.site_id
         LEFT JOIN people p ON p.id = b.organiser_person_id
         WHERE b.id = $1",
    )
    .bind(booking_id)
    .fetch_one(&mut **tx)
    .await?;
    let tz_name: String = r.try_get("time_zone")?;
    let first_start: Option<DateTime<Utc>> = r.try_get("first_start")?;
    let first_end: Option<DateTime<Utc>> = r.try_get("first_end")?;
    let lang: String = r.try_get("lang")?;
    let subject: Option<String> = r.try_get("subject")?;
    Ok(BookingFacts {
        booking_id,
        resource_id: r.try_get("resource_id")?,
        resource: r.try_get("resource")?,
        mailbox: r.try_get("mailbox_smtp")?,
        category: r.try_get("category")?,
        subject: subject.unwrap_or_default(),
        organiser: r.try_get("organiser")?,
        organiser_smtp: r.try_get("organiser_smtp")?,
        organiser_lang: parse_lang(&lang),
        uid: r.try_get("uid")?,
        tz: tz_name.parse().unwrap_or(chrono_tz::Europe::Paris),
        first: first_start.zip(first_end),
        last_end: r.try_get("last_end")?,
        occurrences: r.try_get("n")?,
        exchange_item_id: r.try_get("exchange_item_id")?,
    })
}

/// The template in force for an event and language.
pub async fn template_in(tx: &mut Transaction<'_, Postgres>, event: Event, lang: Lang) -> Result<Template> {
    let row = sqlx::query("SELECT subject, body FROM message_templates WHERE event = $1 AND language = $2")
        .bind(event.as_str())
        .bind(lang_code(lang))
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        Some(r) => Template {
            subject: r.try_get("subject")?,
            body: r.try_get("body")?,
        },
        None => notify::default_template(event, lang),
    })
}

/// Renders an event's template with these variables.
pub async fn render_in(
    tx: &mut Transaction<'_, Postgres>,
    event: Event,
    lang: Lang,
    vars: &BTreeMap<&str, String>,
) -> Result<Rendered> {
    let t = template_in(tx, event, lang).await?;
    Ok(notify::render(&t, vars))
}

/// A message to send from a resource mailbox.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub to: Vec<String>,
    pub rendered: Rendered,
    pub lang: Lang,
    /// Outlook voting buttons "Approuver;Refuser".
    pub voting: bool,
    pub event: Event,
}

/// Queues a message in the outbox; a key already queued is not queued again.
pub async fn queue_mail(
    tx: &mut Transaction<'_, Postgres>,
    resource_id: Uuid,
    booking_id: Option<Uuid>,
    key: &str,
    mail: &OutgoingMail,
    now: DateTime<Utc>,
) -> Result<()> {
    if mail.to.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO outbox (resource_id, booking_id, kind, idempotency_key, payload, next_attempt_at, created_at)
         VALUES ($1, $2, 'message', $3, $4, $5, $5) ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(resource_id)
    .bind(booking_id)
    .bind(key)
    .bind(json!({
        "to": mail.to,
        "subject": mail.rendered.subject,
        "body": mail.rendered.body,
        "voting": mail.voting,
        "language": lang_code(mail.lang),
        "event": mail.event.as_str(),
    }))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Every event's template in both languages, defaults included.
    pub async fn message_templates(&self) -> Result<Vec<TemplateRow>> {
        let rows = sqlx::query("SELECT event, language, subject, body, updated_at FROM message_templates")
            .fetch_all(self.pool())
            .await?;
        let mut stored = BTreeMap::new();
        for r in rows {
            let event: String = r.try_get("event")?;
            let language: String = r.try_get("language")?;
            stored.insert(
                (event, language),
                (
                    Template {
                        subject: r.try_get("subject")?,
                        body: r.try_get("body")?,
                    },
                    r.try_get::<DateTime<Utc>, _>("updated_at")?,
                ),
            );
        }
        let mut out = Vec::new();
        for event in Event::ALL {
            for lang in [Lang::Fr, Lang::En] {
                let key = (event.as_str().to_owned(), lang_code(lang).to_owned());
                out.push(match stored.remove(&key) {
                    Some((template, at)) => TemplateRow {
                        event,
                        language: lang,
                        template,
                        customised: true,
                        updated_at: Some(at),
                    },
                    None => TemplateRow {
                        event,
                        language: lang,
                        template: notify::default_template(event, lang),
                        customised: false,
                        updated_at: None,
                    },
                });
            }
        }
        Ok(out)
    }

    /// The template in force for an event and language.
    pub async fn message_template(&self, event: Event, lang: Lang) -> Result<Template> {
        let mut tx = self.pool().begin().await?;
        let t = template_in(&mut tx, event, lang).await?;
        tx.commit().await?;
        Ok(t)
    }

    /// Saves an admin's version of a template (checked by the caller).
    pub async fn set_message_template(
        &self,
        event: Event,
        lang: Lang,
        template: &Template,
        by: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO message_templates (event, language, subject, body, updated_at, updated_by)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (event, language) DO UPDATE
             SET subject = EXCLUDED.subject, body = EXCLUDED.body, updated_at = EXCLUDED.updated_at,
                 updated_by = EXCLUDED.updated_by",
        )
        .bind(event.as_str())
        .bind(lang_code(lang))
        .bind(&template.subject)
        .bind(&template.body)
        .bind(now)
        .bind(by)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Goes back to the built-in template.
    pub async fn reset_message_template(&self, event: Event, lang: Lang) -> Result<()> {
        sqlx::query("DELETE FROM message_templates WHERE event = $1 AND language = $2")
            .bind(event.as_str())
            .bind(lang_code(lang))
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// How long before an occurrence its organiser is reminded.
pub const REMINDER_AHEAD_HOURS: i64 = 24;

impl Store {
    /// Queues the reminder of every accepted occurrence starting within the
    /// next day, once per occurrence (the outbox key says it was queued).
    /// Returns how many were queued.
    pub async fn booking_reminders(&self, now: DateTime<Utc>) -> Result<usize> {
        // (booking, original start, start, end)
        type Due = (Uuid, DateTime<Utc>, DateTime<Utc>, DateTime<Utc>);
        let due: Vec<Due> = sqlx::query_as(
            "SELECT o.booking_id, o.original_start, lower(o.period), upper(o.period)
             FROM occurrences o JOIN bookings b ON b.id = o.booking_id
             WHERE o.status = 'accepted' AND b.status IN ('accepted', 'partially_accepted')
               AND lower(o.period) > $1 AND lower(o.period) <= $1 + make_interval(hours => $2::int)
               AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.idempotency_key =
                               'reminder:' || o.booking_id::text || ':' || extract(epoch FROM o.original_start)::bigint::text)
             ORDER BY lower(o.period) LIMIT 500",
        )
        .bind(now)
        .bind(i32::try_from(REMINDER_AHEAD_HOURS).unwrap_or(24))
        .fetch_all(self.pool())
        .await?;
        let mut queued = 0;
        for (booking_id, original_start, start, end) in due {
            let mut tx = self.pool().begin().await?;
            let mut facts = booking_facts(&mut tx, booking_id).await?;
            let Some(to) = facts.organiser_smtp.clone() else {
                continue;
            };
            // The reminder is about this occurrence alone.
            facts.first = Some((start, end));
            facts.occurrences = 1;
            let lang = facts.organiser_lang;
            let rendered = render_in(&mut tx, Event::Reminder, lang, &facts.vars(lang)).await?;
            let mail = OutgoingMail {
                to: vec![to],
                rendered,
                lang,
                voting: false,
                event: Event::Reminder,
            };
            let key = format!("reminder:{booking_id}:{}", original_start.timestamp());
            queue_mail(&mut tx, facts.resource_id, Some(booking_id), &key, &mail, now).await?;
            tx.commit().await?;
            queued += 1;
        }
        Ok(queued)
    }
}
