//! Directories, people, groups, memberships and grants: what the directory
//! sync writes and what decisions read.
//!
//! A sync is applied in ONE transaction, so decisions never see a half-synced
//! directory (for instance people without their groups). Transitive
//! membership (`person_groups`) is rebuilt in that same transaction from the
//! direct memberships, with the cycle-safe walk of `directory::membership`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::{Result, Store, StoreError};
use crate::directory::entry::{GroupRecord, PersonRecord};
use crate::directory::membership::{Member, transitive_groups};
use crate::directory::organiser::OrganiserAddress;

/// A directory's row: its sync watermark and its health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryRow {
    pub id: Uuid,
    pub name: String,
    pub highest_usn: Option<i64>,
    pub usn_server: Option<String>,
    pub last_full_sync_at: Option<DateTime<Utc>>,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// What one sync read, ready to be applied.
#[derive(Debug, Clone, Copy)]
pub struct SyncBatch<'a> {
    /// A full sync read every person and group: those missing are deleted.
    pub full: bool,
    pub people: &'a [PersonRecord],
    pub groups: &'a [GroupRecord],
    /// The server's highestCommittedUSN read before the searches.
    pub highest_usn: Option<i64>,
    pub usn_server: Option<&'a str>,
}

/// What applying a batch changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppliedSync {
    pub people_written: usize,
    pub groups_written: usize,
    pub people_deleted: usize,
    pub groups_deleted: usize,
    /// Rows of `person_groups` for this directory after the sync; 0 when no
    /// group changed, as nested membership was then left as it was.
    pub transitive_memberships: usize,
}

/// A person as decisions and the web site need them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRef {
    pub id: Uuid,
    pub directory_id: Uuid,
    pub directory_name: String,
    pub object_guid: Uuid,
    pub sam_account_name: String,
    pub user_principal_name: Option<String>,
    pub display_name: String,
    pub department: Option<String>,
    pub manager_id: Option<Uuid>,
    pub primary_smtp: Option<String>,
    pub disabled: bool,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A synced group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: Uuid,
    pub directory_id: Uuid,
    pub object_guid: Uuid,
    pub sam_account_name: String,
    pub name: String,
    pub distinguished_name: String,
}

/// Counts and health of one directory, for the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryCounts {
    pub directory: DirectoryRow,
    pub people_active: i64,
    pub people_disabled: i64,
    pub people_deleted: i64,
    pub groups: i64,
    /// People whose licence attribute could not be read.
    pub licence_problems: i64,
}

/// What a directory's licence attribute says of one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryLicence {
    /// No value: a licence from the directory is cleared.
    Absent,
    Valid(crate::domain::vehicles::DriverLicence),
    /// A value that cannot be read; the known licence stays.
    Malformed {
        value: String,
        reason: String,
    },
}

/// What applying a directory's licences did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LicencesApplied {
    pub written: usize,
    /// Licences entered by a manager, left as they were.
    pub kept_manager: usize,
    pub cleared: usize,
    pub malformed: usize,
}

/// A future booking whose organiser is disabled or deleted in the directory,
/// for a manager to reassign or cancel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InactiveOrganiserBooking {
    pub booking_id: Uuid,
    pub resource_id: Uuid,
    pub uid: String,
    pub subject: Option<String>,
    pub person_id: Uuid,
    pub display_name: String,
    pub disabled: bool,
    pub deleted_at: Option<DateTime<Utc>>,
    pub next_start: DateTime<Utc>,
}

/// Who a grant is given to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantSubject {
    Person(Uuid),
    Group(Uuid),
}

/// Where a grant applies; the same scopes as policies, plus "this type of
/// resource at this site".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantScope {
    Global,
    Organisation(Uuid),
    Site(Uuid),
    SiteType { site: Uuid, resource_type: Uuid },
    ResourceType(Uuid),
    Resource(Uuid),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantRole {
    Book,
    Request,
    Manage,
    View,
    Deny,
}

