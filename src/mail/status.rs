//! The outbox as an operator sees it (`usersvc mail status`): how many messages are in each
//! state, the one waiting longest, and the latest failures with their reasons.

use crate::db::models::OutboxMessage;
use crate::db::{self, DbPool, get_conn};
use crate::error::AppResult;

/// A summary of the outbox, every app together.
#[derive(Debug, Clone)]
pub struct OutboxStatus {
    /// Messages per state (`QUEUED`, `SENT`, `FAILED`, `DROPPED`), states with none left out.
    pub counts: Vec<(String, i64)>,
    /// The queued message waiting longest.
    pub oldest_queued: Option<OutboxMessage>,
    /// The latest failed attempts, newest first.
    pub recent_errors: Vec<OutboxMessage>,
}

/// Reads the summary; `errors` is how many recent failures to show.
pub async fn status(pool: &mut DbPool<'_>, errors: i64) -> AppResult<OutboxStatus> {
    let mut conn = get_conn(pool).await?;
    Ok(OutboxStatus {
        counts: db::outbox::counts_by_status(&mut conn).await?,
        oldest_queued: db::outbox::oldest_queued(&mut conn).await?,
        recent_errors: db::outbox::recent_errors(&mut conn, errors).await?,
    })
}
