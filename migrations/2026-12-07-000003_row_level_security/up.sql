-- A second wall behind the queries' own tenant filters.
--
-- The server works through the role usersvc_server: not a superuser, owning nothing, unable
-- to bypass row-level security. Every connection of its pool switches to it (SET ROLE) right
-- after it connects; migrations keep running as the login role that owns the tables. (The
-- login role must be allowed to create roles the first time this runs, or an administrator
-- creates usersvc_server beforehand and grants it to the login role.)
--
-- Every table that has app_id shows a session only the rows of the apps in its setting
-- usersvc.apps: a GraphQL request's connection holds its caller's app and that app's
-- ancestors and descendants (children and parents live there), set by usersvc_enter; the
-- server's own work (mail worker, hosted pages, CLI) sets '*'; a connection that set nothing
-- sees nothing. So a query that forgets its app filter returns nothing of another tenant.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'usersvc_server') THEN
        CREATE ROLE usersvc_server NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT;
    END IF;
END
$$;
GRANT usersvc_server TO CURRENT_USER;

GRANT USAGE ON SCHEMA public TO usersvc_server;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON apps, profiles, identities, audit_events, email_templates, one_time_tokens, outbox, server_secrets
    TO usersvc_server;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO usersvc_server;
-- The readiness check reads which migrations were applied.
GRANT SELECT ON __diesel_schema_migrations TO usersvc_server;

-- Whether the current session may see rows of an app.
CREATE FUNCTION usersvc_visible(app text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT current_setting('usersvc.apps', true) = '*'
            OR app = ANY (string_to_array(current_setting('usersvc.apps', true), ','))
    $$;

-- Makes the session see one app's family: the app, its ancestors and its descendants. It reads
-- the apps table as its owner (the policies would hide the family before it is known).
CREATE FUNCTION usersvc_enter(app text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
    AS $$
    DECLARE
        family text;
    BEGIN
        WITH RECURSIVE
            up (id, parent, depth) AS (
                SELECT app_id, parent_app_id, 0 FROM apps WHERE app_id = app
                UNION ALL
                SELECT a.app_id, a.parent_app_id, up.depth + 1
                  FROM apps a JOIN up ON a.app_id = up.parent WHERE up.depth < 8),
            down (id, depth) AS (
                SELECT app_id, 0 FROM apps WHERE app_id = app
                UNION ALL
                SELECT a.app_id, down.depth + 1
                  FROM apps a JOIN down ON a.parent_app_id = down.id WHERE down.depth < 8)
        SELECT string_agg(DISTINCT id, ',') INTO family
          FROM (SELECT id FROM up UNION SELECT id FROM down) f;
        PERFORM set_config('usersvc.apps', coalesce(family, app), false);
    END
    $$;
REVOKE ALL ON FUNCTION usersvc_enter(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION usersvc_enter(text) TO usersvc_server;

ALTER TABLE apps ENABLE ROW LEVEL SECURITY;
ALTER TABLE profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE identities ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE email_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE one_time_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant ON apps USING (usersvc_visible(app_id)) WITH CHECK (usersvc_visible(app_id));
CREATE POLICY tenant ON profiles USING (usersvc_visible(app_id)) WITH CHECK (usersvc_visible(app_id));
CREATE POLICY tenant ON identities USING (usersvc_visible(app_id)) WITH CHECK (usersvc_visible(app_id));
CREATE POLICY tenant ON audit_events USING (usersvc_visible(app_id)) WITH CHECK (usersvc_visible(app_id));
CREATE POLICY tenant ON email_templates USING (usersvc_visible(app_id)) WITH CHECK (usersvc_visible(app_id));
CREATE POLICY tenant ON one_time_tokens USING (usersvc_visible(app_id)) WITH CHECK (usersvc_visible(app_id));
CREATE POLICY tenant ON outbox USING (usersvc_visible(app_id)) WITH CHECK (usersvc_visible(app_id));
