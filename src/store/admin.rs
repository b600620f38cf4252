//! The catalogue as the admin pages edit it: organisations, sites (address,
//! time zone, local holidays) and resource types, with the counts that say
//! whether they are in use.
//!
//! Every change is written together with its audit entry, in one
//! transaction, so the log cannot miss a change nor record one that failed.
//! A deletion is refused, not attempted, when the object is still in use; a
//! foreign key found at delete time (a table that points at it) is reported
//! the same way, never as an internal error.

use super::{Result, Store, StoreError};
use crate::domain::policy::WeeklyHours;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

/// Who changed what, written in the same transaction as the change.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub at: DateTime<Utc>,
    /// The acting person's id, as the audit log's other entries name them.
    pub actor: String,
    /// `organisation.create`, `site.update`, …
    pub action: &'a str,
    pub details: serde_json::Value,
}

/// An organisation with how many sites and resources it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganisationSummary {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub sites: i64,
    pub resources: i64,
}

/// A site as its edit page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteDetail {
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub organisation_name: String,
    pub slug: String,
    pub name: String,
    pub address: Option<String>,
    pub time_zone: String,
    pub resources: i64,
}

/// The editable fields of a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFields<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub address: Option<&'a str>,
    /// An IANA zone name, checked by the caller against chrono-tz.
    pub time_zone: &'a str,
}

/// A local holiday of a site (French public holidays are computed, not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolidayRow {
    pub id: Uuid,
    pub day: NaiveDate,
    pub name: String,
}

/// A resource type with how many resources are of that type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeSummary {
    pub id: Uuid,
    pub slug: String,
    pub category: String,
    pub name_fr: String,
    pub name_en: String,
    pub resources: i64,
}

/// The editable fields of a resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeFields<'a> {
    pub slug: &'a str,
    pub category: super::catalogue::Category,
    pub name_fr: &'a str,
    pub name_en: &'a str,
}

/// What became of a deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    Deleted,
    /// Still used: by this many resources (or sites, for an organisation);
    /// 0 when another table refers to it.
    InUse(i64),
    NotFound,
}

async fn audit(tx: &mut Transaction<'_, Postgres>, change: &Change<'_>, kind: &str, id: Uuid) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, object_kind, object_id, details) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(change.at)
    .bind(&change.actor)
    .bind(change.action)
    .bind(kind)
    .bind(id.to_string())
    .bind(&change.details)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Runs a DELETE; a foreign key that still points at the row means "in use".
