//! Check-in, check-out and return of vehicles, loaned equipment and rooms,
//! and the periodic job that releases bookings nobody checked in to and
//! reports overdue returns.
//!
//! A release is one transaction: the occurrence stops holding its slot, the
//! decision is logged, a decline of that occurrence is queued in the outbox
//! for Exchange, and the organiser's alert is recorded. Each step is keyed
//! so the job may run again (or on two instances) without repeating itself.

use super::bookings::range;
use super::notify::{OutgoingMail, queue_mail, render_in};
use super::vehicles::{to_i32, to_u32};
use super::{Result, Store, StoreError};
use crate::domain::reason::Lang;
use crate::domain::vehicles::{REPEATED_NO_SHOWS, check_in_missed, overdue};
use crate::notify::Event;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sqlx::{Postgres, Row, Transaction};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Largest damage photo accepted, in bytes (the schema allows 10 MiB).
pub const MAX_PHOTO_BYTES: usize = 8 * 1024 * 1024;

/// The image types a damage photo may have.
pub const PHOTO_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/webp"];

/// Most photos one return may carry.
pub const MAX_PHOTOS: usize = 5;

/// The image type that `bytes` begin with, whatever a client claimed.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.len() > 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// How clean a vehicle came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanliness {
    Clean,
    Acceptable,
    Dirty,
}

impl Cleanliness {
    pub fn parse(s: &str) -> Option<Cleanliness> {
        match s {
            "clean" => Some(Cleanliness::Clean),
            "acceptable" => Some(Cleanliness::Acceptable),
            "dirty" => Some(Cleanliness::Dirty),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Cleanliness::Clean => "clean",
            Cleanliness::Acceptable => "acceptable",
            Cleanliness::Dirty => "dirty",
        }
    }
}

/// What the return form records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReturnReport {
    pub odometer_km: Option<u32>,
    pub energy_level_pct: Option<u32>,
    pub cleanliness: Option<Cleanliness>,
    pub condition_notes: Option<String>,
    pub damage: Option<String>,
}

/// A photo of damage, checked before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl Photo {
    /// A photo whose type is read from its first bytes (a client's stated
    /// type is not trusted); refused when empty, too large or no image.
    pub fn sniffed(bytes: Vec<u8>) -> std::result::Result<Photo, &'static str> {
        let content_type = sniff_image(&bytes).ok_or(if bytes.is_empty() { "empty" } else { "bad_type" })?;
        let photo = Photo {
            content_type: content_type.to_owned(),
            bytes,
        };
        photo.check()?;
        Ok(photo)
    }

    /// Refuses a photo too large, of another type, or whose bytes are not
    /// the image its type says.
    pub fn check(&self) -> std::result::Result<(), &'static str> {
        if self.bytes.is_empty() {
            return Err("empty");
        }
        if self.bytes.len() > MAX_PHOTO_BYTES {
            return Err("too_large");
        }
        if !PHOTO_TYPES.contains(&self.content_type.as_str()) {
            return Err("bad_type");
        }
        if sniff_image(&self.bytes) == Some(self.content_type.as_str()) {
            Ok(())
        } else {
            Err("bad_type")
        }
    }
}

/// One of a person's bookings of a vehicle, item or room, as the pickup and
/// return pages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loan {
    pub occurrence_id: Uuid,
    pub booking_id: Uuid,
    pub organiser_person_id: Option<Uuid>,
    pub resource_id: Uuid,
    pub resource_name: String,
    /// "vehicle", "equipment" or "room".
    pub category: String,
    pub plate: Option<String>,
    pub key_location: Option<String>,
    pub subject: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub status: String,
    pub checked_in_at: Option<DateTime<Utc>>,
    pub checkout_id: Option<Uuid>,
    pub out_at: Option<DateTime<Utc>>,
    pub odometer_out_km: Option<u32>,
    pub returned_at: Option<DateTime<Utc>>,
}

/// A stored damage photo and what decides who may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPhoto {
    pub photo: Photo,
    pub resource_id: Uuid,
    pub organiser_person_id: Option<Uuid>,
}

/// One return of a vehicle's damage history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamageEntry {
    pub checkout_id: Uuid,
    pub returned_at: DateTime<Utc>,
    pub damage: Option<String>,
    pub condition_notes: Option<String>,
    pub who: Option<String>,
    pub photo_ids: Vec<Uuid>,
}

