//! What the web site reads and writes beyond the other aggregates: sessions
//! (only a hash of the session id is kept), the read models of its pages
//! (a person's bookings, a booking's decisions, the catalogue with names, the
//! audit log) and the manager's approval of a held booking.

use super::bookings::range;
use super::{Result, Store, StoreError};
use crate::domain::Scope;
use chrono::{DateTime, Duration, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::postgres::types::PgRange;
use std::collections::HashMap;
use std::ops::Bound;
use uuid::Uuid;

/// How long a session lives at most, whatever its activity.
pub const SESSION_MAX_AGE: Duration = Duration::hours(12);
/// How long a session lives without a request.
pub const SESSION_IDLE: Duration = Duration::hours(2);

/// A session as the web layer needs it: who, and the CSRF token of its forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub person_id: Uuid,
    pub display_name: String,
    pub csrf_token: String,
    pub language: String,
    pub expires_at: DateTime<Utc>,
}

/// A new session: the raw id goes in the cookie and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// One line of "Mes réservations".
#[derive(Debug, Clone, PartialEq)]
pub struct BookingSummary {
    pub id: Uuid,
    pub resource_id: Uuid,
    pub resource_name: String,
    pub subject: Option<String>,
    pub status: String,
    pub source: String,
    pub first_start: Option<DateTime<Utc>>,
    pub first_end: Option<DateTime<Utc>>,
    pub occurrences: i64,
    pub time_zone: String,
    /// The reasons of the latest decision, as stored (`[{code, fr, en, ...}]`).
    pub last_reasons: serde_json::Value,
    pub last_outcome: Option<String>,
}

/// A booking with what the explainer shows about it.
#[derive(Debug, Clone, PartialEq)]
pub struct BookingDetail {
    pub id: Uuid,
    pub uid: String,
    pub resource_id: Uuid,
    pub resource_name: String,
    pub organisation_id: Uuid,
    pub site_id: Uuid,
    pub resource_type_id: Uuid,
    pub organiser_person_id: Option<Uuid>,
    pub organiser_address: String,
    pub organiser_name: Option<String>,
    pub subject: Option<String>,
    pub attendee_count: Option<i32>,
    pub status: String,
    pub source: String,
    pub sequence: i32,
    pub time_zone: String,
    pub requested_at: DateTime<Utc>,
}

/// One occurrence of a booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccurrenceRow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub status: String,
}

/// One logged decision.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRow {
    pub id: i64,
    pub sequence: i32,
    pub decided_at: DateTime<Utc>,
    pub outcome: String,
    pub reasons: serde_json::Value,
    pub inputs: serde_json::Value,
    pub explanation: serde_json::Value,
    pub decided_by: String,
}

/// A resource with the names of its site, organisation and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRow {
    pub id: Uuid,
    pub name: String,
    pub mailbox_smtp: String,
    pub capacity: Option<i32>,
    pub active: bool,
    pub site_id: Uuid,
    pub site_name: String,
    pub organisation_id: Uuid,
    pub organisation_name: String,
    pub resource_type_id: Uuid,
    pub type_name_fr: String,
    pub type_name_en: String,
    pub category: String,
    pub time_zone: String,
}

/// A site with its organisation's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRow {
    pub id: Uuid,
    pub name: String,
    pub organisation_id: Uuid,
    pub organisation_name: String,
}

/// A resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRow {
    pub id: Uuid,
    pub slug: String,
    pub category: String,
    pub name_fr: String,
    pub name_en: String,
}

/// Filters of the audit page; empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub object_kind: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub object_kind: String,
    pub object_id: Option<String>,
    pub details: serde_json::Value,
}

/// A held booking waiting for a manager.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldBooking {
    pub id: Uuid,
    pub resource_id: Uuid,
    pub resource_name: String,
    pub organiser: String,
    pub subject: Option<String>,
    pub first_start: Option<DateTime<Utc>>,
    pub first_end: Option<DateTime<Utc>>,
    pub time_zone: String,
    pub last_reasons: serde_json::Value,
}

/// A manager's answer to a held booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagerVerdict {
    Approve,
    Refuse,
}

/// The sync state of one resource mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxSyncRow {
    pub resource_id: Uuid,
    pub resource_name: String,
    pub mailbox_smtp: String,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_event_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub lease_owner: Option<String>,
    /// An admin asked for a resync the daemon has not done yet.
    pub resync_requested_at: Option<DateTime<Utc>>,
    /// Differences with the calendar that reconciliation still sees.
    pub open_drift: i64,
}

