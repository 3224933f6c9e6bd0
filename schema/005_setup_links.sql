-- Roster schema, version 5: the guided setup (G1–G3).

-- A link for a customer's IT admin: a bearer credential for one workspace
-- and the steps it names. Only its SHA-256 is stored.
CREATE TABLE setup_links (
  id               uuid PRIMARY KEY DEFAULT roster_uuid7(),
  workspace_id     uuid NOT NULL REFERENCES workspaces (id),
  token_hash       text NOT NULL,
  steps            text[] NOT NULL,
  -- the forms' anti-forgery value (not the URL token)
  form_key         text NOT NULL,
  created_by       jsonb NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  expires_at       timestamptz NOT NULL,
  revoked_at       timestamptz,
  -- the latest test sign-in started from the SSO step
  last_test_trace  text
);
-- Opening a link (every page view).
CREATE UNIQUE INDEX setup_links_token ON setup_links (token_hash);
-- setup.revokeLinks: a workspace's links that still work.
CREATE INDEX setup_links_workspace ON setup_links (workspace_id) WHERE revoked_at IS NULL;