/// An alert of the vehicle workflow, for the web site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub id: Uuid,
    pub kind: String,
    pub recipient: String,
    pub recipient_address: Option<String>,
    pub resource_name: String,
    pub body_fr: String,
    pub body_en: String,
    pub created_at: DateTime<Utc>,
}

impl Alert {
    pub fn body(&self, lang: Lang) -> &str {
        match lang {
            Lang::Fr => &self.body_fr,
            Lang::En => &self.body_en,
        }
    }
}

/// What the periodic job did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub released: Vec<Uuid>,
    pub overdue_alerts: usize,
    pub no_show_reports: usize,
}

const LOAN_SELECT: &str = "SELECT o.id AS occurrence_id, o.booking_id, b.organiser_person_id, o.resource_id,
        r.name AS resource_name, t.category, v.plate, v.key_location, b.subject,
        lower(o.period) AS start, upper(o.period) AS \"end\", o.status, o.checked_in_at,
        c.id AS checkout_id, c.out_at, c.odometer_out_km, c.returned_at
     FROM occurrences o
     JOIN bookings b ON b.id = o.booking_id
     JOIN resources r ON r.id = o.resource_id
     JOIN resource_types t ON t.id = r.resource_type_id
     LEFT JOIN vehicles v ON v.resource_id = r.id
     LEFT JOIN checkouts c ON c.occurrence_id = o.id";

fn loan_from_row(r: &sqlx::postgres::PgRow) -> Result<Loan> {
    Ok(Loan {
        occurrence_id: r.try_get("occurrence_id")?,
        booking_id: r.try_get("booking_id")?,
        organiser_person_id: r.try_get("organiser_person_id")?,
        resource_id: r.try_get("resource_id")?,
        resource_name: r.try_get("resource_name")?,
        category: r.try_get("category")?,
        plate: r.try_get("plate")?,
        key_location: r.try_get("key_location")?,
        subject: r.try_get("subject")?,
        start: r.try_get("start")?,
        end: r.try_get("end")?,
        status: r.try_get("status")?,
        checked_in_at: r.try_get("checked_in_at")?,
        checkout_id: r.try_get("checkout_id")?,
        out_at: r.try_get("out_at")?,
        odometer_out_km: to_u32(r.try_get("odometer_out_km")?),
        returned_at: r.try_get("returned_at")?,
    })
}

impl Store {
    /// A person's vehicle and equipment bookings around `now` (from a week
    /// back, for late returns, to a month ahead), and their room bookings of
    /// the day (for check-in), by start.
    pub async fn loans_of(&self, person_id: Uuid, now: DateTime<Utc>) -> Result<Vec<Loan>> {
        let rows = sqlx::query(&format!(
            "{LOAN_SELECT}
             WHERE b.organiser_person_id = $1 AND o.status IN ('accepted', 'released')
               AND ((t.category <> 'room' AND o.period && $2) OR o.period && $3
                    OR (c.id IS NOT NULL AND c.returned_at IS NULL))
             ORDER BY lower(o.period) LIMIT 200"
        ))
        .bind(person_id)
        .bind(range(now - Duration::days(7), now + Duration::days(31)))
        .bind(range(now - Duration::hours(12), now + Duration::hours(12)))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(loan_from_row).collect()
    }

