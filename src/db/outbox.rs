//! The outbox: messages committed with the mutation that asked for them, sent later by the
//! workers in `mail::outbox`.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Array, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::fixed::fixed;
use super::models::{NewOutboxMessage, OutboxMessage};
use super::schema::{outbox, outbox_recipients};

/// Queues a message. A reset's link expiry is fixed now, by the database clock.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    msg: &NewOutboxMessage<'_>,
    token_ttl_minutes: Option<i32>,
) -> QueryResult<OutboxMessage> {
    let insert = diesel::insert_into(outbox::table);
    match token_ttl_minutes {
        None => {
            insert
                .values(msg)
                .returning(OutboxMessage::as_returning())
                .get_result(conn)
                .await
        }
        Some(ttl) => {
            let expires = super::minutes_from_now::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
            >(ttl);
            insert
                .values((msg, outbox::token_expires_at.eq(expires)))
                .returning(OutboxMessage::as_returning())
                .get_result(conn)
                .await
        }
    }
}

/// Claims up to `limit` due messages for `lease` under the claim's `lease_token`: they stay
/// QUEUED but invisible to other workers until the lease runs out (or is renewed), so a worker
/// that dies loses nothing — its messages come due again, under a new token. Each claim counts
/// as an attempt.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    limit: i64,
    lease: Duration,
    lease_token: Uuid,
) -> QueryResult<Vec<OutboxMessage>> {
    fixed(
        "UPDATE outbox o SET attempts = o.attempts + 1,
                next_attempt_at = now() + make_interval(secs => $2),
                lease_token = $3
           FROM (SELECT app_id, message_id FROM outbox
                  WHERE status = 'QUEUED' AND next_attempt_at <= now()
                  ORDER BY next_attempt_at
                  LIMIT $1
                  FOR UPDATE SKIP LOCKED) due
          WHERE o.app_id = due.app_id AND o.message_id = due.message_id
         RETURNING o.*",
        |q| {
            q.bind::<diesel::sql_types::BigInt, _>(limit)
                .bind::<diesel::sql_types::Double, _>(lease.as_secs_f64())
                .bind::<diesel::sql_types::Uuid, _>(lease_token)
        },
    )
    .load(conn)
    .await
}

/// The message while its claim `lease_token` still holds it (QUEUED, not taken over).
macro_rules! held {
    ($app_id:expr, $message_id:expr, $lease_token:expr) => {
        outbox::table
            .find(($app_id, $message_id))
            .filter(outbox::lease_token.eq($lease_token))
            .filter(outbox::status.eq("QUEUED"))
    };
}

