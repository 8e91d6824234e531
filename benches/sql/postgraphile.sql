-- What PostGraphile v4 may see: the schema `bench_api`, with one view per table that lists only
-- the columns a caller of usersvc may see. Left out: identities.password_hash (only whether one
-- is set, as `has_password`, like usersvc's Identity.hasPassword), the generated sort keys
-- user_name_key/last_login_key and the parent_app_id bookkeeping column. Smart comments give
-- the views the primary keys and the relation PostGraphile cannot infer from a view, so it
-- generates `profileByAppIdAndProfileId` and `identitiesByAppIdAndProfileId` exactly as it
-- would on the tables. Simple views are auto-updatable, so the plans are the tables' own.
\set ON_ERROR_STOP on
DROP SCHEMA IF EXISTS bench_api CASCADE;
CREATE SCHEMA bench_api;

CREATE VIEW bench_api.profiles AS
SELECT app_id, profile_id, user_name, contact_email, country_code, language_code,
       time_zone_offset, picture_url, is_tester, summary_friend_data, parent_profile_id,
       created_at, updated_at, last_login_at
  FROM public.profiles;

CREATE VIEW bench_api.identities AS
SELECT app_id, profile_id, kind, external_auth_type, external_id,
       password_hash IS NOT NULL AS has_password, created_at
  FROM public.identities;

COMMENT ON VIEW bench_api.profiles IS E'@primaryKey app_id,profile_id\n@omit create,update,delete';
COMMENT ON VIEW bench_api.identities IS
  E'@primaryKey app_id,profile_id,kind,external_auth_type\n@foreignKey (app_id,profile_id) references bench_api.profiles (app_id,profile_id)\n@omit create,update,delete';
