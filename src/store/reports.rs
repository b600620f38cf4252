//! The statements behind the reports: usage and occupancy, the weekday × hour
//! heat map, unmet demand, approval delays, capacity fit, lead time,
//! cancellations and usage by the organiser's organisation.
//!
//! Every query takes the same [`ReportFilter`] (a half-open date range and an
//! optional organisation, site, resource type, resource, or list of resources
//! the reader may see) and returns plain rows; `crate::reports` turns them into
//! tables, charts and CSV. Occurrences count by the part of them that falls in
//! the range; decisions count by when they were taken. Only accepted
//! occurrences count as use: held ones are not yet granted, cancelled and
//! released ones freed their slot.
//!
//! [`Store::generate_dataset`] writes a realistic data set of any size
//! straight in the database (with `generate_series`), for the benchmark.

use super::{Result, Store};
use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

/// Which bookings a report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFilter {
    pub from: DateTime<Utc>,
    /// Exclusive.
    pub to: DateTime<Utc>,
    pub organisation_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub resource_type_id: Option<Uuid>,
    pub resource_id: Option<Uuid>,
    /// The resources the reader may see (a manager's), `None` for all.
    pub visible: Option<Vec<Uuid>>,
}

impl ReportFilter {
    /// Every resource over `[from, to)`.
    pub fn range(from: DateTime<Utc>, to: DateTime<Utc>) -> ReportFilter {
        ReportFilter {
            from,
            to,
            organisation_id: None,
            site_id: None,
            resource_type_id: None,
            resource_id: None,
            visible: None,
        }
    }
}

/// The resources a filter selects, as a derived table (not a CTE, which would
/// keep PostgreSQL from scanning occurrences in parallel); binds $3 to $7.
const SCOPE: &str = "(
    SELECT r.id, r.name, r.capacity, s.name AS site, s.time_zone, o.name AS organisation,
           t.name_fr AS type_fr, t.name_en AS type_en, t.category
    FROM resources r
    JOIN sites s ON s.id = r.site_id
    JOIN organisations o ON o.id = s.organisation_id
    JOIN resource_types t ON t.id = r.resource_type_id
    WHERE ($3::uuid IS NULL OR s.organisation_id = $3)
      AND ($4::uuid IS NULL OR r.site_id = $4)
      AND ($5::uuid IS NULL OR r.resource_type_id = $5)
      AND ($6::uuid IS NULL OR r.id = $6)
      AND ($7::uuid[] IS NULL OR r.id = ANY($7))
)";

fn scoped<'q>(
    sql: &'q str,
    f: &'q ReportFilter,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sql)
        .bind(f.from)
        .bind(f.to)
        .bind(f.organisation_id)
        .bind(f.site_id)
        .bind(f.resource_type_id)
        .bind(f.resource_id)
        .bind(f.visible.as_deref())
}

/// One resource's use over the range.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceUsage {
    pub resource_id: Uuid,
    pub name: String,
    pub site: String,
    pub organisation: String,
    pub type_fr: String,
    pub type_en: String,
    pub category: String,
    pub capacity: Option<i32>,
    pub time_zone: String,
    /// Seconds of accepted occurrences inside the range.
    pub booked_seconds: f64,
    pub accepted: i64,
    pub cancelled: i64,
    /// Released because nobody checked in (no-shows).
    pub released: i64,
}

/// Booked seconds in one cell of the weekday × hour grid (local time of the
/// resource's site; ISO weekday 1 = Monday).
#[derive(Debug, Clone, PartialEq)]
pub struct HeatCell {
    pub weekday: u32,
    pub hour: u32,
    pub booked_seconds: f64,
}

/// How many refused requests gave a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonCount {
    pub code: String,
    pub requests: i64,
}

/// Unmet demand on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclinesOfResource {
    pub resource_id: Uuid,
    pub name: String,
    /// Requests declined by the rules.
    pub declined: i64,
    /// Requests accepted only in part (some occurrences declined).
    pub partially: i64,
    /// Held requests refused by an approver.
    pub refused: i64,
}