impl GrantRole {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantRole::Book => "book",
            GrantRole::Request => "request",
            GrantRole::Manage => "manage",
            GrantRole::View => "view",
            GrantRole::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Option<GrantRole> {
        Some(match s {
            "book" => GrantRole::Book,
            "request" => GrantRole::Request,
            "manage" => GrantRole::Manage,
            "view" => GrantRole::View,
            "deny" => GrantRole::Deny,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewGrant {
    pub subject: GrantSubject,
    pub scope: GrantScope,
    pub role: GrantRole,
    pub created_by: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: Uuid,
    pub subject: GrantSubject,
    pub scope: GrantScope,
    pub role: GrantRole,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
}

const PERSON_COLUMNS: &str = "p.id, p.directory_id, d.name AS directory_name, p.object_guid, p.sam_account_name, \
     p.user_principal_name, p.display_name, p.department, p.manager_id, p.disabled, p.deleted_at, \
     (SELECT a.address FROM person_addresses a WHERE a.person_id = p.id AND a.is_primary LIMIT 1) AS primary_smtp";

const GRANT_COLUMNS: &str = "g.id, g.subject_person_id, g.subject_group_id, g.scope_kind, g.organisation_id, \
     g.site_id, g.resource_type_id, g.resource_id, g.role, g.created_at, g.created_by";

fn person_from_row(row: &PgRow) -> Result<PersonRef> {
    Ok(PersonRef {
        id: row.try_get("id")?,
        directory_id: row.try_get("directory_id")?,
        directory_name: row.try_get("directory_name")?,
        object_guid: row.try_get("object_guid")?,
        sam_account_name: row.try_get("sam_account_name")?,
        user_principal_name: row.try_get("user_principal_name")?,
        display_name: row.try_get("display_name")?,
        department: row.try_get("department")?,
        manager_id: row.try_get("manager_id")?,
        primary_smtp: row.try_get("primary_smtp")?,
        disabled: row.try_get("disabled")?,
        deleted_at: row.try_get("deleted_at")?,
    })
}

fn directory_from_row(row: &PgRow) -> Result<DirectoryRow> {
    Ok(DirectoryRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        highest_usn: row.try_get("highest_usn")?,
        usn_server: row.try_get("usn_server")?,
        last_full_sync_at: row.try_get("last_full_sync_at")?,
        last_sync_at: row.try_get("last_sync_at")?,
        last_error: row.try_get("last_error")?,
        last_error_at: row.try_get("last_error_at")?,
    })
}

fn grant_from_row(row: &PgRow) -> Result<Grant> {
    let invalid = |what: &str| StoreError::Invalid(format!("grant row: {what}"));
    let subject = match (
        row.try_get::<Option<Uuid>, _>("subject_person_id")?,
        row.try_get::<Option<Uuid>, _>("subject_group_id")?,
    ) {
        (Some(p), None) => GrantSubject::Person(p),
        (None, Some(g)) => GrantSubject::Group(g),
        _ => return Err(invalid("subject")),
    };
    let need = |col: &str| -> Result<Uuid> { row.try_get::<Option<Uuid>, _>(col)?.ok_or_else(|| invalid(col)) };
    let kind: String = row.try_get("scope_kind")?;
    let scope = match kind.as_str() {
        "global" => GrantScope::Global,
        "organisation" => GrantScope::Organisation(need("organisation_id")?),
        "site" => GrantScope::Site(need("site_id")?),
        "site_type" => GrantScope::SiteType {
            site: need("site_id")?,
            resource_type: need("resource_type_id")?,
        },
        "resource_type" => GrantScope::ResourceType(need("resource_type_id")?),
        "resource" => GrantScope::Resource(need("resource_id")?),
        _ => return Err(invalid("scope_kind")),
    };
    let role: String = row.try_get("role")?;
    Ok(Grant {
        id: row.try_get("id")?,
        subject,
        scope,
        role: GrantRole::parse(&role).ok_or_else(|| invalid("role"))?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
    })
}

impl Store {
    /// The row of the configured directory `name`, created on first use.
    pub async fn ensure_directory(&self, name: &str) -> Result<DirectoryRow> {
        self.ensure_directory_of(name, None).await
    }

    /// [`Store::ensure_directory`], also linking the directory to the
    /// organisation with slug `organisation` when one exists.
    pub async fn ensure_directory_of(&self, name: &str, organisation: Option<&str>) -> Result<DirectoryRow> {
        let row = sqlx::query(
            "INSERT INTO directories (name, organisation_id)
             VALUES ($1, (SELECT id FROM organisations WHERE slug = $2))
             ON CONFLICT (name) DO UPDATE SET
                 organisation_id = COALESCE(EXCLUDED.organisation_id, directories.organisation_id)
             RETURNING id, name, highest_usn, usn_server, last_full_sync_at, last_sync_at, last_error, last_error_at",
        )
        .bind(name)
        .bind(organisation)
        .fetch_one(self.pool())
        .await?;
        directory_from_row(&row)
    }

    /// Applies the licences read from a directory's attribute to its people
    /// (by objectGUID), in one transaction. A licence a manager entered is
    /// kept unless `overrides_manager`; a licence from the directory is
    /// cleared when the attribute is; an unreadable value changes nothing but
    /// the person's `licence_problem`, shown in the directory status.
    pub async fn apply_directory_licences(
        &self,
        directory_id: Uuid,
        licences: &[(Uuid, DirectoryLicence)],
        overrides_manager: bool,
        now: DateTime<Utc>,
    ) -> Result<LicencesApplied> {
        let mut valid: (Vec<Uuid>, Vec<String>, Vec<Option<chrono::NaiveDate>>) = Default::default();
        let mut absent: Vec<Uuid> = Vec::new();
        let mut bad: (Vec<Uuid>, Vec<String>) = Default::default();
        for (guid, l) in licences {
            match l {
                DirectoryLicence::Valid(d) => {
                    valid.0.push(*guid);
                    // Joined with commas for one array parameter; classes never contain one.
                    valid
                        .1
                        .push(d.classes.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(","));
                    valid.2.push(d.expires_on);
                }
                DirectoryLicence::Absent => absent.push(*guid),
                DirectoryLicence::Malformed { value, reason } => {
                    bad.0.push(*guid);
                    bad.1.push(format!("« {value} » : {reason}"));
                }
            }
        }
        let mut tx = self.pool().begin().await?;
        let written = sqlx::query(
            "UPDATE people p SET licence_classes = string_to_array(t.classes, ','), licence_expires_on = t.expires,
                    licence_source = 'directory', licence_updated_at = $5
             FROM UNNEST($2::uuid[], $3::text[], $4::date[]) AS t(guid, classes, expires)
             WHERE p.directory_id = $1 AND p.object_guid = t.guid
               AND (p.licence_source IS DISTINCT FROM 'manager' OR $6)
               AND (p.licence_source IS DISTINCT FROM 'directory'
                    OR p.licence_classes IS DISTINCT FROM string_to_array(t.classes, ',')
                    OR p.licence_expires_on IS DISTINCT FROM t.expires)",
        )
        .bind(directory_id)
        .bind(&valid.0)
        .bind(&valid.1)
        .bind(&valid.2)
        .bind(now)
        .bind(overrides_manager)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let kept_manager: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM people WHERE directory_id = $1 AND object_guid = ANY($2) AND licence_source = 'manager'",
        )
        .bind(directory_id)
        .bind(&valid.0)
        .fetch_one(&mut *tx)
        .await?;
        let cleared = sqlx::query(
            "UPDATE people SET licence_classes = NULL, licence_expires_on = NULL, licence_source = NULL,
                    licence_updated_at = $3
             WHERE directory_id = $1 AND object_guid = ANY($2) AND licence_source = 'directory'",
        )
        .bind(directory_id)
        .bind(&absent)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let read: Vec<Uuid> = valid.0.iter().chain(absent.iter()).copied().collect();
        sqlx::query(
            "UPDATE people SET licence_problem = NULL
             WHERE directory_id = $1 AND object_guid = ANY($2) AND licence_problem IS NOT NULL",
        )
        .bind(directory_id)
        .bind(&read)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE people p SET licence_problem = t.problem
             FROM UNNEST($2::uuid[], $3::text[]) AS t(guid, problem)
             WHERE p.directory_id = $1 AND p.object_guid = t.guid",
        )
        .bind(directory_id)
        .bind(&bad.0)
        .bind(&bad.1)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(LicencesApplied {
            written: usize::try_from(written).unwrap_or(usize::MAX),
            kept_manager: usize::try_from(kept_manager).unwrap_or(0),
            cleared: usize::try_from(cleared).unwrap_or(usize::MAX),
            malformed: bad.0.len(),
        })
    }

    /// The people of a directory whose licence attribute could not be read,
    /// by name, with why (at most `limit`).
    pub async fn licence_problems(&self, directory_id: Uuid, limit: i64) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT display_name, licence_problem FROM people
             WHERE directory_id = $1 AND licence_problem IS NOT NULL AND deleted_at IS NULL
             ORDER BY display_name LIMIT $2",
        )
        .bind(directory_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("display_name")?, r.try_get("licence_problem")?)))
            .collect()
    }

    /// A person's driving licence classes, as last synced.
    pub async fn licence_classes(&self, person_id: Uuid) -> Result<Vec<String>> {
        let classes: Option<Vec<String>> = sqlx::query_scalar("SELECT licence_classes FROM people WHERE id = $1")
            .bind(person_id)
            .fetch_optional(self.pool())
            .await?
            .flatten();
        Ok(classes.unwrap_or_default())
    }

    /// The objectGUIDs of the people of a directory not yet deleted, so a full
    /// sync can tell beforehand how many it would delete.
    pub async fn live_person_guids(&self, directory_id: Uuid) -> Result<Vec<Uuid>> {
        let guids = sqlx::query_scalar("SELECT object_guid FROM people WHERE directory_id = $1 AND deleted_at IS NULL")
            .bind(directory_id)
            .fetch_all(self.pool())
            .await?;
        Ok(guids)
    }

    /// The objectGUIDs of the groups of a directory not yet deleted.
    pub async fn live_group_guids(&self, directory_id: Uuid) -> Result<Vec<Uuid>> {
        let guids = sqlx::query_scalar("SELECT object_guid FROM groups WHERE directory_id = $1 AND deleted_at IS NULL")
            .bind(directory_id)
            .fetch_all(self.pool())
            .await?;
        Ok(guids)
    }

    /// Marks deleted the people and groups of a directory missing from
    /// `present_people` / `present_groups` (the objectGUIDs of every object
    /// the directory holds now), drops their memberships and rebuilds nested
    /// membership, in one transaction. Returns how many of each were retired.
    pub async fn retire_missing(
        &self,
        directory_id: Uuid,
        present_people: &[Uuid],
        present_groups: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<(usize, usize)> {
        let mut tx = self.pool().begin().await?;
        let people: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE people SET deleted_at = $3
             WHERE directory_id = $1 AND deleted_at IS NULL AND NOT (object_guid = ANY($2))
             RETURNING id",
        )
        .bind(directory_id)
        .bind(present_people)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let groups: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE groups SET deleted_at = $3
             WHERE directory_id = $1 AND deleted_at IS NULL AND NOT (object_guid = ANY($2))
             RETURNING id",
        )
        .bind(directory_id)
        .bind(present_groups)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        if !people.is_empty() || !groups.is_empty() {
            sqlx::query(
                "DELETE FROM group_members
                 WHERE member_person_id = ANY($1) OR group_id = ANY($2) OR member_group_id = ANY($2)",
            )
            .bind(&people)
            .bind(&groups)
            .execute(&mut *tx)
            .await?;
            rebuild_person_groups(&mut tx, directory_id).await?;
        }
        tx.commit().await?;
        Ok((people.len(), groups.len()))
    }

    pub async fn directory_by_name(&self, name: &str) -> Result<Option<DirectoryRow>> {
        let row = sqlx::query(
            "SELECT id, name, highest_usn, usn_server, last_full_sync_at, last_sync_at, last_error, last_error_at
             FROM directories WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(directory_from_row).transpose()
    }

    /// Records why the last sync attempt failed; the synced data stays as it
    /// was, so decisions go on with it.
    pub async fn record_directory_error(&self, directory_id: Uuid, error: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE directories SET last_error = $2, last_error_at = $3 WHERE id = $1")
            .bind(directory_id)
            .bind(error)
            .bind(at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Applies what a sync read, in one transaction (see the module docs).
    pub async fn apply_directory_sync(
        &self,
        directory_id: Uuid,
        batch: SyncBatch<'_>,
        now: DateTime<Utc>,
    ) -> Result<AppliedSync> {
        let mut tx = self.pool().begin().await?;
        let mut applied = AppliedSync::default();

        for p in batch.people {
            // A legacy DN belongs to one live person: a mailbox moved to
            // another account takes it along.
            if let Some(leg) = &p.legacy_exchange_dn {
                sqlx::query(
                    "UPDATE people SET legacy_exchange_dn = NULL
                     WHERE lower(legacy_exchange_dn) = lower($1) AND deleted_at IS NULL
                       AND NOT (directory_id = $2 AND object_guid = $3)",
                )
                .bind(leg)
                .bind(directory_id)
                .bind(p.object_guid)
                .execute(&mut *tx)
                .await?;
            }
            let id: Uuid = sqlx::query_scalar(
                "INSERT INTO people (directory_id, object_guid, sam_account_name, user_principal_name, display_name,
                                     department, legacy_exchange_dn, disabled, deleted_at, usn_changed, synced_at,
                                     distinguished_name, manager_dn)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10, $11, $12)
                 ON CONFLICT (directory_id, object_guid) DO UPDATE SET
                     sam_account_name = EXCLUDED.sam_account_name,
                     user_principal_name = EXCLUDED.user_principal_name,
                     display_name = EXCLUDED.display_name,
                     department = EXCLUDED.department,
                     legacy_exchange_dn = EXCLUDED.legacy_exchange_dn,
                     disabled = EXCLUDED.disabled,
                     deleted_at = NULL,
                     usn_changed = EXCLUDED.usn_changed,
                     synced_at = EXCLUDED.synced_at,
                     distinguished_name = EXCLUDED.distinguished_name,
                     manager_dn = EXCLUDED.manager_dn
                 RETURNING id",
            )
            .bind(directory_id)
            .bind(p.object_guid)
            .bind(&p.sam_account_name)
            .bind(&p.user_principal_name)
            .bind(&p.display_name)
            .bind(&p.department)
            .bind(&p.legacy_exchange_dn)
            .bind(p.disabled)
            .bind(p.usn_changed)
            .bind(now)
            .bind(&p.dn)
            .bind(&p.manager_dn)
            .fetch_one(&mut *tx)
            .await?;

            sqlx::query("DELETE FROM person_addresses WHERE person_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let addresses: Vec<&str> = p.addresses.iter().map(|a| a.address.as_str()).collect();
            let primaries: Vec<bool> = p.addresses.iter().map(|a| a.primary).collect();
            // An address resolves to one person: the latest holder wins, as in
            // Exchange when an alias moves from one mailbox to another.
            sqlx::query(
                "INSERT INTO person_addresses (address, person_id, is_primary)
                 SELECT a, $1, pr FROM UNNEST($2::text[], $3::bool[]) AS t(a, pr)
                 ON CONFLICT (address) DO UPDATE SET person_id = EXCLUDED.person_id, is_primary = EXCLUDED.is_primary",
            )
            .bind(id)
            .bind(&addresses)
            .bind(&primaries)
            .execute(&mut *tx)
            .await?;

            sqlx::query("DELETE FROM person_x500_addresses WHERE person_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO person_x500_addresses (legacy_dn, person_id)
                 SELECT DISTINCT x, $1 FROM UNNEST($2::text[]) AS t(x) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(&p.x500_addresses)
            .execute(&mut *tx)
            .await?;
            applied.people_written += 1;
        }

        let mut group_ids = Vec::with_capacity(batch.groups.len());
        for g in batch.groups {
            let id: Uuid = sqlx::query_scalar(
                "INSERT INTO groups (directory_id, object_guid, sam_account_name, name, distinguished_name,
                                     description, usn_changed, deleted_at, synced_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)
                 ON CONFLICT (directory_id, object_guid) DO UPDATE SET
                     sam_account_name = EXCLUDED.sam_account_name,
                     name = EXCLUDED.name,
                     distinguished_name = EXCLUDED.distinguished_name,
                     description = EXCLUDED.description,
                     usn_changed = EXCLUDED.usn_changed,
                     deleted_at = NULL,
                     synced_at = EXCLUDED.synced_at
                 RETURNING id",
            )
            .bind(directory_id)
            .bind(g.object_guid)
            .bind(&g.sam_account_name)
            .bind(&g.name)
            .bind(&g.dn)
            .bind(&g.description)
            .bind(g.usn_changed)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            group_ids.push(id);
            applied.groups_written += 1;
        }

        if batch.full {
            let seen: Vec<Uuid> = batch.people.iter().map(|p| p.object_guid).collect();
            let gone: Vec<Uuid> = sqlx::query_scalar(
                "UPDATE people SET deleted_at = $3
                 WHERE directory_id = $1 AND deleted_at IS NULL AND NOT (object_guid = ANY($2))
                 RETURNING id",
            )
            .bind(directory_id)
            .bind(&seen)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            applied.people_deleted = gone.len();
            sqlx::query("DELETE FROM group_members WHERE member_person_id = ANY($1)")
                .bind(&gone)
                .execute(&mut *tx)
                .await?;

            let seen: Vec<Uuid> = batch.groups.iter().map(|g| g.object_guid).collect();
            let gone: Vec<Uuid> = sqlx::query_scalar(
                "UPDATE groups SET deleted_at = $3
                 WHERE directory_id = $1 AND deleted_at IS NULL AND NOT (object_guid = ANY($2))
                 RETURNING id",
            )
            .bind(directory_id)
            .bind(&seen)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            applied.groups_deleted = gone.len();
            sqlx::query("DELETE FROM group_members WHERE group_id = ANY($1) OR member_group_id = ANY($1)")
                .bind(&gone)
                .execute(&mut *tx)
                .await?;
        }

        // Direct memberships of the groups read in this batch: only those can
        // have changed, because removing or adding a member changes the
        // group's own uSNChanged.
        for (g, id) in batch.groups.iter().zip(&group_ids) {
            sqlx::query("DELETE FROM group_members WHERE group_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO group_members (group_id, member_person_id)
                 SELECT $1, p.id FROM people p
                 WHERE p.directory_id = $2 AND p.deleted_at IS NULL
                   AND lower(p.distinguished_name) IN (SELECT lower(m) FROM UNNEST($3::text[]) AS t(m))
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(directory_id)
            .bind(&g.member_dns)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO group_members (group_id, member_group_id)
                 SELECT $1, sub.id FROM groups sub
                 WHERE sub.directory_id = $2 AND sub.deleted_at IS NULL
                   AND lower(sub.distinguished_name) IN (SELECT lower(m) FROM UNNEST($3::text[]) AS t(m))
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(directory_id)
            .bind(&g.member_dns)
            .execute(&mut *tx)
            .await?;
        }

        // Managers are resolved after everyone is written, since a manager
        // may come after their staff in the search results. Only the people
        // read in this batch: renaming a manager changes the DN in their
        // staff's `manager` values without changing the staff's uSNChanged, so
        // the stored manager_dn of staff not read again may be the old DN,
        // while their manager_id is still right.
        let written: Vec<Uuid> = batch.people.iter().map(|p| p.object_guid).collect();
        sqlx::query(
            "UPDATE people p SET manager_id = (
                 SELECT m.id FROM people m
                 WHERE m.directory_id = p.directory_id AND m.deleted_at IS NULL
                   AND lower(m.distinguished_name) = lower(p.manager_dn)
                 LIMIT 1)
             WHERE p.directory_id = $1 AND p.object_guid = ANY($2)",
        )
        .bind(directory_id)
        .bind(&written)
        .execute(&mut *tx)
        .await?;

        // Nested membership can only change when a group was read (its
        // members changed) or people or groups were deleted (full sync).
        if batch.full || !batch.groups.is_empty() {
            applied.transitive_memberships = rebuild_person_groups(&mut tx, directory_id).await?;
        }

        sqlx::query(
            "UPDATE directories SET
                 highest_usn = COALESCE($2, highest_usn),
                 usn_server = COALESCE($3, usn_server),
                 last_sync_at = $4,
                 last_full_sync_at = CASE WHEN $5 THEN $4 ELSE last_full_sync_at END
             WHERE id = $1",
        )
        .bind(directory_id)
        .bind(batch.highest_usn)
        .bind(batch.usn_server)
        .bind(now)
        .bind(batch.full)
        .execute(&mut *tx)
        .await?;

        tx.commit().await?;
        Ok(applied)
    }

    /// The person an organiser address stands for, among people not deleted.
    /// SMTP addresses match any alias; legacy DNs match the current one first,
    /// then former ones (X500). An ambiguous former DN resolves to nobody.
    pub async fn resolve_organiser(&self, address: &OrganiserAddress) -> Result<Option<PersonRef>> {
        let rows = match address {
            OrganiserAddress::Smtp(smtp) => {
                sqlx::query(&format!(
                    "SELECT {PERSON_COLUMNS} FROM person_addresses pa
                     JOIN people p ON p.id = pa.person_id JOIN directories d ON d.id = p.directory_id
                     WHERE pa.address = lower($1) AND p.deleted_at IS NULL"
                ))
                .bind(smtp)
                .fetch_all(self.pool())
                .await?
            }
            OrganiserAddress::LegacyDn(dn) => {
                let current = sqlx::query(&format!(
                    "SELECT {PERSON_COLUMNS} FROM people p JOIN directories d ON d.id = p.directory_id
                     WHERE lower(p.legacy_exchange_dn) = lower($1) AND p.deleted_at IS NULL"
                ))
                .bind(dn)
                .fetch_all(self.pool())
                .await?;
                if current.is_empty() {
                    sqlx::query(&format!(
                        "SELECT DISTINCT ON (p.id) {PERSON_COLUMNS} FROM person_x500_addresses x
                         JOIN people p ON p.id = x.person_id JOIN directories d ON d.id = p.directory_id
                         WHERE lower(x.legacy_dn) = lower($1) AND p.deleted_at IS NULL"
                    ))
                    .bind(dn)
                    .fetch_all(self.pool())
                    .await?
                } else {
                    current
                }
            }
        };
        match rows.as_slice() {
            [row] => Ok(Some(person_from_row(row)?)),
            _ => Ok(None),
        }
    }

    pub async fn person_by_guid(&self, directory_name: &str, object_guid: Uuid) -> Result<Option<PersonRef>> {
        let row = sqlx::query(&format!(
            "SELECT {PERSON_COLUMNS} FROM people p JOIN directories d ON d.id = p.directory_id
             WHERE d.name = $1 AND p.object_guid = $2"
        ))
        .bind(directory_name)
        .bind(object_guid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(person_from_row).transpose()
    }

    pub async fn person_by_account(&self, directory_name: &str, sam_account_name: &str) -> Result<Option<PersonRef>> {
        let row = sqlx::query(&format!(
            "SELECT {PERSON_COLUMNS} FROM people p JOIN directories d ON d.id = p.directory_id
             WHERE d.name = $1 AND lower(p.sam_account_name) = lower($2) AND p.deleted_at IS NULL"
        ))
        .bind(directory_name)
        .bind(sam_account_name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(person_from_row).transpose()
    }

    /// A synced group by its objectGUID, e.g. one picked in the live search.
    pub async fn group_by_guid(&self, directory_name: &str, object_guid: Uuid) -> Result<Option<GroupRef>> {
        let row = sqlx::query(
            "SELECT g.id, g.directory_id, g.object_guid, g.sam_account_name, g.name, g.distinguished_name
             FROM groups g JOIN directories d ON d.id = g.directory_id
             WHERE d.name = $1 AND g.object_guid = $2 AND g.deleted_at IS NULL",
        )
        .bind(directory_name)
        .bind(object_guid)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| group_from_row(&row)).transpose()
    }

    pub async fn group_by_account(&self, directory_name: &str, sam_account_name: &str) -> Result<Option<GroupRef>> {
        let row = sqlx::query(
            "SELECT g.id, g.directory_id, g.object_guid, g.sam_account_name, g.name, g.distinguished_name
             FROM groups g JOIN directories d ON d.id = g.directory_id
             WHERE d.name = $1 AND lower(g.sam_account_name) = lower($2) AND g.deleted_at IS NULL",
        )
        .bind(directory_name)
        .bind(sam_account_name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| group_from_row(&row)).transpose()
    }

    /// The groups a person belongs to, nesting resolved.
    pub async fn groups_of_person(&self, person_id: Uuid) -> Result<Vec<GroupRef>> {
        let rows = sqlx::query(
            "SELECT g.id, g.directory_id, g.object_guid, g.sam_account_name, g.name, g.distinguished_name
             FROM person_groups pg JOIN groups g ON g.id = pg.group_id
             WHERE pg.person_id = $1 AND g.deleted_at IS NULL ORDER BY g.name",
        )
        .bind(person_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(group_from_row).collect()
    }

    pub async fn create_grant(&self, new: &NewGrant) -> Result<Uuid> {
        let (person, group) = match new.subject {
            GrantSubject::Person(p) => (Some(p), None),
            GrantSubject::Group(g) => (None, Some(g)),
        };
        let (kind, org, site, rtype, res) = match new.scope {
            GrantScope::Global => ("global", None, None, None, None),
            GrantScope::Organisation(o) => ("organisation", Some(o), None, None, None),
            GrantScope::Site(s) => ("site", None, Some(s), None, None),
            GrantScope::SiteType { site, resource_type } => ("site_type", None, Some(site), Some(resource_type), None),
            GrantScope::ResourceType(t) => ("resource_type", None, None, Some(t), None),
            GrantScope::Resource(r) => ("resource", None, None, None, Some(r)),
        };
        let id = sqlx::query_scalar(
            "INSERT INTO grants (subject_person_id, subject_group_id, scope_kind, organisation_id, site_id,
                                 resource_type_id, resource_id, role, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(person)
        .bind(group)
        .bind(kind)
        .bind(org)
        .bind(site)
        .bind(rtype)
        .bind(res)
        .bind(new.role.as_str())
        .bind(new.created_by)
        .fetch_one(self.pool())
        .await?;
        Ok(id)
    }

    /// Every grant, for the admin page.
    pub async fn list_grants(&self) -> Result<Vec<Grant>> {
        let rows = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants g ORDER BY g.created_at, g.id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// Deletes a grant; false when there was none with that id.
    pub async fn delete_grant(&self, id: Uuid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM grants WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The grants that apply to a person: their own and those of every group
    /// they belong to, nesting included. A deleted person gets none.
    pub async fn grants_for_person(&self, person_id: Uuid) -> Result<Vec<Grant>> {
        let rows = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants g
             JOIN people p ON p.id = $1 AND p.deleted_at IS NULL
             WHERE g.subject_person_id = p.id
                OR g.subject_group_id IN (
                    SELECT pg.group_id FROM person_groups pg JOIN groups gr ON gr.id = pg.group_id
                    WHERE pg.person_id = p.id AND gr.deleted_at IS NULL)
             ORDER BY g.created_at, g.id"
        ))
        .bind(person_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// Bookings still to come whose organiser is disabled or deleted.
    pub async fn future_bookings_of_inactive_people(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<InactiveOrganiserBooking>> {
        let rows = sqlx::query(
            "SELECT b.id, b.resource_id, b.uid, b.subject, p.id AS person_id, p.display_name, p.disabled,
                    p.deleted_at, min(lower(o.period)) AS next_start
             FROM bookings b
             JOIN people p ON p.id = b.organiser_person_id
             JOIN occurrences o ON o.booking_id = b.id AND o.status IN ('accepted', 'held') AND upper(o.period) > $1
             WHERE (p.disabled OR p.deleted_at IS NOT NULL)
               AND b.status IN ('accepted', 'partially_accepted', 'held')
             GROUP BY b.id, p.id
             ORDER BY next_start, b.id",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InactiveOrganiserBooking {
                    booking_id: r.try_get("id")?,
                    resource_id: r.try_get("resource_id")?,
                    uid: r.try_get("uid")?,
                    subject: r.try_get("subject")?,
                    person_id: r.try_get("person_id")?,
                    display_name: r.try_get("display_name")?,
                    disabled: r.try_get("disabled")?,
                    deleted_at: r.try_get("deleted_at")?,
                    next_start: r.try_get("next_start")?,
                })
            })
            .collect()
    }

    /// Every directory with its counts, by name.
    pub async fn directory_counts(&self) -> Result<Vec<DirectoryCounts>> {
        let rows = sqlx::query(
            "SELECT d.id, d.name, d.highest_usn, d.usn_server, d.last_full_sync_at, d.last_sync_at,
                    d.last_error, d.last_error_at,
                    (SELECT count(*) FROM people p WHERE p.directory_id = d.id AND p.deleted_at IS NULL AND NOT p.disabled) AS active,
                    (SELECT count(*) FROM people p WHERE p.directory_id = d.id AND p.deleted_at IS NULL AND p.disabled) AS disabled,
                    (SELECT count(*) FROM people p WHERE p.directory_id = d.id AND p.deleted_at IS NOT NULL) AS deleted,
                    (SELECT count(*) FROM groups g WHERE g.directory_id = d.id AND g.deleted_at IS NULL) AS groups,
                    (SELECT count(*) FROM people p WHERE p.directory_id = d.id AND p.deleted_at IS NULL
                        AND p.licence_problem IS NOT NULL) AS licence_problems
             FROM directories d ORDER BY d.name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DirectoryCounts {
                    directory: directory_from_row(r)?,
                    people_active: r.try_get("active")?,
                    people_disabled: r.try_get("disabled")?,
                    people_deleted: r.try_get("deleted")?,
                    groups: r.try_get("groups")?,
                    licence_problems: r.try_get("licence_problems")?,
                })
            })
            .collect()
    }
}

fn group_from_row(row: &PgRow) -> Result<GroupRef> {
    Ok(GroupRef {
        id: row.try_get("id")?,
        directory_id: row.try_get("directory_id")?,
        object_guid: row.try_get("object_guid")?,
        sam_account_name: row.try_get("sam_account_name")?,
        name: row.try_get("name")?,
        distinguished_name: row.try_get("distinguished_name")?,
    })
}

/// Rebuilds `person_groups` for one directory from `group_members`; returns
/// the number of rows written.
async fn rebuild_person_groups(tx: &mut sqlx::PgConnection, directory_id: Uuid) -> Result<usize> {
    let rows = sqlx::query(
        "SELECT gm.group_id, gm.member_person_id, gm.member_group_id
         FROM group_members gm JOIN groups g ON g.id = gm.group_id
         WHERE g.directory_id = $1 AND g.deleted_at IS NULL",
    )
    .bind(directory_id)
    .fetch_all(&mut *tx)
    .await?;
    let mut edges = Vec::with_capacity(rows.len());
    for r in &rows {
        let group: Uuid = r.try_get("group_id")?;
        let member = match (
            r.try_get::<Option<Uuid>, _>("member_person_id")?,
            r.try_get::<Option<Uuid>, _>("member_group_id")?,
        ) {
            (Some(p), _) => Member::Person(p),
            (None, Some(g)) => Member::Group(g),
            (None, None) => continue,
        };
        edges.push((group, member));
    }
    let closure: HashMap<Uuid, _> = transitive_groups(&edges);
    let wanted: HashSet<(Uuid, Uuid)> = closure
        .into_iter()
        .flat_map(|(person, groups)| groups.into_iter().map(move |g| (person, g)))
        .collect();
    // Only the difference is written: an incremental sync every few minutes
    // then costs a few rows, not the whole table.
    let existing: HashSet<(Uuid, Uuid)> = sqlx::query_as::<_, (Uuid, Uuid)>(
        "SELECT pg.person_id, pg.group_id FROM person_groups pg JOIN people p ON p.id = pg.person_id
         WHERE p.directory_id = $1",
    )
    .bind(directory_id)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let (stale_people, stale_groups): (Vec<Uuid>, Vec<Uuid>) = existing.difference(&wanted).copied().unzip();
    let (new_people, new_groups): (Vec<Uuid>, Vec<Uuid>) = wanted.difference(&existing).copied().unzip();
    sqlx::query(
        "DELETE FROM person_groups pg USING UNNEST($1::uuid[], $2::uuid[]) AS t(p, g)
         WHERE pg.person_id = t.p AND pg.group_id = t.g",
    )
    .bind(&stale_people)
    .bind(&stale_groups)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO person_groups (person_id, group_id) SELECT * FROM UNNEST($1::uuid[], $2::uuid[])")
        .bind(&new_people)
        .bind(&new_groups)
        .execute(&mut *tx)
        .await?;
    Ok(wanted.len())
}
