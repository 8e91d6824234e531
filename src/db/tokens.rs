//! One-time tokens (reset and deletion links), stored as SHA-256 hashes. Expiry is always
//! computed and checked against the database clock.

use diesel::prelude::*;
use diesel::sql_types::{Bytea, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::models::OneTimeToken;
use super::schema::one_time_tokens;

/// What a link is for.
pub const PASSWORD_RESET: &str = "PASSWORD_RESET";
/// What a link is for.
pub const ACCOUNT_DELETION: &str = "ACCOUNT_DELETION";

/// Stores a new token valid for `ttl_minutes` from now (database time), after revoking the
/// profile's other live tokens of the same purpose: the newest link replaces older ones.
pub async fn issue(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
    purpose: &str,
    identity_kind: Option<&str>,
    token_hash: &[u8],
    ttl_minutes: i32,
) -> QueryResult<OneTimeToken> {
    revoke(conn, app_id, profile_id, Some(purpose)).await?;
    diesel::sql_query(
        "INSERT INTO one_time_tokens (token_hash, app_id, profile_id, purpose, identity_kind, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(mins => $6))
         RETURNING *",
    )
    .bind::<Bytea, _>(token_hash)
    .bind::<Text, _>(app_id)
    .bind::<diesel::sql_types::Uuid, _>(profile_id)
    .bind::<Text, _>(purpose)
    .bind::<Nullable<Text>, _>(identity_kind)
    .bind::<Integer, _>(ttl_minutes)
    .get_result(conn)
    .await
}

/// Stores a token that expires at a fixed time (a queued reset whose expiry was promised
/// when it was requested), revoking the profile's other live tokens of that purpose.
pub async fn issue_until(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
    purpose: &str,
    identity_kind: Option<&str>,
    token_hash: &[u8],
    expires_at: chrono::DateTime<chrono::Utc>,
) -> QueryResult<OneTimeToken> {
    revoke(conn, app_id, profile_id, Some(purpose)).await?;
    diesel::insert_into(one_time_tokens::table)
        .values((
            one_time_tokens::token_hash.eq(token_hash),
            one_time_tokens::app_id.eq(app_id),
            one_time_tokens::profile_id.eq(profile_id),
            one_time_tokens::purpose.eq(purpose),
            one_time_tokens::identity_kind.eq(identity_kind),
            one_time_tokens::expires_at.eq(expires_at),
        ))
        .returning(OneTimeToken::as_returning())
        .get_result(conn)
        .await
}

/// Revokes a profile's live tokens (of one purpose, or all).
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
    purpose: Option<&str>,
) -> QueryResult<usize> {
    let mut q = diesel::update(one_time_tokens::table)
        .filter(one_time_tokens::app_id.eq(app_id))
        .filter(one_time_tokens::profile_id.eq(profile_id))
        .filter(one_time_tokens::used_at.is_null())
        .filter(one_time_tokens::revoked_at.is_null())
        .into_boxed();
    if let Some(p) = purpose {
        q = q.filter(one_time_tokens::purpose.eq(p));
    }
    q.set(one_time_tokens::revoked_at.eq(diesel::dsl::now))
        .execute(conn)
        .await
}

/// A token by its hash, whatever its state.
pub async fn find(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
) -> QueryResult<Option<OneTimeToken>> {
    one_time_tokens::table
        .find(token_hash)
        .select(OneTimeToken::as_select())
        .first(conn)
        .await
        .optional()
}

/// Whether a token is usable now, by the database clock.
pub async fn is_live(conn: &mut AsyncPgConnection, token_hash: &[u8]) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        one_time_tokens::table
            .filter(one_time_tokens::token_hash.eq(token_hash))
            .filter(one_time_tokens::used_at.is_null())
            .filter(one_time_tokens::revoked_at.is_null())
            .filter(one_time_tokens::expires_at.gt(diesel::dsl::now)),
    ))
    .get_result(conn)
    .await
}

/// Consumes a live token of `purpose` in one guarded statement: of any number of concurrent
/// callers exactly one gets it back; expired, used or revoked tokens give `None`.
pub async fn consume(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
    purpose: &str,
) -> QueryResult<Option<OneTimeToken>> {
    diesel::update(one_time_tokens::table)
        .filter(one_time_tokens::token_hash.eq(token_hash))
        .filter(one_time_tokens::purpose.eq(purpose))
        .filter(one_time_tokens::used_at.is_null())
        .filter(one_time_tokens::revoked_at.is_null())
        .filter(one_time_tokens::expires_at.gt(diesel::dsl::now))
        .set(one_time_tokens::used_at.eq(diesel::dsl::now))
        .returning(OneTimeToken::as_returning())
        .get_result(conn)
        .await
        .optional()
}
