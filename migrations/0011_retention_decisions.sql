-- Decisions stay append-only, with one exception: retention may anonymise
-- the personal data they quote (the organiser's address and directory
-- references in `inputs`, and the name of whoever held a slot in a conflict
-- reason). The exception needs the transaction-local setting
-- `resa.anonymising` (set by the retention job only), may change `inputs`,
-- `reasons` and `explanation` only, and must mark `inputs` as anonymised.
-- Deleting stays forbidden. This guards against mistakes in the
-- application, not against someone who already holds the database role.

CREATE FUNCTION decisions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('resa.anonymising', true) = 'on'
       AND (NEW.id, NEW.booking_id, NEW.resource_id, NEW.uid, NEW.sequence, NEW.decided_at, NEW.outcome, NEW.decided_by)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.booking_id, OLD.resource_id, OLD.uid, OLD.sequence, OLD.decided_at, OLD.outcome, OLD.decided_by)
       AND NEW.inputs ? 'anonymised'
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;

DROP TRIGGER decisions_append_only ON decisions;
CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION decisions_guard();
