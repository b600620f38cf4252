-- Reports and retention.
--
-- Reports select occurrences by the time they cover and decisions by the time
-- they were taken, over any date range and every resource: the existing
-- indexes lead with the resource, so a range over all resources needs these.
CREATE INDEX occurrences_period_only_idx ON occurrences USING gist (period);
CREATE INDEX decisions_decided_at_idx ON decisions (decided_at);
CREATE INDEX approvals_decided_at_idx ON approvals (decided_at);

-- The organisation of the organiser, kept when retention anonymises a booking
-- (the link to the person is dropped then), so the cost-sharing report between
-- organisations gives the same figures before and after.
ALTER TABLE bookings ADD COLUMN organiser_organisation_id uuid REFERENCES organisations(id);

-- Retention looks for bookings not yet anonymised.
CREATE INDEX bookings_not_anonymised_idx ON bookings (requested_at) WHERE anonymised_at IS NULL;
