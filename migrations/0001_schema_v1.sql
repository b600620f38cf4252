-- resa schema v1.
--
-- Conventions: surrogate uuid keys; enumerations are text columns with CHECK
-- constraints (cheaper to extend than PostgreSQL enums in forward-only
-- migrations); e-mail addresses are stored lower-case and checked so; every
-- timestamp is timestamptz; every time range is a half-open tstzrange '[)', so
-- a booking ending at 15:00 and another starting at 15:00 do not overlap.

CREATE EXTENSION IF NOT EXISTS btree_gist;

-- ---------------------------------------------------------------------------
-- Organisations, sites, resource types, resources
-- ---------------------------------------------------------------------------

CREATE TABLE organisations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sites (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id uuid NOT NULL REFERENCES organisations(id),
    slug            text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    address         text,
    -- IANA zone name; the application checks it against its zone database.
    time_zone       text NOT NULL DEFAULT 'Europe/Paris',
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organisation_id, slug)
);

CREATE TABLE resource_types (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    category    text NOT NULL CHECK (category IN ('room', 'vehicle', 'equipment')),
    name_fr     text NOT NULL,
    name_en     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The typed attributes a resource of a type may carry (room equipment,
-- vehicle data kept beyond the dedicated vehicles table, etc.).
CREATE TABLE attribute_definitions (
    resource_type_id uuid NOT NULL REFERENCES resource_types(id),
    key              text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]*$'),
    value_type       text NOT NULL CHECK (value_type IN ('text', 'integer', 'decimal', 'boolean', 'date', 'choice')),
    choices          text[],
    required         boolean NOT NULL DEFAULT false,
    label_fr         text NOT NULL,
    label_en         text NOT NULL,
    PRIMARY KEY (resource_type_id, key),
    CHECK ((value_type = 'choice') = (choices IS NOT NULL))
);

CREATE TABLE resources (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    site_id           uuid NOT NULL REFERENCES sites(id),
    resource_type_id  uuid NOT NULL REFERENCES resource_types(id),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    mailbox_smtp      text NOT NULL CHECK (mailbox_smtp = lower(mailbox_smtp) AND mailbox_smtp LIKE '%_@_%'),
    -- Name of the [[exchange]] endpoint of the configuration that serves it.
    exchange_endpoint text NOT NULL,
    capacity          integer CHECK (capacity >= 0),
    -- A pool resource (e.g. "Véhicules – site Mairie") is a mailbox that
    -- stands for several member resources; resa picks a free member.
    is_pool           boolean NOT NULL DEFAULT false,
    active            boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (mailbox_smtp)
);
CREATE INDEX resources_site_idx ON resources (site_id);
CREATE INDEX resources_type_idx ON resources (resource_type_id);

CREATE TABLE resource_attributes (
    resource_id   uuid NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    key           text NOT NULL,
    value_text    text,
    value_integer bigint,
    value_decimal numeric,
    value_boolean boolean,
    value_date    date,
    PRIMARY KEY (resource_id, key),
    -- Exactly one typed value per attribute.
    CHECK (num_nonnulls(value_text, value_integer, value_decimal, value_boolean, value_date) = 1)
);

CREATE TABLE pool_members (
    pool_id     uuid NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    member_id   uuid NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    PRIMARY KEY (pool_id, member_id),
    CHECK (pool_id <> member_id)
);

CREATE TABLE vehicles (
    resource_id    uuid PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
    plate          text NOT NULL UNIQUE,
    seats          integer NOT NULL CHECK (seats > 0),
    energy         text NOT NULL CHECK (energy IN ('petrol', 'diesel', 'hybrid', 'electric', 'human', 'assisted')),
    range_km       integer CHECK (range_km > 0),
    licence_class  text CHECK (licence_class IN ('AM', 'A1', 'A2', 'A', 'B', 'BE', 'C1', 'C', 'D1', 'D')),
    home_site_id   uuid REFERENCES sites(id),
    key_location   text,
    odometer_km    integer CHECK (odometer_km >= 0)
);

-- ---------------------------------------------------------------------------
-- Policies, holidays, blackouts
-- ---------------------------------------------------------------------------

