//! One-time tokens (reset and deletion links), stored as SHA-256 hashes. Expiry is always
//! computed and checked against the database clock.

use diesel::prelude::*;
use diesel::sql_types::Timestamptz;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::models::OneTimeToken;
use super::schema::{one_time_tokens, spent_links};

/// What a link is for.
pub const PASSWORD_RESET: &str = "PASSWORD_RESET";
/// What a link is for.
pub const ACCOUNT_DELETION: &str = "ACCOUNT_DELETION";

/// When a new token stops working.
#[derive(Debug, Clone, Copy)]
pub enum Expiry {
    /// This many minutes from now, by the database clock.
    InMinutes(i32),
    /// At a time fixed earlier (a queued reset whose expiry was promised when it was asked
    /// for).
    At(chrono::DateTime<chrono::Utc>),
}

/// A token to store: its hash, whose it is and what it is for.
#[derive(Debug, Clone, Copy)]
pub struct NewToken<'a> {
    pub app_id: &'a str,
    pub profile_id: Uuid,
    pub purpose: &'a str,
    pub identity_kind: Option<&'a str>,
    pub token_hash: &'a [u8],
}

/// Stores a new token after revoking the profile's other live tokens of the same purpose: the
/// newest link replaces older ones.
pub async fn issue(
    conn: &mut AsyncPgConnection,
    token: &NewToken<'_>,
    expiry: Expiry,
) -> QueryResult<OneTimeToken> {
    revoke(conn, token.app_id, token.profile_id, Some(token.purpose)).await?;
    let columns = (
        one_time_tokens::token_hash.eq(token.token_hash),
        one_time_tokens::app_id.eq(token.app_id),
        one_time_tokens::profile_id.eq(token.profile_id),
        one_time_tokens::purpose.eq(token.purpose),
        one_time_tokens::identity_kind.eq(token.identity_kind),
    );
    let insert = diesel::insert_into(one_time_tokens::table);
    match expiry {
        Expiry::InMinutes(minutes) => {
            let expires = super::minutes_from_now::<Timestamptz>(minutes);
            insert
                .values((columns, one_time_tokens::expires_at.eq(expires)))
                .returning(OneTimeToken::as_returning())
                .get_result(conn)
                .await
        }
        Expiry::At(at) => {
            insert
                .values((columns, one_time_tokens::expires_at.eq(at)))
                .returning(OneTimeToken::as_returning())
                .get_result(conn)
                .await
        }
    }
}

/// Stores the token of a mailed link unless it is stored already (a retry of the same message
/// derives the same token), without touching the profile's other links: a link replaces the
/// older ones only once it has been delivered ([`revoke_older`]). `created_at` is when the
/// link was asked for, which orders it among the profile's links. Returns the stored row,
/// whatever state it is in now.
pub async fn insert_once(
    conn: &mut AsyncPgConnection,
    token: &NewToken<'_>,
    expires_at: chrono::DateTime<chrono::Utc>,
    created_at: chrono::DateTime<chrono::Utc>,
) -> QueryResult<OneTimeToken> {
    diesel::insert_into(one_time_tokens::table)
        .values((
            one_time_tokens::token_hash.eq(token.token_hash),
            one_time_tokens::app_id.eq(token.app_id),
            one_time_tokens::profile_id.eq(token.profile_id),
            one_time_tokens::purpose.eq(token.purpose),
            one_time_tokens::identity_kind.eq(token.identity_kind),
            one_time_tokens::expires_at.eq(expires_at),
            one_time_tokens::created_at.eq(created_at),
        ))
        .on_conflict(one_time_tokens::token_hash)
        .do_nothing()
        .execute(conn)
        .await?;
    find(conn, token.token_hash)
        .await?
        .ok_or(diesel::result::Error::NotFound)
}

/// Revokes a profile's live tokens of `purpose` that were asked for before `before`, except
/// `keep`: a newer link was delivered and replaces them. Newer ones stay.
pub async fn revoke_older(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
    purpose: &str,
    keep: &[u8],
    before: chrono::DateTime<chrono::Utc>,
) -> QueryResult<usize> {
    diesel::update(one_time_tokens::table)
        .filter(one_time_tokens::app_id.eq(app_id))
        .filter(one_time_tokens::profile_id.eq(profile_id))
        .filter(one_time_tokens::purpose.eq(purpose))
        .filter(one_time_tokens::used_at.is_null())
        .filter(one_time_tokens::revoked_at.is_null())
        .filter(one_time_tokens::token_hash.ne(keep))
        .filter(one_time_tokens::created_at.lt(before))
        .set(one_time_tokens::revoked_at.eq(diesel::dsl::now))
        .execute(conn)
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

/// A token by its hash and whether it has expired by the database clock, read together: a
/// token revoked or used meanwhile is seen in one state, never half in each.
pub async fn find_with_expiry(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
) -> QueryResult<Option<(OneTimeToken, bool)>> {
    one_time_tokens::table
        .find(token_hash)
        .select((
            OneTimeToken::as_select(),
            one_time_tokens::expires_at.le(diesel::dsl::now),
        ))
        .first(conn)
        .await
        .optional()
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

/// Remembers that the link with this hash did its work and took its row with it (a deletion
/// link deletes its profile and the profile's tokens), until it would have expired; prunes the
/// remembered links that are past their expiry.
pub async fn remember_spent(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
    expires_at: chrono::DateTime<chrono::Utc>,
) -> QueryResult<()> {
    diesel::delete(spent_links::table.filter(spent_links::expires_at.le(diesel::dsl::now)))
        .execute(conn)
        .await?;
    diesel::insert_into(spent_links::table)
        .values((
            spent_links::token_hash.eq(token_hash),
            spent_links::expires_at.eq(expires_at),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the link with this hash was used and its row removed since (see [`remember_spent`]).
pub async fn was_spent(conn: &mut AsyncPgConnection, token_hash: &[u8]) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        spent_links::table
            .filter(spent_links::token_hash.eq(token_hash))
            .filter(spent_links::expires_at.gt(diesel::dsl::now)),
    ))
    .get_result(conn)
    .await
}
