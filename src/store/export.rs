//! Reading and loading whole tables, for `resa export` and `resa import`.
//!
//! Rows travel as PostgreSQL's own JSON rendering of each row
//! (`row_to_json`), read back with `json_populate_recordset`, so every column
//! type (ranges, arrays, JSONB, bytea) round-trips exactly. The session runs in
//! UTC so timestamps are written the same way whatever the server's setting.

use super::{Result, Store, StoreError};
use futures_util::TryStreamExt;
use sqlx::{Acquire, Row};

/// Every exported table, parents before children, so an import in this order
/// satisfies the foreign keys.
pub const TABLES: &[&str] = &[
    "organisations",
    "sites",
    "resource_types",
    "attribute_definitions",
    "resources",
    "resource_attributes",
    "pool_members",
    "vehicles",
    "policies",
    "opening_hours",
    "holidays",
    "blackouts",
    "directories",
    "people",
    "person_addresses",
    "person_x500_addresses",
    "groups",
    "group_members",
    "person_groups",
    "grants",
    "circuits",
    "circuit_versions",
    "circuit_steps",
    "circuit_step_approvers",
    "bookings",
    "occurrences",
    "circuit_runs",
    "pool_assignments",
    "vehicle_alerts",
    "approval_requests",
    "approvals",
    "decisions",
    "audit_log",
    "outbox",
    "mailbox_sync",
    "calendar_drift",
    "trip_details",
    "checkouts",
    "damage_photos",
    "message_templates",
    "territory_communes",
];

/// Exported tables that a migration fills with defaults (the territory's
/// communes): a freshly migrated database is still empty for an import, and
/// the import replaces those rows with the exported ones.
pub const SEEDED: &[&str] = &["territory_communes"];

/// Tables deliberately left out: runtime state with no meaning elsewhere
/// (running instances; the site's public address, which the daemon writes
/// from its configuration at start), and secrets' hashes (web sessions,
/// single-use approval links) that must not leave the system.
pub const NOT_EXPORTED: &[&str] = &[
    "instances",
    "vehicle_settings",
    "web_sessions",
    "approval_links",
    "_sqlx_migrations",
];

/// Tables derived from the others and rebuilt on import, so not exported:
/// the reports' rollup and its list of days to recompute.
pub const DERIVED: &[&str] = &[
    "report_days",
    "report_day_reasons",
    "report_day_orgs",
    "report_months",
    "report_org_months",
    "report_dirty",
];

/// One column as the JSON Schema describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// PostgreSQL's type name (`uuid`, `tstzrange`, `_text` for text[], …).
    pub udt_name: String,
    pub nullable: bool,
}

fn checked(table: &str) -> Result<&str> {
    if TABLES.contains(&table) {
        Ok(table)
    } else {
        Err(StoreError::Invalid(format!("unknown table {table}")))
    }
}

