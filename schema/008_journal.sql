-- Roster schema, version 8: one journal for the event feed and the audit
-- log, and every index says which query it serves.

-- A change that is both announced (an event) and audited is one row; an
-- event without an audit entry (role recomputes, sign-ins) has no actor, and
-- an audit entry without an event (a policy update) has no type. A SCIM
-- create used to write an event and an audit row (two heap rows, five index
-- entries); it now writes one row and three index entries.
CREATE TABLE journal (
  -- The order of writes; the feed's cursor is (feed_key, id), audit.list's is id.
  id            bigserial NOT NULL,
  -- See EventLog.swift: the writing transaction's id, raised to the key of
  -- the member's previous event. Audit-only rows keep the default.
  feed_key      xid8 NOT NULL DEFAULT pg_current_xact_id(),
  workspace_id  uuid,
  member_id     uuid,
  -- The event: its type (NULL: not in the feed) and data.
  type          text,
  data          jsonb,
  -- The audit entry: who did what to which target (NULL action: not audited).
  actor         jsonb,
  action        text,
  target_type   text,
  target_id     text,
  before        jsonb,
  after         jsonb,
  at            timestamptz NOT NULL DEFAULT now(),
  CHECK (type IS NOT NULL OR action IS NOT NULL),
  CHECK (action IS NULL OR actor IS NOT NULL)
);
-- No primary key: nothing looks a journal row up by id alone, and every
-- write would pay for one more index entry. Ids come from the sequence.
COMMENT ON TABLE journal IS 'Events (type set) and audit entries (action set); one row when a change is both';

-- Events keep their ids (feed cursors stay valid); audit entries follow
-- them in their own order. An audit.list cursor from before this version
-- therefore lists that workspace's older entries again (repeats, never gaps).
INSERT INTO journal (id, feed_key, workspace_id, member_id, type, data, at)
  SELECT id, feed_key, workspace_id, member_id, type, data, at FROM events ORDER BY id;
SELECT setval(pg_get_serial_sequence('journal', 'id'), greatest((SELECT max(id) FROM journal), 1));
INSERT INTO journal (workspace_id, actor, action, target_type, target_id, before, after, at)
  SELECT workspace_id, actor, action, target_type, target_id, before, after, at FROM audit_log ORDER BY id;
DROP TABLE events;
DROP TABLE audit_log;

CREATE INDEX journal_feed ON journal (feed_key, id) WHERE type IS NOT NULL;
COMMENT ON INDEX journal_feed IS 'events.list and events.subscribe without a workspace, the feed tail: WHERE (feed_key, id) > cursor AND feed_key < xmin ORDER BY feed_key, id';
CREATE INDEX journal_feed_workspace ON journal (workspace_id, feed_key, id) WHERE type IS NOT NULL;
COMMENT ON INDEX journal_feed_workspace IS 'events.list and events.subscribe with workspaceId: WHERE workspace_id = $1 AND (feed_key, id) > cursor ORDER BY feed_key, id';
CREATE INDEX journal_audit ON journal (workspace_id, id) WHERE action IS NOT NULL;
COMMENT ON INDEX journal_audit IS 'audit.list: WHERE workspace_id = $1 AND id > cursor ORDER BY id';

-- The two halves under their old names, for operators' SQL (and processes
-- of version 7 still running during an upgrade: both views accept inserts).
CREATE VIEW events AS
  SELECT id, feed_key, type, workspace_id, member_id, data, at FROM journal WHERE type IS NOT NULL;
ALTER VIEW events ALTER COLUMN data SET DEFAULT '{}';
CREATE VIEW audit_log AS
  SELECT id, workspace_id, actor, action, target_type, target_id, before, after, at FROM journal WHERE action IS NOT NULL;

-- Row triggers only where they can change something: the S9 guard only
-- ever clears a set break-glass flag, and the address-key fallback only
-- fills a missing key. A 10,000-member role recompute no longer calls
-- PL/pgSQL 10,000 times.
DROP TRIGGER members_bypass_only_active_admins ON members;
CREATE TRIGGER members_bypass_only_active_admins BEFORE INSERT OR UPDATE OF role, status, sso_bypass ON members
  FOR EACH ROW WHEN (NEW.sso_bypass) EXECUTE FUNCTION roster_bypass_only_active_admins();
