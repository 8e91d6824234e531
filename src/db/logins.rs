//! What a login reads and writes: the stored password hash of an identity (only here, never in
//! a type that leaves the service layer), and the count of attempts per identity.
//!
//! Attempts are counted per normalised identity, whether it exists or not, in a window that
//! opens with the first counted attempt and lasts the app's `login.failure_window_minutes`. An
//! attempt is counted *before* its password is checked, in one `INSERT … ON CONFLICT DO
//! UPDATE` that refuses to count past `login.max_failures`: concurrent attempts on one identity
//! queue on its row, so exactly `max_failures` of them are let through per window, on every
//! instance of the server. A correct password removes the row; failures prune rows whose window
//! has passed.

use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::fixed::fixed;
use super::rendered::RenderOnce;
use super::schema::identities;

/// The stored secret of one identity, and the state of its profile.
#[derive(Clone, Queryable)]
pub struct Credential {
    pub profile_id: Uuid,
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("profile_id", &self.profile_id)
            .finish_non_exhaustive()
    }
}

/// The profile and password hash of an identity, looked up by its normalised key.
pub async fn find_credential(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    kind: &str,
    external_id: &str,
) -> QueryResult<Option<Credential>> {
    identities::table
        .filter(identities::app_id.eq(app_id))
        .filter(identities::kind.eq(kind))
        .filter(identities::external_auth_type.eq(""))
        .filter(identities::external_id.eq(external_id))
        .select((identities::profile_id, identities::password_hash))
        .limit(1)
        .rendered_once()
        .get_result(conn)
        .await
        .optional()
}

/// The count [`count_attempt`] returns.
#[derive(QueryableByName)]
struct Failures {
    #[diesel(sql_type = Integer)]
    failures: i32,
}

/// Counts an attempt on an identity; returns the count in the current window including this
/// attempt, or `None` when the window already holds `max_failures` attempts (this one is not
/// counted and must be refused). A passed window starts over.
pub async fn count_attempt(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    kind: &str,
    external_id: &str,
    max_failures: i32,
    window_minutes: i32,
) -> QueryResult<Option<i32>> {
    // The window is live while it started less than window_minutes ($4) ago.
    fixed(
        "INSERT INTO login_failures AS f (app_id, kind, external_id, failures, window_started_at) \
         VALUES ($1, $2, $3, 1, now()) \
         ON CONFLICT (app_id, kind, external_id) DO UPDATE SET \
           failures = CASE WHEN f.window_started_at > now() - make_interval(mins => $4) \
                           THEN f.failures + 1 ELSE 1 END, \
           window_started_at = CASE WHEN f.window_started_at > now() - make_interval(mins => $4) \
                                    THEN f.window_started_at ELSE now() END \
         WHERE NOT (f.window_started_at > now() - make_interval(mins => $4)) OR f.failures < $5 \
         RETURNING f.failures",
        |q| {
            q.bind::<Text, _>(app_id)
                .bind::<Text, _>(kind)
                .bind::<Text, _>(external_id)
                .bind::<Integer, _>(window_minutes)
                .bind::<Integer, _>(max_failures)
        },
    )
    .get_result::<Failures>(conn)
    .await
    .map(|f| f.failures)
    .optional()
}

/// Removes a few rows of an app whose window has passed (a later attempt would start them over
/// anyway). Rows outlive their window only after a failure (a right password removes its row),
/// so running this after each failure keeps the table to the live windows, however many
/// identities are tried.
pub async fn prune_passed(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    window_minutes: i32,
) -> QueryResult<usize> {
    fixed(
        "DELETE FROM login_failures \
          WHERE (app_id, kind, external_id) IN ( \
                 SELECT app_id, kind, external_id FROM login_failures \
                  WHERE app_id = $1 AND window_started_at <= now() - make_interval(mins => $2) \
                  LIMIT 4 FOR UPDATE SKIP LOCKED)",
        |q| q.bind::<Text, _>(app_id).bind::<Integer, _>(window_minutes),
    )
    .execute(conn)
    .await
}

/// Replaces an identity's password hash with a stronger one, only if it still holds `old`
/// (a password set meanwhile wins). Neither the profile's version nor `updated_at` moves: the
/// password is the same. Returns whether it was replaced.
pub async fn upgrade_hash(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
    kind: &str,
    old: &str,
    new: &str,
) -> QueryResult<bool> {
    let n = diesel::update(
        identities::table
            .filter(identities::app_id.eq(app_id))
            .filter(identities::profile_id.eq(profile_id))
            .filter(identities::kind.eq(kind))
            .filter(identities::password_hash.eq(old)),
    )
    .set(identities::password_hash.eq(new))
    .execute(conn)
    .await?;
    Ok(n == 1)
}
