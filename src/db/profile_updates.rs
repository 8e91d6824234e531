//! Changes to stored profiles: field patches, status, login records and version bumps.
//!
//! Every change of a profile or its identities moves `version` by one and sets `updated_at`
//! (the transaction's time); a login moves neither (it only records `last_login_at` and counts).

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Nullable, Text, Timestamptz, Untyped, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::models::{ACTIVE, DISABLED, Profile, ProfileChanges};
use super::schema::profiles;

/// `now()` where a nullable timestamp goes.
fn now_or_null() -> diesel::expression::SqlLiteral<Nullable<Timestamptz>> {
    diesel::dsl::sql::<Nullable<Timestamptz>>("now()")
}

/// Applies a patch (which must change at least one field), bumps the version; returns the
/// profile as stored afterwards.
pub async fn apply(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
    changes: &ProfileChanges<'_>,
) -> QueryResult<Profile> {
    diesel::update(profiles::table.find((app_id, profile_id)))
        .set((
            changes,
            profiles::version.eq(profiles::version + 1),
            profiles::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Profile::as_returning())
        .get_result(conn)
        .await
}

/// Records a change that happened elsewhere (an identity added, removed or changed, a
/// password set): bumps the version and `updated_at`; returns the profile afterwards, `None`
/// when it does not exist.
pub async fn bump_version(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
) -> QueryResult<Option<Profile>> {
    diesel::update(profiles::table.find((app_id, profile_id)))
        .set((
            profiles::version.eq(profiles::version + 1),
            profiles::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Profile::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Disables an active profile, with an optional reason (`disabled_at` is the transaction's
/// time); returns the profile afterwards, `None` when it was disabled already or does not
/// exist.
pub async fn disable(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
    reason: Option<&str>,
) -> QueryResult<Option<Profile>> {
    let target = profiles::table
        .find((app_id, profile_id))
        .filter(profiles::status.eq(ACTIVE));
    diesel::update(target)
        .set((
            profiles::status.eq(DISABLED),
            profiles::disabled_at.eq(now_or_null()),
            profiles::disabled_reason.eq(reason),
            profiles::version.eq(profiles::version + 1),
            profiles::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Profile::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Enables a disabled profile; returns it afterwards, `None` when it was active already or
/// does not exist.
pub async fn enable(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
) -> QueryResult<Option<Profile>> {
    let target = profiles::table
        .find((app_id, profile_id))
        .filter(profiles::status.eq(DISABLED));
    diesel::update(target)
        .set((
            profiles::status.eq(ACTIVE),
            profiles::disabled_at.eq(None::<chrono::DateTime<chrono::Utc>>),
            profiles::disabled_reason.eq(None::<String>),
            profiles::version.eq(profiles::version + 1),
            profiles::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Profile::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Records a successful login of an active profile: `last_login_at` now, `login_count` + 1
/// (saturating); and clears the counted failed attempts of the identity it logged in with
/// (`kind`, `external_id`), whether or not the profile is still active (the password was
/// right). One statement. Neither `version` nor `updated_at` moves. `None` when the profile is
/// gone or not active.
pub async fn record_login(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
    kind: &str,
    external_id: &str,
) -> QueryResult<Option<Profile>> {
    RecordLogin {
        app_id,
        profile_id,
        kind,
        external_id,
    }
    .get_result(conn)
    .await
    .optional()
}

/// The statement of [`record_login`], as a query type of its own with a static query id, so
/// that diesel prepares it once per connection: as an `sql_query` PostgreSQL parsed and planned
/// it on every login, which cost more than the rest of the login's statements together.
struct RecordLogin<'a> {
    app_id: &'a str,
    profile_id: Uuid,
    kind: &'a str,
    external_id: &'a str,
}

/// The static query id of [`RecordLogin`].
struct RecordLoginId;

impl QueryId for RecordLogin<'_> {
    type QueryId = RecordLoginId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for RecordLogin<'_> {
    // Rows are read by column name, as `sql_query`'s are.
    type SqlType = Untyped;
}

impl QueryFragment<Pg> for RecordLogin<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH cleared AS (DELETE FROM login_failures WHERE app_id = ");
        out.push_bind_param::<Text, _>(self.app_id)?;
        out.push_sql(" AND kind = ");
        out.push_bind_param::<Text, _>(self.kind)?;
        out.push_sql(" AND external_id = ");
        out.push_bind_param::<Text, _>(self.external_id)?;
        out.push_sql(
            ") UPDATE profiles SET last_login_at = now(), login_count = \
             CASE WHEN login_count < 2147483647 THEN login_count + 1 ELSE login_count END \
             WHERE app_id = ",
        );
        out.push_bind_param::<Text, _>(self.app_id)?;
        out.push_sql(" AND profile_id = ");
        out.push_bind_param::<SqlUuid, _>(&self.profile_id)?;
        out.push_sql(" AND status = 'ACTIVE' RETURNING profiles.*");
        Ok(())
    }
}