/// Requests held for approval and how long the approvers took.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalStats {
    pub held: i64,
    pub approved: i64,
    pub refused: i64,
    /// Still waiting (or withdrawn) at the time of the report.
    pub undecided: i64,
    pub mean_seconds: Option<f64>,
    pub median_seconds: Option<f64>,
    pub max_seconds: Option<f64>,
}

/// Attendees against capacity on one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityOfResource {
    pub resource_id: Uuid,
    pub name: String,
    pub capacity: i32,
    pub occurrences: i64,
    pub mean_attendees: f64,
    /// Occurrences by fill: up to 25 %, 50 %, 75 %, 100 %, over capacity.
    pub buckets: [i64; 5],
}

/// How long before the start requests came.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadTime {
    pub occurrences: i64,
    /// Under 1 day, 1 to 7 days, 7 to 30 days, 30 days and more.
    pub buckets: [i64; 4],
    pub median_seconds: Option<f64>,
    pub mean_seconds: Option<f64>,
}

/// The use made by one organisation's agents (the cost-sharing key).
#[derive(Debug, Clone, PartialEq)]
pub struct OrganisationUsage {
    /// `None` for organisers outside both directories.
    pub organisation_id: Option<Uuid>,
    pub name: Option<String>,
    pub booked_seconds: f64,
    pub occurrences: i64,
    pub bookings: i64,
    /// Kilometres driven, from the vehicles' check-out and return.
    pub kilometres: i64,
}

/// One choice of a filter list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterChoice {
    pub id: Uuid,
    pub name: String,
}

/// What the filter form offers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterChoices {
    pub organisations: Vec<FilterChoice>,
    pub sites: Vec<FilterChoice>,
    pub types_fr: Vec<FilterChoice>,
    pub types_en: Vec<FilterChoice>,
    pub resources: Vec<FilterChoice>,
}

