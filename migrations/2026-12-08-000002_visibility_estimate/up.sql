-- The tenant policies' check as a PL/pgSQL function, which the planner calls rather than
-- inlines.
--
-- Inlined, the check is an expression over current_setting() whose selectivity the planner
-- cannot know; it guesses about 1 %, so it expects an app of 100,000 users to have about a
-- thousand visible rows. A keyset page (`ORDER BY key LIMIT 50`) then looks cheaper as "read
-- every row of the app and sort them" than as an index scan that stops after the page, and
-- once the table's statistics are current every page costs a scan of the whole app. A
-- function call is estimated at a fixed third instead, so the index scan that reads only the
-- page wins from small apps up. The check costs about half a microsecond more per row read.
CREATE OR REPLACE FUNCTION usersvc_visible(app text) RETURNS boolean
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    AS $$
    BEGIN
        RETURN current_setting('usersvc.apps', true) = '*'
            OR app = ANY (string_to_array(current_setting('usersvc.apps', true), ','));
    END
    $$;
