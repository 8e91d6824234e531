//! Changes to stored profiles: field patches, status, login records and version bumps.
//!
//! Every change of a profile or its identities moves `version` by one and sets `updated_at`
//! (the transaction's time); a login moves neither (it only records `last_login_at` and counts).

use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::fixed::fixed;
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
    fixed(
        "WITH cleared AS ( \
           DELETE FROM login_failures WHERE app_id = $1 AND kind = $3 AND external_id = $4) \
         UPDATE profiles SET last_login_at = now(), login_count = \
           CASE WHEN login_count < 2147483647 THEN login_count + 1 ELSE login_count END \
         WHERE app_id = $1 AND profile_id = $2 AND status = 'ACTIVE' \
         RETURNING profiles.*",
        |q| {
            q.bind::<Text, _>(app_id)
                .bind::<SqlUuid, _>(profile_id)
                .bind::<Text, _>(kind)
                .bind::<Text, _>(external_id)
        },
    )
    .get_result(conn)
    .await
    .optional()
}