impl Store {
    /// Use, cancellations and no-shows of every selected resource, including
    /// the unused ones.
    pub async fn report_usage(&self, f: &ReportFilter) -> Result<Vec<ResourceUsage>> {
        let sql = format!(
            "
            SELECT sc.id, sc.name, sc.site, sc.organisation, sc.type_fr, sc.type_en, sc.category, sc.capacity,
                   sc.time_zone, coalesce(u.seconds, 0)::float8 AS seconds, coalesce(u.accepted, 0) AS accepted,
                   coalesce(u.cancelled, 0) AS cancelled, coalesce(u.released, 0) AS released
            FROM {SCOPE} sc
            LEFT JOIN (
                SELECT o.resource_id,
                       sum(date_part('epoch', least(upper(o.period), $2) - greatest(lower(o.period), $1)))
                           FILTER (WHERE o.status = 'accepted') AS seconds,
                       count(*) FILTER (WHERE o.status = 'accepted') AS accepted,
                       count(*) FILTER (WHERE o.status = 'cancelled') AS cancelled,
                       count(*) FILTER (WHERE o.status = 'released') AS released
                FROM occurrences o
                WHERE o.period && tstzrange($1, $2) AND o.resource_id IN (SELECT id FROM {SCOPE} s0)
                  AND o.status IN ('accepted', 'cancelled', 'released')
                GROUP BY o.resource_id
            ) u ON u.resource_id = sc.id
            ORDER BY sc.name, sc.id"
        );
        let rows = scoped(&sql, f).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(ResourceUsage {
                    resource_id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    site: r.try_get("site")?,
                    organisation: r.try_get("organisation")?,
                    type_fr: r.try_get("type_fr")?,
                    type_en: r.try_get("type_en")?,
                    category: r.try_get("category")?,
                    capacity: r.try_get("capacity")?,
                    time_zone: r.try_get("time_zone")?,
                    booked_seconds: r.try_get("seconds")?,
                    accepted: r.try_get("accepted")?,
                    cancelled: r.try_get("cancelled")?,
                    released: r.try_get("released")?,
                })
            })
            .collect()
    }

    /// Booked seconds by weekday and hour, in each site's local time; only
    /// the cells with some use.
    ///
    /// Occurrences are first counted by start and length (meetings start on
    /// round times and last round durations, so a million of them make some
    /// tens of thousands of groups), only then placed in the local week (in
    /// seconds from Monday 00:00) and spread over the hours they cover,
    /// wrapping from Sunday night to Monday: converting time zones row by
    /// row would cost more than the whole rest of the query.
    pub async fn report_heat_map(&self, f: &ReportFilter) -> Result<Vec<HeatCell>> {
        let sql = format!(
            "
            WITH starts AS (
                SELECT sc.time_zone, greatest(lower(o.period), $1) AS s,
                       date_part('epoch', least(upper(o.period), $2) - greatest(lower(o.period), $1))::int8 AS len,
                       count(*) AS n
                FROM occurrences o JOIN {SCOPE} sc ON sc.id = o.resource_id
                WHERE o.status = 'accepted' AND o.period && tstzrange($1, $2)
                GROUP BY 1, 2, 3
            ),
            slots AS (
                SELECT ((date_part('isodow', s AT TIME ZONE time_zone) - 1) * 86400
                        + date_part('epoch', (s AT TIME ZONE time_zone)::time))::int8 AS ws, len, sum(n) AS n
                FROM starts GROUP BY 1, 2
            )
            SELECT (k % 168) / 24 + 1 AS weekday, k % 24 AS hour,
                   sum(n * (least((k + 1) * 3600, ws + len) - greatest(k * 3600, ws)))::float8 AS seconds
            FROM slots CROSS JOIN LATERAL generate_series(ws / 3600, (ws + len - 1) / 3600) k
            WHERE len > 0
            GROUP BY 1, 2
            ORDER BY 1, 2"
        );
        let rows = scoped(&sql, f).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(HeatCell {
                    weekday: u32::try_from(r.try_get::<i64, _>("weekday")?).unwrap_or(0),
                    hour: u32::try_from(r.try_get::<i64, _>("hour")?).unwrap_or(0),
                    booked_seconds: r.try_get("seconds")?,
                })
            })
            .collect()
    }

    /// Declined and partially accepted requests by reason code (a request
    /// counts once per reason it was given), most frequent first.
    pub async fn report_decline_reasons(&self, f: &ReportFilter) -> Result<Vec<ReasonCount>> {
        let sql = format!(
            "WITH refused AS (
                SELECT d.id, d.reasons FROM decisions d
                WHERE d.outcome IN ('decline', 'accept_partially') AND d.decided_at >= $1 AND d.decided_at < $2
                  AND d.resource_id IN (SELECT id FROM {SCOPE} s0)
            ),
            codes AS (
                SELECT rf.id, r->>'code' AS code FROM refused rf, jsonb_array_elements(rf.reasons) r
                WHERE r ? 'code'
                UNION ALL
                SELECT rf.id, rr->>'code' FROM refused rf, jsonb_array_elements(rf.reasons) r,
                       jsonb_array_elements(CASE WHEN jsonb_typeof(r->'declined_occurrences') = 'array'
                                                 THEN r->'declined_occurrences' ELSE '[]' END) x,
                       jsonb_array_elements(CASE WHEN jsonb_typeof(x->'reasons') = 'array'
                                                 THEN x->'reasons' ELSE '[]' END) rr
                WHERE rr ? 'code'
            )
            SELECT code, count(DISTINCT id) AS n FROM codes GROUP BY code ORDER BY n DESC, code"
        );
        let rows = scoped(&sql, f).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(ReasonCount {
                    code: r.try_get("code")?,
                    requests: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// Unmet demand by resource: only the resources with some, most first.
    pub async fn report_declines_by_resource(&self, f: &ReportFilter) -> Result<Vec<DeclinesOfResource>> {
        let sql = format!(
            "
            SELECT sc.id, sc.name,
                   count(*) FILTER (WHERE d.outcome = 'decline') AS declined,
                   count(*) FILTER (WHERE d.outcome = 'accept_partially') AS partially,
                   count(*) FILTER (WHERE d.outcome = 'refuse') AS refused
            FROM decisions d JOIN {SCOPE} sc ON sc.id = d.resource_id
            WHERE d.outcome IN ('decline', 'accept_partially', 'refuse') AND d.decided_at >= $1 AND d.decided_at < $2
            GROUP BY sc.id, sc.name
            ORDER BY count(*) DESC, sc.name, sc.id"
        );
        let rows = scoped(&sql, f).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(DeclinesOfResource {
                    resource_id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    declined: r.try_get("declined")?,
                    partially: r.try_get("partially")?,
                    refused: r.try_get("refused")?,
                })
            })
            .collect()
    }

    /// Requests held in the range, and the time from the hold to the
    /// approver's answer (the first approval or refusal that followed).
    pub async fn report_approvals(&self, f: &ReportFilter) -> Result<ApprovalStats> {
        let sql = format!(
            "WITH held AS (
                SELECT h.id, h.decided_at, a.outcome, date_part('epoch', a.decided_at - h.decided_at)::float8 AS waited
                FROM decisions h
                LEFT JOIN LATERAL (
                    SELECT d2.outcome, d2.decided_at FROM decisions d2
                    WHERE d2.booking_id = h.booking_id AND d2.id > h.id AND d2.outcome IN ('approve', 'refuse')
                    ORDER BY d2.id LIMIT 1
                ) a ON true
                WHERE h.outcome = 'hold' AND h.decided_at >= $1 AND h.decided_at < $2
                  AND h.resource_id IN (SELECT id FROM {SCOPE} s0)
            )
            SELECT count(*) AS held,
                   count(*) FILTER (WHERE outcome = 'approve') AS approved,
                   count(*) FILTER (WHERE outcome = 'refuse') AS refused,
                   count(*) FILTER (WHERE outcome IS NULL) AS undecided,
                   avg(waited) AS mean, percentile_cont(0.5) WITHIN GROUP (ORDER BY waited) AS median,
                   max(waited) AS max
            FROM held"
        );
        let r = scoped(&sql, f).fetch_one(self.pool()).await?;
        Ok(ApprovalStats {
            held: r.try_get("held")?,
            approved: r.try_get("approved")?,
            refused: r.try_get("refused")?,
            undecided: r.try_get("undecided")?,
            mean_seconds: r.try_get("mean")?,
            median_seconds: r.try_get("median")?,
            max_seconds: r.try_get("max")?,
        })
    }

    /// Attendees against capacity, per resource with a capacity, over the
    /// accepted occurrences whose attendee count is known.
    pub async fn report_capacity(&self, f: &ReportFilter) -> Result<Vec<CapacityOfResource>> {
        let sql = format!(
            "
            SELECT sc.id, sc.name, sc.capacity, count(*) AS n, avg(b.attendee_count)::float8 AS mean,
                   count(*) FILTER (WHERE b.attendee_count * 4 <= sc.capacity) AS b1,
                   count(*) FILTER (WHERE b.attendee_count * 4 > sc.capacity AND b.attendee_count * 2 <= sc.capacity) AS b2,
                   count(*) FILTER (WHERE b.attendee_count * 2 > sc.capacity AND b.attendee_count * 4 <= sc.capacity * 3) AS b3,
                   count(*) FILTER (WHERE b.attendee_count * 4 > sc.capacity * 3 AND b.attendee_count <= sc.capacity) AS b4,
                   count(*) FILTER (WHERE b.attendee_count > sc.capacity) AS b5
            FROM occurrences o
            JOIN {SCOPE} sc ON sc.id = o.resource_id
            JOIN bookings b ON b.id = o.booking_id
            WHERE o.status = 'accepted' AND o.period && tstzrange($1, $2)
              AND sc.capacity > 0 AND b.attendee_count IS NOT NULL
            GROUP BY sc.id, sc.name, sc.capacity
            ORDER BY sc.name, sc.id"
        );
        let rows = scoped(&sql, f).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(CapacityOfResource {
                    resource_id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    capacity: r.try_get("capacity")?,
                    occurrences: r.try_get("n")?,
                    mean_attendees: r.try_get("mean")?,
                    buckets: [
                        r.try_get("b1")?,
                        r.try_get("b2")?,
                        r.try_get("b3")?,
                        r.try_get("b4")?,
                        r.try_get("b5")?,
                    ],
                })
            })
            .collect()
    }

    /// Time from the request to the start of each accepted occurrence in the
    /// range.
    pub async fn report_lead_time(&self, f: &ReportFilter) -> Result<LeadTime> {
        let sql = format!(
            "
            SELECT count(*) AS n,
                   count(*) FILTER (WHERE lead < 86400) AS b1,
                   count(*) FILTER (WHERE lead >= 86400 AND lead < 7 * 86400) AS b2,
                   count(*) FILTER (WHERE lead >= 7 * 86400 AND lead < 30 * 86400) AS b3,
                   count(*) FILTER (WHERE lead >= 30 * 86400) AS b4,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY lead) AS median, avg(lead) AS mean
            FROM (
                SELECT greatest(date_part('epoch', lower(o.period) - b.requested_at), 0)::float8 AS lead
                FROM occurrences o JOIN bookings b ON b.id = o.booking_id
                WHERE o.status = 'accepted' AND o.period && tstzrange($1, $2)
                  AND o.resource_id IN (SELECT id FROM {SCOPE} s0)
            ) x"
        );
        let r = scoped(&sql, f).fetch_one(self.pool()).await?;
        Ok(LeadTime {
            occurrences: r.try_get("n")?,
            buckets: [r.try_get("b1")?, r.try_get("b2")?, r.try_get("b3")?, r.try_get("b4")?],
            median_seconds: r.try_get("median")?,
            mean_seconds: r.try_get("mean")?,
        })
    }

    /// Use by the organisation of the organiser (through their directory, or
    /// as kept when the booking was anonymised), largest first.
    pub async fn report_organisations(&self, f: &ReportFilter) -> Result<Vec<OrganisationUsage>> {
        let sql = format!(
            "
            SELECT og.id, og.name,
                   sum(date_part('epoch', least(upper(o.period), $2) - greatest(lower(o.period), $1)))::float8
                       AS seconds,
                   count(*) AS n, count(DISTINCT o.booking_id) AS bookings,
                   coalesce(sum(c.odometer_in_km - c.odometer_out_km), 0)::int8 AS km
            FROM occurrences o
            JOIN bookings b ON b.id = o.booking_id
            LEFT JOIN people p ON p.id = b.organiser_person_id
            LEFT JOIN directories d ON d.id = p.directory_id
            LEFT JOIN organisations og ON og.id = coalesce(b.organiser_organisation_id, d.organisation_id)
            LEFT JOIN checkouts c ON c.occurrence_id = o.id
            WHERE o.status = 'accepted' AND o.period && tstzrange($1, $2)
              AND o.resource_id IN (SELECT id FROM {SCOPE} s0)
            GROUP BY og.id, og.name
            ORDER BY seconds DESC, og.name"
        );
        let rows = scoped(&sql, f).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(OrganisationUsage {
                    organisation_id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    booked_seconds: r.try_get("seconds")?,
                    occurrences: r.try_get("n")?,
                    bookings: r.try_get("bookings")?,
                    kilometres: r.try_get("km")?,
                })
            })
            .collect()
    }

    /// The organisations, sites, resource types and resources the filter
    /// form lists, limited to `visible` resources when given.
    pub async fn report_filter_choices(&self, visible: Option<&[Uuid]>) -> Result<FilterChoices> {
        let rows = sqlx::query(
            "SELECT r.id, r.name, s.id AS site_id, s.name AS site, o.id AS org_id, o.name AS org,
                    t.id AS type_id, t.name_fr, t.name_en
             FROM resources r JOIN sites s ON s.id = r.site_id JOIN organisations o ON o.id = s.organisation_id
             JOIN resource_types t ON t.id = r.resource_type_id
             WHERE $1::uuid[] IS NULL OR r.id = ANY($1)
             ORDER BY r.name, r.id",
        )
        .bind(visible)
        .fetch_all(self.pool())
        .await?;
        let mut out = FilterChoices::default();
        let push = |list: &mut Vec<FilterChoice>, id: Uuid, name: String| {
            if !list.iter().any(|c| c.id == id) {
                list.push(FilterChoice { id, name });
            }
        };
        for r in &rows {
            push(&mut out.resources, r.try_get("id")?, r.try_get("name")?);
            push(&mut out.sites, r.try_get("site_id")?, r.try_get("site")?);
            push(&mut out.organisations, r.try_get("org_id")?, r.try_get("org")?);
            push(&mut out.types_fr, r.try_get("type_id")?, r.try_get("name_fr")?);
            push(&mut out.types_en, r.try_get("type_id")?, r.try_get("name_en")?);
        }
        for list in [
            &mut out.organisations,
            &mut out.sites,
            &mut out.types_fr,
            &mut out.types_en,
        ] {
            list.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(out)
    }
}