impl Store {
    /// The tables of the database, to check the export list is complete.
    pub async fn table_names(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
        )
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn columns(&self, table: &str) -> Result<Vec<Column>> {
        let rows = sqlx::query(
            "SELECT column_name::text AS name, udt_name::text AS udt, is_nullable = 'YES' AS nullable
             FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1
             ORDER BY ordinal_position",
        )
        .bind(checked(table)?)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Column {
                    name: r.try_get("name")?,
                    udt_name: r.try_get("udt")?,
                    nullable: r.try_get("nullable")?,
                })
            })
            .collect()
    }

    /// The primary key columns, or all columns for a table without one, so
    /// rows always come out in the same order.
    async fn order_columns(&self, table: &str) -> Result<Vec<String>> {
        let pk: Vec<String> = sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = $1::regclass AND i.indisprimary
             ORDER BY array_position(i.indkey, a.attnum)",
        )
        .bind(checked(table)?)
        .fetch_all(self.pool())
        .await?;
        if !pk.is_empty() {
            return Ok(pk);
        }
        Ok(self.columns(table).await?.into_iter().map(|c| c.name).collect())
    }

    /// Streams each row of `table` as one line of JSON, in key order.
    pub async fn for_each_row_json(
        &self,
        table: &str,
        mut each: impl FnMut(&str) -> std::io::Result<()>,
    ) -> Result<u64> {
        let order = self.order_columns(table).await?;
        let order_by = order
            .iter()
            .map(|c| format!("t.\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut conn = self.pool().acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("SET LOCAL TIME ZONE 'UTC'").execute(&mut *tx).await?;
        // The table name comes from the fixed list above, never from input.
        let sql = format!(
            "SELECT row_to_json(t)::text FROM \"{}\" t ORDER BY {order_by}",
            checked(table)?
        );
        let mut rows = sqlx::query_scalar::<_, String>(&sql).fetch(&mut *tx);
        let mut n = 0;
        while let Some(line) = rows.try_next().await? {
            each(&line).map_err(|e| StoreError::Invalid(format!("writing {table}: {e}")))?;
            n += 1;
        }
        drop(rows);
        tx.commit().await?;
        Ok(n)
    }

    /// `table` as CSV with a header line, in key order.
    pub async fn table_csv(&self, table: &str) -> Result<Vec<u8>> {
        let order = self.order_columns(table).await?;
        let order_by = order.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
        let mut conn = self.pool().acquire().await?;
        sqlx::query("SET TIME ZONE 'UTC'").execute(&mut *conn).await?;
        let sql = format!(
            "COPY (SELECT * FROM \"{}\" ORDER BY {order_by}) TO STDOUT WITH (FORMAT csv, HEADER true)",
            checked(table)?
        );
        let mut stream = conn.copy_out_raw(&sql).await?;
        let mut out = Vec::new();
        while let Some(chunk) = stream.try_next().await? {
            out.extend_from_slice(&chunk);
        }
        drop(stream);
        sqlx::query("RESET TIME ZONE").execute(&mut *conn).await?;
        Ok(out)
    }

    /// Whether every exported table is empty (an import needs that).
    pub async fn is_empty_for_import(&self) -> Result<Option<String>> {
        for table in TABLES.iter().filter(|t| !SEEDED.contains(t)) {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM \"{table}\")");
            let any: bool = sqlx::query_scalar(&sql).fetch_one(self.pool()).await?;
            if any {
                return Ok(Some((*table).to_owned()));
            }
        }
        Ok(None)
    }

    /// Removes the default rows of a [`SEEDED`] table before an import loads
    /// the exported ones.
    pub async fn clear_seeded(&self, tx: &mut sqlx::PgConnection, table: &str) -> Result<()> {
        if SEEDED.contains(&table) {
            sqlx::query(&format!("DELETE FROM \"{}\"", checked(table)?))
                .execute(tx)
                .await?;
        }
        Ok(())
    }

    /// Loads rows (each a JSON object as written by the export) into `table`.
    /// `people.manager_id` points into the same table, so it is set in a
    /// second pass by [`Store::import_people_managers`].
    pub async fn import_rows(&self, tx: &mut sqlx::PgConnection, table: &str, rows_json: &str) -> Result<u64> {
        let table = checked(table)?;
        let sql = if table == "people" {
            "INSERT INTO people SELECT (r).* FROM (
                 SELECT jsonb_populate_record(NULL::people, j - 'manager_id') AS r
                 FROM jsonb_array_elements($1::jsonb) j) x"
                .to_owned()
        } else {
            format!("INSERT INTO \"{table}\" SELECT * FROM json_populate_recordset(NULL::\"{table}\", $1::json)")
        };
        let done = sqlx::query(&sql).bind(rows_json).execute(&mut *tx).await?;
        Ok(done.rows_affected())
    }

    /// Sets `people.manager_id` from the exported rows.
    pub async fn import_people_managers(&self, tx: &mut sqlx::PgConnection, rows_json: &str) -> Result<()> {
        sqlx::query(
            "UPDATE people p SET manager_id = (j->>'manager_id')::uuid
             FROM jsonb_array_elements($1::jsonb) j
             WHERE p.id = (j->>'id')::uuid AND j->>'manager_id' IS NOT NULL",
        )
        .bind(rows_json)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Moves each serial column's sequence past the imported ids.
    pub async fn reset_sequences(&self, tx: &mut sqlx::PgConnection) -> Result<()> {
        let serials = sqlx::query(
            "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns
             WHERE table_schema = 'public' AND column_default LIKE 'nextval(%'",
        )
        .fetch_all(&mut *tx)
        .await?;
        for r in serials {
            let t: String = r.try_get("t")?;
            let c: String = r.try_get("c")?;
            let Ok(t) = checked(&t) else { continue };
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('\"{t}\"', '{c}'), coalesce((SELECT max(\"{c}\") FROM \"{t}\"), 0) + 1, false)"
            );
            sqlx::query(&sql).execute(&mut *tx).await?;
        }
        Ok(())
    }
}

impl Store {
    /// Every resource with the slots it holds, for the iCalendar export.
    pub async fn calendars(&self) -> Result<Vec<crate::reversibility::Calendar>> {
        use crate::reversibility::{Calendar, CalendarEvent};
        let resources = sqlx::query("SELECT id, mailbox_smtp, name FROM resources ORDER BY mailbox_smtp")
            .fetch_all(self.pool())
            .await?;
        let mut out = Vec::with_capacity(resources.len());
        for r in resources {
            let id: uuid::Uuid = r.try_get("id")?;
            let rows = sqlx::query(
                "SELECT b.uid, o.original_start, lower(o.period) AS s, upper(o.period) AS e, b.subject,
                        b.organiser_address, o.status, b.updated_at
                 FROM occurrences o JOIN bookings b ON b.id = o.booking_id
                 WHERE o.resource_id = $1 AND o.status IN ('accepted', 'held')
                 ORDER BY lower(o.period), b.uid",
            )
            .bind(id)
            .fetch_all(self.pool())
            .await?;
            let events = rows
                .into_iter()
                .map(|e| {
                    Ok(CalendarEvent {
                        uid: e.try_get("uid")?,
                        original_start: e.try_get("original_start")?,
                        start: e.try_get("s")?,
                        end: e.try_get("e")?,
                        summary: e.try_get("subject")?,
                        organiser: e.try_get("organiser_address")?,
                        held: e.try_get::<String, _>("status")? == "held",
                        updated: e.try_get("updated_at")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            out.push(Calendar {
                mailbox: r.try_get("mailbox_smtp")?,
                name: r.try_get("name")?,
                events,
            });
        }
        Ok(out)
    }
}
