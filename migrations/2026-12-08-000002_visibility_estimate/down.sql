CREATE OR REPLACE FUNCTION usersvc_visible(app text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT current_setting('usersvc.apps', true) = '*'
            OR app = ANY (string_to_array(current_setting('usersvc.apps', true), ','))
    $$;
