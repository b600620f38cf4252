-- Lead times and approval delays by resource and local month, and use by
-- organisation by resource and local month, so the lead-time, approval and
-- organisation reports read some thousands of rows instead of a row per
-- resource and day.
--
-- Their medians must stay exact. Each month keeps its durations sorted, with
-- how many fall in each interval of a fixed scale (`report_duration_bounds()`):
-- summing those counts over the months of a range says which interval holds
-- the median, and only the durations of that interval are sorted, each month
-- giving them as one slice of its array. Days of the range outside whole
-- months are read from `report_days` and the days at its edges computed, as
-- for the other reports.
--
-- Like the rest of the rollup the table is derived (not exported) and kept
-- exact: `report_refresh()` recomputes the months of the days it recomputes.

-- Lower bounds, in seconds, of the intervals: anything below 15 minutes (a
-- negative delay too, from clocks that disagreed), 15 and 30 minutes, 1, 2,
-- 3, 4, 6, 8, 12, 16 and 20 hours, then 1 to 7 days in steps of a quarter to
-- a day, 9, 11, 14, 21, 30, 45, 60, 90 and 180 days. Fine where requests and
-- answers crowd (within a week), so the interval holding a median is small.
CREATE FUNCTION report_duration_bounds() RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '{-infinity, 900, 1800, 3600, 7200, 10800, 14400, 21600, 28800, 43200, 57600, 72000, 86400, 108000,
             129600, 172800, 216000, 259200, 302400, 345600, 432000, 518400, 604800, 777600, 950400,
             1209600, 1814400, 2592000, 3888000, 5184000, 7776000, 15552000}'::float8[]
$$;

CREATE TABLE report_months (
    resource_id    uuid NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    -- The first local day of the month.
    month          date NOT NULL,
    lead_n         integer NOT NULL,
    lead_b1        integer NOT NULL,
    lead_b2        integer NOT NULL,
    lead_b3        integer NOT NULL,
    lead_b4        integer NOT NULL,
    lead_sum       float8 NOT NULL,
    -- The month's lead times, in ascending order.
    leads          float8[] NOT NULL,
    -- lead_cum[j]: how many lead times lie in the first j intervals of
    -- report_duration_bounds(), so interval j is leads[lead_cum[j-1]+1 : lead_cum[j]].
    lead_cum       integer[] NOT NULL,
    held           integer NOT NULL,
    held_approved  integer NOT NULL,
    held_refused   integer NOT NULL,
    held_undecided integer NOT NULL,
    wait_n         integer NOT NULL,
    wait_sum       float8 NOT NULL,
    wait_max       float8,
    -- The approval delays, sorted and counted the same way.
    waits          float8[] NOT NULL,
    wait_cum       integer[] NOT NULL,
    PRIMARY KEY (resource_id, month)
);

