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
