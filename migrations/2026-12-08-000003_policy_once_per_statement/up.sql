-- The tenant policies read the session's apps once per statement, not once per row.
--
-- The check was a function of the row's app_id (usersvc_visible), called for every row read or
-- written. Inlined, the planner could not estimate it (it guessed about 1 %, which turned keyset
-- pages of mid-sized apps into scans and sorts of the whole app); as a PL/pgSQL call, the
-- estimate was a fixed third but every row paid for a function call. Written as sub-selects
-- that do not depend on the row, the setting is read once per statement (an InitPlan), each row
-- costs one comparison with a short array, and the planner counts the check as letting most
-- rows through, which for a session's own app is what it does.
CREATE FUNCTION usersvc_sees_all() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT current_setting('usersvc.apps', true) = '*' $$;

CREATE FUNCTION usersvc_apps() RETURNS text[]
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT string_to_array(current_setting('usersvc.apps', true), ',') $$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['apps', 'profiles', 'identities', 'audit_events', 'email_templates',
                             'one_time_tokens', 'outbox', 'outbox_recipients', 'login_failures']
    LOOP
        EXECUTE format(
            'ALTER POLICY tenant ON %I '
            'USING ((SELECT usersvc_sees_all()) OR app_id = ANY ((SELECT usersvc_apps())::text[])) '
            'WITH CHECK ((SELECT usersvc_sees_all()) OR app_id = ANY ((SELECT usersvc_apps())::text[]))',
            t);
    END LOOP;
END
$$;

DROP FUNCTION usersvc_visible(text);
