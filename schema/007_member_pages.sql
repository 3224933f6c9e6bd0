-- Roster schema, version 7: what the soak found.

-- member.list pages a workspace's members in id order. Without this the
-- planner walks the primary key through every workspace's members and
-- filters, so a page of the newest workspace cost a scan of all older
-- members (p99 0.5–0.9 s in the 10-minute load run, growing with the
-- database). Serves: member.list (WHERE workspace_id = $1 … ORDER BY id).
CREATE INDEX members_workspace_id ON members (workspace_id, id);
