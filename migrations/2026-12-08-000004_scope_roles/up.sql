-- The server's own work sees every app through a role of its own, and a request's tenant check
-- becomes one comparison inside the index scan.
--
-- The server's own work (mail worker, hosted pages, CLI) used to set usersvc.apps to '*', so
-- every tenant policy asked two questions, each a sub-select PostgreSQL starts for every
-- statement: does this session see every app, or is the row's app in its list? Starting them
-- was most of what the policies cost: about 59,000 of PostgreSQL's instructions on a userInfo's
-- main statement, a fifth of the statement (callgrind, one backend). Now the server's own work
-- switches to the role usersvc_everyone, whose policy every_app lets every row through, so the
-- planner drops the check altogether; usersvc_server's policy is the list test alone, which
-- the planner folds into the index condition: about 35,000 instructions. The planner reckons
-- the test lets most of an app's rows through (it assumes a list of ten apps), so keyset pages
-- keep their index ranges.
--
-- usersvc_everyone is a member of usersvc_server and inherits its privileges: a table added
-- later is granted to usersvc_server and, when it has app_id, gets both policies. (Like
-- usersvc_server, the role is created here when the login role may create roles; otherwise an
-- administrator creates it beforehand, grants it usersvc_server, and grants it to the login
-- role.)
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'usersvc_everyone') THEN
        CREATE ROLE usersvc_everyone NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS INHERIT;
    END IF;
    IF NOT pg_has_role('usersvc_everyone', 'usersvc_server', 'MEMBER') THEN
        GRANT usersvc_server TO usersvc_everyone;
    END IF;
    IF NOT pg_has_role(CURRENT_USER, 'usersvc_everyone', 'MEMBER') THEN
        GRANT usersvc_everyone TO CURRENT_USER;
    END IF;
END
$$;

DO $$
DECLARE
    t text;
    listed text := 'app_id = ANY (string_to_array(current_setting(''usersvc.apps'', true), '',''))';
BEGIN
    FOREACH t IN ARRAY ARRAY['apps', 'profiles', 'identities', 'audit_events', 'email_templates',
                             'one_time_tokens', 'outbox', 'outbox_recipients', 'login_failures']
    LOOP
        EXECUTE format('ALTER POLICY tenant ON %I TO usersvc_server USING (%s) WITH CHECK (%s)',
                       t, listed, listed);
        EXECUTE format('CREATE POLICY every_app ON %I TO usersvc_everyone USING (true) WITH CHECK (true)',
                       t);
    END LOOP;
END
$$;
