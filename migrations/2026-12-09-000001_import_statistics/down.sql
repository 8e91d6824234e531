DROP FUNCTION usersvc_refresh_import_statistics();
