//! The outbox: messages committed with the mutation that asked for them, sent later by the
//! workers in [`crate::mail::outbox`].

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Array, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::models::{NewOutboxMessage, OutboxMessage};
use super::schema::outbox;

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

/// Claims up to `limit` due messages for `lease`: they stay QUEUED but invisible to other
/// workers until the lease runs out, so a worker that dies mid-batch loses nothing — its
/// messages come due again. Each claim counts as an attempt.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    limit: i64,
    lease: Duration,
) -> QueryResult<Vec<OutboxMessage>> {
    diesel::sql_query(
        "UPDATE outbox o SET attempts = o.attempts + 1,
                next_attempt_at = now() + make_interval(secs => $2)
           FROM (SELECT app_id, message_id FROM outbox
                  WHERE status = 'QUEUED' AND next_attempt_at <= now()
                  ORDER BY next_attempt_at
                  LIMIT $1
                  FOR UPDATE SKIP LOCKED) due
          WHERE o.app_id = due.app_id AND o.message_id = due.message_id
         RETURNING o.*",
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .bind::<diesel::sql_types::Double, _>(lease.as_secs_f64())
    .load(conn)
    .await
}

/// Records a delivery.
pub async fn mark_sent(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    message_id: Uuid,
) -> QueryResult<()> {
    diesel::update(outbox::table.find((app_id, message_id)))
        .set((
            outbox::status.eq("SENT"),
            outbox::sent_at.eq(diesel::dsl::now),
            outbox::last_error.eq(None::<String>),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Records a failed attempt: retried after `delay`, or given up (`FAILED`) when `delay` is
/// `None`. `status` stays untouched when the message was dropped meanwhile.
pub async fn mark_failed(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    message_id: Uuid,
    error: &str,
    delay: Option<Duration>,
) -> QueryResult<()> {
    let target = outbox::table
        .find((app_id, message_id))
        .filter(outbox::status.eq("QUEUED"));
    match delay {
        Some(d) => {
            diesel::sql_query(
                "UPDATE outbox SET last_error = $3, next_attempt_at = now() + make_interval(secs => $4)
                  WHERE app_id = $1 AND message_id = $2 AND status = 'QUEUED'",
            )
            .bind::<Text, _>(app_id)
            .bind::<diesel::sql_types::Uuid, _>(message_id)
            .bind::<Text, _>(error)
            .bind::<diesel::sql_types::Double, _>(d.as_secs_f64())
            .execute(conn)
            .await?;
        }
        None => {
            diesel::update(target)
                .set((outbox::status.eq("FAILED"), outbox::last_error.eq(error)))
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}

/// Drops a message unsent, saying why.
pub async fn mark_dropped(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    message_id: Uuid,
    why: &str,
) -> QueryResult<()> {
    diesel::update(outbox::table.find((app_id, message_id)))
        .set((outbox::status.eq("DROPPED"), outbox::last_error.eq(why)))
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
    diesel::sql_query(
        "UPDATE outbox SET status = 'DROPPED', last_error = $4
          WHERE status = 'QUEUED'
            AND (app_id, profile_id) IN (SELECT * FROM unnest($1::text[], $2::uuid[]))
            AND (cardinality($3::text[]) = 0 OR kind = ANY($3))",
    )
    .bind::<Array<Text>, _>(apps)
    .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
    .bind::<Array<Text>, _>(kinds)
    .bind::<Text, _>(why)
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
