"""The requests the load generators send, and the pgbench script of userInfo's statement."""

import os

from .common import body, write

# --- the requests -------------------------------------------------------------------------

# userInfo with identities: the profile fields a caller typically reads and its identities.
USERINFO = (
    "query($id: ID!) { userInfo(profileId: $id) { profileId userName contactEmail countryCode "
    "languageCode timeZoneOffset pictureUrl isTester createdAt updatedAt lastLoginAt "
    "identities { type externalId externalAuthType hasPassword createdAt } } }"
)
# The same row and identities through PostGraphile (views in bench_api, see sql/postgraphile.sql).
USERINFO_PG = (
    'query($id: UUID!) { profileByAppIdAndProfileId(appId: "bench", profileId: $id) { '
    "profileId userName contactEmail countryCode languageCode timeZoneOffset pictureUrl isTester "
    "createdAt updatedAt lastLoginAt identitiesByAppIdAndProfileId { nodes { kind externalId "
    "externalAuthType hasPassword createdAt } } } }"
)
PAGE = (
    "query($after: String) { users(first: 100, after: $after) { edges { cursor node { "
    "profileId userName createdAt } } pageInfo { hasNextPage endCursor } } }"
)
PAGE_PG = (
    'query($offset: Int) { allProfiles(condition: {appId: "bench"}, '
    "orderBy: [CREATED_AT_ASC, PROFILE_ID_ASC], first: 100, offset: $offset) { "
    "nodes { profileId userName createdAt } pageInfo { hasNextPage endCursor } } }"
)
ITERATE = (
    "query($after: String) { users(first: 500, after: $after) { nodes { profileId userName "
    "contactEmail createdAt } pageInfo { hasNextPage endCursor } } }"
)
CREATE = (
    "mutation($in: CreateUserEmailPasswordInput!) { createUserEmailPassword(input: $in) { "
    "user { profileId } } }"
)
VERIFY = (
    "mutation($in: VerifyPasswordInput!) { verifyPassword(input: $in) { user { profileId } } }"
)
# The password benches/run gives the EMAIL identities of the userInfo ids, for verifyPassword.
LOGIN_PASSWORD = "correct horse battery staple"

# The statement usersvc runs for userInfo with identities (src/users/read.rs: one LEFT JOIN,
# built by diesel; usersvc sorts the few identities itself; copied from the server's statement
# log), with the profile id looked up by rank in bench.ids inside the same statement (pgbench
# variables cannot hold a UUID).
USERINFO_SQL = (
    'SELECT "profiles"."app_id", "profiles"."profile_id", "profiles"."user_name", '
    '"profiles"."contact_email", "profiles"."country_code", "profiles"."language_code", '
    '"profiles"."time_zone_offset", "profiles"."picture_url", "profiles"."is_tester", '
    '"profiles"."summary_friend_data", "profiles"."parent_app_id", "profiles"."parent_profile_id", '
    '"profiles"."created_at", "profiles"."updated_at", "profiles"."last_login_at", '
    '"identities"."app_id", "identities"."profile_id", "identities"."kind", '
    '"identities"."external_auth_type", "identities"."external_id", '
    '("identities"."password_hash" IS NOT NULL), "identities"."created_at" '
    'FROM ("profiles" LEFT OUTER JOIN "identities" ON (("identities"."app_id" = "profiles"."app_id") '
    'AND ("identities"."profile_id" = "profiles"."profile_id"))) '
    'WHERE (("profiles"."app_id" = :app) AND ("profiles"."profile_id" = '
    "(SELECT profile_id FROM bench.ids WHERE rank = :r)));"
)


def cmd_bodies(a):
    d = a.dir
    os.makedirs(d, exist_ok=True)
    # wrk's graphql.lua replaces __ID__ / __N__ per request.
    write(f"{d}/userinfo.json", body(USERINFO, {"id": "__ID__"}))
    write(f"{d}/userinfo_pg.json", body(USERINFO_PG, {"id": "__ID__"}))
    write(f"{d}/page_first.json", body(PAGE, {"after": None}))
    write(f"{d}/page_first_pg.json", body(PAGE_PG, {"offset": 0}))
    write(
        f"{d}/create.json",
        body(
            CREATE,
            {
                "in": {
                    "email": "bench-__N__@example.com",
                    "password": "correct horse battery staple",
                    "userName": "Bench user __N__",
                }
            },
        ),
    )
    # A login with the right password; __ID__ is an email from the logins file.
    write(
        f"{d}/verify.json",
        body(VERIFY, {"in": {"type": "EMAIL", "externalId": "__ID__", "password": LOGIN_PASSWORD}}),
    )


def cmd_pgbench_script(a):
    write(a.file, f"\\set r random(0, {a.ids - 1})\n{USERINFO_SQL}\n")