/// One slot held on a resource, as a manager's calendar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarRow {
    pub resource_id: Uuid,
    pub booking_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `accepted` or `held`.
    pub status: String,
    pub subject: Option<String>,
    pub organiser: Option<String>,
}

/// A difference between a resource calendar and the store, still open.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftRow {
    pub resource_id: Uuid,
    pub resource_name: String,
    /// `unknown_item`, `missing_item` or `time_mismatch`.
    pub kind: String,
    pub uid: Option<String>,
    pub details: serde_json::Value,
    pub found_at: DateTime<Utc>,
}

/// A blackout on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlackoutRow {
    pub id: Uuid,
    pub resource_id: Uuid,
    pub resource_name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub reason: String,
}

/// The SHA-256 of a session id: what the table keeps.
pub fn session_hash(id: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(id.as_bytes()).to_vec()
}

/// 32 random bytes, URL-safe base64 without padding.
fn random_token() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn bounds(r: &PgRange<DateTime<Utc>>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    match (r.start, r.end) {
        (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) => Some((s, e)),
        _ => None,
    }
}

const RESOURCE_COLUMNS: &str = "r.id, r.name, r.mailbox_smtp, r.capacity, r.active, r.site_id, s.name AS site_name, \
     s.organisation_id, o.name AS organisation_name, r.resource_type_id, t.name_fr, t.name_en, t.category, s.time_zone";
const RESOURCE_FROM: &str = "resources r JOIN sites s ON s.id = r.site_id JOIN organisations o ON o.id = s.organisation_id \
     JOIN resource_types t ON t.id = r.resource_type_id";

fn resource_from_row(r: &PgRow) -> Result<ResourceRow> {
    Ok(ResourceRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        mailbox_smtp: r.try_get("mailbox_smtp")?,
        capacity: r.try_get("capacity")?,
        active: r.try_get("active")?,
        site_id: r.try_get("site_id")?,
        site_name: r.try_get("site_name")?,
        organisation_id: r.try_get("organisation_id")?,
        organisation_name: r.try_get("organisation_name")?,
        resource_type_id: r.try_get("resource_type_id")?,
        type_name_fr: r.try_get("name_fr")?,
        type_name_en: r.try_get("name_en")?,
        category: r.try_get("category")?,
        time_zone: r.try_get("time_zone")?,
    })
}

/// The stored (kind, ids) of a policy scope.
fn scope_columns(scope: Scope) -> (&'static str, Option<Uuid>, Option<Uuid>, Option<Uuid>, Option<Uuid>) {
    match scope {
        Scope::Global => ("global", None, None, None, None),
        Scope::Organisation(id) => ("organisation", Some(id), None, None, None),
        Scope::Site(id) => ("site", None, Some(id), None, None),
        Scope::ResourceType(id) => ("resource_type", None, None, Some(id), None),
        Scope::Resource(id) => ("resource", None, None, None, Some(id)),
    }
}