/// What [`Store::generate_dataset`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub resources: i64,
    pub people: i64,
    pub bookings: i64,
    pub decisions: i64,
}

/// The fixed catalogue of a generated data set: two organisations sharing
/// rooms on seven sites, cars, bicycles and equipment, like the customer's.
const DATASET_CATALOGUE: &[&str] = &[
    "INSERT INTO organisations (slug, name) VALUES
        ('bench-plaine-commune', 'Plaine Commune (jeu d''essai)'), ('bench-saint-denis', 'Saint-Denis (jeu d''essai)')",
    "INSERT INTO sites (organisation_id, slug, name)
     SELECT o.id, 'site-' || n, 'Site ' || n FROM organisations o,
            generate_series(1, CASE WHEN o.slug = 'bench-plaine-commune' THEN 3 ELSE 4 END) n
     WHERE o.slug LIKE 'bench-%'",
    "INSERT INTO resource_types (slug, category, name_fr, name_en) VALUES
        ('bench-salle', 'room', 'Salle', 'Room'), ('bench-voiture', 'vehicle', 'Voiture', 'Car'),
        ('bench-velo', 'vehicle', 'Vélo', 'Bicycle'), ('bench-materiel', 'equipment', 'Matériel', 'Equipment')",
    // 50 rooms spread over the seven sites, then the shared pool on the
    // first site: 60 cars, 10 bicycles, 46 pieces of equipment.
    "WITH s AS (SELECT array_agg(s.id ORDER BY o.slug, s.slug) AS ids FROM sites s
                JOIN organisations o ON o.id = s.organisation_id WHERE o.slug LIKE 'bench-%'),
          kinds(slug, prefix, how_many, capacity) AS (VALUES
            ('bench-salle', 'Salle', 50, true), ('bench-voiture', 'Voiture', 60, false),
            ('bench-velo', 'Vélo', 10, false), ('bench-materiel', 'Matériel', 46, false))
     INSERT INTO resources (site_id, resource_type_id, name, mailbox_smtp, exchange_endpoint, capacity)
     SELECT CASE WHEN k.slug = 'bench-salle' THEN s.ids[1 + n % cardinality(s.ids)] ELSE s.ids[1] END,
            t.id, k.prefix || ' ' || lpad(n::text, 3, '0'),
            replace(k.slug, 'bench-', 'bench.') || '.' || n || '@resa.invalid', 'bench',
            CASE WHEN k.capacity THEN 6 + (n * 7) % 35 ELSE NULL END
     FROM kinds k JOIN resource_types t ON t.slug = k.slug, s, generate_series(1, k.how_many) n",
    "INSERT INTO directories (name, organisation_id)
     SELECT o.slug, o.id FROM organisations o WHERE o.slug LIKE 'bench-%'",
    "INSERT INTO people (directory_id, object_guid, sam_account_name, display_name, department)
     SELECT d.id, gen_random_uuid(), 'agent' || n, 'Agent ' || n, 'Service ' || (n % 40)
     FROM directories d, generate_series(1, 1500) n WHERE d.name LIKE 'bench-%'",
];

