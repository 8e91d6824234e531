-- Statistics an import can refresh as it goes.
--
-- An import adds an app's users far faster than autovacuum re-analyzes the tables (after a
-- tenth of a table has changed). Until it does, the planner takes the growing app for the
-- nearly empty one it was: the import's look-up of which identities exist then hashes every
-- identity of the app, once per batch of 1,000, so an import of a million users spends most of
-- its time there (82 of 96 s measured). The import calls this function each time the app has
-- grown by as much as it had at the last refresh; the requests' role may not ANALYZE a table
-- it does not own, so the function runs as its owner.
CREATE FUNCTION usersvc_refresh_import_statistics() RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT
AS $$
BEGIN
    ANALYZE identities;
END
$$;

REVOKE ALL ON FUNCTION usersvc_refresh_import_statistics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION usersvc_refresh_import_statistics() TO usersvc_server;
