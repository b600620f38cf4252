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

pub mod direct;

use super::{Result, Store};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
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
macro_rules! scope {
    () => {
        "(
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
)"
    };
}
const SCOPE: &str = scope!();

/// The days of the range outside the rollup, for each selected resource: the
/// first (it holds what started before the range) and a last one cut by the
/// range's end. Binds $1 to $7.
macro_rules! edges {
    () => {
        concat!(
            "(SELECT coalesce(array_agg(s0.id), '{}') AS res, coalesce(array_agg(x.d), '{}') AS days
      FROM ",
            scope!(),
            " s0
      CROSS JOIN LATERAL (
          SELECT DISTINCT v.d FROM (VALUES (($1 AT TIME ZONE s0.time_zone)::date),
                                           ((($2 - interval '1 microsecond') AT TIME ZONE s0.time_zone)::date)) v(d)
      ) x
      WHERE NOT (x.d::timestamp AT TIME ZONE s0.time_zone > $1
                 AND (x.d + 1)::timestamp AT TIME ZONE s0.time_zone <= $2))"
        )
    };
}
const EDGES: &str = edges!();

/// The intervals of the duration scale lead times and approval delays are
/// counted on in `report_months` (`report_duration_bounds()`, migration 0012).
pub const DURATION_INTERVALS: usize = 32;

/// A rollup kept by day and by month (migration 0012): its per-month table,
/// its per-day table, and the function computing a day's rows.
struct Rollup {
    months: &'static str,
    days: &'static str,
    day_rows: &'static str,
}

/// Lead times and approval delays.
const DURATIONS: Rollup = Rollup {
    months: "report_months",
    days: "report_days",
    day_rows: "report_day_rows",
};

/// Use by the organiser's organisation.
const ORGANISATIONS: Rollup = Rollup {
    months: "report_org_months",
    days: "report_day_orgs",
    day_rows: "report_day_org_rows",
};

