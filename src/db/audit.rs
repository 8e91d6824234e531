//! The audit trail: written in the same transaction as the mutation it records.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::models::{AuditEvent, NewAuditEvent};
use super::schema::audit_events;

/// Appends entries. One entry (the common case) goes in as a single-row INSERT, which diesel
/// prepares once per connection; a multi-row INSERT is planned anew each time.
pub async fn insert(conn: &mut AsyncPgConnection, events: &[NewAuditEvent<'_>]) -> QueryResult<()> {
    let insert = diesel::insert_into(audit_events::table);
    match events {
        [] => Ok(()),
        [one] => insert.values(one).execute(conn).await.map(drop),
        many => insert.values(many).execute(conn).await.map(drop),
    }
}

/// A profile's entries, oldest first.
pub async fn for_profile(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
) -> QueryResult<Vec<AuditEvent>> {
    audit_events::table
        .filter(audit_events::app_id.eq(app_id))
        .filter(audit_events::profile_id.eq(profile_id))
        .order(audit_events::event_id.asc())
        .select(AuditEvent::as_select())
        .load(conn)
        .await
}
