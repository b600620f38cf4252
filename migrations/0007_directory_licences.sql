-- Driving licences read from a directory attribute: why the last value read
-- for a person could not be used (unknown class, unreadable date), so the
-- directory status can show it. The licence itself stays as it was; NULL
-- when the value was read or there is none.
ALTER TABLE people ADD COLUMN licence_problem text;

-- The alert of repeated no-shows of a series, sent to the resource's
-- managers, has a message template admins may edit like the others.
ALTER TABLE message_templates DROP CONSTRAINT message_templates_event_check;
ALTER TABLE message_templates ADD CONSTRAINT message_templates_event_check
    CHECK (event IN ('accepted', 'partially_accepted', 'declined', 'held', 'approval_request', 'approved',
                     'refused', 'cancelled_by_manager', 'reminder', 'approval_reminder', 'pickup_instructions',
                     'released_no_checkin', 'overdue_return', 'repeated_no_show'));