-- One policy per scope. The body is the domain's Policy serialised as a JSON
-- object; an absent or null field means "inherit from the enclosing scope".
CREATE TABLE policies (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    scope_kind       text NOT NULL CHECK (scope_kind IN ('global', 'organisation', 'site', 'resource_type', 'resource')),
    organisation_id  uuid REFERENCES organisations(id) ON DELETE CASCADE,
    site_id          uuid REFERENCES sites(id) ON DELETE CASCADE,
    resource_type_id uuid REFERENCES resource_types(id) ON DELETE CASCADE,
    resource_id      uuid REFERENCES resources(id) ON DELETE CASCADE,
    body             jsonb NOT NULL CHECK (jsonb_typeof(body) = 'object'),
    revision         integer NOT NULL DEFAULT 1,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       uuid,
    CHECK (CASE scope_kind
        WHEN 'global'        THEN num_nonnulls(organisation_id, site_id, resource_type_id, resource_id) = 0
        WHEN 'organisation'  THEN organisation_id IS NOT NULL AND num_nonnulls(site_id, resource_type_id, resource_id) = 0
        WHEN 'site'          THEN site_id IS NOT NULL AND num_nonnulls(organisation_id, resource_type_id, resource_id) = 0
        WHEN 'resource_type' THEN resource_type_id IS NOT NULL AND num_nonnulls(organisation_id, site_id, resource_id) = 0
        WHEN 'resource'      THEN resource_id IS NOT NULL AND num_nonnulls(organisation_id, site_id, resource_type_id) = 0
    END)
);
CREATE UNIQUE INDEX policies_scope_uniq ON policies (
    scope_kind,
    coalesce(organisation_id, site_id, resource_type_id, resource_id, '00000000-0000-0000-0000-000000000000'::uuid)
);

-- Opening hours per site, optionally overridden per resource: one row per
-- weekday and time span, in the site's local time.
CREATE TABLE opening_hours (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    site_id      uuid REFERENCES sites(id) ON DELETE CASCADE,
    resource_id  uuid REFERENCES resources(id) ON DELETE CASCADE,
    weekday      smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7), -- ISO: 1 = Monday
    opens        time NOT NULL,
    closes       time NOT NULL,
    CHECK (opens < closes),
    CHECK (num_nonnulls(site_id, resource_id) = 1)
);

-- Local holidays beyond the French public holidays computed by the domain.
CREATE TABLE holidays (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    day             date NOT NULL,
    name            text NOT NULL,
    organisation_id uuid REFERENCES organisations(id) ON DELETE CASCADE,
    site_id         uuid REFERENCES sites(id) ON DELETE CASCADE
);

CREATE TABLE blackouts (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    scope_kind       text NOT NULL CHECK (scope_kind IN ('organisation', 'site', 'resource_type', 'resource')),
    organisation_id  uuid REFERENCES organisations(id) ON DELETE CASCADE,
    site_id          uuid REFERENCES sites(id) ON DELETE CASCADE,
    resource_type_id uuid REFERENCES resource_types(id) ON DELETE CASCADE,
    resource_id      uuid REFERENCES resources(id) ON DELETE CASCADE,
    period           tstzrange NOT NULL CHECK (NOT isempty(period) AND NOT lower_inf(period) AND NOT upper_inf(period)),
    reason           text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       uuid,
    CHECK (num_nonnulls(organisation_id, site_id, resource_type_id, resource_id) = 1)
);
CREATE INDEX blackouts_period_idx ON blackouts USING gist (period);

-- ---------------------------------------------------------------------------
-- Directories, people, groups, membership
-- ---------------------------------------------------------------------------

CREATE TABLE directories (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The name of the [[directory]] section of the configuration.
    name                text NOT NULL UNIQUE,
    organisation_id     uuid REFERENCES organisations(id),
    highest_usn         bigint,
    last_full_sync_at   timestamptz,
    last_sync_at        timestamptz,
    last_error          text,
    last_error_at       timestamptz
);

