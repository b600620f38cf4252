//! Organisations, sites, resource types and resources: the catalogue of what
//! can be booked, and where.

use super::{Result, Store};
use sqlx::Row;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub slug: String,
    pub name: String,
    pub time_zone: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Room,
    Vehicle,
    Equipment,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Room => "room",
            Category::Vehicle => "vehicle",
            Category::Equipment => "equipment",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        match s {
            "room" => Some(Category::Room),
            "vehicle" => Some(Category::Vehicle),
            "equipment" => Some(Category::Equipment),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    pub id: Uuid,
    pub slug: String,
    pub category: Category,
    pub name_fr: String,
    pub name_en: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewResource<'a> {
    pub site_id: Uuid,
    pub resource_type_id: Uuid,
    pub name: &'a str,
    pub mailbox_smtp: &'a str,
    pub exchange_endpoint: &'a str,
    pub capacity: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub id: Uuid,
    pub site_id: Uuid,
    pub resource_type_id: Uuid,
    pub name: String,
    pub mailbox_smtp: String,
    pub exchange_endpoint: String,
    pub capacity: Option<i32>,
    pub active: bool,
}

impl Store {
    pub async fn create_organisation(&self, slug: &str, name: &str) -> Result<Organisation> {
        let row = sqlx::query("INSERT INTO organisations (slug, name) VALUES ($1, $2) RETURNING id")
            .bind(slug)
            .bind(name)
            .fetch_one(self.pool())
            .await?;
        Ok(Organisation {
            id: row.try_get("id")?,
            slug: slug.to_owned(),
            name: name.to_owned(),
        })
    }

    pub async fn list_organisations(&self) -> Result<Vec<Organisation>> {
        let rows = sqlx::query("SELECT id, slug, name FROM organisations ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Organisation {
                    id: r.try_get("id")?,
                    slug: r.try_get("slug")?,
                    name: r.try_get("name")?,
                })
            })
            .collect()
    }

    pub async fn create_site(&self, organisation_id: Uuid, slug: &str, name: &str, time_zone: &str) -> Result<Site> {
        let row = sqlx::query(
            "INSERT INTO sites (organisation_id, slug, name, time_zone) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(organisation_id)
        .bind(slug)
        .bind(name)
        .bind(time_zone)
        .fetch_one(self.pool())
        .await?;
        Ok(Site {
            id: row.try_get("id")?,
            organisation_id,
            slug: slug.to_owned(),
            name: name.to_owned(),
            time_zone: time_zone.to_owned(),
        })
    }

    pub async fn create_resource_type(
        &self,
        slug: &str,
        category: Category,
        name_fr: &str,
        name_en: &str,
    ) -> Result<ResourceType> {
        let row = sqlx::query(
            "INSERT INTO resource_types (slug, category, name_fr, name_en) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(slug)
        .bind(category.as_str())
        .bind(name_fr)
        .bind(name_en)
        .fetch_one(self.pool())
        .await?;
        Ok(ResourceType {
            id: row.try_get("id")?,
            slug: slug.to_owned(),
            category,
            name_fr: name_fr.to_owned(),
            name_en: name_en.to_owned(),
        })
    }

    /// Creates a resource; the mailbox address is stored lower-case.
    pub async fn create_resource(&self, new: &NewResource<'_>) -> Result<Resource> {
        let smtp = new.mailbox_smtp.trim().to_lowercase();
        let row = sqlx::query(
            "INSERT INTO resources (site_id, resource_type_id, name, mailbox_smtp, exchange_endpoint, capacity)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(new.site_id)
        .bind(new.resource_type_id)
        .bind(new.name)
        .bind(&smtp)
        .bind(new.exchange_endpoint)
        .bind(new.capacity)
        .fetch_one(self.pool())
        .await?;
        Ok(Resource {
            id: row.try_get("id")?,
            site_id: new.site_id,
            resource_type_id: new.resource_type_id,
            name: new.name.to_owned(),
            mailbox_smtp: smtp,
            exchange_endpoint: new.exchange_endpoint.to_owned(),
            capacity: new.capacity,
            active: true,
        })
    }

    /// Finds a resource by its mailbox address, case-insensitively.
    pub async fn resource_by_mailbox(&self, smtp: &str) -> Result<Option<Resource>> {
        let row = sqlx::query(
            "SELECT id, site_id, resource_type_id, name, mailbox_smtp, exchange_endpoint, capacity, active
             FROM resources WHERE mailbox_smtp = lower($1)",
        )
        .bind(smtp.trim())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(Resource {
                id: r.try_get("id")?,
                site_id: r.try_get("site_id")?,
                resource_type_id: r.try_get("resource_type_id")?,
                name: r.try_get("name")?,
                mailbox_smtp: r.try_get("mailbox_smtp")?,
                exchange_endpoint: r.try_get("exchange_endpoint")?,
                capacity: r.try_get("capacity")?,
                active: r.try_get("active")?,
            })
        })
        .transpose()
    }
}

