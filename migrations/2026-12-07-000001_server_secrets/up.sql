-- Secrets the server keeps for itself, shared by every instance on this database: made once
-- (32 bytes from the server's CSPRNG) on first use and never shown. `cursor` signs the users
-- connection's cursors, so a cursor cannot be forged or altered.
CREATE TABLE server_secrets (
    name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,63}$'),
    secret bytea NOT NULL CHECK (length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
