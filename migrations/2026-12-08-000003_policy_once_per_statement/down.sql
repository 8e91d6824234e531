CREATE FUNCTION usersvc_visible(app text) RETURNS boolean
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    AS $$
    BEGIN
        RETURN current_setting('usersvc.apps', true) = '*'
            OR app = ANY (string_to_array(current_setting('usersvc.apps', true), ','));
    END
    $$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['apps', 'profiles', 'identities', 'audit_events', 'email_templates',
                             'one_time_tokens', 'outbox', 'outbox_recipients', 'login_failures']
    LOOP
        EXECUTE format(
            'ALTER POLICY tenant ON %I USING (usersvc_visible(app_id)) WITH CHECK (usersvc_visible(app_id))',
            t);
    END LOOP;
END
$$;

DROP FUNCTION usersvc_apps();
DROP FUNCTION usersvc_sees_all();
