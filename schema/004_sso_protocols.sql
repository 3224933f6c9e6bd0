-- Roster schema, version 4: Roster as SAML 2.0 service provider and OIDC
-- relying party (P1–P10).

-- The connection keeps one id for its life: the SP entity id and ACS URL
-- (ROSTER_PUBLIC_URL/sso/saml/{id}) the IT admin pasted into the IdP stay
-- valid across certificate rotations and edits.
ALTER TABLE workspaces ADD COLUMN sso_connection_id uuid UNIQUE;
UPDATE workspaces SET sso_connection_id = roster_uuid7() WHERE sso_connection IS NOT NULL;
-- The OIDC client secret, AES-256-GCM with ROSTER_SECRET_KEY (P10); never returned.
ALTER TABLE workspaces ADD COLUMN sso_client_secret bytea;
ALTER TABLE workspaces ADD COLUMN sso_allow_idp_initiated boolean NOT NULL DEFAULT false;

-- A sign-in in progress (P1, P7): the AuthnRequest ID (SAML) or the state
-- sent to the IdP (OIDC), bound to the connection and to what the app gave
-- sso.authorize. Used once; gone after 10 minutes.
CREATE TABLE sso_requests (
  id               text PRIMARY KEY,
  workspace_id     uuid NOT NULL REFERENCES workspaces (id),
  connection_id    uuid NOT NULL,
  protocol         text NOT NULL CHECK (protocol IN ('saml', 'oidc')),
  redirect_uri     text NOT NULL,
  app_state        text,
  code_challenge   text,
  -- OIDC: the nonce and the PKCE verifier Roster uses with the IdP.
  nonce            text,
  pkce_verifier    text,
  -- A test sign-in from the guided setup returns to that page, not to the app.
  setup_link_id    uuid,
  created_at       timestamptz NOT NULL DEFAULT now(),
  expires_at       timestamptz NOT NULL,
  consumed_at      timestamptz
);
-- Removing expired requests.
CREATE INDEX sso_requests_expiry ON sso_requests (expires_at);

-- The app's one-time codes (P8): stored hashed, redeemed once.
CREATE TABLE sso_codes (
  code_hash        text PRIMARY KEY,
  workspace_id     uuid NOT NULL REFERENCES workspaces (id),
  connection_id    uuid NOT NULL,
  protocol         text NOT NULL,
  redirect_uri     text NOT NULL,
  -- NULL for an IdP-initiated sign-in (P5): redeemed without a verifier.
  code_challenge   text,
  initiated_by     text NOT NULL CHECK (initiated_by IN ('app', 'idp')),
  profile          jsonb NOT NULL,
  decision         jsonb NOT NULL,
  trace_id         text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  expires_at       timestamptz NOT NULL,
  redeemed_at      timestamptz
);
-- Removing expired codes.
CREATE INDEX sso_codes_expiry ON sso_codes (expires_at);

-- P4: each assertion ID once, across every copy of the process, until it
-- could no longer be valid anyway.
CREATE TABLE sso_assertions (
  connection_id    uuid NOT NULL,
  assertion_id     text NOT NULL,
  expires_at       timestamptz NOT NULL,
  PRIMARY KEY (connection_id, assertion_id)
);
-- Removing assertion ids that can no longer be replayed.
CREATE INDEX sso_assertions_expiry ON sso_assertions (expires_at);

-- P9: what happened to each SSO attempt, for the admin fixing a setup.
CREATE TABLE sso_traces (
  trace_id         text PRIMARY KEY,
  workspace_id     uuid REFERENCES workspaces (id),
  connection_id    uuid,
  protocol         text,
  outcome          text NOT NULL CHECK (outcome IN ('success', 'refused')),
  reason           text,
  detail           text,
  email            text,
  at               timestamptz NOT NULL DEFAULT now()
);
-- sso.traces: a workspace's latest attempts.
CREATE INDEX sso_traces_workspace ON sso_traces (workspace_id, at DESC);
