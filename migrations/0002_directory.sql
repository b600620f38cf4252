-- Directory sync needs, beyond schema v1:
-- * each person's DN, so that group `member` values and `manager` (both DNs)
--   resolve to people in SQL, also in an incremental sync that does not
--   re-read the people concerned;
-- * the manager's DN as read, resolved to manager_id after each sync (the
--   manager may be read after the person);
-- * the DC that issued highest_usn: USNs are per domain controller, so a
--   watermark from another DC (fail-over) is meaningless and forces a full sync;
-- * former legacy Exchange DNs (X500 proxy addresses), which Outlook still
--   sends as organiser after a mailbox move or an Exchange migration.

ALTER TABLE people ADD COLUMN distinguished_name text;
ALTER TABLE people ADD COLUMN manager_dn text;
CREATE INDEX people_dn_idx ON people (directory_id, lower(distinguished_name));
CREATE INDEX groups_dn_idx ON groups (directory_id, lower(distinguished_name));

ALTER TABLE directories ADD COLUMN usn_server text;

CREATE TABLE person_x500_addresses (
    legacy_dn  text NOT NULL,
    person_id  uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    PRIMARY KEY (person_id, legacy_dn)
);
CREATE INDEX person_x500_addresses_dn_idx ON person_x500_addresses (lower(legacy_dn));
