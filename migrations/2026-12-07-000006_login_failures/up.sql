-- Failed verifyPassword attempts, counted per identity in the database so that every instance
-- of the server agrees. Keyed by the normalised identity, not by profile: attempts on an
-- identity that does not exist are counted the same way, so the answers never tell whether it
-- exists (hence no foreign key).
--
-- A window opens with the first counted attempt and lasts the app's
-- login.failure_window_minutes; at most login.max_failures attempts are counted in it, and an
-- attempt that finds the window full is refused without checking the password. Each attempt
-- is counted before its password is checked, by one INSERT … ON CONFLICT DO UPDATE on this
-- row, so concurrent attempts are counted exactly; a correct password removes the row.
CREATE TABLE login_failures (
    app_id text NOT NULL REFERENCES apps (app_id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('EMAIL', 'UNIVERSAL_ID')),
    external_id text NOT NULL,
    failures integer NOT NULL CHECK (failures >= 1),
    window_started_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, kind, external_id)
);

-- Rows whose window has passed are pruned a few at a time by later failed attempts in the same
-- app (a right password removes its own row).
CREATE INDEX login_failures_by_window ON login_failures (app_id, window_started_at);

ALTER TABLE apps
    ADD COLUMN login_max_failures integer NOT NULL DEFAULT 10
        CHECK (login_max_failures BETWEEN 1 AND 1000),
    ADD COLUMN login_failure_window_minutes integer NOT NULL DEFAULT 15
        CHECK (login_failure_window_minutes BETWEEN 1 AND 1440);

-- The server's role reads and writes it, behind the tenant policy of every table with app_id.
GRANT SELECT, INSERT, UPDATE, DELETE ON login_failures TO usersvc_server;
ALTER TABLE login_failures ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON login_failures USING (usersvc_visible(app_id)) WITH CHECK (usersvc_visible(app_id));
