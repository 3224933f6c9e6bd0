-- Roster schema, version 2: people shared across workspaces (C8).

-- The name this workspace's directory gives the member. A directory that
-- does not own a person's identity (C8) renames only its own membership;
-- the Member `name` is this, else the shared user's name.
ALTER TABLE members ADD COLUMN name text;

-- The normalised domain of the address (users.email keeps the domain in its
-- normalised form), for "outside the verified domains" checks (S3, D6).
ALTER TABLE users ADD COLUMN email_domain text GENERATED ALWAYS AS (lower(substring(email FROM '@([^@]*)$'))) STORED;