-- How many of the sorted `p_values` lie in the first j intervals of the
-- scale, for each j.
CREATE FUNCTION report_duration_cum(p_values float8[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(k.c::integer ORDER BY k.j)
    FROM (
        SELECT g.j, sum(count(v.b)) OVER (ORDER BY g.j) AS c
        FROM generate_series(1, cardinality(report_duration_bounds())) g(j)
        LEFT JOIN (SELECT width_bucket(x, report_duration_bounds()) AS b FROM unnest(p_values) x) v ON v.b = g.j
        GROUP BY g.j
    ) k
$$;

-- The months asked (pairs of resource and first day of the month), from the
-- days of `report_days`; a month without any row there has none.
CREATE FUNCTION report_month_rows(p_res uuid[], p_month date[])
RETURNS SETOF report_months
LANGUAGE sql STABLE AS $$
    WITH asked AS (
        SELECT DISTINCT u.r, u.m FROM unnest(p_res, p_month) u(r, m)
    ),
    months AS (
        SELECT a.r, a.m, sum(rd.lead_n)::integer AS lead_n, sum(rd.lead_b1)::integer AS lead_b1,
               sum(rd.lead_b2)::integer AS lead_b2, sum(rd.lead_b3)::integer AS lead_b3,
               sum(rd.lead_b4)::integer AS lead_b4, sum(rd.lead_sum) AS lead_sum,
               sum(rd.held)::integer AS held, sum(rd.held_approved)::integer AS held_approved,
               sum(rd.held_refused)::integer AS held_refused, sum(rd.held_undecided)::integer AS held_undecided,
               sum(rd.wait_n)::integer AS wait_n, sum(rd.wait_sum) AS wait_sum, max(rd.wait_max) AS wait_max
        FROM asked a
        JOIN report_days rd ON rd.resource_id = a.r AND rd.day >= a.m AND rd.day < (a.m + interval '1 month')::date
        GROUP BY a.r, a.m
    )
    SELECT m.r, m.m, m.lead_n, m.lead_b1, m.lead_b2, m.lead_b3, m.lead_b4, m.lead_sum,
           l.leads, report_duration_cum(l.leads),
           m.held, m.held_approved, m.held_refused, m.held_undecided, m.wait_n, m.wait_sum, m.wait_max,
           w.waits, report_duration_cum(w.waits)
    FROM months m
    CROSS JOIN LATERAL (
        SELECT coalesce(array_agg(v ORDER BY v), '{}') AS leads
        FROM report_days rd, unnest(rd.leads) v
        WHERE rd.resource_id = m.r AND rd.day >= m.m AND rd.day < (m.m + interval '1 month')::date
    ) l
    CROSS JOIN LATERAL (
        SELECT coalesce(array_agg(v ORDER BY v), '{}') AS waits
        FROM report_days rd, unnest(rd.waits) v
        WHERE rd.resource_id = m.r AND rd.day >= m.m AND rd.day < (m.m + interval '1 month')::date
    ) w
$$;

-- Accepted use by the organiser's organisation, as `report_day_orgs` has it
-- by day, summed by month; a booking on several days of the month is listed
-- once (a report counts those once over all its rows).
CREATE TABLE report_org_months (
    resource_id     uuid NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    month           date NOT NULL,
    organisation_id uuid,
    booked_seconds  float8 NOT NULL,
    occurrences     integer NOT NULL,
    single_bookings integer NOT NULL,
    multi_bookings  uuid[] NOT NULL,
    kilometres      integer NOT NULL
);
CREATE INDEX report_org_months_idx ON report_org_months (resource_id, month);

CREATE FUNCTION report_org_month_rows(p_res uuid[], p_month date[])
RETURNS SETOF report_org_months
LANGUAGE sql STABLE AS $$
    WITH asked AS (
        SELECT DISTINCT u.r, u.m FROM unnest(p_res, p_month) u(r, m)
    )
    SELECT a.r, a.m, rd.organisation_id, sum(rd.booked_seconds), sum(rd.occurrences)::integer,
           sum(rd.single_bookings)::integer,
           coalesce((SELECT array_agg(DISTINCT b ORDER BY b)
                     FROM report_day_orgs d2, unnest(d2.multi_bookings) b
                     WHERE d2.resource_id = a.r AND d2.day >= a.m AND d2.day < (a.m + interval '1 month')::date
                       AND d2.organisation_id IS NOT DISTINCT FROM rd.organisation_id), '{}'),
           sum(rd.kilometres)::integer
    FROM asked a
    JOIN report_day_orgs rd ON rd.resource_id = a.r AND rd.day >= a.m AND rd.day < (a.m + interval '1 month')::date
    GROUP BY a.r, a.m, rd.organisation_id
$$;

-- As before, and then the months of the days recomputed.
CREATE OR REPLACE FUNCTION report_refresh() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    res uuid[];
    days date[];
    months date[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM report_dirty) THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(4201006);
    WITH gone AS (DELETE FROM report_dirty RETURNING resource_id, day),
         pairs AS (SELECT DISTINCT resource_id, day FROM gone)
    SELECT array_agg(resource_id), array_agg(day) INTO res, days FROM pairs;
    IF res IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM report_days t USING unnest(res, days) x(r, d) WHERE t.resource_id = x.r AND t.day = x.d;
    DELETE FROM report_day_reasons t USING unnest(res, days) x(r, d) WHERE t.resource_id = x.r AND t.day = x.d;
    DELETE FROM report_day_orgs t USING unnest(res, days) x(r, d) WHERE t.resource_id = x.r AND t.day = x.d;
    INSERT INTO report_days SELECT * FROM report_day_rows('-infinity', 'infinity', res, days);
    INSERT INTO report_day_reasons SELECT * FROM report_day_reason_rows('-infinity', 'infinity', res, days);
    INSERT INTO report_day_orgs SELECT * FROM report_day_org_rows('-infinity', 'infinity', res, days);
    months := ARRAY(SELECT date_trunc('month', d)::date FROM unnest(days) d);
    DELETE FROM report_months t USING unnest(res, months) x(r, m) WHERE t.resource_id = x.r AND t.month = x.m;
    INSERT INTO report_months SELECT * FROM report_month_rows(res, months);
    DELETE FROM report_org_months t USING unnest(res, months) x(r, m) WHERE t.resource_id = x.r AND t.month = x.m;
    INSERT INTO report_org_months SELECT * FROM report_org_month_rows(res, months);
    RETURN cardinality(res);
END
$$;

CREATE OR REPLACE FUNCTION report_rebuild() RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(4201006);
    DELETE FROM report_days;
    DELETE FROM report_day_reasons;
    DELETE FROM report_day_orgs;
    DELETE FROM report_months;
    DELETE FROM report_org_months;
    DELETE FROM report_dirty;
    PERFORM report_mark_resource(r.id) FROM resources r;
    RETURN report_refresh();
END
$$;

-- The months of the days already computed; the days still marked get theirs
-- at the next refresh.
INSERT INTO report_months
SELECT * FROM report_month_rows(
    ARRAY(SELECT resource_id FROM report_days ORDER BY resource_id, day),
    ARRAY(SELECT date_trunc('month', day)::date FROM report_days ORDER BY resource_id, day)
);
INSERT INTO report_org_months
SELECT * FROM report_org_month_rows(
    ARRAY(SELECT resource_id FROM report_days ORDER BY resource_id, day),
    ARRAY(SELECT date_trunc('month', day)::date FROM report_days ORDER BY resource_id, day)
);
