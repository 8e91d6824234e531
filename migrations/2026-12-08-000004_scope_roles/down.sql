DO $$
DECLARE
    t text;
    visible text := '(SELECT usersvc_sees_all()) OR app_id = ANY ((SELECT usersvc_apps())::text[])';
BEGIN
    FOREACH t IN ARRAY ARRAY['apps', 'profiles', 'identities', 'audit_events', 'email_templates',
                             'one_time_tokens', 'outbox', 'outbox_recipients', 'login_failures']
    LOOP
        EXECUTE format('DROP POLICY every_app ON %I', t);
        EXECUTE format('ALTER POLICY tenant ON %I TO public USING (%s) WITH CHECK (%s)',
                       t, visible, visible);
    END LOOP;
END
$$;
-- The role itself stays: other databases of the cluster may use it.