DROP TRIGGER users_email_key_fallback ON users;
CREATE TRIGGER users_email_key_fallback BEFORE INSERT ON users
  FOR EACH ROW WHEN (NEW.email_key IS NULL) EXECUTE FUNCTION roster_email_key_fallback();

-- Why every other index exists (a test checks that each has a comment).
COMMENT ON INDEX schema_migrations_pkey IS 'roster migrate: which versions are applied';
COMMENT ON INDEX users_pkey IS 'members JOIN users ON users.id = members.user_id (every member read)';
COMMENT ON INDEX users_email_key IS 'S10 one person per address: auth.signIn, SCIM create and member.invite find the user by email_key';
COMMENT ON INDEX workspaces_pkey IS 'every method with workspaceId: WHERE id = $1';
COMMENT ON INDEX workspaces_sso_connection_id_key IS 'the ACS, SP metadata and OIDC callback find the workspace by connection id';
COMMENT ON INDEX members_pkey IS 'member.get, SCIM /Users/{id} and every write to one member: WHERE id = $1';
COMMENT ON INDEX members_workspace_user IS 'one membership per person and workspace; auth.signIn and SCIM create: WHERE workspace_id = $1 AND user_id = $2';
COMMENT ON INDEX members_user IS 'auth.signIn and member.move: the memberships of one person, WHERE user_id = $1';
COMMENT ON INDEX members_workspace_status IS 'member.list with status, admin counts (R4 last admin): WHERE workspace_id = $1 AND status = $2 ORDER BY id';
COMMENT ON INDEX members_bypass IS 'S9 the break-glass list: WHERE workspace_id = $1 AND sso_bypass';
COMMENT ON INDEX members_workspace_id IS 'member.list pages: WHERE workspace_id = $1 AND id > cursor ORDER BY id';
COMMENT ON INDEX domains_pkey IS 'domain.get, domain.check, domain.remove: WHERE id = $1';
COMMENT ON INDEX domains_verified_once IS 'D4 a verified domain belongs to one workspace; auth.signIn finds the workspace owning an address''s domain';
COMMENT ON INDEX domains_due IS 'the DNS verifier: pending DNS domains WHERE next_check_at <= now()';
COMMENT ON INDEX domains_email_token IS 'domain.confirmEmail: WHERE email_token_hash = $1';
COMMENT ON INDEX directories_pkey IS 'SCIM rows name their directory; directory.get: WHERE id = $1';
COMMENT ON INDEX directories_workspace_id_key IS 'one directory per workspace; directory.* methods: WHERE workspace_id = $1';
COMMENT ON INDEX directories_token IS 'every SCIM request on a cold token cache: WHERE token_hash = $1';
COMMENT ON INDEX scim_users_pkey IS 'SCIM GET/PUT/PATCH/DELETE /Users/{id}: WHERE member_id = $1';
COMMENT ON INDEX scim_users_user_name IS 'userName unique per workspace (case-insensitive); filter userName eq: WHERE workspace_id = $1 AND lower(user_name) = $2';
COMMENT ON INDEX scim_users_external_id IS 'Entra and Okta look users up by filter externalId eq: WHERE workspace_id = $1 AND external_id = $2';
COMMENT ON INDEX scim_users_emails IS 'filter emails eq / emails.value eq: WHERE email_values @> ARRAY[$1]';
COMMENT ON INDEX scim_users_page IS 'GET /Users pages in creation order: WHERE workspace_id = $1 ORDER BY created_at, member_id';
COMMENT ON INDEX scim_groups_pkey IS 'SCIM /Groups/{id} and group.mapRoles: WHERE id = $1';
COMMENT ON INDEX scim_groups_display_name IS 'displayName unique per workspace; filter displayName eq: WHERE workspace_id = $1 AND lower(display_name) = $2';
COMMENT ON INDEX scim_groups_external_id IS 'filter externalId eq on /Groups: WHERE workspace_id = $1 AND external_id = $2';
COMMENT ON INDEX scim_groups_page IS 'GET /Groups pages and group.list: WHERE workspace_id = $1 ORDER BY created_at, id';
COMMENT ON INDEX scim_group_members_pkey IS 'group membership once; a group''s members: WHERE group_id = $1';
COMMENT ON INDEX scim_group_members_member IS 'C5 role resolution and DELETE /Users: the groups of a member, WHERE member_id = $1';
COMMENT ON INDEX folders_pkey IS 'content.create into a folder: WHERE id = $1';
COMMENT ON INDEX folders_created_by_job_key IS 'a retried transfer finds the folder it made: WHERE created_by_job = $1';
COMMENT ON INDEX folders_owner IS 'content.list folders of a member: WHERE owner_member_id = $1';
COMMENT ON INDEX content_pkey IS 'content.get and moves of chosen items: WHERE id = $1';
COMMENT ON INDEX content_owner IS 'the transfer job and content.list: WHERE owner_member_id = $1 ORDER BY id';
COMMENT ON INDEX content_folder IS 'content.list of a folder: WHERE folder_id = $1 ORDER BY id';
COMMENT ON INDEX jobs_pkey IS 'job.get, job.retry and the worker''s updates: WHERE id = $1';
COMMENT ON INDEX jobs_one_active IS 'one queued or running job per unique_key (a repeated deprovision or move joins the active job)';
COMMENT ON INDEX jobs_ready IS 'the job worker: WHERE status = ''queued'' AND run_at <= now() ORDER BY run_at';
COMMENT ON INDEX jobs_running IS 'the job worker''s rescue of stale locks: WHERE status = ''running'' AND locked_at < $1';
COMMENT ON INDEX jobs_workspace IS 'job.list with workspaceId: WHERE workspace_id = $1 ORDER BY created_at DESC';
COMMENT ON INDEX jobs_member IS 'job.list with memberId, member.get''s pending deprovisioning: WHERE member_id = $1';
COMMENT ON INDEX notifications_pkey IS 'notification.get, .retry, .cancel: WHERE id = $1';
COMMENT ON INDEX notifications_due IS 'the outbox sender: WHERE status = ''pending'' AND next_attempt_at <= now() ORDER BY next_attempt_at';
COMMENT ON INDEX notifications_created IS 'notification.list: ORDER BY created_at DESC, id';
COMMENT ON INDEX notifications_recent IS 'the transfer_target_conflict throttle: WHERE workspace_id = $1 AND template = $2 AND created_at > now() - 1 hour';
COMMENT ON INDEX sso_requests_pkey IS 'the ACS and OIDC callback: the pending request WHERE id = InResponseTo / state';
COMMENT ON INDEX sso_requests_expiry IS 'the sweeper: DELETE WHERE expires_at < now()';
COMMENT ON INDEX sso_codes_pkey IS 'sso.token: WHERE code_hash = $1';
COMMENT ON INDEX sso_codes_expiry IS 'the sweeper: DELETE WHERE expires_at < now()';
COMMENT ON INDEX sso_assertions_pkey IS 'P4 replay: an assertion id is accepted once per connection';
COMMENT ON INDEX sso_assertions_expiry IS 'the sweeper: DELETE WHERE expires_at < now()';
COMMENT ON INDEX sso_traces_pkey IS 'sso.traces with traceId, the setup page''s test result: WHERE trace_id = $1';
COMMENT ON INDEX sso_traces_workspace IS 'sso.traces: WHERE workspace_id = $1 ORDER BY at DESC';
COMMENT ON INDEX setup_links_pkey IS 'setup.revokeLinks with linkId: WHERE id = $1';
COMMENT ON INDEX setup_links_token IS 'every setup page: WHERE token_hash = $1';
COMMENT ON INDEX setup_links_workspace IS 'setup.listLinks and setup.revokeLinks: the live links WHERE workspace_id = $1 AND revoked_at IS NULL';
COMMENT ON INDEX domains_workspace_id_domain_key IS 'a domain once per workspace (domain.add); S3/D6 outside-domain checks: WHERE workspace_id = $1 AND domain = $2';