/// `months`: the rollup's per-month rows for the whole local months of the
/// range, per selected resource; `loose`: the given columns of the other days
/// of the range, the whole ones from the per-day table (before the first
/// whole month and from the last one's end, all of them when there is none)
/// and the edges computed. Together they cover the range as `DAYS` does.
/// Binds $1 to $7.
fn month_split(rollup: &Rollup, columns: &[&str]) -> String {
    let Rollup { months, days, day_rows } = rollup;
    let of = |alias: &str| {
        columns
            .iter()
            .map(|c| format!("{alias}.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (rd, x) = (of("rd"), of("x"));
    format!(
        "WITH edges AS MATERIALIZED {EDGES},
        -- Each selected resource's local days: d1 holds the range's start
        -- (an edge), the days in (d1, dend) are whole, the months in
        -- [mfirst, mlast) wholly inside them.
        spans AS MATERIALIZED (
            SELECT sc.id, a.d1, e.dend,
                   (date_trunc('month', a.d1) + interval '1 month')::date AS mfirst,
                   date_trunc('month', e.dend)::date AS mlast
            FROM {SCOPE} sc
            CROSS JOIN LATERAL (
                SELECT ($1 AT TIME ZONE sc.time_zone)::date AS d1,
                       (($2 - interval '1 microsecond') AT TIME ZONE sc.time_zone)::date AS d2
            ) a
            CROSS JOIN LATERAL (
                SELECT CASE WHEN (a.d2 + 1)::timestamp AT TIME ZONE sc.time_zone <= $2
                            THEN a.d2 + 1 ELSE a.d2 END AS dend
            ) e
        ),
        months AS MATERIALIZED (
            SELECT m.* FROM spans s
            JOIN {months} m ON m.resource_id = s.id AND m.month >= s.mfirst AND m.month < s.mlast
        ),
        -- (OFFSET 0: two index ranges per resource, never a scan of the
        -- whole rollup.)
        loose AS MATERIALIZED (
            SELECT rd.* FROM spans s
            CROSS JOIN LATERAL (
                SELECT {rd} FROM {days} rd
                WHERE rd.resource_id = s.id AND rd.day > s.d1 AND rd.day < least(s.mfirst, s.dend)
                OFFSET 0
            ) rd
            UNION ALL
            SELECT rd.* FROM spans s
            CROSS JOIN LATERAL (
                SELECT {rd} FROM {days} rd
                WHERE rd.resource_id = s.id AND rd.day >= greatest(s.mlast, s.mfirst)
                  AND rd.day > s.d1 AND rd.day < s.dend
                OFFSET 0
            ) rd
            UNION ALL
            SELECT {x} FROM edges e, {day_rows}($1, $2, e.res, e.days) x
        )"
    )
}

/// CTEs ending in `{name}` (one row, column `median`): the median of the
/// durations in `months.{values}` and `loose.{values}`, exactly as
/// `percentile_cont(0.5)` gives it, `months.{cum}` counting each month's
/// per interval of the scale. The counts say which intervals hold the two
/// middle ranks; only the durations in those are sorted. Follows
/// [`month_split`].
fn exact_median(name: &str, values: &str, cum: &str) -> String {
    let month_cum = (1..=DURATION_INTERVALS)
        .map(|j| format!("coalesce(sum({cum}[{j}]), 0)"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{name}_vals AS MATERIALIZED (
            SELECT v, width_bucket(v, report_duration_bounds()) AS j FROM loose, unnest(loose.{values}) v
        ),
        -- How many durations lie in the first j intervals; the last is all.
        {name}_cum AS (
            SELECT array_agg((l.c + coalesce(m.c[l.j], 0))::int8 ORDER BY l.j) AS c
            FROM (
                SELECT g.k AS j, sum(count(v.j)) OVER (ORDER BY g.k) AS c
                FROM generate_series(1, cardinality(report_duration_bounds())) g(k)
                LEFT JOIN {name}_vals v ON v.j = g.k
                GROUP BY g.k
            ) l,
            (SELECT ARRAY[{month_cum}] AS c FROM months) m
        ),
        -- The ranks percentile_cont(0.5) reads (1-based), the intervals
        -- holding them, and how many durations lie below those.
        {name}_span AS (
            SELECT r.n, r.r1, r.r2, lo.j AS jlo, hi.j AS jhi, coalesce(c.c[lo.j - 1], 0) AS base
            FROM {name}_cum c,
                 LATERAL (SELECT n, (n - 1) / 2 + 1 AS r1, n / 2 + 1 AS r2
                          FROM (SELECT coalesce(c.c[cardinality(c.c)], 0) AS n) t) r,
                 LATERAL (SELECT min(j) AS j FROM generate_subscripts(c.c, 1) j WHERE c.c[j] >= r.r1) lo,
                 LATERAL (SELECT min(j) AS j FROM generate_subscripts(c.c, 1) j WHERE c.c[j] >= r.r2) hi
        ),
        {name}_picked AS (
            SELECT v FROM {name}_span s, months m,
                 unnest(m.{values}[coalesce(m.{cum}[s.jlo - 1], 0) + 1 : m.{cum}[s.jhi]]) v
            WHERE s.n > 0 AND m.{cum}[s.jhi] > coalesce(m.{cum}[s.jlo - 1], 0)
            UNION ALL
            SELECT v.v FROM {name}_span s, {name}_vals v WHERE s.n > 0 AND v.j BETWEEN s.jlo AND s.jhi
        ),
        {name} AS (
            SELECT CASE WHEN s.n > 0
                        THEN a.a[s.r1 - s.base] + 0.5 * (a.a[s.r2 - s.base] - a.a[s.r1 - s.base]) END AS median
            FROM {name}_span s,
                 (SELECT array_agg(v ORDER BY v) AS a
                  FROM (SELECT v FROM {name}_picked ORDER BY v LIMIT (SELECT r2 - base FROM {name}_span)) q) a
        )"
    )
}

/// `days`: one row per selected resource and local day of the range, from
/// the rollup for the days wholly inside it (after its first), computed for
/// the others. Binds $1 to $7.
const DAYS: &str = concat!(
    "WITH edges AS MATERIALIZED ",
    edges!(),
    ",
    days AS (
        SELECT rd.* FROM report_days rd
        WHERE rd.day_start > $1 AND rd.day_end <= $2 AND rd.resource_id IN (SELECT id FROM ",
    scope!(),
    " s1)
        UNION ALL
        SELECT x.* FROM edges e, report_day_rows($1, $2, e.res, e.days) x
    )"
);

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
    /// Recomputes the days of the rollup marked dirty since the last refresh;
    /// returns how many (resource, day) pairs. Every report calls it first,
    /// so none shows stale figures; the daemon calls it too, so a report
    /// seldom waits for it.
    pub async fn report_refresh(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT report_refresh()")
            .fetch_one(self.pool())
            .await?)
    }

    /// Recomputes the whole rollup, in the given transaction (an import
    /// rebuilds it before it commits); returns the pairs computed.
    pub async fn report_rebuild(&self, conn: &mut sqlx::PgConnection) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT report_rebuild()").fetch_one(conn).await?)
    }

    /// Refreshes the rollup, then runs a report statement with room to sort
    /// and hash in memory (a median sorts every lead time of the range):
    /// `work_mem` is raised for its transaction only.
    async fn report_rows(&self, sql: &str, f: &ReportFilter) -> Result<Vec<PgRow>> {
        self.report_refresh().await?;
        let mut tx = self.pool().begin().await?;
        sqlx::query("SET LOCAL work_mem = '64MB'").execute(&mut *tx).await?;
        let rows = scoped(sql, f).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// [`Self::report_rows`] for a statement that aggregates into one row.
    async fn report_row(&self, sql: &str, f: &ReportFilter) -> Result<PgRow> {
        self.report_rows(sql, f)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| super::StoreError::Invalid("a report statement returned no row".into()))
    }

    /// Use, cancellations and no-shows of every selected resource, including
    /// the unused ones.
    pub async fn report_usage(&self, f: &ReportFilter) -> Result<Vec<ResourceUsage>> {
        let sql = format!(
            "{DAYS}
            SELECT sc.id, sc.name, sc.site, sc.organisation, sc.type_fr, sc.type_en, sc.category, sc.capacity,
                   sc.time_zone, coalesce(u.seconds, 0)::float8 AS seconds, coalesce(u.accepted, 0)::int8 AS accepted,
                   coalesce(u.cancelled, 0)::int8 AS cancelled, coalesce(u.released, 0)::int8 AS released
            FROM {SCOPE} sc
            LEFT JOIN (
                SELECT resource_id, sum(booked_seconds) AS seconds, sum(accepted) AS accepted,
                       sum(cancelled) AS cancelled, sum(released) AS released
                FROM days GROUP BY resource_id
            ) u ON u.resource_id = sc.id
            ORDER BY sc.name, sc.id"
        );
        let rows = self.report_rows(&sql, f).await?;
        usage_rows(&rows)
    }

    /// Booked seconds by weekday and hour, in each site's local time; only
    /// the cells with some use. Each day's part of an occurrence is spread
    /// from its local start over the hours it covers.
    pub async fn report_heat_map(&self, f: &ReportFilter) -> Result<Vec<HeatCell>> {
        let sums = (0..25)
            .map(|k| format!("sum(h{k:02}) AS h{k:02}"))
            .collect::<Vec<_>>()
            .join(", ");
        let cells = (0..25).map(|k| format!("h{k:02}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "{DAYS},
            by_weekday AS (SELECT isodow, {sums} FROM days GROUP BY isodow)
            SELECT (((w.isodow - 1) * 24 + u.k - 1) % 168) / 24 + 1 AS weekday,
                   ((w.isodow - 1) * 24 + u.k - 1) % 24 AS hour, sum(u.v)::float8 AS seconds
            FROM by_weekday w CROSS JOIN LATERAL unnest(ARRAY[{cells}]) WITH ORDINALITY u(v, k)
            WHERE u.v > 0
            GROUP BY 1, 2
            ORDER BY 1, 2"
        );
        let rows = self.report_rows(&sql, f).await?;
        heat_rows(&rows)
    }

    /// Declined and partially accepted requests by reason code (a request
    /// counts once per reason it was given), most frequent first.
    pub async fn report_decline_reasons(&self, f: &ReportFilter) -> Result<Vec<ReasonCount>> {
        let sql = format!(
            "WITH edges AS MATERIALIZED {EDGES},
            reasons AS (
                SELECT rd.code, rd.requests FROM report_day_reasons rd
                WHERE rd.day_start > $1 AND rd.day_end <= $2 AND rd.resource_id IN (SELECT id FROM {SCOPE} s1)
                UNION ALL
                SELECT x.code, x.requests FROM edges e, report_day_reason_rows($1, $2, e.res, e.days) x
            )
            SELECT code, sum(requests)::int8 AS n FROM reasons GROUP BY code ORDER BY n DESC, code"
        );
        let rows = self.report_rows(&sql, f).await?;
        reason_rows(&rows)
    }

    /// Unmet demand by resource: only the resources with some, most first.
    pub async fn report_declines_by_resource(&self, f: &ReportFilter) -> Result<Vec<DeclinesOfResource>> {
        let sql = format!(
            "{DAYS}
            SELECT sc.id, sc.name, sum(d.declined)::int8 AS declined, sum(d.partially)::int8 AS partially,
                   sum(d.refused)::int8 AS refused
            FROM days d JOIN {SCOPE} sc ON sc.id = d.resource_id
            GROUP BY sc.id, sc.name
            HAVING sum(d.declined + d.partially + d.refused) > 0
            ORDER BY sum(d.declined + d.partially + d.refused) DESC, sc.name, sc.id"
        );
        let rows = self.report_rows(&sql, f).await?;
        decline_rows(&rows)
    }

    /// Requests held in the range, and the time from the hold to the
    /// approver's answer (the first approval or refusal that followed).
    pub async fn report_approvals(&self, f: &ReportFilter) -> Result<ApprovalStats> {
        let sql = format!(
            "{split},
            {median}
            SELECT coalesce(sum(held), 0)::int8 AS held, coalesce(sum(approved), 0)::int8 AS approved,
                   coalesce(sum(refused), 0)::int8 AS refused, coalesce(sum(undecided), 0)::int8 AS undecided,
                   CASE WHEN sum(n) > 0 THEN sum(total) / sum(n)::float8 END AS mean,
                   (SELECT median FROM wait_median) AS median,
                   max(longest) AS max
            FROM (
                SELECT sum(held) AS held, sum(held_approved) AS approved, sum(held_refused) AS refused,
                       sum(held_undecided) AS undecided, sum(wait_n) AS n, sum(wait_sum) AS total,
                       max(wait_max) AS longest
                FROM months
                UNION ALL
                SELECT sum(held), sum(held_approved), sum(held_refused), sum(held_undecided), sum(wait_n),
                       sum(wait_sum), max(wait_max)
                FROM loose
            ) parts",
            split = month_split(
                &DURATIONS,
                &[
                    "held",
                    "held_approved",
                    "held_refused",
                    "held_undecided",
                    "wait_n",
                    "wait_sum",
                    "wait_max",
                    "waits"
                ]
            ),
            median = exact_median("wait_median", "waits", "wait_cum"),
        );
        let r = self.report_row(&sql, f).await?;
        approval_row(&r)
    }

    /// Attendees against capacity, per resource with a capacity, over the
    /// accepted occurrences whose attendee count is known.
    pub async fn report_capacity(&self, f: &ReportFilter) -> Result<Vec<CapacityOfResource>> {
        let sql = format!(
            "{DAYS}
            SELECT sc.id, sc.name, sc.capacity, sum(d.cap_n)::int8 AS n,
                   (sum(d.cap_sum)::numeric / sum(d.cap_n))::float8 AS mean,
                   sum(d.cap_b1)::int8 AS b1, sum(d.cap_b2)::int8 AS b2, sum(d.cap_b3)::int8 AS b3,
                   sum(d.cap_b4)::int8 AS b4, sum(d.cap_b5)::int8 AS b5
            FROM days d JOIN {SCOPE} sc ON sc.id = d.resource_id
            WHERE sc.capacity > 0
            GROUP BY sc.id, sc.name, sc.capacity
            HAVING sum(d.cap_n) > 0
            ORDER BY sc.name, sc.id"
        );
        let rows = self.report_rows(&sql, f).await?;
        capacity_rows(&rows)
    }

    /// Time from the request to the start of each accepted occurrence in the
    /// range. Whole local months come from `report_months` (migration 0012),
    /// the other days from `report_days` and the edges; the median sorts one
    /// interval of the duration scale only (`exact_median`).
    pub async fn report_lead_time(&self, f: &ReportFilter) -> Result<LeadTime> {
        let sql = format!(
            "{split},
            {median}
            SELECT coalesce(sum(n), 0)::int8 AS n, coalesce(sum(b1), 0)::int8 AS b1,
                   coalesce(sum(b2), 0)::int8 AS b2, coalesce(sum(b3), 0)::int8 AS b3,
                   coalesce(sum(b4), 0)::int8 AS b4,
                   CASE WHEN sum(n) > 0 THEN sum(total) / sum(n)::float8 END AS mean,
                   (SELECT median FROM lead_median) AS median
            FROM (
                SELECT sum(lead_n) AS n, sum(lead_b1) AS b1, sum(lead_b2) AS b2, sum(lead_b3) AS b3,
                       sum(lead_b4) AS b4, sum(lead_sum) AS total FROM months
                UNION ALL
                SELECT sum(lead_n), sum(lead_b1), sum(lead_b2), sum(lead_b3), sum(lead_b4), sum(lead_sum)
                FROM loose
            ) parts",
            split = month_split(
                &DURATIONS,
                &[
                    "lead_n", "lead_b1", "lead_b2", "lead_b3", "lead_b4", "lead_sum", "leads"
                ]
            ),
            median = exact_median("lead_median", "leads", "lead_cum"),
        );
        let r = self.report_row(&sql, f).await?;
        lead_row(&r)
    }

    /// Use by the organisation of the organiser (through their directory, or
    /// as kept when the booking was anonymised), largest first.
    pub async fn report_organisations(&self, f: &ReportFilter) -> Result<Vec<OrganisationUsage>> {
        let sql = format!(
            "{split},
            totals AS (
                SELECT organisation_id, sum(booked_seconds) AS seconds, sum(occurrences) AS n,
                       sum(single_bookings) AS single, sum(kilometres) AS km
                FROM (
                    SELECT organisation_id, booked_seconds, occurrences, single_bookings, kilometres FROM months
                    UNION ALL
                    SELECT organisation_id, booked_seconds, occurrences, single_bookings, kilometres FROM loose
                ) o
                GROUP BY organisation_id
            ),
            -- A booking on several days (or months) counts once.
            multi AS (
                SELECT organisation_id, count(DISTINCT m) AS n
                FROM (
                    SELECT organisation_id, unnest(multi_bookings) AS m FROM months
                    WHERE cardinality(multi_bookings) > 0
                    UNION ALL
                    SELECT organisation_id, unnest(multi_bookings) FROM loose
                    WHERE cardinality(multi_bookings) > 0
                ) x
                GROUP BY organisation_id
            )
            SELECT og.id, og.name, sum(t.seconds)::float8 AS seconds, sum(t.n)::int8 AS n,
                   (sum(t.single) + coalesce(sum(mu.n), 0))::int8 AS bookings, coalesce(sum(t.km), 0)::int8 AS km
            FROM totals t
            LEFT JOIN multi mu ON mu.organisation_id IS NOT DISTINCT FROM t.organisation_id
            LEFT JOIN organisations og ON og.id = t.organisation_id
            GROUP BY og.id, og.name
            ORDER BY seconds DESC, og.name",
            split = month_split(
                &ORGANISATIONS,
                &[
                    "organisation_id",
                    "booked_seconds",
                    "occurrences",
                    "single_bookings",
                    "multi_bookings",
                    "kilometres",
                ],
            ),
        );
        let rows = self.report_rows(&sql, f).await?;
        organisation_rows(&rows)
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

fn usage_rows(rows: &[PgRow]) -> Result<Vec<ResourceUsage>> {
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

fn heat_rows(rows: &[PgRow]) -> Result<Vec<HeatCell>> {
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

fn reason_rows(rows: &[PgRow]) -> Result<Vec<ReasonCount>> {
    rows.iter()
        .map(|r| {
            Ok(ReasonCount {
                code: r.try_get("code")?,
                requests: r.try_get("n")?,
            })
        })
        .collect()
}

fn decline_rows(rows: &[PgRow]) -> Result<Vec<DeclinesOfResource>> {
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

fn approval_row(r: &PgRow) -> Result<ApprovalStats> {
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

fn capacity_rows(rows: &[PgRow]) -> Result<Vec<CapacityOfResource>> {
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

fn lead_row(r: &PgRow) -> Result<LeadTime> {
    Ok(LeadTime {
        occurrences: r.try_get("n")?,
        buckets: [r.try_get("b1")?, r.try_get("b2")?, r.try_get("b3")?, r.try_get("b4")?],
        median_seconds: r.try_get("median")?,
        mean_seconds: r.try_get("mean")?,
    })
}

fn organisation_rows(rows: &[PgRow]) -> Result<Vec<OrganisationUsage>> {
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
        for table in [
            "bookings",
            "occurrences",
            "decisions",
            "resources",
            "people",
            "report_dirty",
        ] {
            sqlx::query(&format!("ANALYZE {table}")).execute(self.pool()).await?;
        }
        Ok(Dataset {
            resources,
            people,
            bookings: n,
            decisions,
        })
    }

    /// Vacuums and analyses the rollup after a bulk load, as autovacuum would
    /// a little later: the list of dirty days, emptied by the refresh, holds
    /// dead rows that every report's check for work would otherwise read.
    pub async fn analyze_reports(&self) -> Result<()> {
        for table in [
            "report_dirty",
            "report_days",
            "report_day_reasons",
            "report_day_orgs",
            "report_months",
            "report_org_months",
        ] {
            sqlx::query(&format!("VACUUM (ANALYZE) {table}"))
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    /// Cancels (or accepts again) the occurrence of the first generated
    /// booking: one change for the benchmark to time the refresh it costs.
    pub async fn touch_generated_booking(&self, cancel: bool) -> Result<()> {
        sqlx::query(
            "UPDATE occurrences SET status = CASE WHEN $1 THEN 'cancelled' ELSE 'accepted' END
             WHERE booking_id = (SELECT id FROM bookings WHERE uid = 'bench-0')",
        )
        .bind(cancel)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

/// How often the daemon brings the reports' rollup up to date.
pub const ROLLUP_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// The daemon's rollup job: once at start (after a migration or an import
/// the first refresh may take minutes on a large database; better here than
/// in a manager's browser) and every [`ROLLUP_EVERY`], recomputes the days
/// changed since, until `shutdown` completes. Reports refresh before they
/// read anyway, so this only saves them the wait.
pub async fn rollup_loop(store: Store, shutdown: impl std::future::Future<Output = ()>) {
    let mut tick = tokio::time::interval(ROLLUP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        tokio::select! {
            _ = &mut shutdown => return,
            refreshed = store.report_refresh() => match refreshed {
                Ok(0) => {}
                Ok(days) => tracing::debug!(rollup.days = days, "reports: rollup refreshed"),
                Err(e) => tracing::warn!(error = %e, "reports: rollup refresh failed, will retry"),
            },
        }
    }
}