/// Every generated booking, computed once then copied into the tables.
/// Resource `i mod R` gets the booking `i` in its slot `i / R`: ten one-hour
/// slots a working day from 08:00 Paris time, so bookings never overlap.
/// The fate of a booking (a hash of `i`, per cent): 78 accepted, 8 declined,
/// 5 cancelled, 3 still held, 2 held then approved, 2 not checked in
/// (released), 2 accepted. Requests come 40 % within a day of the start,
/// 40 % one to seven days before, 10 % up to a month, 10 % up to two months.
const DATASET_BOOKINGS: &str = "
CREATE TEMP TABLE bench_gen ON COMMIT DROP AS
WITH res AS (
    SELECT array_agg(r.id ORDER BY r.name, r.id) AS ids, array_agg(coalesce(r.capacity, 3) ORDER BY r.name, r.id) AS caps
    FROM resources r JOIN sites s ON s.id = r.site_id JOIN organisations o ON o.id = s.organisation_id
    WHERE o.slug LIKE 'bench-%'
), ppl AS (
    SELECT array_agg(p.id ORDER BY p.id) AS ids FROM people p JOIN directories d ON d.id = p.directory_id
    WHERE d.name LIKE 'bench-%'
), g AS (
    SELECT i, 1 + (i % cardinality(res.ids))::int AS ri, i / cardinality(res.ids) AS k, (i * 2654435761) % 1000003 AS h
    FROM res, generate_series(0::bigint, $1 - 1) i
), t AS (
    SELECT g.*, ((($2::date + ((g.k / 10) / 5 * 7 + (g.k / 10) % 5)::int)
                 + make_interval(hours => 8 + (g.k % 10)::int)) AT TIME ZONE 'Europe/Paris') AS starts
    FROM g
)
SELECT t.i, gen_random_uuid() AS id, res.ids[t.ri] AS resource_id, ppl.ids[1 + (t.h % cardinality(ppl.ids))::int] AS person_id,
       t.h, t.h % 100 AS fate, t.starts, t.starts + make_interval(mins => (30 + 15 * (t.h % 3))::int) AS ends,
       t.starts - make_interval(mins => (CASE (t.h / 100) % 10
           WHEN 0 THEN 60 + (t.i * 7919) % 1380 WHEN 1 THEN 60 + (t.i * 7919) % 1380
           WHEN 2 THEN 60 + (t.i * 7919) % 1380 WHEN 3 THEN 60 + (t.i * 7919) % 1380
           WHEN 8 THEN 10080 + (t.i * 7919) % 33120 WHEN 9 THEN 43200 + (t.i * 7919) % 43200
           ELSE 1440 + (t.i * 7919) % 8640 END)::int) AS requested_at,
       1 + ((t.h / 7) % (res.caps[t.ri] + 2))::int AS attendees
