-- Roster schema, version 3: the event feed in commit order per member, the
-- break-glass list on the members themselves (S9), address keys (S10).

-- The feed's order (see EventLog.swift). feed_key is the writing
-- transaction's id, raised to the key of the member's previous event: every
-- event about a member is written under that member's row lock, so a later
-- commit never sorts before an earlier one, whatever the transaction ids.
ALTER TABLE members ADD COLUMN feed_key xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE events ADD COLUMN feed_key xid8;
UPDATE events SET feed_key = xid;
ALTER TABLE events ALTER COLUMN feed_key SET NOT NULL, ALTER COLUMN feed_key SET DEFAULT pg_current_xact_id();
DROP INDEX events_order;
DROP INDEX events_workspace;
-- events.list and events.subscribe: the feed after a cursor.
CREATE INDEX events_order ON events (feed_key, id);
-- events.list with workspaceId.
CREATE INDEX events_workspace ON events (workspace_id, feed_key, id);
ALTER TABLE events DROP COLUMN xid;

-- S9: the break-glass flag lives on the member, and only an active admin
-- keeps it — whatever demotes, deactivates or removes a member (by hand, by
-- an attribute, by a group) clears it in the same row update.
ALTER TABLE members ADD COLUMN sso_bypass boolean NOT NULL DEFAULT false;
UPDATE members m SET sso_bypass = true FROM workspaces w
WHERE w.id = m.workspace_id AND m.id = ANY(w.sso_bypass_member_ids) AND m.role = 'admin' AND m.status = 'active';
ALTER TABLE workspaces DROP COLUMN sso_bypass_member_ids;
CREATE FUNCTION roster_bypass_only_active_admins() RETURNS trigger AS $$
BEGIN
  NEW.sso_bypass := NEW.sso_bypass AND NEW.role = 'admin' AND NEW.status = 'active';
  RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER members_bypass_only_active_admins BEFORE INSERT OR UPDATE OF role, status, sso_bypass ON members
  FOR EACH ROW EXECUTE FUNCTION roster_bypass_only_active_admins();
-- The workspace's bypass list (at most two).
CREATE INDEX members_bypass ON members (workspace_id) WHERE sso_bypass;

-- S10: one person per address as people see it. email_key is computed by
-- Roster (NFC, case folding, needless quotes removed, UTS 46 domain); the
-- Swift step of `roster migrate` fills it for existing users.
ALTER TABLE users ADD COLUMN email_key text;
-- roster:swift-step
ALTER TABLE users ALTER COLUMN email_key SET NOT NULL;
DROP INDEX users_email_key;
CREATE UNIQUE INDEX users_email_key ON users (email_key);
-- Roster always computes the key; a row inserted by another tool (a seeding
-- script) falls back to its lower-cased address.
CREATE FUNCTION roster_email_key_fallback() RETURNS trigger AS $$
BEGIN
  IF NEW.email_key IS NULL THEN NEW.email_key := lower(NEW.email); END IF;
  RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER users_email_key_fallback BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION roster_email_key_fallback();