impl Store {
    /// Opens a session for a person who has just proved who they are.
    pub async fn create_session(&self, person_id: Uuid, language: &str, now: DateTime<Utc>) -> Result<NewSession> {
        let id = random_token();
        let csrf_token = random_token();
        let expires_at = now + SESSION_IDLE.min(SESSION_MAX_AGE);
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, person_id, csrf_token, language, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $5, $6)",
        )
        .bind(session_hash(&id))
        .bind(person_id)
        .bind(&csrf_token)
        .bind(if language == "en" { "en" } else { "fr" })
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(NewSession {
            id,
            csrf_token,
            expires_at,
        })
    }

    /// The live session of a cookie value, its expiry pushed forward (within
    /// the maximum age). A session of a person since disabled or deleted in
    /// the directory is no longer valid.
    pub async fn touch_session(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
        let row = sqlx::query(
            "UPDATE web_sessions w SET last_seen_at = $2,
                    expires_at = least(w.created_at + make_interval(secs => $3), $2 + make_interval(secs => $4))
             FROM people p
             WHERE w.id_hash = $1 AND w.expires_at > $2 AND p.id = w.person_id
               AND NOT p.disabled AND p.deleted_at IS NULL
             RETURNING w.person_id, p.display_name, w.csrf_token, w.language, w.expires_at",
        )
        .bind(session_hash(id))
        .bind(now)
        .bind(SESSION_MAX_AGE.num_seconds() as f64)
        .bind(SESSION_IDLE.num_seconds() as f64)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(Session {
                person_id: r.try_get("person_id")?,
                display_name: r.try_get("display_name")?,
                csrf_token: r.try_get("csrf_token")?,
                language: r.try_get("language")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends a session (logout).
    pub async fn delete_session(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(session_hash(id))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Remembers the language a session chose.
    pub async fn set_session_language(&self, id: &str, language: &str) -> Result<()> {
        sqlx::query("UPDATE web_sessions SET language = $2 WHERE id_hash = $1")
            .bind(session_hash(id))
            .bind(if language == "en" { "en" } else { "fr" })
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes expired sessions; returns how many.
    pub async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// The bookings a person organises, the latest first.
    pub async fn bookings_of_organiser(&self, person_id: Uuid, limit: i64) -> Result<Vec<BookingSummary>> {
        let rows = sqlx::query(
            "SELECT b.id, b.resource_id, r.name AS resource_name, b.subject, b.status, b.source, b.time_zone,
                    (SELECT min(lower(o.period)) FROM occurrences o WHERE o.booking_id = b.id) AS first_start,
                    (SELECT upper(o.period) FROM occurrences o WHERE o.booking_id = b.id
                      ORDER BY lower(o.period) LIMIT 1) AS first_end,
                    (SELECT count(*) FROM occurrences o WHERE o.booking_id = b.id) AS occurrences,
                    d.reasons AS last_reasons, d.outcome AS last_outcome
             FROM bookings b JOIN resources r ON r.id = b.resource_id
             LEFT JOIN LATERAL (SELECT reasons, outcome FROM decisions WHERE booking_id = b.id
                                ORDER BY id DESC LIMIT 1) d ON true
             WHERE b.organiser_person_id = $1
             ORDER BY b.requested_at DESC, b.id LIMIT $2",
        )
        .bind(person_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(BookingSummary {
                    id: r.try_get("id")?,
                    resource_id: r.try_get("resource_id")?,
                    resource_name: r.try_get("resource_name")?,
                    subject: r.try_get("subject")?,
                    status: r.try_get("status")?,
                    source: r.try_get("source")?,
                    first_start: r.try_get("first_start")?,
                    first_end: r.try_get("first_end")?,
                    occurrences: r.try_get("occurrences")?,
                    time_zone: r.try_get("time_zone")?,
                    last_reasons: r
                        .try_get::<Option<serde_json::Value>, _>("last_reasons")?
                        .unwrap_or(serde_json::Value::Array(Vec::new())),
                    last_outcome: r.try_get("last_outcome")?,
                })
            })
            .collect()
    }

    /// A booking with its resource's scopes, for the explainer.
    pub async fn booking_detail(&self, id: Uuid) -> Result<Option<BookingDetail>> {
        let row = sqlx::query(
            "SELECT b.id, b.uid, b.resource_id, r.name AS resource_name, s.organisation_id, r.site_id,
                    r.resource_type_id, b.organiser_person_id, b.organiser_address, b.organiser_name, b.subject,
                    b.attendee_count, b.status, b.source, b.sequence, b.time_zone, b.requested_at
             FROM bookings b JOIN resources r ON r.id = b.resource_id JOIN sites s ON s.id = r.site_id
             WHERE b.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(BookingDetail {
                id: r.try_get("id")?,
                uid: r.try_get("uid")?,
                resource_id: r.try_get("resource_id")?,
                resource_name: r.try_get("resource_name")?,
                organisation_id: r.try_get("organisation_id")?,
                site_id: r.try_get("site_id")?,
                resource_type_id: r.try_get("resource_type_id")?,
                organiser_person_id: r.try_get("organiser_person_id")?,
                organiser_address: r.try_get("organiser_address")?,
                organiser_name: r.try_get("organiser_name")?,
                subject: r.try_get("subject")?,
                attendee_count: r.try_get("attendee_count")?,
                status: r.try_get("status")?,
                source: r.try_get("source")?,
                sequence: r.try_get("sequence")?,
                time_zone: r.try_get("time_zone")?,
                requested_at: r.try_get("requested_at")?,
            })
        })
        .transpose()
    }

    /// The occurrences of a booking, in time order.
    pub async fn occurrences_of(&self, booking_id: Uuid) -> Result<Vec<OccurrenceRow>> {
        let rows = sqlx::query("SELECT period, status FROM occurrences WHERE booking_id = $1 ORDER BY lower(period)")
            .bind(booking_id)
            .fetch_all(self.pool())
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let period: PgRange<DateTime<Utc>> = r.try_get("period")?;
            if let Some((start, end)) = bounds(&period) {
                out.push(OccurrenceRow {
                    start,
                    end,
                    status: r.try_get("status")?,
                });
            }
        }
        Ok(out)
    }

    /// Every decision logged for a booking, oldest first.
    pub async fn decisions_of(&self, booking_id: Uuid) -> Result<Vec<DecisionRow>> {
        let rows = sqlx::query(
            "SELECT id, sequence, decided_at, outcome, reasons, inputs, explanation, decided_by
             FROM decisions WHERE booking_id = $1 ORDER BY id",
        )
        .bind(booking_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DecisionRow {
                    id: r.try_get("id")?,
                    sequence: r.try_get("sequence")?,
                    decided_at: r.try_get("decided_at")?,
                    outcome: r.try_get("outcome")?,
                    reasons: r.try_get("reasons")?,
                    inputs: r.try_get("inputs")?,
                    explanation: r.try_get("explanation")?,
                    decided_by: r.try_get("decided_by")?,
                })
            })
            .collect()
    }

    /// Every resource with its names, by organisation, site and name.
    pub async fn list_resources(&self) -> Result<Vec<ResourceRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {RESOURCE_COLUMNS} FROM {RESOURCE_FROM} ORDER BY o.name, s.name, r.name"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(resource_from_row).collect()
    }

    /// One resource with its names.
    pub async fn resource_row(&self, id: Uuid) -> Result<Option<ResourceRow>> {
        let row = sqlx::query(&format!(
            "SELECT {RESOURCE_COLUMNS} FROM {RESOURCE_FROM} WHERE r.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(resource_from_row).transpose()
    }

    /// Active resources matching the search filters (each `None` does not filter).
    pub async fn search_resources(
        &self,
        resource_type: Option<Uuid>,
        site: Option<Uuid>,
        min_capacity: Option<i32>,
        equipment: &[String],
    ) -> Result<Vec<ResourceRow>> {
        // Every piece of equipment asked for is a yes on the resource.
        let rows = sqlx::query(&format!(
            "SELECT {RESOURCE_COLUMNS} FROM {RESOURCE_FROM}
             WHERE r.active AND NOT r.is_pool
               AND ($1::uuid IS NULL OR r.resource_type_id = $1)
               AND ($2::uuid IS NULL OR r.site_id = $2)
               AND ($3::int IS NULL OR coalesce(r.capacity, 0) >= $3)
               AND NOT EXISTS (
                   SELECT 1 FROM unnest($4::text[]) AS wanted(key)
                   WHERE NOT EXISTS (SELECT 1 FROM resource_attributes a
                                     WHERE a.resource_id = r.id AND a.key = wanted.key AND a.value_boolean))
             ORDER BY s.name, r.name LIMIT 200"
        ))
        .bind(resource_type)
        .bind(site)
        .bind(min_capacity)
        .bind(equipment)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(resource_from_row).collect()
    }

    /// Every site with its organisation's name.
    pub async fn list_sites(&self) -> Result<Vec<SiteRow>> {
        let rows = sqlx::query(
            "SELECT s.id, s.name, s.organisation_id, o.name AS organisation_name
             FROM sites s JOIN organisations o ON o.id = s.organisation_id ORDER BY o.name, s.name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SiteRow {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    organisation_id: r.try_get("organisation_id")?,
                    organisation_name: r.try_get("organisation_name")?,
                })
            })
            .collect()
    }

    /// Every resource type.
    pub async fn list_resource_types(&self) -> Result<Vec<TypeRow>> {
        let rows =
            sqlx::query("SELECT id, slug, category, name_fr, name_en FROM resource_types ORDER BY category, name_fr")
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| {
                Ok(TypeRow {
                    id: r.try_get("id")?,
                    slug: r.try_get("slug")?,
                    category: r.try_get("category")?,
                    name_fr: r.try_get("name_fr")?,
                    name_en: r.try_get("name_en")?,
                })
            })
            .collect()
    }

    /// The display name of every catalogue object, person and group, by id,
    /// so pages can name the scopes and subjects they show.
    pub async fn object_names(&self) -> Result<HashMap<Uuid, String>> {
        let rows = sqlx::query(
            "SELECT id, name FROM organisations
             UNION ALL SELECT id, name FROM sites
             UNION ALL SELECT id, name_fr FROM resource_types
             UNION ALL SELECT id, name FROM resources
             UNION ALL SELECT id, name FROM groups WHERE deleted_at IS NULL
             UNION ALL SELECT id, display_name FROM people WHERE deleted_at IS NULL",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<Uuid, _>(0)?, r.try_get::<String, _>(1)?)))
            .collect()
    }

    /// The policy set at one scope, as stored (`None` when nothing is set there).
    pub async fn policy_at(&self, scope: Scope) -> Result<Option<serde_json::Value>> {
        let (kind, org, site, rtype, res) = scope_columns(scope);
        let body = sqlx::query_scalar(
            "SELECT body FROM policies WHERE scope_kind = $1 AND organisation_id IS NOT DISTINCT FROM $2
               AND site_id IS NOT DISTINCT FROM $3 AND resource_type_id IS NOT DISTINCT FROM $4
               AND resource_id IS NOT DISTINCT FROM $5",
        )
        .bind(kind)
        .bind(org)
        .bind(site)
        .bind(rtype)
        .bind(res)
        .fetch_optional(self.pool())
        .await?;
        Ok(body)
    }

    /// The latest audit entries matching the filter.
    pub async fn audit_entries(&self, filter: &AuditFilter, limit: i64) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, object_kind, object_id, details FROM audit_log
             WHERE ($1::text IS NULL OR actor ILIKE '%' || $1 || '%')
               AND ($2::text IS NULL OR action = $2)
               AND ($3::text IS NULL OR object_kind = $3)
               AND ($4::timestamptz IS NULL OR at >= $4)
               AND ($5::timestamptz IS NULL OR at < $5)
             ORDER BY at DESC, id DESC LIMIT $6",
        )
        .bind(&filter.actor)
        .bind(&filter.action)
        .bind(&filter.object_kind)
        .bind(filter.from)
        .bind(filter.to)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    object_kind: r.try_get("object_kind")?,
                    object_id: r.try_get("object_id")?,
                    details: r.try_get("details")?,
                })
            })
            .collect()
    }

    /// The distinct actions and object kinds of the audit log, for the filters.
    pub async fn audit_vocabulary(&self) -> Result<(Vec<String>, Vec<String>)> {
        let actions = sqlx::query_scalar("SELECT DISTINCT action FROM audit_log ORDER BY 1")
            .fetch_all(self.pool())
            .await?;
        let kinds = sqlx::query_scalar("SELECT DISTINCT object_kind FROM audit_log ORDER BY 1")
            .fetch_all(self.pool())
            .await?;
        Ok((actions, kinds))
    }

    /// Held bookings on the given resources (all resources when `None`),
    /// the soonest first.
    pub async fn held_bookings(&self, resources: Option<&[Uuid]>) -> Result<Vec<HeldBooking>> {
        let rows = sqlx::query(
            "SELECT b.id, b.resource_id, r.name AS resource_name,
                    coalesce(b.organiser_name, b.organiser_address) AS organiser, b.subject, b.time_zone,
                    (SELECT min(lower(o.period)) FROM occurrences o WHERE o.booking_id = b.id AND o.status = 'held')
                        AS first_start,
                    (SELECT upper(o.period) FROM occurrences o WHERE o.booking_id = b.id AND o.status = 'held'
                      ORDER BY lower(o.period) LIMIT 1) AS first_end,
                    d.reasons AS last_reasons
             FROM bookings b JOIN resources r ON r.id = b.resource_id
             LEFT JOIN LATERAL (SELECT reasons FROM decisions WHERE booking_id = b.id
                                ORDER BY id DESC LIMIT 1) d ON true
             WHERE (b.status = 'held'
                    -- An accepted series with an occurrence moved to a time that needs approval.
                    OR (b.status IN ('accepted', 'partially_accepted')
                        AND EXISTS (SELECT 1 FROM occurrences o WHERE o.booking_id = b.id AND o.status = 'held')))
               AND ($1::uuid[] IS NULL OR b.resource_id = ANY($1))
             ORDER BY first_start NULLS LAST, b.id",
        )
        .bind(resources)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HeldBooking {
                    id: r.try_get("id")?,
                    resource_id: r.try_get("resource_id")?,
                    resource_name: r.try_get("resource_name")?,
                    organiser: r.try_get("organiser")?,
                    subject: r.try_get("subject")?,
                    first_start: r.try_get("first_start")?,
                    first_end: r.try_get("first_end")?,
                    time_zone: r.try_get("time_zone")?,
                    last_reasons: r
                        .try_get::<Option<serde_json::Value>, _>("last_reasons")?
                        .unwrap_or(serde_json::Value::Array(Vec::new())),
                })
            })
            .collect()
    }

    /// A manager approves or refuses a held booking, in one transaction: the
    /// booking and its held occurrences change status, the decision is logged
    /// (with the comment, shown to the organiser), the reply to Exchange is
    /// queued when the request came from there, and the audit records who.
    /// Returns false when the booking is not held (any more).
    pub async fn decide_held_booking(
        &self,
        booking_id: Uuid,
        verdict: ManagerVerdict,
        manager: Uuid,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let Some(row) = sqlx::query(
            "SELECT b.resource_id, b.uid, b.sequence, b.exchange_item_id, b.status,
                    coalesce((SELECT p.preferred_language FROM people p WHERE p.id = b.organiser_person_id), 'fr')
                        AS language,
                    (SELECT o.period FROM occurrences o WHERE o.booking_id = b.id AND o.status = 'held'
                     ORDER BY lower(o.period) LIMIT 1) AS first_held
             FROM bookings b
             WHERE b.id = $1
               AND (b.status = 'held'
                    OR (b.status IN ('accepted', 'partially_accepted')
                        AND EXISTS (SELECT 1 FROM occurrences o WHERE o.booking_id = b.id AND o.status = 'held')))
             FOR UPDATE OF b",
        )
        .bind(booking_id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(false);
        };
        let resource_id: Uuid = row.try_get("resource_id")?;
        let uid: String = row.try_get("uid")?;
        let sequence: i32 = row.try_get("sequence")?;
        let exchange_item_id: Option<String> = row.try_get("exchange_item_id")?;
        let language: String = row.try_get("language")?;
        let first_held: Option<PgRange<DateTime<Utc>>> = row.try_get("first_held")?;
        let (booking_status, occurrence_status, outcome) = match verdict {
            ManagerVerdict::Approve => ("accepted", "accepted", "approve"),
            ManagerVerdict::Refuse => ("declined", "declined", "refuse"),
        };
        // An accepted series waits only for its moved occurrences: the
        // answer is theirs, the rest of the series stays as it is.
        let current: String = row.try_get("status")?;
        let booking_status = if current == "held" {
            booking_status
        } else {
            current.as_str()
        };
        sqlx::query("UPDATE bookings SET status = $2, updated_at = $3 WHERE id = $1")
            .bind(booking_id)
            .bind(booking_status)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE occurrences SET status = $2 WHERE booking_id = $1 AND status = 'held'")
            .bind(booking_id)
            .bind(occurrence_status)
            .execute(&mut *tx)
            .await?;
        let comment = comment.trim();
        let reasons = if comment.is_empty() {
            serde_json::json!([])
        } else {
            serde_json::json!([{ "code": "manager_comment", "fr": comment, "en": comment }])
        };
        let decision_id: i64 = sqlx::query_scalar(
            "INSERT INTO decisions (booking_id, resource_id, uid, sequence, decided_at, outcome, reasons, inputs, decided_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'manager') RETURNING id",
        )
        .bind(booking_id)
        .bind(resource_id)
        .bind(&uid)
        .bind(sequence)
        .bind(now)
        .bind(outcome)
        .bind(&reasons)
        .bind(serde_json::json!({ "manager": manager, "channel": "web" }))
        .fetch_one(&mut *tx)
        .await?;
        // A request that came from Outlook was answered "tentative" when it
        // was held: the final answer goes back through the outbox, in the
        // same transaction, so it is sent exactly once. Exchange removed the
        // request when it was answered, so the answer goes to the meeting in
        // the resource calendar, found by its UID near its first held slot
        // (`calendar_uid`, `start`, `end`).
        if let Some(item_id) = exchange_item_id {
            let (start, end) = first_held
                .as_ref()
                .and_then(bounds)
                .ok_or_else(|| StoreError::Invalid(format!("held booking {booking_id} holds no slot")))?;
            let fr = language != "en";
            let head = match (verdict, fr) {
                (ManagerVerdict::Approve, true) => "Votre demande est approuvée par un gestionnaire.",
                (ManagerVerdict::Approve, false) => "Your request is approved by a manager.",
                (ManagerVerdict::Refuse, true) => "Votre demande est refusée par un gestionnaire.",
                (ManagerVerdict::Refuse, false) => "Your request is refused by a manager.",
            };
            let body = if comment.is_empty() {
                head.to_owned()
            } else {
                format!("{head}\n\n{comment}")
            };
            sqlx::query(
                "INSERT INTO outbox (resource_id, booking_id, kind, idempotency_key, payload, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(resource_id)
            .bind(booking_id)
            .bind(match verdict {
                ManagerVerdict::Approve => "accept",
                ManagerVerdict::Refuse => "decline",
            })
            .bind(format!("manager:{booking_id}:{decision_id}"))
            .bind(serde_json::json!({
                "reference_item_id": item_id,
                "calendar_uid": uid.split('#').next().unwrap_or(&uid),
                "start": start.to_rfc3339(),
                "end": end.to_rfc3339(),
                "body": body,
                "language": if fr { "fr" } else { "en" },
                "decision_id": decision_id,
            }))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, object_kind, object_id, details)
             VALUES ($1, $2, $3, 'booking', $4, $5)",
        )
        .bind(now)
        .bind(manager.to_string())
        .bind(format!("booking.{outcome}"))
        .bind(booking_id.to_string())
        .bind(serde_json::json!({ "comment": comment }))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The sync state of every resource mailbox (resources never synced included).
    pub async fn mailbox_sync_status(&self) -> Result<Vec<MailboxSyncRow>> {
        let rows = sqlx::query(
            "SELECT r.id, r.name, r.mailbox_smtp, m.last_sync_at, m.last_event_at, m.last_error, m.last_error_at,
                    m.lease_owner, m.resync_requested_at,
                    (SELECT count(*) FROM calendar_drift d
                     WHERE d.resource_id = r.id AND d.resolved_at IS NULL) AS open_drift
             FROM resources r LEFT JOIN mailbox_sync m ON m.resource_id = r.id
             ORDER BY m.last_error_at DESC NULLS LAST, open_drift DESC, r.name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MailboxSyncRow {
                    resource_id: r.try_get("id")?,
                    resource_name: r.try_get("name")?,
                    mailbox_smtp: r.try_get("mailbox_smtp")?,
                    last_sync_at: r.try_get("last_sync_at")?,
                    last_event_at: r.try_get("last_event_at")?,
                    last_error: r.try_get("last_error")?,
                    last_error_at: r.try_get("last_error_at")?,
                    lease_owner: r.try_get("lease_owner")?,
                    resync_requested_at: r.try_get("resync_requested_at")?,
                    open_drift: r.try_get("open_drift")?,
                })
            })
            .collect()
    }

    /// Synced groups whose name, account or description contains `text`
    /// (any case), at most `limit`: (directory name, object GUID, name,
    /// account, description). The group search of a site run without a
    /// directory connection (the demo) reads these copies.
    pub async fn search_synced_groups(
        &self,
        text: &str,
        limit: i64,
    ) -> Result<Vec<(String, Uuid, String, String, Option<String>)>> {
        let pattern = format!(
            "%{}%",
            text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
        );
        let rows = sqlx::query(
            "SELECT d.name AS directory, g.object_guid, g.name, g.sam_account_name, g.description
             FROM groups g JOIN directories d ON d.id = g.directory_id
             WHERE g.deleted_at IS NULL
               AND (g.name ILIKE $1 OR g.sam_account_name ILIKE $1 OR coalesce(g.description, '') ILIKE $1)
             ORDER BY g.name, d.name
             LIMIT $2",
        )
        .bind(pattern)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("directory")?,
                    r.try_get("object_guid")?,
                    r.try_get("name")?,
                    r.try_get("sam_account_name")?,
                    r.try_get("description")?,
                ))
            })
            .collect()
    }

    /// Open differences found by reconciliation on every resource, newest
    /// first, at most `limit`.
    pub async fn open_drift_all(&self, limit: i64) -> Result<Vec<DriftRow>> {
        let rows = sqlx::query(
            "SELECT d.resource_id, r.name, d.kind, d.uid, d.details, d.found_at
             FROM calendar_drift d JOIN resources r ON r.id = d.resource_id
             WHERE d.resolved_at IS NULL
             ORDER BY d.found_at DESC, r.name, d.kind
             LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DriftRow {
                    resource_id: r.try_get("resource_id")?,
                    resource_name: r.try_get("name")?,
                    kind: r.try_get("kind")?,
                    uid: r.try_get("uid")?,
                    details: r.try_get("details")?,
                    found_at: r.try_get("found_at")?,
                })
            })
            .collect()
    }

    /// Asks the daemon to read one mailbox again from scratch. Creates the
    /// mailbox's sync row when the daemon has not seen it yet. `false` when
    /// the resource does not exist.
    pub async fn request_mailbox_resync(&self, resource_id: Uuid, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO mailbox_sync (resource_id, resync_requested_at)
             SELECT id, $2 FROM resources WHERE id = $1
             ON CONFLICT (resource_id) DO UPDATE SET resync_requested_at = EXCLUDED.resync_requested_at",
        )
        .bind(resource_id)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The slots held on several resources over `[from, to)`, with subject
    /// withheld: (resource, start, end).
    pub async fn held_slots_of(
        &self,
        resources: &[Uuid],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)>> {
        if to <= from {
            return Err(StoreError::Invalid("empty period".into()));
        }
        let rows = sqlx::query(
            "SELECT resource_id, lower(blocked) AS s, upper(blocked) AS e FROM occurrences
             WHERE resource_id = ANY($1) AND status IN ('accepted', 'held') AND blocked && $2
             ORDER BY resource_id, lower(blocked)",
        )
        .bind(resources)
        .bind(range(from, to))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("resource_id")?, r.try_get("s")?, r.try_get("e")?)))
            .collect()
    }

    /// The occurrences that hold a slot on some resources over `[from, to)`,
    /// with their booking's subject and organiser, for the calendars of the
    /// resources a manager manages.
    pub async fn calendar_of(
        &self,
        resources: &[Uuid],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<CalendarRow>> {
        if to <= from {
            return Err(StoreError::Invalid("empty period".into()));
        }
        let rows = sqlx::query(
            "SELECT o.resource_id, b.id AS booking_id, lower(o.period) AS s, upper(o.period) AS e, o.status,
                    b.subject, coalesce(p.display_name, b.organiser_name, b.organiser_address) AS organiser
             FROM occurrences o
             JOIN bookings b ON b.id = o.booking_id
             LEFT JOIN people p ON p.id = b.organiser_person_id
             WHERE o.resource_id = ANY($1) AND o.status IN ('accepted', 'held') AND o.period && $2
             ORDER BY o.resource_id, lower(o.period)",
        )
        .bind(resources)
        .bind(range(from, to))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CalendarRow {
                    resource_id: r.try_get("resource_id")?,
                    booking_id: r.try_get("booking_id")?,
                    start: r.try_get("s")?,
                    end: r.try_get("e")?,
                    status: r.try_get("status")?,
                    subject: r.try_get("subject")?,
                    organiser: r.try_get("organiser")?,
                })
            })
            .collect()
    }

    /// A person's name and the address they receive meetings at (primary
    /// SMTP, else their UPN), for web bookings.
    pub async fn person_contact(&self, person_id: Uuid) -> Result<Option<(String, Option<String>)>> {
        let row = sqlx::query(
            "SELECT p.display_name,
                    coalesce((SELECT a.address FROM person_addresses a WHERE a.person_id = p.id
                              ORDER BY a.is_primary DESC, a.address LIMIT 1), lower(p.user_principal_name)) AS address
             FROM people p WHERE p.id = $1 AND p.deleted_at IS NULL",
        )
        .bind(person_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok((r.try_get("display_name")?, r.try_get("address")?)))
            .transpose()
    }

    /// Blackouts set on the given resources that end after `now`, soonest first.
    pub async fn blackouts_of(&self, resources: &[Uuid], now: DateTime<Utc>) -> Result<Vec<BlackoutRow>> {
        let rows = sqlx::query(
            "SELECT b.id, b.resource_id, r.name, b.period, b.reason FROM blackouts b JOIN resources r ON r.id = b.resource_id
             WHERE b.resource_id = ANY($1) AND upper(b.period) > $2 ORDER BY lower(b.period), b.id",
        )
        .bind(resources)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let period: PgRange<DateTime<Utc>> = r.try_get("period")?;
            if let Some((start, end)) = bounds(&period) {
                out.push(BlackoutRow {
                    id: r.try_get("id")?,
                    resource_id: r.try_get("resource_id")?,
                    resource_name: r.try_get("name")?,
                    start,
                    end,
                    reason: r.try_get("reason")?,
                });
            }
        }
        Ok(out)
    }
}