/// Extends a held message's lease; `false` when the claim no longer holds it.
pub async fn renew(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    message_id: Uuid,
    lease_token: Uuid,
    lease: Duration,
) -> QueryResult<bool> {
    fixed(
        "UPDATE outbox SET next_attempt_at = now() + make_interval(secs => $4)
          WHERE app_id = $1 AND message_id = $2 AND lease_token = $3 AND status = 'QUEUED'",
        |q| {
            q.bind::<Text, _>(app_id)
                .bind::<diesel::sql_types::Uuid, _>(message_id)
                .bind::<diesel::sql_types::Uuid, _>(lease_token)
                .bind::<diesel::sql_types::Double, _>(lease.as_secs_f64())
        },
    )
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// Locks a held message's row for the rest of the transaction; `false` when the claim no
/// longer holds it. A change that drops the message (a deletion, a newer link) waits for the
/// lock, so it either sees what the holder did or stops the holder here.
pub async fn lock_held(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    message_id: Uuid,
    lease_token: Uuid,
) -> QueryResult<bool> {
    held!(app_id, message_id, lease_token)
        .select(outbox::message_id)
        .for_update()
        .first::<Uuid>(conn)
        .await
        .optional()
        .map(|m| m.is_some())
}

/// Records a delivery, with a note when part of it (the cc/bcc copy) was refused. Only the
/// claim that holds the message records it; `false` otherwise.
pub async fn mark_sent(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    message_id: Uuid,
    lease_token: Uuid,
    note: Option<&str>,
) -> QueryResult<bool> {
    diesel::update(held!(app_id, message_id, lease_token))
        .set((
            outbox::status.eq("SENT"),
            outbox::sent_at.eq(diesel::dsl::now),
            outbox::last_error.eq(note),
            outbox::lease_token.eq(None::<Uuid>),
        ))
        .execute(conn)
        .await
        .map(|n| n == 1)
}

/// Records a failed attempt: retried after `delay`, or given up (`FAILED`) when `delay` is
/// `None`. Only the claim that holds the message records it; `false` otherwise (it was dropped
/// or taken over meanwhile).
pub async fn mark_failed(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    message_id: Uuid,
    lease_token: Uuid,
    error: &str,
    delay: Option<Duration>,
) -> QueryResult<bool> {
    let n = match delay {
        Some(d) => {
            fixed(
                "UPDATE outbox SET last_error = $4, lease_token = NULL,
                        next_attempt_at = now() + make_interval(secs => $5)
                  WHERE app_id = $1 AND message_id = $2 AND lease_token = $3 AND status = 'QUEUED'",
                |q| {
                    q.bind::<Text, _>(app_id)
                        .bind::<diesel::sql_types::Uuid, _>(message_id)
                        .bind::<diesel::sql_types::Uuid, _>(lease_token)
                        .bind::<Text, _>(error)
                        .bind::<diesel::sql_types::Double, _>(d.as_secs_f64())
                },
            )
            .execute(conn)
            .await?
        }
        None => {
            diesel::update(held!(app_id, message_id, lease_token))
                .set((
                    outbox::status.eq("FAILED"),
                    outbox::last_error.eq(error),
                    outbox::lease_token.eq(None::<Uuid>),
                ))
                .execute(conn)
                .await?
        }
    };
    Ok(n == 1)
}

/// Drops a held message unsent, saying why; `false` when the claim no longer holds it.
pub async fn mark_dropped(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    message_id: Uuid,
    lease_token: Uuid,
    why: &str,
) -> QueryResult<bool> {
    diesel::update(held!(app_id, message_id, lease_token))
        .set((
            outbox::status.eq("DROPPED"),
            outbox::last_error.eq(why),
            outbox::lease_token.eq(None::<Uuid>),
        ))
        .execute(conn)
        .await
        .map(|n| n == 1)
}

/// Drops a profile's queued reset mails asked for before `before`: a newer link reached the
/// user (or the caller), and older links are worth nothing now.
pub async fn drop_older_resets(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
    before: chrono::DateTime<chrono::Utc>,
    why: &str,
) -> QueryResult<usize> {
    diesel::update(
        outbox::table
            .filter(outbox::app_id.eq(app_id))
            .filter(outbox::profile_id.eq(profile_id))
            .filter(outbox::kind.eq("PASSWORD_RESET"))
            .filter(outbox::status.eq("QUEUED"))
            .filter(outbox::created_at.lt(before)),
    )
    .set((outbox::status.eq("DROPPED"), outbox::last_error.eq(why)))
    .execute(conn)
    .await
}

/// Serialises the queueing of an app's mail until the transaction ends, in every instance:
/// counting the last hour and adding to it is then one step, so the limits are exact.
pub async fn lock_app_mail(conn: &mut AsyncPgConnection, app_id: &str) -> QueryResult<()> {
    let digest = Sha256::digest(format!("usersvc outbox limits {app_id}").as_bytes());
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    fixed("SELECT pg_advisory_xact_lock($1)", |q| {
        q.bind::<diesel::sql_types::BigInt, _>(i64::from_be_bytes(key))
    })
    .execute(conn)
    .await
    .map(drop)
}

/// How many mails went to each of `keys` (normalised addresses), and to anyone, in the app's
/// last hour.
pub async fn recipients_last_hour(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    keys: &[String],
) -> QueryResult<(Vec<(String, i64)>, i64)> {
    let recent = diesel::dsl::sql::<diesel::sql_types::Bool>(
        "outbox_recipients.created_at > now() - interval '1 hour'",
    );
    let per_address: Vec<(String, i64)> = outbox_recipients::table
        .filter(outbox_recipients::app_id.eq(app_id))
        .filter(outbox_recipients::address_key.eq_any(keys))
        .filter(recent.clone())
        .group_by(outbox_recipients::address_key)
        .select((outbox_recipients::address_key, diesel::dsl::count_star()))
        .load(conn)
        .await?;
    let all: i64 = outbox_recipients::table
        .filter(outbox_recipients::app_id.eq(app_id))
        .filter(recent)
        .count()
        .get_result(conn)
        .await?;
    Ok((per_address, all))
}

/// Records the recipients of a queued message (normalised addresses, To first).
pub async fn add_recipients(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    message_id: Uuid,
    keys: &[String],
) -> QueryResult<()> {
    let rows: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            (
                outbox_recipients::app_id.eq(app_id),
                outbox_recipients::message_id.eq(message_id),
                outbox_recipients::position.eq(i16::try_from(i).unwrap_or(i16::MAX)),
                outbox_recipients::address_key.eq(k),
            )
        })
        .collect();
    diesel::insert_into(outbox_recipients::table)
        .values(rows)
        .execute(conn)
        .await
        .map(drop)
}

