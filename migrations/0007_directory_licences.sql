-- Driving licences read from a directory attribute: why the last value read
-- for a person could not be used (unknown class, unreadable date), so the
-- directory status can show it. The licence itself stays as it was; NULL
-- when the value was read or there is none.
ALTER TABLE people ADD COLUMN licence_problem text;