impl Store {
    /// Declares a period when the resources of `scope` cannot be booked.
    pub async fn create_blackout(
        &self,
        scope: crate::domain::Scope,
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
        reason: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Uuid> {
        use crate::domain::Scope;
        let (kind, org, site, rtype, res) = match scope {
            Scope::Global => return Err(super::StoreError::Invalid("a blackout needs a scope".into())),
            Scope::Organisation(id) => ("organisation", Some(id), None, None, None),
            Scope::Site(id) => ("site", None, Some(id), None, None),
            Scope::ResourceType(id) => ("resource_type", None, None, Some(id), None),
            Scope::Resource(id) => ("resource", None, None, None, Some(id)),
        };
        let id = sqlx::query_scalar(
            "INSERT INTO blackouts (scope_kind, organisation_id, site_id, resource_type_id, resource_id, period, reason, created_at)
             VALUES ($1, $2, $3, $4, $5, tstzrange($6, $7), $8, $9) RETURNING id",
        )
        .bind(kind)
        .bind(org)
        .bind(site)
        .bind(rtype)
        .bind(res)
        .bind(start)
        .bind(end)
        .bind(reason)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(id)
    }
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Created,
    Updated,
    Unchanged,
}

impl Store {
    pub async fn site_by_slugs(&self, organisation: &str, site: &str) -> Result<Option<Uuid>> {
        Ok(sqlx::query_scalar(
            "SELECT s.id FROM sites s JOIN organisations o ON o.id = s.organisation_id WHERE o.slug = $1 AND s.slug = $2",
        )
        .bind(organisation)
        .bind(site)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn resource_type_by_slug(&self, slug: &str) -> Result<Option<Uuid>> {
        Ok(sqlx::query_scalar("SELECT id FROM resource_types WHERE slug = $1")
            .bind(slug)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Creates a resource, or updates the one with the same mailbox address.
    /// Changes a resource (its mailbox address too) and whether it may be
    /// booked; false when there is no such resource.
    pub async fn update_resource(&self, id: Uuid, new: &NewResource<'_>, active: bool) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE resources SET site_id = $2, resource_type_id = $3, name = $4, mailbox_smtp = $5,
                 exchange_endpoint = $6, capacity = $7, active = $8, updated_at = now()
             WHERE id = $1",
        )
        .bind(id)
        .bind(new.site_id)
        .bind(new.resource_type_id)
        .bind(new.name)
        .bind(new.mailbox_smtp.trim().to_lowercase())
        .bind(new.exchange_endpoint)
        .bind(new.capacity)
        .bind(active)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn upsert_resource(&self, new: &NewResource<'_>) -> Result<Upsert> {
        let smtp = new.mailbox_smtp.trim().to_lowercase();
        let row = sqlx::query(
            "INSERT INTO resources (site_id, resource_type_id, name, mailbox_smtp, exchange_endpoint, capacity)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (mailbox_smtp) DO UPDATE SET
                 site_id = EXCLUDED.site_id, resource_type_id = EXCLUDED.resource_type_id, name = EXCLUDED.name,
                 exchange_endpoint = EXCLUDED.exchange_endpoint, capacity = EXCLUDED.capacity, updated_at = now()
             WHERE (resources.site_id, resources.resource_type_id, resources.name, resources.exchange_endpoint,
                    resources.capacity)
                   IS DISTINCT FROM (EXCLUDED.site_id, EXCLUDED.resource_type_id, EXCLUDED.name,
                                     EXCLUDED.exchange_endpoint, EXCLUDED.capacity)
             RETURNING (xmax = 0) AS created",
        )
        .bind(new.site_id)
        .bind(new.resource_type_id)
        .bind(new.name)
        .bind(&smtp)
        .bind(new.exchange_endpoint)
        .bind(new.capacity)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            None => Upsert::Unchanged,
            Some(r) if r.try_get::<bool, _>("created")? => Upsert::Created,
            Some(_) => Upsert::Updated,
        })
    }
}
