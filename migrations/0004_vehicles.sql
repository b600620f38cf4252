-- Vehicles and loaned equipment, beyond schema v1 (which has vehicles,
-- pool_members, trip_details, checkouts and damage_photos):
-- * how long an electric vehicle takes to charge fully, from which the
--   charging buffer after a trip is derived from the declared distance;
-- * where a driver's licence data came from (a manager on the web site, or
--   a directory attribute), and when it was last set;
-- * which member of a pool a booking of the pool mailbox was given (the
--   booking stays on the pool mailbox, which answers the organiser, while its
--   occurrences hold the member's slot);
-- * the alerts of the vehicle workflow (overdue returns, released bookings,
--   repeated no-shows), kept for the web site whether or not a message is sent;
-- * resa's public address, for the trip-details link of an acceptance.

ALTER TABLE vehicles ADD COLUMN full_charge_minutes integer CHECK (full_charge_minutes > 0);

ALTER TABLE people ADD COLUMN licence_source text CHECK (licence_source IN ('manager', 'directory'));
ALTER TABLE people ADD COLUMN licence_updated_at timestamptz;

CREATE TABLE pool_assignments (
    booking_id           uuid PRIMARY KEY REFERENCES bookings(id) ON DELETE CASCADE,
    pool_id              uuid NOT NULL REFERENCES resources(id),
    member_id            uuid NOT NULL REFERENCES resources(id),
    declared_distance_km integer CHECK (declared_distance_km >= 0),
    chosen_at            timestamptz NOT NULL,
    CHECK (pool_id <> member_id)
);
CREATE INDEX pool_assignments_member_idx ON pool_assignments (member_id);
CREATE INDEX pool_assignments_pool_idx ON pool_assignments (pool_id);

CREATE TABLE vehicle_alerts (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind              text NOT NULL CHECK (kind IN ('overdue_return', 'released_no_check_in', 'repeated_no_show')),
    resource_id       uuid NOT NULL REFERENCES resources(id),
    booking_id        uuid REFERENCES bookings(id) ON DELETE CASCADE,
    occurrence_id     uuid REFERENCES occurrences(id) ON DELETE CASCADE,
    recipient         text NOT NULL CHECK (recipient IN ('organiser', 'manager', 'next_booker')),
    recipient_address text,
    body_fr           text NOT NULL,
    body_en           text NOT NULL,
    created_at        timestamptz NOT NULL,
    dismissed_at      timestamptz
);
-- One alert per event and recipient, so the periodic job may run again freely.
CREATE UNIQUE INDEX vehicle_alerts_once_idx ON vehicle_alerts (kind, coalesce(occurrence_id, booking_id), recipient);
CREATE INDEX vehicle_alerts_open_idx ON vehicle_alerts (created_at) WHERE dismissed_at IS NULL;

CREATE TABLE vehicle_settings (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    public_url text CHECK (public_url ~ '^https?://')
);