CREATE TABLE people (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    directory_id       uuid NOT NULL REFERENCES directories(id),
    object_guid        uuid NOT NULL,
    sam_account_name   text NOT NULL,
    user_principal_name text,
    display_name       text NOT NULL,
    department         text,
    manager_id         uuid REFERENCES people(id) ON DELETE SET NULL,
    legacy_exchange_dn text,
    disabled           boolean NOT NULL DEFAULT false,
    deleted_at         timestamptz,
    preferred_language text CHECK (preferred_language IN ('fr', 'en')),
    licence_classes    text[],
    licence_expires_on date,
    usn_changed        bigint,
    synced_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (directory_id, object_guid)
);
CREATE INDEX people_sam_idx ON people (directory_id, lower(sam_account_name));
CREATE INDEX people_upn_idx ON people (lower(user_principal_name));
CREATE UNIQUE INDEX people_legacy_dn_idx ON people (lower(legacy_exchange_dn)) WHERE deleted_at IS NULL;

-- Every SMTP address (primary and proxyAddresses aliases) of a person. An
-- address resolves to at most one person across all directories.
CREATE TABLE person_addresses (
    address    text PRIMARY KEY CHECK (address = lower(address) AND address LIKE '%_@_%'),
    person_id  uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    is_primary boolean NOT NULL DEFAULT false
);
CREATE INDEX person_addresses_person_idx ON person_addresses (person_id);

CREATE TABLE groups (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    directory_id     uuid NOT NULL REFERENCES directories(id),
    object_guid      uuid NOT NULL,
    sam_account_name text NOT NULL,
    name             text NOT NULL,
    distinguished_name text NOT NULL,
    description      text,
    usn_changed      bigint,
    deleted_at       timestamptz,
    synced_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (directory_id, object_guid)
);

-- Direct membership as read from the directory.
CREATE TABLE group_members (
    group_id         uuid NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    member_person_id uuid REFERENCES people(id) ON DELETE CASCADE,
    member_group_id  uuid REFERENCES groups(id) ON DELETE CASCADE,
    CHECK (num_nonnulls(member_person_id, member_group_id) = 1)
);
CREATE UNIQUE INDEX group_members_person_uniq ON group_members (group_id, member_person_id) WHERE member_person_id IS NOT NULL;
CREATE UNIQUE INDEX group_members_group_uniq ON group_members (group_id, member_group_id) WHERE member_group_id IS NOT NULL;

-- Transitive membership (nested groups resolved), rebuilt by the directory
-- sync; decisions read this table only.
CREATE TABLE person_groups (
    person_id uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    group_id  uuid NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    PRIMARY KEY (person_id, group_id)
);
CREATE INDEX person_groups_group_idx ON person_groups (group_id);

-- ---------------------------------------------------------------------------
-- Grants: group or person -> resource scope, with a role
-- ---------------------------------------------------------------------------

