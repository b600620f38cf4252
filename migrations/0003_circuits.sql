-- Validation circuits at work, beyond schema v1:
-- * each held booking's run of its circuit: the circuit version it started
--   with, resolved to people at the start (so later edits of the circuit, of
--   groups or of managers do not change a running circuit), where it stands,
--   and when it next needs looking at (reminder, step deadline, circuit
--   deadline), so the periodic job reads only what is due;
-- * a human name per circuit version, shown to approvers and organisers;
-- * an approver found absent (automatic reply) has their request marked
--   'delegated' (schema v1) and the step goes to its backup.

ALTER TABLE circuit_versions ADD COLUMN label_fr text;
ALTER TABLE circuit_versions ADD COLUMN label_en text;

CREATE TABLE circuit_runs (
    booking_id         uuid PRIMARY KEY REFERENCES bookings(id) ON DELETE CASCADE,
    circuit_version_id uuid NOT NULL REFERENCES circuit_versions(id),
    -- The domain's Circuit with approvers resolved to people.
    circuit            jsonb NOT NULL,
    -- circuit_steps ids, in the order of the circuit's steps.
    step_ids           uuid[] NOT NULL,
    -- The domain's Progress.
    progress           jsonb NOT NULL,
    started_at         timestamptz NOT NULL,
    next_due_at        timestamptz,
    finished_at        timestamptz,
    outcome            text CHECK (outcome IN ('approved', 'refused', 'expired_accept', 'expired_decline', 'cancelled'))
);
CREATE INDEX circuit_runs_due_idx ON circuit_runs (next_due_at) WHERE finished_at IS NULL;