    /// One occurrence as a loan.
    pub async fn loan(&self, occurrence_id: Uuid) -> Result<Option<Loan>> {
        let row = sqlx::query(&format!("{LOAN_SELECT} WHERE o.id = $1"))
            .bind(occurrence_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(loan_from_row).transpose()
    }

    /// Records the organiser's check-in; allowed from 30 minutes before the
    /// start until the end. Returns false when the occurrence is not open
    /// for check-in (released, over, not yet).
    pub async fn check_in(&self, occurrence_id: Uuid, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE occurrences SET checked_in_at = coalesce(checked_in_at, $2)
             WHERE id = $1 AND status = 'accepted' AND lower(period) - interval '30 minutes' <= $2 AND upper(period) > $2",
        )
        .bind(occurrence_id)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Check-out (pickup): records the time and the odometer; counts as the
    /// check-in. Returns the checkout's id.
    pub async fn check_out(
        &self,
        occurrence_id: Uuid,
        by: Option<Uuid>,
        odometer_km: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<Uuid> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "SELECT o.resource_id, o.status, upper(o.period) AS e, lower(o.period) AS s FROM occurrences o
             WHERE o.id = $1 FOR UPDATE",
        )
        .bind(occurrence_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("occurrence {occurrence_id}")))?;
        let status: String = row.try_get("status")?;
        let end: DateTime<Utc> = row.try_get("e")?;
        let start: DateTime<Utc> = row.try_get("s")?;
        if status != "accepted" || now >= end || now < start - Duration::hours(2) {
            return Err(StoreError::Invalid("not open for pickup".into()));
        }
        let resource_id: Uuid = row.try_get("resource_id")?;
        // A policy may want the trip's destination and distance given
        // before a vehicle leaves.
        let needs_trip: bool = sqlx::query_scalar(
            "SELECT t.category = 'vehicle' AND NOT EXISTS (
                 SELECT 1 FROM occurrences o JOIN trip_details d ON d.booking_id = o.booking_id
                 WHERE o.id = $1 AND d.destination IS NOT NULL AND d.declared_distance_km IS NOT NULL)
             FROM resources r JOIN resource_types t ON t.id = r.resource_type_id WHERE r.id = $2",
        )
        .bind(occurrence_id)
        .bind(resource_id)
        .fetch_one(&mut *tx)
        .await?;
        if needs_trip && self.effective_policy_of(resource_id).await?.require_trip_details.value {
            return Err(StoreError::Invalid("trip_details_required".into()));
        }
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO checkouts (occurrence_id, resource_id, out_at, out_by, odometer_out_km)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(occurrence_id)
        .bind(resource_id)
        .bind(now)
        .bind(by)
        .bind(to_i32(odometer_km))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Duplicate(_) => StoreError::Invalid("already picked up".into()),
            other => other,
        })?;
        sqlx::query("UPDATE occurrences SET checked_in_at = coalesce(checked_in_at, $2) WHERE id = $1")
            .bind(occurrence_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Return: records the report and its photos, updates the vehicle's
    /// odometer, and frees the rest of the slot when returned early.
    pub async fn return_item(
        &self,
        occurrence_id: Uuid,
        by: Option<Uuid>,
        report: &ReturnReport,
        photos: &[Photo],
        now: DateTime<Utc>,
    ) -> Result<Uuid> {
        if photos.len() > MAX_PHOTOS {
            return Err(StoreError::Invalid("photo: too_many".into()));
        }
        for p in photos {
            p.check().map_err(|e| StoreError::Invalid(format!("photo: {e}")))?;
        }
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "SELECT c.id, c.odometer_out_km, c.resource_id, c.returned_at FROM checkouts c
             WHERE c.occurrence_id = $1 FOR UPDATE",
        )
        .bind(occurrence_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::Invalid("not picked up".into()))?;
        let checkout_id: Uuid = row.try_get("id")?;
        let resource_id: Uuid = row.try_get("resource_id")?;
        let returned: Option<DateTime<Utc>> = row.try_get("returned_at")?;
        if returned.is_some() {
            return Err(StoreError::Invalid("already returned".into()));
        }
        let out_km = to_u32(row.try_get("odometer_out_km")?);
        if let (Some(o), Some(i)) = (out_km, report.odometer_km)
            && i < o
        {
            return Err(StoreError::Invalid("odometer_below_pickup".into()));
        }
        let text = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        sqlx::query(
            "UPDATE checkouts SET returned_at = $2, returned_by = $3, odometer_in_km = $4, energy_level_pct = $5,
                    cleanliness = $6, condition_notes = $7, damage = $8
             WHERE id = $1",
        )
        .bind(checkout_id)
        .bind(now)
        .bind(by)
        .bind(to_i32(report.odometer_km))
        .bind(to_i32(report.energy_level_pct))
        .bind(report.cleanliness.map(Cleanliness::as_str))
        .bind(text(&report.condition_notes))
        .bind(text(&report.damage))
        .execute(&mut *tx)
        .await?;
        if let Some(km) = report.odometer_km {
            sqlx::query(
                "UPDATE vehicles SET odometer_km = greatest(coalesce(odometer_km, 0), $2) WHERE resource_id = $1",
            )
            .bind(resource_id)
            .bind(to_i32(Some(km)))
            .execute(&mut *tx)
            .await?;
        }
        for p in photos {
            sqlx::query(
                "INSERT INTO damage_photos (checkout_id, content_type, bytes, uploaded_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(checkout_id)
            .bind(&p.content_type)
            .bind(&p.bytes)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        // Returned early: the slot is cut at the return (the buffer after it
        // is kept), so the next booker can have the vehicle at once.
        sqlx::query(
            "UPDATE occurrences
             SET period = tstzrange(lower(period), $2, '[)'),
                 blocked = tstzrange(lower(blocked), $2 + (upper(blocked) - upper(period)), '[)')
             WHERE id = $1 AND upper(period) > $2 AND lower(period) < $2",
        )
        .bind(occurrence_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(checkout_id)
    }

    /// A damage photo: its type and bytes.
    pub async fn damage_photo(&self, checkout_id: Uuid) -> Result<Option<Photo>> {
        let row = sqlx::query(
            "SELECT content_type, bytes FROM damage_photos WHERE checkout_id = $1 ORDER BY uploaded_at DESC LIMIT 1",
        )
        .bind(checkout_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(Photo {
                content_type: r.try_get("content_type")?,
                bytes: r.try_get("bytes")?,
            })
        })
        .transpose()
    }

    /// One damage photo by its id, with who may see it: the resource it
    /// shows and the organiser of the booking it was taken on.
    pub async fn damage_photo_by_id(&self, photo_id: Uuid) -> Result<Option<StoredPhoto>> {
        let row = sqlx::query(
            "SELECT p.content_type, p.bytes, c.resource_id, b.organiser_person_id
             FROM damage_photos p JOIN checkouts c ON c.id = p.checkout_id
             JOIN occurrences o ON o.id = c.occurrence_id JOIN bookings b ON b.id = o.booking_id
             WHERE p.id = $1",
        )
        .bind(photo_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(StoredPhoto {
                photo: Photo {
                    content_type: r.try_get("content_type")?,
                    bytes: r.try_get("bytes")?,
                },
                resource_id: r.try_get("resource_id")?,
                organiser_person_id: r.try_get("organiser_person_id")?,
            })
        })
        .transpose()
    }

    /// The ids of the photos taken at one return, in upload order.
    pub async fn damage_photo_ids(&self, checkout_id: Uuid) -> Result<Vec<Uuid>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM damage_photos WHERE checkout_id = $1 ORDER BY uploaded_at, id")
                .bind(checkout_id)
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// The damage history of one vehicle or item, latest first: every
    /// return that reported damage, with the ids of its photos.
    pub async fn damage_of(&self, resource_id: Uuid, limit: i64) -> Result<Vec<DamageEntry>> {
        let rows = sqlx::query(
            "SELECT c.id, c.returned_at, c.damage, c.condition_notes,
                    coalesce(b.organiser_name, b.organiser_address) AS who,
                    coalesce((SELECT array_agg(p.id ORDER BY p.uploaded_at, p.id) FROM damage_photos p
                              WHERE p.checkout_id = c.id), '{}') AS photos
             FROM checkouts c JOIN occurrences o ON o.id = c.occurrence_id JOIN bookings b ON b.id = o.booking_id
             WHERE c.resource_id = $1 AND c.returned_at IS NOT NULL
               AND (c.damage IS NOT NULL OR EXISTS (SELECT 1 FROM damage_photos p WHERE p.checkout_id = c.id))
             ORDER BY c.returned_at DESC LIMIT $2",
        )
        .bind(resource_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(DamageEntry {
                    checkout_id: r.try_get("id")?,
                    returned_at: r.try_get("returned_at")?,
                    damage: r.try_get("damage")?,
                    condition_notes: r.try_get("condition_notes")?,
                    who: r.try_get("who")?,
                    photo_ids: r.try_get("photos")?,
                })
            })
            .collect()
    }

    /// The alerts not dismissed, latest first.
    pub async fn open_alerts(&self, limit: i64) -> Result<Vec<Alert>> {
        let rows = sqlx::query(
            "SELECT a.id, a.kind, a.recipient, a.recipient_address, r.name, a.body_fr, a.body_en, a.created_at
             FROM vehicle_alerts a JOIN resources r ON r.id = a.resource_id
             WHERE a.dismissed_at IS NULL ORDER BY a.created_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Alert {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    recipient: r.try_get("recipient")?,
                    recipient_address: r.try_get("recipient_address")?,
                    resource_name: r.try_get("name")?,
                    body_fr: r.try_get("body_fr")?,
                    body_en: r.try_get("body_en")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Marks an alert as seen.
    pub async fn dismiss_alert(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query("UPDATE vehicle_alerts SET dismissed_at = $2 WHERE id = $1 AND dismissed_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The periodic job: releases occurrences whose check-in deadline passed
    /// without one, reports repeated no-shows of a series to the manager, and
    /// alerts the manager and the next booker of overdue returns.
    pub async fn sweep_vehicles(&self, now: DateTime<Utc>) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        // Candidates: started within the last day, not checked in. The
        // policy of each resource says whether a check-in is asked for.
        let rows = sqlx::query(
            "SELECT o.id, o.resource_id, lower(o.period) AS s FROM occurrences o
             WHERE o.status = 'accepted' AND o.checked_in_at IS NULL
               AND lower(o.period) <= $1 AND lower(o.period) > $1 - interval '1 day'
               AND NOT EXISTS (SELECT 1 FROM checkouts c WHERE c.occurrence_id = o.id)
             ORDER BY lower(o.period) LIMIT 500",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        let mut policies = std::collections::HashMap::new();
        for r in rows {
            let id: Uuid = r.try_get("id")?;
            let resource: Uuid = r.try_get("resource_id")?;
            let start: DateTime<Utc> = r.try_get("s")?;
            let minutes = match policies.get(&resource) {
                Some(m) => *m,
                None => {
                    let m = self.effective_policy_of(resource).await?.check_in_minutes.value;
                    policies.insert(resource, m);
                    m
                }
            };
            if check_in_missed(start, false, minutes, now) && self.release_occurrence(id, minutes, now).await? {
                report.released.push(id);
            }
        }
        report.no_show_reports = self.report_repeated_no_shows(now).await?;
        report.overdue_alerts = self.alert_overdue_returns(now).await?;
        Ok(report)
    }

    /// Releases one occurrence for want of a check-in; false when someone
    /// checked in (or it changed) meanwhile.
    async fn release_occurrence(&self, occurrence_id: Uuid, minutes: u32, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "UPDATE occurrences o SET status = 'released', released_at = $2
             FROM bookings b
             WHERE o.id = $1 AND b.id = o.booking_id AND o.status = 'accepted' AND o.checked_in_at IS NULL
             RETURNING o.booking_id, o.resource_id, o.original_start, lower(o.period) AS s, upper(o.period) AS e,
                       b.resource_id AS mailbox_resource_id, b.uid, b.sequence, b.organiser_address,
                       b.exchange_item_id, b.recurrence IS NOT NULL AS is_series,
                       (SELECT preferred_language FROM people p WHERE p.id = b.organiser_person_id) AS lang",
        )
        .bind(occurrence_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let booking_id: Uuid = row.try_get("booking_id")?;
        let resource_id: Uuid = row.try_get("resource_id")?;
        let mailbox_resource: Uuid = row.try_get("mailbox_resource_id")?;
        let start: DateTime<Utc> = row.try_get("s")?;
        let original_start: DateTime<Utc> = row.try_get("original_start")?;
        let uid: String = row.try_get("uid")?;
        let sequence: i32 = row.try_get("sequence")?;
        let lang: Option<String> = row.try_get("lang")?;
        let when_fr = crate::domain::reason::format_instant(Lang::Fr, chrono_tz::Europe::Paris, start);
        let when_en = crate::domain::reason::format_instant(Lang::En, chrono_tz::Europe::Paris, start);
        let fr = format!(
            "Votre réservation du {when_fr} est libérée : personne ne l'a confirmée sur place dans les {minutes} minutes suivant le début."
        );
        let en =
            format!("Your booking of {when_en} is released: nobody checked in within {minutes} minutes of its start.");
        let reasons = json!([{ "code": "no_check_in", "minutes": minutes, "fr": fr, "en": en }]);
        sqlx::query(
            "INSERT INTO decisions (booking_id, resource_id, uid, sequence, decided_at, outcome, reasons, inputs, decided_by)
             VALUES ($1, $2, $3, $4, $5, 'release', $6, $7, 'system')",
        )
        .bind(booking_id)
        .bind(mailbox_resource)
        .bind(&uid)
        .bind(sequence)
        .bind(now)
        .bind(&reasons)
        .bind(json!({ "occurrence": occurrence_id, "original_start": original_start, "check_in_minutes": minutes }))
        .execute(&mut *tx)
        .await?;
        let body = if lang.as_deref() == Some("en") { &en } else { &fr };
        // The decline of this one occurrence in Exchange, sent by the outbox
        // worker as the resource's mailbox.
        sqlx::query(
            "INSERT INTO outbox (resource_id, booking_id, kind, idempotency_key, payload, next_attempt_at, created_at)
             VALUES ($1, $2, 'decline', $3, $4, $5, $5)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(mailbox_resource)
        .bind(booking_id)
        .bind(format!("release:{occurrence_id}"))
        .bind(json!({
            "release_occurrence": true,
            // Where the outbox worker finds the occurrence in the resource's
            // calendar (the request itself is long gone from the Inbox).
            "calendar_uid": uid,
            "start": start,
            "end": row.try_get::<DateTime<Utc>, _>("e")?,
            "uid": uid,
            "original_start": original_start,
            "calendar_item_id": row.try_get::<Option<String>, _>("exchange_item_id")?,
            "body": body,
            "language": if lang.as_deref() == Some("en") { "en" } else { "fr" },
        }))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        insert_alert(
            &mut tx,
            NewAlert {
                kind: "released_no_check_in",
                resource_id,
                booking_id,
                occurrence_id: Some(occurrence_id),
                recipient: "organiser",
                recipient_address: Some(row.try_get("organiser_address")?),
                fr: &fr,
                en: &en,
            },
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Series with repeated no-shows, reported once per series to the manager.
    async fn report_repeated_no_shows(&self, now: DateTime<Utc>) -> Result<usize> {
        let rows = sqlx::query(
            "SELECT b.id, b.resource_id, coalesce(b.organiser_name, b.organiser_address) AS who, b.subject,
                    count(*) AS n
             FROM occurrences o JOIN bookings b ON b.id = o.booking_id
             WHERE o.status = 'released' AND o.checked_in_at IS NULL AND b.recurrence IS NOT NULL
             GROUP BY b.id HAVING count(*) >= $1",
        )
        .bind(REPEATED_NO_SHOWS)
        .fetch_all(self.pool())
        .await?;
        let mut n = 0;
        for r in rows {
            let who: String = r.try_get("who")?;
            let subject: Option<String> = r.try_get("subject")?;
            let count: i64 = r.try_get("n")?;
            let subject = subject.unwrap_or_default();
            let fr = format!(
                "Absences répétées : {count} occurrences de la série « {subject} » de {who} ont été libérées faute de présence."
            );
            let en = format!(
                "Repeated no-shows: {count} occurrences of the series \"{subject}\" by {who} were released for want of a check-in."
            );
            let resource_id: Uuid = r.try_get("resource_id")?;
            let booking_id: Uuid = r.try_get("id")?;
            let mut tx = self.pool().begin().await?;
            let inserted = insert_alert(
                &mut tx,
                NewAlert {
                    kind: "repeated_no_show",
                    resource_id,
                    booking_id,
                    occurrence_id: None,
                    recipient: "manager",
                    recipient_address: None,
                    fr: &fr,
                    en: &en,
                },
                now,
            )
            .await?;
            if inserted {
                let to = manager_contacts(&mut tx, resource_id).await?;
                let resource: String = sqlx::query_scalar("SELECT name FROM resources WHERE id = $1")
                    .bind(resource_id)
                    .fetch_one(&mut *tx)
                    .await?;
                let vars = |_: Lang| {
                    BTreeMap::from([
                        ("resource", resource.clone()),
                        ("organiser", who.clone()),
                        ("subject", subject.clone()),
                        ("count", count.to_string()),
                    ])
                };
                let key = format!("alert:repeated_no_show:{booking_id}:manager");
                let alert = MailAlert {
                    mailbox: resource_id,
                    booking: booking_id,
                    key: &key,
                    event: Event::RepeatedNoShow,
                };
                mail_alert(&mut tx, &alert, &to, vars, now).await?;
            }
            tx.commit().await?;
            n += usize::from(inserted);
        }
        Ok(n)
    }

    /// Alerts the manager and the next booker of each item not returned
    /// past its end and the return grace of its policy.
    async fn alert_overdue_returns(&self, now: DateTime<Utc>) -> Result<usize> {
        let rows = sqlx::query(
            "SELECT c.occurrence_id, o.booking_id, c.resource_id, r.name, upper(o.period) AS e,
                    b.resource_id AS mailbox_id, b.subject,
                    coalesce(b.organiser_name, b.organiser_address) AS who,
                    (SELECT nb.organiser_address FROM occurrences no JOIN bookings nb ON nb.id = no.booking_id
                     WHERE no.resource_id = c.resource_id AND no.status IN ('accepted', 'held')
                       AND lower(no.period) >= upper(o.period) AND no.id <> o.id
                     ORDER BY lower(no.period) LIMIT 1) AS next_booker
             FROM checkouts c JOIN occurrences o ON o.id = c.occurrence_id JOIN bookings b ON b.id = o.booking_id
             JOIN resources r ON r.id = c.resource_id
             WHERE c.returned_at IS NULL AND upper(o.period) < $1",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        let mut n = 0;
        for r in rows {
            let resource: Uuid = r.try_get("resource_id")?;
            let end: DateTime<Utc> = r.try_get("e")?;
            let grace = self.effective_policy_of(resource).await?.return_grace_minutes.value;
            if !overdue(end, false, grace, now) {
                continue;
            }
            let name: String = r.try_get("name")?;
            let who: String = r.try_get("who")?;
            let occurrence: Uuid = r.try_get("occurrence_id")?;
            let booking: Uuid = r.try_get("booking_id")?;
            let next: Option<String> = r.try_get("next_booker")?;
            let end_fr = crate::domain::reason::format_instant(Lang::Fr, chrono_tz::Europe::Paris, end);
            let end_en = crate::domain::reason::format_instant(Lang::En, chrono_tz::Europe::Paris, end);
            let fr = format!("Retour en retard : {name}, emprunté par {who}, devait être rendu le {end_fr}.");
            let en = format!("Overdue return: {name}, taken by {who}, was due back on {end_en}.");
            let mailbox: Uuid = r.try_get("mailbox_id")?;
            let subject: Option<String> = r.try_get("subject")?;
            let mut tx = self.pool().begin().await?;
            let mut recipients = vec![("manager", None)];
            if let Some(a) = next {
                recipients.push(("next_booker", Some(a)));
            }
            for (recipient, address) in recipients {
                let to = match &address {
                    Some(a) => vec![(a.clone(), language_of_address(&mut tx, a).await?)],
                    None => manager_contacts(&mut tx, resource).await?,
                };
                let inserted = insert_alert(
                    &mut tx,
                    NewAlert {
                        kind: "overdue_return",
                        resource_id: resource,
                        booking_id: booking,
                        occurrence_id: Some(occurrence),
                        recipient,
                        recipient_address: address,
                        fr: &fr,
                        en: &en,
                    },
                    now,
                )
                .await?;
                if inserted {
                    let vars = |lang: Lang| {
                        BTreeMap::from([
                            ("resource", name.clone()),
                            ("organiser", who.clone()),
                            ("subject", subject.clone().unwrap_or_default()),
                            (
                                "when",
                                crate::domain::reason::format_instant(lang, chrono_tz::Europe::Paris, end),
                            ),
                        ])
                    };
                    let key = format!("alert:overdue_return:{occurrence}:{recipient}");
                    let alert = MailAlert {
                        mailbox,
                        booking,
                        key: &key,
                        event: Event::OverdueReturn,
                    };
                    mail_alert(&mut tx, &alert, &to, vars, now).await?;
                }
                n += usize::from(inserted);
            }
            tx.commit().await?;
        }
        Ok(n)
    }
}

/// An alert to send by e-mail from a resource mailbox, once: `key` is the
/// outbox's idempotency key (suffixed with the language).
struct MailAlert<'a> {
    mailbox: Uuid,
    booking: Uuid,
    key: &'a str,
    event: Event,
}

/// Queues the alert's message in the outbox, one per language of the
/// recipients, rendered from the event's template (editable by admins).
async fn mail_alert(
    tx: &mut Transaction<'_, Postgres>,
    alert: &MailAlert<'_>,
    to: &[(String, Lang)],
    vars: impl Fn(Lang) -> BTreeMap<&'static str, String>,
    now: DateTime<Utc>,
) -> Result<()> {
    for lang in [Lang::Fr, Lang::En] {
        let addresses: Vec<String> = to.iter().filter(|(_, l)| *l == lang).map(|(a, _)| a.clone()).collect();
        if addresses.is_empty() {
            continue;
        }
        let rendered = render_in(tx, alert.event, lang, &vars(lang)).await?;
        let mail = OutgoingMail {
            to: addresses,
            rendered,
            lang,
            voting: false,
            event: alert.event,
        };
        let code = match lang {
            Lang::Fr => "fr",
            Lang::En => "en",
        };
        let key = format!("{}:{code}", alert.key);
        queue_mail(tx, alert.mailbox, Some(alert.booking), &key, &mail, now).await?;
    }
    Ok(())
}

/// The addresses and languages of the people who manage a resource (Manage
/// grants on it, its type, its site or organisation, or everything), active
/// in the directory.
async fn manager_contacts(tx: &mut Transaction<'_, Postgres>, resource_id: Uuid) -> Result<Vec<(String, Lang)>> {
    let rows = sqlx::query(
        "WITH r AS (SELECT r.id, r.site_id, r.resource_type_id, s.organisation_id
                    FROM resources r JOIN sites s ON s.id = r.site_id WHERE r.id = $1),
              m AS (SELECT DISTINCT coalesce(g.subject_person_id, pg.person_id) AS person_id
                    FROM grants g LEFT JOIN person_groups pg ON pg.group_id = g.subject_group_id, r
                    WHERE g.role = 'manage' AND coalesce(g.subject_person_id, pg.person_id) IS NOT NULL
                      AND (g.scope_kind = 'global' OR g.organisation_id = r.organisation_id
                           OR (g.scope_kind = 'site' AND g.site_id = r.site_id)
                           OR (g.scope_kind = 'site_type' AND g.site_id = r.site_id
                               AND g.resource_type_id = r.resource_type_id)
                           OR (g.scope_kind = 'resource_type' AND g.resource_type_id = r.resource_type_id)
                           OR g.resource_id = r.id))
         SELECT coalesce(p.preferred_language, 'fr') AS lang,
                (SELECT a.address FROM person_addresses a WHERE a.person_id = p.id
                 ORDER BY a.is_primary DESC, a.address LIMIT 1) AS smtp
         FROM people p JOIN m ON m.person_id = p.id
         WHERE p.deleted_at IS NULL AND NOT p.disabled
         ORDER BY smtp",
    )
    .bind(resource_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let smtp: Option<String> = r.try_get("smtp")?;
        let lang: String = r.try_get("lang")?;
        if let Some(smtp) = smtp {
            out.push((smtp, if lang == "en" { Lang::En } else { Lang::Fr }));
        }
    }
    Ok(out)
}

/// The preferred language of whoever has this address, French by default.
async fn language_of_address(tx: &mut Transaction<'_, Postgres>, address: &str) -> Result<Lang> {
    let lang: Option<String> = sqlx::query_scalar(
        "SELECT p.preferred_language FROM person_addresses a JOIN people p ON p.id = a.person_id
         WHERE a.address = lower($1) LIMIT 1",
    )
    .bind(address)
    .fetch_optional(&mut **tx)
    .await?
    .flatten();
    Ok(if lang.as_deref() == Some("en") {
        Lang::En
    } else {
        Lang::Fr
    })
}

struct NewAlert<'a> {
    kind: &'a str,
    resource_id: Uuid,
    booking_id: Uuid,
    occurrence_id: Option<Uuid>,
    recipient: &'a str,
    recipient_address: Option<String>,
    fr: &'a str,
    en: &'a str,
}

/// Records an alert once; false when it was already there.
async fn insert_alert(tx: &mut Transaction<'_, Postgres>, a: NewAlert<'_>, now: DateTime<Utc>) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO vehicle_alerts (kind, resource_id, booking_id, occurrence_id, recipient, recipient_address,
                                     body_fr, body_en, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (kind, (coalesce(occurrence_id, booking_id)), recipient) DO NOTHING",
    )
    .bind(a.kind)
    .bind(a.resource_id)
    .bind(a.booking_id)
    .bind(a.occurrence_id)
    .bind(a.recipient)
    .bind(a.recipient_address)
    .bind(a.fr)
    .bind(a.en)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_must_be_the_image_it_claims_to_be() {
        let jpeg = Photo {
            content_type: "image/jpeg".into(),
            bytes: vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0],
        };
        assert_eq!(jpeg.check(), Ok(()));
        let lying = Photo {
            content_type: "image/png".into(),
            bytes: vec![0xFF, 0xD8, 0xFF, 0xE0],
        };
        assert_eq!(lying.check(), Err("bad_type"));
        let pdf = Photo {
            content_type: "application/pdf".into(),
            bytes: b"%PDF-1.4".to_vec(),
        };
        assert_eq!(pdf.check(), Err("bad_type"));
        let huge = Photo {
            content_type: "image/jpeg".into(),
            bytes: [vec![0xFF, 0xD8, 0xFF], vec![0; MAX_PHOTO_BYTES]].concat(),
        };
        assert_eq!(huge.check(), Err("too_large"));
    }
}
