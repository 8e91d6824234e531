DROP INDEX profiles_disabled;
ALTER TABLE profiles
    DROP CONSTRAINT profiles_disabled_check,
    DROP COLUMN version,
    DROP COLUMN login_count,
    DROP COLUMN disabled_reason,
    DROP COLUMN disabled_at,
    DROP COLUMN status;
