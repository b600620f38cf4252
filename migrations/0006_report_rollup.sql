-- Report rollups: per resource and local day, everything the report queries
-- need, so a report over a year or more reads some tens of thousands of rows
-- instead of every occurrence and decision.
--
-- The rollup is derived (not exported: an import rebuilds it) and kept exact:
-- every statement that changes what a day's figures depend on marks that
-- (resource, day) dirty (statement-level triggers read the changed rows from
-- transition tables, so a bulk write costs one insert of the distinct days),
-- and `report_refresh()` recomputes the dirty days. The reports call it
-- before they read, so they never show stale figures.
--
-- A day's row is computed by `report_day_rows(from, to, resources, days)`
-- over the part of each day inside [from, to): the rollup with an unbounded
-- range, the reports for the days at the edges of their range (the first,
-- which holds what started before the range, and a last partial one). So both
-- parts count exactly the same way:
-- - lengths (booked seconds, the heat map) by the part of each occurrence in
--   the day, the heat map placing that part from its local start;
-- - counts and per-occurrence figures (lead time, attendees, kilometres) in
--   the day where the occurrence starts, or where the range starts if it began
--   before;
-- - decisions in the day they were taken, a hold with the approval or refusal
--   that followed it;
-- - bookings by organisation: those whose accepted occurrences all start on
--   one day are counted there; the others are listed by id so a report counts
--   them once over its days.

-- The (resource, local day) pairs to recompute. No key: a writer never waits
-- on a refresh, and a pair marked twice is recomputed once.
CREATE TABLE report_dirty (
    resource_id uuid NOT NULL,
    day         date NOT NULL
);

CREATE TABLE report_days (
    resource_id    uuid NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    day            date NOT NULL,
    day_start      timestamptz NOT NULL,
    day_end        timestamptz NOT NULL,
    isodow         integer NOT NULL,
    booked_seconds float8 NOT NULL,
    -- Booked seconds by local hour of the day (wall clock from the start of
    -- each part, as the heat map places them); h24 is the 25th hour of the
    -- day summer time ends, shown as hour 0 of the next weekday.
    h00 integer NOT NULL,
    h01 integer NOT NULL,
    h02 integer NOT NULL,
    h03 integer NOT NULL,
    h04 integer NOT NULL,
    h05 integer NOT NULL,
    h06 integer NOT NULL,
    h07 integer NOT NULL,
    h08 integer NOT NULL,
    h09 integer NOT NULL,
    h10 integer NOT NULL,
    h11 integer NOT NULL,
    h12 integer NOT NULL,
    h13 integer NOT NULL,
    h14 integer NOT NULL,
    h15 integer NOT NULL,
    h16 integer NOT NULL,
    h17 integer NOT NULL,
    h18 integer NOT NULL,
    h19 integer NOT NULL,
    h20 integer NOT NULL,
    h21 integer NOT NULL,
    h22 integer NOT NULL,
    h23 integer NOT NULL,
    h24 integer NOT NULL,
    accepted       integer NOT NULL,
    cancelled      integer NOT NULL,
    released       integer NOT NULL,
    cap_n          integer NOT NULL,
    cap_sum        integer NOT NULL,
    cap_b1         integer NOT NULL,
    cap_b2         integer NOT NULL,
    cap_b3         integer NOT NULL,
    cap_b4         integer NOT NULL,
    cap_b5         integer NOT NULL,
    lead_n         integer NOT NULL,
    lead_b1        integer NOT NULL,
    lead_b2        integer NOT NULL,
    lead_b3        integer NOT NULL,
    lead_b4        integer NOT NULL,
    lead_sum       float8 NOT NULL,
    -- Every lead time and every approval delay, for exact medians.
    leads          float8[] NOT NULL,
    declined       integer NOT NULL,
    partially      integer NOT NULL,
    refused        integer NOT NULL,
    held           integer NOT NULL,
    held_approved  integer NOT NULL,
    held_refused   integer NOT NULL,
    held_undecided integer NOT NULL,
    wait_n         integer NOT NULL,
    wait_sum       float8 NOT NULL,
    wait_max       float8,
    waits          float8[] NOT NULL,
    PRIMARY KEY (resource_id, day)
);
CREATE INDEX report_days_start_idx ON report_days (day_start);