FROM t, res, ppl";

const DATASET_ROWS: &[&str] = &[
    "INSERT INTO bookings (id, resource_id, uid, source, organiser_person_id, organiser_address, organiser_name, subject,
                           attendee_count, status, requested_at, created_at, updated_at)
     SELECT id, resource_id, 'bench-' || i, CASE WHEN h % 10 = 0 THEN 'web' ELSE 'exchange' END, person_id,
            'agent' || (h % 3000) || '@resa.invalid', 'Agent ' || (h % 3000), 'Réunion n° ' || i, attendees,
            CASE WHEN fate BETWEEN 78 AND 85 THEN 'declined' WHEN fate BETWEEN 86 AND 90 THEN 'cancelled'
                 WHEN fate BETWEEN 91 AND 93 THEN 'held' ELSE 'accepted' END,
            requested_at, requested_at, requested_at
     FROM bench_gen",
    "INSERT INTO occurrences (booking_id, resource_id, original_start, period, blocked, status)
     SELECT id, resource_id, starts, tstzrange(starts, ends), tstzrange(starts, ends),
            CASE WHEN fate BETWEEN 78 AND 85 THEN 'declined' WHEN fate BETWEEN 86 AND 90 THEN 'cancelled'
                 WHEN fate BETWEEN 91 AND 93 THEN 'held' WHEN fate BETWEEN 96 AND 97 THEN 'released' ELSE 'accepted' END
     FROM bench_gen",
    "INSERT INTO decisions (booking_id, resource_id, uid, decided_at, outcome, reasons, decided_by)
     SELECT id, resource_id, 'bench-' || i, requested_at + interval '2 seconds',
            CASE WHEN fate BETWEEN 78 AND 85 THEN 'decline' WHEN fate BETWEEN 91 AND 95 THEN 'hold' ELSE 'accept' END,
            CASE WHEN fate BETWEEN 78 AND 85 THEN jsonb_build_array(jsonb_build_object('code',
                     (ARRAY['conflict', 'capacity', 'outside_opening_hours', 'no_right', 'min_notice'])[1 + ((h / 100) % 5)::int]))
                 WHEN fate BETWEEN 91 AND 95 THEN '[{\"code\": \"needs_approval\"}]'::jsonb
                 ELSE '[]'::jsonb END,
            'engine'
     FROM bench_gen",
    "INSERT INTO decisions (booking_id, resource_id, uid, decided_at, outcome, decided_by)
     SELECT id, resource_id, 'bench-' || i,
            CASE WHEN fate BETWEEN 86 AND 90 THEN requested_at + (starts - requested_at) / 2
                 ELSE requested_at + make_interval(mins => (5 + h % 600)::int) END,
            CASE WHEN fate BETWEEN 86 AND 90 THEN 'cancel' ELSE 'approve' END,
            CASE WHEN fate BETWEEN 86 AND 90 THEN 'engine' ELSE 'manager' END
     FROM bench_gen WHERE fate BETWEEN 86 AND 90 OR fate BETWEEN 94 AND 95",
];

