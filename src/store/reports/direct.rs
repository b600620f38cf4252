//! The report queries computed straight from occurrences and decisions, with
//! no rollup: the reference the rollup-based queries of [`super`] are checked
//! against (the tests compare both on random data sets), and what the
//! benchmark measured before the rollup.
//!
//! One difference is deliberate: here the heat map spreads an occurrence from
//! its local start by its length, so one that crosses a change of summer time
//! and then midnight shifts by an hour after midnight; the rollup places each
//! day's part by that day's wall clock.

use super::{
    ApprovalStats, CapacityOfResource, DeclinesOfResource, HeatCell, LeadTime, OrganisationUsage, ReasonCount,
    ReportFilter, ResourceUsage, SCOPE, approval_row, capacity_rows, decline_rows, heat_rows, lead_row,
    organisation_rows, reason_rows, scoped, usage_rows,
};
use crate::store::{Result, Store};

impl Store {
    /// Use, cancellations and no-shows of every selected resource, including
    /// the unused ones.
    pub async fn report_usage_direct(&self, f: &ReportFilter) -> Result<Vec<ResourceUsage>> {
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
        usage_rows(&rows)
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
    pub async fn report_heat_map_direct(&self, f: &ReportFilter) -> Result<Vec<HeatCell>> {
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
        heat_rows(&rows)
    }

    /// Declined and partially accepted requests by reason code (a request
    /// counts once per reason it was given), most frequent first.
    pub async fn report_decline_reasons_direct(&self, f: &ReportFilter) -> Result<Vec<ReasonCount>> {
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
        reason_rows(&rows)
    }

    /// Unmet demand by resource: only the resources with some, most first.
    pub async fn report_declines_by_resource_direct(&self, f: &ReportFilter) -> Result<Vec<DeclinesOfResource>> {
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
        decline_rows(&rows)
    }

    /// Requests held in the range, and the time from the hold to the
    /// approver's answer (the first approval or refusal that followed).
    pub async fn report_approvals_direct(&self, f: &ReportFilter) -> Result<ApprovalStats> {
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
        approval_row(&r)
    }

    /// Attendees against capacity, per resource with a capacity, over the
    /// accepted occurrences whose attendee count is known.
    pub async fn report_capacity_direct(&self, f: &ReportFilter) -> Result<Vec<CapacityOfResource>> {
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
        capacity_rows(&rows)
    }

    /// Time from the request to the start of each accepted occurrence in the
    /// range.
    pub async fn report_lead_time_direct(&self, f: &ReportFilter) -> Result<LeadTime> {
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
        lead_row(&r)
    }

    /// Use by the organisation of the organiser (through their directory, or
    /// as kept when the booking was anonymised), largest first.
    pub async fn report_organisations_direct(&self, f: &ReportFilter) -> Result<Vec<OrganisationUsage>> {
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
        organisation_rows(&rows)
    }
}