CREATE TABLE grants (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    subject_person_id uuid REFERENCES people(id) ON DELETE CASCADE,
    subject_group_id  uuid REFERENCES groups(id) ON DELETE CASCADE,
    scope_kind        text NOT NULL CHECK (scope_kind IN ('global', 'organisation', 'site', 'site_type', 'resource_type', 'resource')),
    organisation_id   uuid REFERENCES organisations(id) ON DELETE CASCADE,
    site_id           uuid REFERENCES sites(id) ON DELETE CASCADE,
    resource_type_id  uuid REFERENCES resource_types(id) ON DELETE CASCADE,
    resource_id       uuid REFERENCES resources(id) ON DELETE CASCADE,
    role              text NOT NULL CHECK (role IN ('book', 'request', 'manage', 'view', 'deny')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    created_by        uuid,
    CHECK (num_nonnulls(subject_person_id, subject_group_id) = 1),
    CHECK (CASE scope_kind
        WHEN 'global'        THEN num_nonnulls(organisation_id, site_id, resource_type_id, resource_id) = 0
        WHEN 'organisation'  THEN organisation_id IS NOT NULL AND num_nonnulls(site_id, resource_type_id, resource_id) = 0
        WHEN 'site'          THEN site_id IS NOT NULL AND num_nonnulls(organisation_id, resource_type_id, resource_id) = 0
        WHEN 'site_type'     THEN site_id IS NOT NULL AND resource_type_id IS NOT NULL AND num_nonnulls(organisation_id, resource_id) = 0
        WHEN 'resource_type' THEN resource_type_id IS NOT NULL AND num_nonnulls(organisation_id, site_id, resource_id) = 0
        WHEN 'resource'      THEN resource_id IS NOT NULL AND num_nonnulls(organisation_id, site_id, resource_type_id) = 0
    END)
);
CREATE INDEX grants_person_idx ON grants (subject_person_id);
CREATE INDEX grants_group_idx ON grants (subject_group_id);

-- ---------------------------------------------------------------------------
-- Validation circuits (versioned: a booking keeps the version it started with)
-- ---------------------------------------------------------------------------

CREATE TABLE circuits (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE circuit_versions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    circuit_id      uuid NOT NULL REFERENCES circuits(id),
    version         integer NOT NULL CHECK (version > 0),
    -- Conditions choosing this circuit (resource type, site, duration, ...),
    -- as the domain's serialised condition list.
    conditions      jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(conditions) = 'array'),
    priority        integer NOT NULL DEFAULT 0,
    deadline_hours  integer CHECK (deadline_hours > 0),
    final_outcome   text NOT NULL DEFAULT 'decline' CHECK (final_outcome IN ('decline', 'accept')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      uuid,
    UNIQUE (circuit_id, version)
);

CREATE TABLE circuit_steps (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    circuit_version_id uuid NOT NULL REFERENCES circuit_versions(id),
    position           integer NOT NULL CHECK (position > 0),
    quorum             text NOT NULL CHECK (quorum IN ('one', 'all')),
    deadline_hours     integer CHECK (deadline_hours > 0),
    reminder_hours     integer CHECK (reminder_hours > 0),
    backup_person_id   uuid REFERENCES people(id),
    UNIQUE (circuit_version_id, position)
);

CREATE TABLE circuit_step_approvers (
    step_id    uuid NOT NULL REFERENCES circuit_steps(id),
    kind       text NOT NULL CHECK (kind IN ('person', 'group', 'organiser_manager', 'resource_managers')),
    person_id  uuid REFERENCES people(id),
    group_id   uuid REFERENCES groups(id),
    CHECK (CASE kind
        WHEN 'person' THEN person_id IS NOT NULL AND group_id IS NULL
        WHEN 'group'  THEN group_id IS NOT NULL AND person_id IS NULL
        ELSE num_nonnulls(person_id, group_id) = 0
    END)
);

-- ---------------------------------------------------------------------------
-- Bookings and occurrences
-- ---------------------------------------------------------------------------

CREATE TABLE bookings (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    resource_id         uuid NOT NULL REFERENCES resources(id),
    -- The meeting's UID (clean global object id) as Exchange gives it.
    uid                 text NOT NULL,
    source              text NOT NULL CHECK (source IN ('exchange', 'web')),
    organiser_person_id uuid REFERENCES people(id),
    organiser_address   text NOT NULL,
    organiser_name      text,
    subject             text,
    body                text,
    attendee_count      integer CHECK (attendee_count >= 0),
    sequence            integer NOT NULL DEFAULT 0,
    time_zone           text NOT NULL DEFAULT 'Europe/Paris',
    -- The domain's serialised recurrence, null for a single meeting.
    recurrence          jsonb,
    status              text NOT NULL CHECK (status IN ('accepted', 'partially_accepted', 'declined', 'held', 'cancelled', 'released')),
    circuit_version_id  uuid REFERENCES circuit_versions(id),
    -- The resource's calendar item in Exchange, once known.
    exchange_item_id    text,
    requested_at        timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    anonymised_at       timestamptz,
    UNIQUE (resource_id, uid)
);
CREATE INDEX bookings_organiser_idx ON bookings (organiser_person_id);

CREATE TABLE occurrences (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    booking_id     uuid NOT NULL REFERENCES bookings(id) ON DELETE CASCADE,
    -- Copied from the booking so the exclusion constraint can use it.
    resource_id    uuid NOT NULL REFERENCES resources(id),
    -- Recurrence id: the occurrence's original start (its start for a single meeting).
    original_start timestamptz NOT NULL,
    period         tstzrange NOT NULL CHECK (NOT isempty(period) AND NOT lower_inf(period) AND NOT upper_inf(period)),
    -- The period widened by the buffers before and after (cleaning, charging):
    -- this is what holds the slot.
    blocked        tstzrange NOT NULL CHECK (blocked @> period),
    status         text NOT NULL CHECK (status IN ('accepted', 'held', 'declined', 'cancelled', 'released')),
    checked_in_at  timestamptz,
    released_at    timestamptz,
    UNIQUE (booking_id, original_start),
    -- The last line against double booking: two occurrences of one resource
    -- that hold a slot never overlap, whatever the application does.
    CONSTRAINT occurrences_no_overlap EXCLUDE USING gist (resource_id WITH =, blocked WITH &&)
        WHERE (status IN ('accepted', 'held'))
);
CREATE INDEX occurrences_period_idx ON occurrences USING gist (resource_id, period);

-- ---------------------------------------------------------------------------
-- Approvals
-- ---------------------------------------------------------------------------

CREATE TABLE approval_requests (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    booking_id         uuid NOT NULL REFERENCES bookings(id) ON DELETE CASCADE,
    step_id            uuid NOT NULL REFERENCES circuit_steps(id),
    approver_person_id uuid NOT NULL REFERENCES people(id),
    status             text NOT NULL CHECK (status IN ('pending', 'approved', 'refused', 'delegated', 'expired', 'superseded')),
    requested_at       timestamptz NOT NULL,
    deadline_at        timestamptz,
    reminded_at        timestamptz,
    escalated_at       timestamptz,
    UNIQUE (booking_id, step_id, approver_person_id)
);

CREATE TABLE approvals (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    approval_request_id uuid NOT NULL REFERENCES approval_requests(id) ON DELETE CASCADE,
    outcome             text NOT NULL CHECK (outcome IN ('approved', 'refused')),
    channel             text NOT NULL CHECK (channel IN ('outlook_vote', 'outlook_reply', 'web', 'link', 'deadline')),
    actor_person_id     uuid REFERENCES people(id),
    comment             text,
    decided_at          timestamptz NOT NULL
);

-- Single-use signed approval links: only a hash of the token is kept.
CREATE TABLE approval_links (
    token_hash          bytea PRIMARY KEY,
    approval_request_id uuid NOT NULL REFERENCES approval_requests(id) ON DELETE CASCADE,
    expires_at          timestamptz NOT NULL,
    used_at             timestamptz
);

-- ---------------------------------------------------------------------------
-- Decisions and audit: append-only
-- ---------------------------------------------------------------------------

CREATE TABLE decisions (
    id          bigserial PRIMARY KEY,
    -- Bookings are anonymised by retention, never deleted, so this stays valid.
    booking_id  uuid REFERENCES bookings(id),
    resource_id uuid NOT NULL REFERENCES resources(id),
    uid         text NOT NULL,
    sequence    integer NOT NULL DEFAULT 0,
    decided_at  timestamptz NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('accept', 'accept_partially', 'decline', 'hold', 'cancel', 'release', 'approve', 'refuse')),
    -- [{code, scope, params, fr, en}, ...]
    reasons     jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(reasons) = 'array'),
    -- What the engine was given and how each rule voted, for the explainer.
    inputs      jsonb NOT NULL DEFAULT '{}',
    explanation jsonb NOT NULL DEFAULT '[]',
    decided_by  text NOT NULL CHECK (decided_by IN ('engine', 'manager', 'circuit', 'system'))
);
CREATE INDEX decisions_booking_idx ON decisions (booking_id);
CREATE INDEX decisions_resource_time_idx ON decisions (resource_id, decided_at);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    object_kind text NOT NULL,
    object_id   text,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at);

CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- Decisions hold no subject or body (those live in bookings, which retention
-- anonymises), so they never need to change: insert only.
CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- ---------------------------------------------------------------------------
-- Outbox, mailbox sync state, leases, drift
-- ---------------------------------------------------------------------------

CREATE TABLE outbox (
    id               bigserial PRIMARY KEY,
    resource_id      uuid NOT NULL REFERENCES resources(id),
    booking_id       uuid REFERENCES bookings(id) ON DELETE SET NULL,
    kind             text NOT NULL CHECK (kind IN ('accept', 'tentative', 'decline', 'message', 'create_meeting', 'cancel_meeting', 'update_meeting')),
    -- Unique per intended effect, so a command is never queued twice.
    idempotency_key  text NOT NULL UNIQUE,
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    lease_owner      text,
    lease_expires_at timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL,
    done_at          timestamptz,
    exchange_item_id text
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'pending';

CREATE TABLE instances (
    id           text PRIMARY KEY,
    hostname     text NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
);

CREATE TABLE mailbox_sync (
    resource_id          uuid PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
    inbox_sync_state     text,
    calendar_sync_state  text,
    last_event_at        timestamptz,
    last_sync_at         timestamptz,
    last_reconciled_at   timestamptz,
    last_error           text,
    last_error_at        timestamptz,
    resync_requested_at  timestamptz,
    lease_owner          text,
    lease_expires_at     timestamptz
);

CREATE TABLE calendar_drift (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    resource_id      uuid NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('unknown_item', 'missing_item', 'time_mismatch')),
    uid              text,
    exchange_item_id text,
    details          jsonb NOT NULL DEFAULT '{}',
    found_at         timestamptz NOT NULL,
    resolved_at      timestamptz
);