impl Store {
    /// Writes a realistic data set of `bookings` bookings straight in the
    /// database, for the benchmark: the customer's catalogue (two
    /// organisations, seven sites, 166 resources, 3,000 agents), then the
    /// bookings from `first_day` on, each with its occurrence and decisions
    /// (declines with reasons, holds, approvals, cancellations, no-shows).
    /// Everything it creates is named `bench-…`, so it fails on a database
    /// that already holds a generated set. A million bookings take a few
    /// minutes, mostly spent filling the occurrences' GiST indexes (seven
    /// minutes on a busy two-core machine).
    pub async fn generate_dataset(&self, bookings: u64, first_day: chrono::NaiveDate) -> Result<Dataset> {
        let n = i64::try_from(bookings).map_err(|_| super::StoreError::Invalid("too many bookings".into()))?;
        let mut tx = self.pool().begin().await?;
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        for sql in DATASET_CATALOGUE {
            sqlx::query(sql).execute(&mut *tx).await?;
        }
        sqlx::query(DATASET_BOOKINGS)
            .bind(n)
            .bind(first_day)
            .execute(&mut *tx)
            .await?;
        let mut decisions = 0;
        for (k, sql) in DATASET_ROWS.iter().enumerate() {
            let done = sqlx::query(sql).execute(&mut *tx).await?.rows_affected();
            if k >= 2 {
                decisions += i64::try_from(done).unwrap_or(i64::MAX);
            }
        }
        let resources: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM resources r JOIN sites s ON s.id = r.site_id
             JOIN organisations o ON o.id = s.organisation_id WHERE o.slug LIKE 'bench-%'",
        )
        .fetch_one(&mut *tx)
        .await?;
        let people: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM people p JOIN directories d ON d.id = p.directory_id WHERE d.name LIKE 'bench-%'",
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        for table in ["bookings", "occurrences", "decisions", "resources", "people"] {
            sqlx::query(&format!("ANALYZE {table}")).execute(self.pool()).await?;
        }
        Ok(Dataset {
            resources,
            people,
            bookings: n,
            decisions,
        })
    }
}
