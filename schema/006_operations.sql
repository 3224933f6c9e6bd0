-- Roster schema, version 6: what operators and integrators need.

-- notification.cancel closes a failed email for good (the failed-outbox
-- alert clears); it is never sent.
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check CHECK (status IN ('pending', 'sent', 'failed', 'cancelled'));

-- The transfer_target_conflict throttle: was one sent for this workspace
-- and target in the last hour?
CREATE INDEX notifications_recent ON notifications (workspace_id, template, created_at);