-- ---------------------------------------------------------------------------
-- Vehicles and loans, notifications, web sessions
-- ---------------------------------------------------------------------------

CREATE TABLE trip_details (
    booking_id           uuid PRIMARY KEY REFERENCES bookings(id) ON DELETE CASCADE,
    destination          text,
    declared_distance_km integer CHECK (declared_distance_km >= 0),
    passengers           integer CHECK (passengers >= 0),
    outside_territory    boolean,
    updated_at           timestamptz NOT NULL
);

-- Check-out and return of a vehicle or a loaned piece of equipment.
CREATE TABLE checkouts (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    occurrence_id    uuid NOT NULL UNIQUE REFERENCES occurrences(id) ON DELETE CASCADE,
    resource_id      uuid NOT NULL REFERENCES resources(id),
    out_at           timestamptz NOT NULL,
    out_by           uuid REFERENCES people(id),
    odometer_out_km  integer CHECK (odometer_out_km >= 0),
    returned_at      timestamptz,
    returned_by      uuid REFERENCES people(id),
    odometer_in_km   integer CHECK (odometer_in_km >= 0),
    energy_level_pct integer CHECK (energy_level_pct BETWEEN 0 AND 100),
    cleanliness      text CHECK (cleanliness IN ('clean', 'acceptable', 'dirty')),
    condition_notes  text,
    damage           text,
    CHECK (odometer_in_km IS NULL OR odometer_out_km IS NULL OR odometer_in_km >= odometer_out_km),
    CHECK (returned_at IS NULL OR returned_at >= out_at)
);

CREATE TABLE damage_photos (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    checkout_id  uuid NOT NULL REFERENCES checkouts(id) ON DELETE CASCADE,
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    bytes        bytea NOT NULL CHECK (octet_length(bytes) <= 10485760),
    uploaded_at  timestamptz NOT NULL
);

CREATE TABLE message_templates (
    event      text NOT NULL CHECK (event IN ('accepted', 'partially_accepted', 'declined', 'held', 'approval_request',
                                              'approved', 'refused', 'cancelled_by_manager', 'reminder', 'approval_reminder',
                                              'pickup_instructions', 'released_no_checkin', 'overdue_return')),
    language   text NOT NULL CHECK (language IN ('fr', 'en')),
    subject    text NOT NULL,
    body       text NOT NULL,
    updated_at timestamptz NOT NULL,
    updated_by uuid,
    PRIMARY KEY (event, language)
);

CREATE TABLE web_sessions (
    id_hash      bytea PRIMARY KEY,
    person_id    uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    language     text NOT NULL DEFAULT 'fr' CHECK (language IN ('fr', 'en')),
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