async fn delete_row(tx: &mut Transaction<'_, Postgres>, sql: &str, id: Uuid) -> Result<Option<bool>> {
    match sqlx::query(sql).bind(id).execute(&mut **tx).await {
        Ok(done) => Ok(Some(done.rows_affected() > 0)),
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23503") => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// An admin deletion: what counts the row's users (`$1` its id, locking the
/// row; no result when it does not exist), the delete, the audit's kind.
struct Unused {
    uses: &'static str,
    delete: &'static str,
    kind: &'static str,
}

fn organisation_summary(r: &sqlx::postgres::PgRow) -> Result<OrganisationSummary> {
    Ok(OrganisationSummary {
        id: r.try_get("id")?,
        slug: r.try_get("slug")?,
        name: r.try_get("name")?,
        sites: r.try_get("sites")?,
        resources: r.try_get("resources")?,
    })
}

const ORGANISATIONS: &str = "SELECT o.id, o.slug, o.name,
        (SELECT count(*) FROM sites s WHERE s.organisation_id = o.id) AS sites,
        (SELECT count(*) FROM resources r JOIN sites s ON s.id = r.site_id WHERE s.organisation_id = o.id) AS resources
     FROM organisations o";

const SITES: &str = "SELECT s.id, s.organisation_id, o.name AS organisation_name, s.slug, s.name, s.address,
        s.time_zone, (SELECT count(*) FROM resources r WHERE r.site_id = s.id) AS resources
     FROM sites s JOIN organisations o ON o.id = s.organisation_id";

const TYPES: &str = "SELECT t.id, t.slug, t.category, t.name_fr, t.name_en,
        (SELECT count(*) FROM resources r WHERE r.resource_type_id = t.id) AS resources
     FROM resource_types t";

fn site_detail(r: &sqlx::postgres::PgRow) -> Result<SiteDetail> {
    Ok(SiteDetail {
        id: r.try_get("id")?,
        organisation_id: r.try_get("organisation_id")?,
        organisation_name: r.try_get("organisation_name")?,
        slug: r.try_get("slug")?,
        name: r.try_get("name")?,
        address: r.try_get("address")?,
        time_zone: r.try_get("time_zone")?,
        resources: r.try_get("resources")?,
    })
}

fn type_summary(r: &sqlx::postgres::PgRow) -> Result<TypeSummary> {
    Ok(TypeSummary {
        id: r.try_get("id")?,
        slug: r.try_get("slug")?,
        category: r.try_get("category")?,
        name_fr: r.try_get("name_fr")?,
        name_en: r.try_get("name_en")?,
        resources: r.try_get("resources")?,
    })
}

impl Store {
    // ------------------------------------------------------------ organisations

    /// Every organisation with its counts, by name.
    pub async fn organisation_summaries(&self) -> Result<Vec<OrganisationSummary>> {
        let rows = sqlx::query(&format!("{ORGANISATIONS} ORDER BY o.name, o.slug"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(organisation_summary).collect()
    }

    pub async fn organisation_summary(&self, id: Uuid) -> Result<Option<OrganisationSummary>> {
        let row = sqlx::query(&format!("{ORGANISATIONS} WHERE o.id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(organisation_summary).transpose()
    }

    /// Creates an organisation; [`StoreError::Duplicate`] when the slug is taken.
    pub async fn admin_create_organisation(&self, slug: &str, name: &str, change: &Change<'_>) -> Result<Uuid> {
        let mut tx = self.pool().begin().await?;
        let id: Uuid = sqlx::query_scalar("INSERT INTO organisations (slug, name) VALUES ($1, $2) RETURNING id")
            .bind(slug)
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        audit(&mut tx, change, "organisation", id).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Renames an organisation. The slug changes only while the organisation
    /// has no site (the CSV import names sites by `organisation/site` slugs);
    /// [`StoreError::Invalid`] when a used slug would change.
    pub async fn update_organisation(&self, id: Uuid, slug: &str, name: &str, change: &Change<'_>) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let current: Option<(String, i64)> = sqlx::query_as(
            "SELECT slug, (SELECT count(*) FROM sites WHERE organisation_id = o.id)
             FROM organisations o WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((old_slug, sites)) = current else {
            return Ok(false);
        };
        if old_slug != slug && sites > 0 {
            return Err(StoreError::Invalid("slug in use".into()));
        }
        sqlx::query("UPDATE organisations SET slug = $2, name = $3 WHERE id = $1")
            .bind(id)
            .bind(slug)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        audit(&mut tx, change, "organisation", id).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes an organisation that has no site left.
    pub async fn delete_organisation(&self, id: Uuid, change: &Change<'_>) -> Result<Deletion> {
        let what = Unused {
            uses: "SELECT (SELECT count(*) FROM sites WHERE organisation_id = o.id)
                   FROM organisations o WHERE id = $1 FOR UPDATE",
            delete: "DELETE FROM organisations WHERE id = $1",
            kind: "organisation",
        };
        self.delete_unused(&what, id, change).await
    }

    // ------------------------------------------------------------ sites

    /// The sites of one organisation, or of all, by organisation and name.
    pub async fn site_details(&self, organisation: Option<Uuid>) -> Result<Vec<SiteDetail>> {
        let rows = sqlx::query(&format!(
            "{SITES} WHERE $1::uuid IS NULL OR s.organisation_id = $1 ORDER BY o.name, s.name"
        ))
        .bind(organisation)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(site_detail).collect()
    }

    pub async fn site_detail(&self, id: Uuid) -> Result<Option<SiteDetail>> {
        let row = sqlx::query(&format!("{SITES} WHERE s.id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(site_detail).transpose()
    }

    /// Creates a site; [`StoreError::Duplicate`] when the organisation already
    /// has that slug, [`StoreError::NotFound`] when the organisation is gone.
    pub async fn admin_create_site(&self, organisation: Uuid, f: &SiteFields<'_>, change: &Change<'_>) -> Result<Uuid> {
        let mut tx = self.pool().begin().await?;
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO sites (organisation_id, slug, name, address, time_zone) VALUES ($1, $2, $3, $4, $5)
             RETURNING id",
        )
        .bind(organisation)
        .bind(f.slug)
        .bind(f.name)
        .bind(f.address)
        .bind(f.time_zone)
        .fetch_one(&mut *tx)
        .await?;
        audit(&mut tx, change, "site", id).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Changes a site. Its slug changes only while no resource is on it;
    /// [`StoreError::Invalid`] when a used slug would change.
    pub async fn update_site(&self, id: Uuid, f: &SiteFields<'_>, change: &Change<'_>) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let current: Option<(String, i64)> = sqlx::query_as(
            "SELECT slug, (SELECT count(*) FROM resources WHERE site_id = s.id) FROM sites s WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((old_slug, resources)) = current else {
            return Ok(false);
        };
        if old_slug != f.slug && resources > 0 {
            return Err(StoreError::Invalid("slug in use".into()));
        }
        sqlx::query("UPDATE sites SET slug = $2, name = $3, address = $4, time_zone = $5 WHERE id = $1")
            .bind(id)
            .bind(f.slug)
            .bind(f.name)
            .bind(f.address)
            .bind(f.time_zone)
            .execute(&mut *tx)
            .await?;
        audit(&mut tx, change, "site", id).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes a site without resources (its policy, holidays, opening hours
    /// and grants go with it).
    pub async fn delete_site(&self, id: Uuid, change: &Change<'_>) -> Result<Deletion> {
        let what = Unused {
            uses: "SELECT (SELECT count(*) FROM resources WHERE site_id = s.id) FROM sites s WHERE id = $1 FOR UPDATE",
            delete: "DELETE FROM sites WHERE id = $1",
            kind: "site",
        };
        self.delete_unused(&what, id, change).await
    }

    /// The local holidays of a site, by date.
    pub async fn site_holidays(&self, site: Uuid) -> Result<Vec<HolidayRow>> {
        let rows = sqlx::query("SELECT id, day, name FROM holidays WHERE site_id = $1 ORDER BY day, name")
            .bind(site)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(HolidayRow {
                    id: r.try_get("id")?,
                    day: r.try_get("day")?,
                    name: r.try_get("name")?,
                })
            })
            .collect()
    }

    /// Adds a local holiday to a site; `None` when the site is gone.
    pub async fn add_site_holiday(
        &self,
        site: Uuid,
        day: NaiveDate,
        name: &str,
        change: &Change<'_>,
    ) -> Result<Option<Uuid>> {
        let mut tx = self.pool().begin().await?;
        let id: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO holidays (day, name, site_id) SELECT $1, $2, id FROM sites WHERE id = $3 RETURNING id",
        )
        .bind(day)
        .bind(name)
        .bind(site)
        .fetch_optional(&mut *tx)
        .await?;
        if id.is_some() {
            audit(&mut tx, change, "site", site).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Removes one local holiday of a site; false when there was none.
    pub async fn remove_site_holiday(&self, site: Uuid, holiday: Uuid, change: &Change<'_>) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let removed: Option<(NaiveDate, String)> =
            sqlx::query_as("DELETE FROM holidays WHERE id = $1 AND site_id = $2 RETURNING day, name")
                .bind(holiday)
                .bind(site)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((day, name)) = removed else {
            return Ok(false);
        };
        let mut change = change.clone();
        change.details = serde_json::json!({ "day": day, "name": name });
        audit(&mut tx, &change, "site", site).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Sets (or, with `None`, removes so it is inherited again) the opening
    /// hours of a site: the `opening_hours` field of the site's policy, which
    /// the rule engine reads at each decision, so the next request sees them.
    /// The other fields of that policy are kept. False when the site is gone.
    pub async fn set_site_opening_hours(
        &self,
        site: Uuid,
        hours: Option<&WeeklyHours>,
        change: &Change<'_>,
    ) -> Result<bool> {
        let value = hours
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut tx = self.pool().begin().await?;
        let exists: Option<Uuid> = sqlx::query_scalar("SELECT id FROM sites WHERE id = $1 FOR UPDATE")
            .bind(site)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Ok(false);
        }
        let updated = sqlx::query(
            "UPDATE policies SET
                 body = CASE WHEN $2::jsonb IS NULL THEN body - 'opening_hours'
                             ELSE body || jsonb_build_object('opening_hours', $2::jsonb) END,
                 revision = revision + 1, updated_at = $3
             WHERE scope_kind = 'site' AND site_id = $1",
        )
        .bind(site)
        .bind(&value)
        .bind(change.at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0
            && let Some(v) = &value
        {
            sqlx::query(
                "INSERT INTO policies (scope_kind, site_id, body, updated_at)
                 VALUES ('site', $1, jsonb_build_object('opening_hours', $2::jsonb), $3)",
            )
            .bind(site)
            .bind(v)
            .bind(change.at)
            .execute(&mut *tx)
            .await?;
        }
        audit(&mut tx, change, "site", site).await?;
        tx.commit().await?;
        Ok(true)
    }

    // ------------------------------------------------------------ resource types

    /// Every resource type with its count of resources.
    pub async fn type_summaries(&self) -> Result<Vec<TypeSummary>> {
        let rows = sqlx::query(&format!("{TYPES} ORDER BY t.category, t.name_fr"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(type_summary).collect()
    }

    pub async fn type_summary(&self, id: Uuid) -> Result<Option<TypeSummary>> {
        let row = sqlx::query(&format!("{TYPES} WHERE t.id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(type_summary).transpose()
    }

    /// Creates a resource type; [`StoreError::Duplicate`] when the slug is taken.
    pub async fn admin_create_type(&self, f: &TypeFields<'_>, change: &Change<'_>) -> Result<Uuid> {
        let mut tx = self.pool().begin().await?;
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO resource_types (slug, category, name_fr, name_en) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(f.slug)
        .bind(f.category.as_str())
        .bind(f.name_fr)
        .bind(f.name_en)
        .fetch_one(&mut *tx)
        .await?;
        audit(&mut tx, change, "resource_type", id).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Changes a resource type. While resources are of that type, its slug
    /// (the CSV import's key) and its category (what the engine and the
    /// vehicle pages rely on) stay; [`StoreError::Invalid`] otherwise.
    pub async fn update_type(&self, id: Uuid, f: &TypeFields<'_>, change: &Change<'_>) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let current: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT slug, category, (SELECT count(*) FROM resources WHERE resource_type_id = t.id)
             FROM resource_types t WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((old_slug, old_category, resources)) = current else {
            return Ok(false);
        };
        if resources > 0 && (old_slug != f.slug || old_category != f.category.as_str()) {
            return Err(StoreError::Invalid("type in use".into()));
        }
        sqlx::query("UPDATE resource_types SET slug = $2, category = $3, name_fr = $4, name_en = $5 WHERE id = $1")
            .bind(id)
            .bind(f.slug)
            .bind(f.category.as_str())
            .bind(f.name_fr)
            .bind(f.name_en)
            .execute(&mut *tx)
            .await?;
        audit(&mut tx, change, "resource_type", id).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes a resource type no resource uses.
    pub async fn delete_type(&self, id: Uuid, change: &Change<'_>) -> Result<Deletion> {
        let what = Unused {
            uses: "SELECT (SELECT count(*) FROM resources WHERE resource_type_id = t.id)
                   FROM resource_types t WHERE id = $1 FOR UPDATE",
            delete: "DELETE FROM resource_types WHERE id = $1",
            kind: "resource_type",
        };
        self.delete_unused(&what, id, change).await
    }

    /// Deletes a row nothing uses, with its audit entry, in one transaction:
    /// refused when `uses` counts something, or when another table still
    /// points at the row (`InUse(0)`).
    async fn delete_unused(&self, what: &Unused, id: Uuid, change: &Change<'_>) -> Result<Deletion> {
        let mut tx = self.pool().begin().await?;
        let used: Option<i64> = sqlx::query_scalar(what.uses).bind(id).fetch_optional(&mut *tx).await?;
        match used {
            None => return Ok(Deletion::NotFound),
            Some(n) if n > 0 => return Ok(Deletion::InUse(n)),
            Some(_) => {}
        }
        match delete_row(&mut tx, what.delete, id).await? {
            None => return Ok(Deletion::InUse(0)),
            Some(false) => return Ok(Deletion::NotFound),
            Some(true) => {}
        }
        audit(&mut tx, change, what.kind, id).await?;
        tx.commit().await?;
        Ok(Deletion::Deleted)
    }
}

/// The local holidays of sites between `lo` and `hi`, each as a blackout of
/// its site over the whole local day (in the site's time zone), named after
/// the holiday: the decision path adds them to the stored blackouts, so a
/// request on that day is declined with the holiday's name.
pub(super) async fn holiday_blackouts(
    tx: &mut Transaction<'_, Postgres>,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
) -> Result<Vec<crate::domain::holidays::Blackout>> {
    // A day's local bounds are at most 14 hours from UTC's, hence the day of
    // margin on each side before the exact overlap test.
    let rows = sqlx::query(
        "SELECT h.site_id, h.name,
                h.day::timestamp AT TIME ZONE s.time_zone AS s,
                (h.day + 1)::timestamp AT TIME ZONE s.time_zone AS e
         FROM holidays h JOIN sites s ON s.id = h.site_id
         WHERE h.day BETWEEN ($1 AT TIME ZONE 'UTC')::date - 1 AND ($2 AT TIME ZONE 'UTC')::date + 1",
    )
    .bind(lo)
    .bind(hi)
    .fetch_all(&mut **tx)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let (start, end): (DateTime<Utc>, DateTime<Utc>) = (r.try_get("s")?, r.try_get("e")?);
        if start < hi && lo < end {
            out.push(crate::domain::holidays::Blackout {
                scope: crate::domain::Scope::Site(r.try_get("site_id")?),
                start,
                end,
                reason: r.try_get("name")?,
            });
        }
    }
    Ok(out)
}
