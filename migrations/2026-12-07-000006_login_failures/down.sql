DROP POLICY tenant ON login_failures;
ALTER TABLE apps
    DROP COLUMN login_failure_window_minutes,
    DROP COLUMN login_max_failures;
DROP TABLE login_failures;
