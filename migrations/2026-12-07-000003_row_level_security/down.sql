DROP POLICY tenant ON outbox;
DROP POLICY tenant ON one_time_tokens;
DROP POLICY tenant ON email_templates;
DROP POLICY tenant ON audit_events;
DROP POLICY tenant ON identities;
DROP POLICY tenant ON profiles;
DROP POLICY tenant ON apps;
ALTER TABLE outbox DISABLE ROW LEVEL SECURITY;
ALTER TABLE one_time_tokens DISABLE ROW LEVEL SECURITY;
ALTER TABLE email_templates DISABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events DISABLE ROW LEVEL SECURITY;
ALTER TABLE identities DISABLE ROW LEVEL SECURITY;
ALTER TABLE profiles DISABLE ROW LEVEL SECURITY;
ALTER TABLE apps DISABLE ROW LEVEL SECURITY;
DROP FUNCTION usersvc_enter(text);
DROP FUNCTION usersvc_visible(text);
REVOKE ALL ON __diesel_schema_migrations FROM usersvc_server;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM usersvc_server;
REVOKE ALL ON apps, profiles, identities, audit_events, email_templates, one_time_tokens, outbox, server_secrets
    FROM usersvc_server;
REVOKE USAGE ON SCHEMA public FROM usersvc_server;
-- The role itself stays: other databases of the cluster may use it.