/// Drops every queued message of these profiles (of some kinds, or all).
pub async fn drop_for_profiles(
    conn: &mut AsyncPgConnection,
    keys: &[(String, Uuid)],
    kinds: Option<&[&str]>,
    why: &str,
) -> QueryResult<usize> {
    let (apps, ids): (Vec<String>, Vec<Uuid>) = keys.iter().cloned().unzip();
    let kinds: Vec<String> = kinds
        .map(|k| k.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default();
    fixed(
        "UPDATE outbox SET status = 'DROPPED', last_error = $4
          WHERE status = 'QUEUED'
            AND (app_id, profile_id) IN (SELECT * FROM unnest($1::text[], $2::uuid[]))
            AND (cardinality($3::text[]) = 0 OR kind = ANY($3))",
        |q| {
            q.bind::<Array<Text>, _>(apps)
                .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
                .bind::<Array<Text>, _>(kinds)
                .bind::<Text, _>(why)
        },
    )
    .execute(conn)
    .await
}

/// How many messages of `kind` were queued for a profile in the last hour.
pub async fn count_last_hour(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
    kind: &str,
) -> QueryResult<i64> {
    outbox::table
        .filter(outbox::app_id.eq(app_id))
        .filter(outbox::profile_id.eq(profile_id))
        .filter(outbox::kind.eq(kind))
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "outbox.created_at > now() - interval '1 hour'",
        ))
        .count()
        .get_result(conn)
        .await
}

/// One message.
pub async fn find(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    message_id: Uuid,
) -> QueryResult<Option<OutboxMessage>> {
    outbox::table
        .find((app_id, message_id))
        .select(OutboxMessage::as_select())
        .first(conn)
        .await
        .optional()
}

/// How many messages are in each state, every app together.
pub async fn counts_by_status(conn: &mut AsyncPgConnection) -> QueryResult<Vec<(String, i64)>> {
    outbox::table
        .group_by(outbox::status)
        .select((outbox::status, diesel::dsl::count_star()))
        .order(outbox::status.asc())
        .load(conn)
        .await
}

/// The queued message waiting longest.
pub async fn oldest_queued(conn: &mut AsyncPgConnection) -> QueryResult<Option<OutboxMessage>> {
    outbox::table
        .filter(outbox::status.eq("QUEUED"))
        .order(outbox::created_at.asc())
        .select(OutboxMessage::as_select())
        .first(conn)
        .await
        .optional()
}

/// The latest messages whose last attempt failed (still queued, or given up), newest first.
pub async fn recent_errors(
    conn: &mut AsyncPgConnection,
    limit: i64,
) -> QueryResult<Vec<OutboxMessage>> {
    outbox::table
        .filter(outbox::last_error.is_not_null())
        .filter(outbox::status.eq_any(["QUEUED", "FAILED"]))
        .order(outbox::next_attempt_at.desc())
        .limit(limit)
        .select(OutboxMessage::as_select())
        .load(conn)
        .await
}
