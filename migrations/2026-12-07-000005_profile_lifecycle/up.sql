-- The user lifecycle: a profile can be disabled (and enabled again), counts its logins, and
-- carries a version that moves by one on every change of the profile or its identities, for
-- optimistic concurrency (updateUser's expectedVersion). Existing profiles start ACTIVE at
-- version 1 with no logins counted.
ALTER TABLE profiles
    ADD COLUMN status text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'DISABLED')),
    ADD COLUMN disabled_at timestamptz,
    ADD COLUMN disabled_reason text CHECK (length(disabled_reason) <= 2000),
    ADD COLUMN login_count integer NOT NULL DEFAULT 0 CHECK (login_count >= 0),
    ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    ADD CONSTRAINT profiles_disabled_check CHECK (
        (status = 'DISABLED') = (disabled_at IS NOT NULL)
        AND (status = 'DISABLED' OR disabled_reason IS NULL));

-- The users connection filtered by status DISABLED (the rare case) scans only disabled
-- profiles, in the default order; ACTIVE, nearly every profile, is served by the order indexes.
CREATE INDEX profiles_disabled ON profiles (app_id, created_at, profile_id)
    WHERE status = 'DISABLED';