CREATE TABLE report_day_reasons (
    resource_id uuid NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    day         date NOT NULL,
    day_start   timestamptz NOT NULL,
    day_end     timestamptz NOT NULL,
    code        text NOT NULL,
    requests    integer NOT NULL,
    PRIMARY KEY (resource_id, day, code)
);

CREATE TABLE report_day_orgs (
    resource_id     uuid NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    day             date NOT NULL,
    day_start       timestamptz NOT NULL,
    day_end         timestamptz NOT NULL,
    -- The organiser's organisation, null outside both directories.
    organisation_id uuid,
    booked_seconds  float8 NOT NULL,
    occurrences     integer NOT NULL,
    -- Bookings whose accepted occurrences all start this day.
    single_bookings integer NOT NULL,
    -- The other bookings with an occurrence counted this day.
    multi_bookings  uuid[] NOT NULL,
    kilometres      integer NOT NULL
);
CREATE INDEX report_day_orgs_day_idx ON report_day_orgs (resource_id, day);

-- The windows: each (resource, local day) asked, cut to [p_from, p_to).
CREATE FUNCTION report_windows(p_from timestamptz, p_to timestamptz, p_res uuid[], p_day date[])
RETURNS TABLE (resource_id uuid, day date, time_zone text, capacity integer, day_start timestamptz,
               day_end timestamptz, ws timestamptz, we timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT * FROM (
        SELECT x.r, x.d, s.time_zone, r.capacity, x.d::timestamp AT TIME ZONE s.time_zone,
               (x.d + 1)::timestamp AT TIME ZONE s.time_zone,
               greatest(x.d::timestamp AT TIME ZONE s.time_zone, p_from),
               least((x.d + 1)::timestamp AT TIME ZONE s.time_zone, p_to)
        FROM (SELECT DISTINCT u.r, u.d FROM unnest(p_res, p_day) u(r, d)) x
        JOIN resources r ON r.id = x.r
        JOIN sites s ON s.id = r.site_id
    ) w (resource_id, day, time_zone, capacity, day_start, day_end, ws, we)
    WHERE w.ws < w.we
$$;

-- The part of each occurrence that falls in each window, with what the
-- reports need of it.
CREATE FUNCTION report_pieces(p_from timestamptz, p_to timestamptz, p_res uuid[], p_day date[])
RETURNS TABLE (resource_id uuid, day date, occurrence_id uuid, booking_id uuid, status text, seconds float8,
               local_start int8, len int8, counted boolean, attendees integer, capacity integer, lead float8,
               organisation_id uuid, km int8, single boolean)
LANGUAGE sql STABLE AS $$
    SELECT w.resource_id, w.day, o.id, o.booking_id, o.status,
           date_part('epoch', least(upper(o.period), w.we) - greatest(lower(o.period), w.ws))::float8,
           date_part('epoch', (greatest(lower(o.period), w.ws) AT TIME ZONE w.time_zone)::time)::int8,
           date_part('epoch', least(upper(o.period), w.we) - greatest(lower(o.period), w.ws))::int8,
           greatest(lower(o.period), p_from) >= w.ws AND greatest(lower(o.period), p_from) < w.we,
           o.attendee_count, w.capacity,
           greatest(date_part('epoch', lower(o.period) - o.requested_at), 0)::float8,
           o.organisation_id, o.km,
           NOT EXISTS (
               SELECT 1 FROM occurrences o2
               WHERE o2.booking_id = o.booking_id AND o2.status = 'accepted'
                 AND (lower(o2.period) AT TIME ZONE w.time_zone)::date <> (lower(o.period) AT TIME ZONE w.time_zone)::date
           )
    FROM report_windows(p_from, p_to, p_res, p_day) w
    -- One index lookup per window (OFFSET 0 keeps the planner from turning
    -- this into a scan of every occurrence joined by hash).
    CROSS JOIN LATERAL (
        SELECT o.id, o.booking_id, o.status, o.period, b.attendee_count, b.requested_at,
               coalesce(b.organiser_organisation_id, dir.organisation_id) AS organisation_id,
               (c.odometer_in_km - c.odometer_out_km)::int8 AS km
        FROM occurrences o
        JOIN bookings b ON b.id = o.booking_id
        LEFT JOIN people p ON p.id = b.organiser_person_id
        LEFT JOIN directories dir ON dir.id = p.directory_id
        LEFT JOIN checkouts c ON c.occurrence_id = o.id
        WHERE o.resource_id = w.resource_id AND o.period && tstzrange(w.ws, w.we)
          AND o.status IN ('accepted', 'cancelled', 'released')
        OFFSET 0
    ) o
$$;

CREATE FUNCTION report_day_rows(p_from timestamptz, p_to timestamptz, p_res uuid[], p_day date[])
RETURNS SETOF report_days
LANGUAGE sql STABLE AS $$
    WITH occ AS (
        SELECT resource_id, day,
               coalesce(sum(seconds) FILTER (WHERE status = 'accepted'), 0) AS booked_seconds,
               coalesce(sum(greatest(0, least(3600, local_start + len) - greatest(0, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h00,
               coalesce(sum(greatest(0, least(7200, local_start + len) - greatest(3600, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h01,
               coalesce(sum(greatest(0, least(10800, local_start + len) - greatest(7200, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h02,
               coalesce(sum(greatest(0, least(14400, local_start + len) - greatest(10800, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h03,
               coalesce(sum(greatest(0, least(18000, local_start + len) - greatest(14400, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h04,
               coalesce(sum(greatest(0, least(21600, local_start + len) - greatest(18000, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h05,
               coalesce(sum(greatest(0, least(25200, local_start + len) - greatest(21600, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h06,
               coalesce(sum(greatest(0, least(28800, local_start + len) - greatest(25200, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h07,
               coalesce(sum(greatest(0, least(32400, local_start + len) - greatest(28800, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h08,
               coalesce(sum(greatest(0, least(36000, local_start + len) - greatest(32400, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h09,
               coalesce(sum(greatest(0, least(39600, local_start + len) - greatest(36000, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h10,
               coalesce(sum(greatest(0, least(43200, local_start + len) - greatest(39600, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h11,
               coalesce(sum(greatest(0, least(46800, local_start + len) - greatest(43200, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h12,
               coalesce(sum(greatest(0, least(50400, local_start + len) - greatest(46800, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h13,
               coalesce(sum(greatest(0, least(54000, local_start + len) - greatest(50400, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h14,
               coalesce(sum(greatest(0, least(57600, local_start + len) - greatest(54000, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h15,
               coalesce(sum(greatest(0, least(61200, local_start + len) - greatest(57600, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h16,
               coalesce(sum(greatest(0, least(64800, local_start + len) - greatest(61200, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h17,
               coalesce(sum(greatest(0, least(68400, local_start + len) - greatest(64800, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h18,
               coalesce(sum(greatest(0, least(72000, local_start + len) - greatest(68400, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h19,
               coalesce(sum(greatest(0, least(75600, local_start + len) - greatest(72000, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h20,
               coalesce(sum(greatest(0, least(79200, local_start + len) - greatest(75600, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h21,
               coalesce(sum(greatest(0, least(82800, local_start + len) - greatest(79200, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h22,
               coalesce(sum(greatest(0, least(86400, local_start + len) - greatest(82800, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h23,
               coalesce(sum(greatest(0, least(90000, local_start + len) - greatest(86400, local_start))) FILTER (WHERE status = 'accepted'), 0)::integer AS h24,
               count(*) FILTER (WHERE counted AND status = 'accepted') AS accepted,
               count(*) FILTER (WHERE counted AND status = 'cancelled') AS cancelled,
               count(*) FILTER (WHERE counted AND status = 'released') AS released,
               count(*) FILTER (WHERE counted AND status = 'accepted' AND capacity > 0 AND attendees IS NOT NULL) AS cap_n,
               coalesce(sum(attendees) FILTER (WHERE counted AND status = 'accepted' AND capacity > 0), 0) AS cap_sum,
               count(*) FILTER (WHERE counted AND status = 'accepted' AND capacity > 0 AND attendees * 4 <= capacity) AS cap_b1,
               count(*) FILTER (WHERE counted AND status = 'accepted' AND capacity > 0 AND attendees * 4 > capacity AND attendees * 2 <= capacity) AS cap_b2,
               count(*) FILTER (WHERE counted AND status = 'accepted' AND capacity > 0 AND attendees * 2 > capacity AND attendees * 4 <= capacity * 3) AS cap_b3,
               count(*) FILTER (WHERE counted AND status = 'accepted' AND capacity > 0 AND attendees * 4 > capacity * 3 AND attendees <= capacity) AS cap_b4,
               count(*) FILTER (WHERE counted AND status = 'accepted' AND capacity > 0 AND attendees > capacity) AS cap_b5,
               count(*) FILTER (WHERE counted AND status = 'accepted') AS lead_n,
               count(*) FILTER (WHERE counted AND status = 'accepted' AND lead < 86400) AS lead_b1,
               count(*) FILTER (WHERE counted AND status = 'accepted' AND lead >= 86400 AND lead < 7 * 86400) AS lead_b2,
               count(*) FILTER (WHERE counted AND status = 'accepted' AND lead >= 7 * 86400 AND lead < 30 * 86400) AS lead_b3,
               count(*) FILTER (WHERE counted AND status = 'accepted' AND lead >= 30 * 86400) AS lead_b4,
               coalesce(sum(lead) FILTER (WHERE counted AND status = 'accepted'), 0) AS lead_sum,
               coalesce(array_agg(lead) FILTER (WHERE counted AND status = 'accepted'), '{}') AS leads
        FROM report_pieces(p_from, p_to, p_res, p_day)
        GROUP BY resource_id, day
    ),
    dec AS (
        SELECT w.resource_id, w.day,
               count(*) FILTER (WHERE d.outcome = 'decline') AS declined,
               count(*) FILTER (WHERE d.outcome = 'accept_partially') AS partially,
               count(*) FILTER (WHERE d.outcome = 'refuse') AS refused,
               count(*) FILTER (WHERE d.outcome = 'hold') AS held,
               count(*) FILTER (WHERE d.outcome = 'hold' AND a.outcome = 'approve') AS held_approved,
               count(*) FILTER (WHERE d.outcome = 'hold' AND a.outcome = 'refuse') AS held_refused,
               count(*) FILTER (WHERE d.outcome = 'hold' AND a.outcome IS NULL) AS held_undecided,
               count(a.waited) FILTER (WHERE d.outcome = 'hold') AS wait_n,
               coalesce(sum(a.waited) FILTER (WHERE d.outcome = 'hold'), 0) AS wait_sum,
               max(a.waited) FILTER (WHERE d.outcome = 'hold') AS wait_max,
               coalesce(array_agg(a.waited) FILTER (WHERE d.outcome = 'hold' AND a.waited IS NOT NULL), '{}') AS waits
        FROM report_windows(p_from, p_to, p_res, p_day) w
        CROSS JOIN LATERAL (
            SELECT d.id, d.booking_id, d.decided_at, d.outcome FROM decisions d
            WHERE d.resource_id = w.resource_id AND d.decided_at >= w.ws AND d.decided_at < w.we
              AND d.outcome IN ('decline', 'accept_partially', 'refuse', 'hold')
            OFFSET 0
        ) d
        LEFT JOIN LATERAL (
            SELECT d2.outcome, date_part('epoch', d2.decided_at - d.decided_at)::float8 AS waited
            FROM decisions d2
            WHERE d.outcome = 'hold' AND d2.booking_id = d.booking_id AND d2.id > d.id
              AND d2.outcome IN ('approve', 'refuse')
            ORDER BY d2.id LIMIT 1
        ) a ON true
        GROUP BY w.resource_id, w.day
    )
    SELECT w.resource_id, w.day, w.day_start, w.day_end, extract(isodow FROM w.day)::integer,
           coalesce(o.booked_seconds, 0),
           coalesce(o.h00, 0)::integer, coalesce(o.h01, 0)::integer, coalesce(o.h02, 0)::integer, coalesce(o.h03, 0)::integer,
           coalesce(o.h04, 0)::integer, coalesce(o.h05, 0)::integer, coalesce(o.h06, 0)::integer, coalesce(o.h07, 0)::integer,
           coalesce(o.h08, 0)::integer, coalesce(o.h09, 0)::integer, coalesce(o.h10, 0)::integer, coalesce(o.h11, 0)::integer,
           coalesce(o.h12, 0)::integer, coalesce(o.h13, 0)::integer, coalesce(o.h14, 0)::integer, coalesce(o.h15, 0)::integer,
           coalesce(o.h16, 0)::integer, coalesce(o.h17, 0)::integer, coalesce(o.h18, 0)::integer, coalesce(o.h19, 0)::integer,
           coalesce(o.h20, 0)::integer, coalesce(o.h21, 0)::integer, coalesce(o.h22, 0)::integer, coalesce(o.h23, 0)::integer,
           coalesce(o.h24, 0)::integer,
           coalesce(o.accepted, 0)::integer, coalesce(o.cancelled, 0)::integer, coalesce(o.released, 0)::integer,
           coalesce(o.cap_n, 0)::integer, coalesce(o.cap_sum, 0)::integer, coalesce(o.cap_b1, 0)::integer, coalesce(o.cap_b2, 0)::integer,
           coalesce(o.cap_b3, 0)::integer, coalesce(o.cap_b4, 0)::integer, coalesce(o.cap_b5, 0)::integer,
           coalesce(o.lead_n, 0)::integer, coalesce(o.lead_b1, 0)::integer, coalesce(o.lead_b2, 0)::integer, coalesce(o.lead_b3, 0)::integer,
           coalesce(o.lead_b4, 0)::integer, coalesce(o.lead_sum, 0), coalesce(o.leads, '{}'),
           coalesce(d.declined, 0)::integer, coalesce(d.partially, 0)::integer, coalesce(d.refused, 0)::integer, coalesce(d.held, 0)::integer,
           coalesce(d.held_approved, 0)::integer, coalesce(d.held_refused, 0)::integer, coalesce(d.held_undecided, 0)::integer,
           coalesce(d.wait_n, 0)::integer, coalesce(d.wait_sum, 0), d.wait_max, coalesce(d.waits, '{}')
    FROM report_windows(p_from, p_to, p_res, p_day) w
    LEFT JOIN occ o ON o.resource_id = w.resource_id AND o.day = w.day
    LEFT JOIN dec d ON d.resource_id = w.resource_id AND d.day = w.day
    WHERE o.resource_id IS NOT NULL OR d.resource_id IS NOT NULL
$$;

-- Declined and partially accepted requests by reason code, each request once
-- per code it was given.
CREATE FUNCTION report_day_reason_rows(p_from timestamptz, p_to timestamptz, p_res uuid[], p_day date[])
RETURNS SETOF report_day_reasons
LANGUAGE sql STABLE AS $$
    WITH refused AS (
        SELECT w.resource_id, w.day, w.day_start, w.day_end, d.id, d.reasons
        FROM report_windows(p_from, p_to, p_res, p_day) w
        CROSS JOIN LATERAL (
            SELECT d.id, d.reasons FROM decisions d
            WHERE d.resource_id = w.resource_id AND d.decided_at >= w.ws AND d.decided_at < w.we
              AND d.outcome IN ('decline', 'accept_partially')
            OFFSET 0
        ) d
    ),
    codes AS (
        SELECT rf.resource_id, rf.day, rf.day_start, rf.day_end, rf.id, r->>'code' AS code
        FROM refused rf, jsonb_array_elements(rf.reasons) r
        WHERE r ? 'code'
        UNION ALL
        SELECT rf.resource_id, rf.day, rf.day_start, rf.day_end, rf.id, rr->>'code'
        FROM refused rf, jsonb_array_elements(rf.reasons) r,
             jsonb_array_elements(CASE WHEN jsonb_typeof(r->'declined_occurrences') = 'array'
                                       THEN r->'declined_occurrences' ELSE '[]' END) x,
             jsonb_array_elements(CASE WHEN jsonb_typeof(x->'reasons') = 'array'
                                       THEN x->'reasons' ELSE '[]' END) rr
        WHERE rr ? 'code'
    )
    SELECT resource_id, day, day_start, day_end, code, count(DISTINCT id)::integer
    FROM codes GROUP BY resource_id, day, day_start, day_end, code
$$;

-- Accepted use by the organiser's organisation.
CREATE FUNCTION report_day_org_rows(p_from timestamptz, p_to timestamptz, p_res uuid[], p_day date[])
RETURNS SETOF report_day_orgs
LANGUAGE sql STABLE AS $$
    SELECT p.resource_id, p.day, w.day_start, w.day_end, p.organisation_id, sum(p.seconds),
           (count(*) FILTER (WHERE p.counted))::integer,
           (count(DISTINCT p.booking_id) FILTER (WHERE p.counted AND p.single))::integer,
           coalesce(array_agg(DISTINCT p.booking_id) FILTER (WHERE p.counted AND NOT p.single), '{}'),
           coalesce(sum(p.km) FILTER (WHERE p.counted), 0)::integer
    FROM report_pieces(p_from, p_to, p_res, p_day) p
    JOIN report_windows(p_from, p_to, p_res, p_day) w ON w.resource_id = p.resource_id AND w.day = p.day
    WHERE p.status = 'accepted'
    GROUP BY p.resource_id, p.day, w.day_start, w.day_end, p.organisation_id
$$;

-- Recomputes the dirty days; returns how many. Refreshes run one at a time;
-- a writer that commits meanwhile leaves its own marks for the next one.
CREATE FUNCTION report_refresh() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    res uuid[];
    days date[];
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
    RETURN cardinality(res);
END
$$;

-- Marks every day of `p_resource` that holds an occurrence, a decision or a
-- rollup row (after its capacity, site or time zone changed).
CREATE FUNCTION report_mark_resource(p_resource uuid) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO report_dirty (resource_id, day)
    SELECT p_resource, day FROM report_days WHERE resource_id = p_resource
    UNION
    SELECT o.resource_id, g::date
    FROM occurrences o JOIN resources r ON r.id = o.resource_id JOIN sites s ON s.id = r.site_id,
         generate_series((lower(o.period) AT TIME ZONE s.time_zone)::date::timestamp,
                         ((upper(o.period) - interval '1 microsecond') AT TIME ZONE s.time_zone)::date::timestamp,
                         interval '1 day') g
    WHERE o.resource_id = p_resource
    UNION
    SELECT d.resource_id, (d.decided_at AT TIME ZONE s.time_zone)::date
    FROM decisions d JOIN resources r ON r.id = d.resource_id JOIN sites s ON s.id = r.site_id
    WHERE d.resource_id = p_resource
$$;

-- Marks the days of every occurrence of the given bookings.
CREATE FUNCTION report_mark_bookings(p_bookings uuid[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO report_dirty (resource_id, day)
    SELECT DISTINCT o.resource_id, g::date
    FROM occurrences o JOIN resources r ON r.id = o.resource_id JOIN sites s ON s.id = r.site_id,
         generate_series((lower(o.period) AT TIME ZONE s.time_zone)::date::timestamp,
                         ((upper(o.period) - interval '1 microsecond') AT TIME ZONE s.time_zone)::date::timestamp,
                         interval '1 day') g
    WHERE o.booking_id = ANY(p_bookings)
$$;

-- Marks the days of the given periods.
CREATE FUNCTION report_mark_periods(p_res uuid[], p_periods tstzrange[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO report_dirty (resource_id, day)
    SELECT DISTINCT x.r, g::date
    FROM unnest(p_res, p_periods) x(r, p) JOIN resources r ON r.id = x.r JOIN sites s ON s.id = r.site_id,
         generate_series((lower(x.p) AT TIME ZONE s.time_zone)::date::timestamp,
                         ((upper(x.p) - interval '1 microsecond') AT TIME ZONE s.time_zone)::date::timestamp,
                         interval '1 day') g
$$;

-- Occurrences: their own days (before and after the change), and the days of
-- the other occurrences of their bookings (whether a booking is counted on
-- one day depends on all of them).
CREATE FUNCTION report_occurrences_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM report_mark_periods(array_agg(resource_id), array_agg(period)) FROM old_rows;
        PERFORM report_mark_bookings(ARRAY(SELECT DISTINCT booking_id FROM old_rows));
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM report_mark_bookings(ARRAY(SELECT DISTINCT booking_id FROM new_rows));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER report_occurrences_inserted AFTER INSERT ON occurrences
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_occurrences_changed();
CREATE TRIGGER report_occurrences_updated AFTER UPDATE ON occurrences
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_occurrences_changed();
CREATE TRIGGER report_occurrences_deleted AFTER DELETE ON occurrences
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION report_occurrences_changed();

-- Decisions: the day each was taken, and the days of the holds of the same
-- bookings (an approval or a refusal ends the wait of the hold before it).
CREATE FUNCTION report_decisions_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO report_dirty (resource_id, day)
        SELECT DISTINCT x.resource_id, (x.decided_at AT TIME ZONE s.time_zone)::date
        FROM (SELECT resource_id, decided_at FROM old_rows
              UNION ALL
              SELECT h.resource_id, h.decided_at FROM decisions h
              WHERE h.outcome = 'hold' AND h.booking_id IN (SELECT booking_id FROM old_rows)) x
        JOIN resources r ON r.id = x.resource_id JOIN sites s ON s.id = r.site_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO report_dirty (resource_id, day)
        SELECT DISTINCT x.resource_id, (x.decided_at AT TIME ZONE s.time_zone)::date
        FROM (SELECT resource_id, decided_at FROM new_rows
              UNION ALL
              SELECT h.resource_id, h.decided_at FROM decisions h
              WHERE h.outcome = 'hold'
                AND h.booking_id IN (SELECT booking_id FROM new_rows WHERE outcome IN ('approve', 'refuse'))) x
        JOIN resources r ON r.id = x.resource_id JOIN sites s ON s.id = r.site_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER report_decisions_inserted AFTER INSERT ON decisions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_decisions_changed();
CREATE TRIGGER report_decisions_updated AFTER UPDATE ON decisions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_decisions_changed();
CREATE TRIGGER report_decisions_deleted AFTER DELETE ON decisions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION report_decisions_changed();

-- Bookings: attendees, request time and organiser feed the figures of their
-- occurrences (retention anonymising a booking keeps its organisation).
CREATE FUNCTION report_bookings_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM report_mark_bookings(ARRAY(
        SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE (n.attendee_count, n.requested_at, n.organiser_person_id, n.organiser_organisation_id, n.resource_id)
              IS DISTINCT FROM (o.attendee_count, o.requested_at, o.organiser_person_id, o.organiser_organisation_id, o.resource_id)
    ));
    RETURN NULL;
END
$$;
CREATE TRIGGER report_bookings_updated AFTER UPDATE ON bookings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_bookings_changed();

-- Kilometres driven come from the check-out and return.
CREATE FUNCTION report_checkouts_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM report_mark_periods(array_agg(o.resource_id), array_agg(o.period))
        FROM occurrences o WHERE o.id = OLD.occurrence_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM report_mark_periods(array_agg(o.resource_id), array_agg(o.period))
        FROM occurrences o WHERE o.id = NEW.occurrence_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER report_checkouts_changed AFTER INSERT OR UPDATE OR DELETE ON checkouts
    FOR EACH ROW EXECUTE FUNCTION report_checkouts_changed();

-- A resource's capacity or site (so its time zone), a site's time zone.
CREATE FUNCTION report_resource_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'resources' THEN
        PERFORM report_mark_resource(NEW.id);
    ELSE
        PERFORM report_mark_resource(r.id) FROM resources r WHERE r.site_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER report_resources_updated AFTER UPDATE OF capacity, site_id ON resources
    FOR EACH ROW WHEN (OLD.capacity IS DISTINCT FROM NEW.capacity OR OLD.site_id IS DISTINCT FROM NEW.site_id)
    EXECUTE FUNCTION report_resource_changed();
CREATE TRIGGER report_sites_updated AFTER UPDATE OF time_zone ON sites
    FOR EACH ROW WHEN (OLD.time_zone IS DISTINCT FROM NEW.time_zone)
    EXECUTE FUNCTION report_resource_changed();

-- The organisation of an organiser comes from their directory.
CREATE FUNCTION report_organiser_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'people' THEN
        PERFORM report_mark_bookings(ARRAY(SELECT b.id FROM bookings b WHERE b.organiser_person_id = NEW.id));
    ELSE
        PERFORM report_mark_bookings(ARRAY(
            SELECT b.id FROM bookings b JOIN people p ON p.id = b.organiser_person_id WHERE p.directory_id = NEW.id));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER report_people_moved AFTER UPDATE OF directory_id ON people
    FOR EACH ROW WHEN (OLD.directory_id IS DISTINCT FROM NEW.directory_id)
    EXECUTE FUNCTION report_organiser_changed();
CREATE TRIGGER report_directories_moved AFTER UPDATE OF organisation_id ON directories
    FOR EACH ROW WHEN (OLD.organisation_id IS DISTINCT FROM NEW.organisation_id)
    EXECUTE FUNCTION report_organiser_changed();

-- Rebuilds the whole rollup (after an import, or to check it).
CREATE FUNCTION report_rebuild() RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(4201006);
    DELETE FROM report_days;
    DELETE FROM report_day_reasons;
    DELETE FROM report_day_orgs;
    DELETE FROM report_dirty;
    PERFORM report_mark_resource(r.id) FROM resources r;
    RETURN report_refresh();
END
$$;

-- What this database already holds is computed at the first report.
SELECT report_mark_resource(r.id) FROM resources r;
