//! SysDeleteUser: idempotent deletion, children orphaned or deleted recursively, all in one
//! transaction with its audit events.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;
use uuid::Uuid;

use super::parse_profile_id;
use crate::auth::Caller;
use crate::db::models::NewAuditEvent;
use crate::db::{self, DbPool, get_conn};
use crate::error::{AppError, AppResult};
use crate::telemetry::current_request_id;

/// Deletes a profile of the caller's app, in one transaction: without `delete_children` its
/// children stay and lose their parent; with it they (and their children, in the child apps)
/// are deleted too. Identities and one-time tokens go with the profiles (by cascade), their
/// queued mail is dropped, and one audit event is written per profile touched. Returns the
/// deleted ids, the requested one first; `[]` when the profile does not exist.
pub async fn delete(
    pool: &mut DbPool<'_>,
    caller: &Caller,
    profile_id: &str,
    delete_children: bool,
) -> AppResult<Vec<Uuid>> {
    let id = parse_profile_id(profile_id, "profileId")?;
    let request_id = current_request_id();
    let mut conn = get_conn(pool).await?;
    let deleted = conn
        .transaction::<_, AppError, _>(async |conn| {
            delete_tree(conn, caller, request_id.as_deref(), id, delete_children).await
        })
        .await?;
    if !deleted.is_empty() {
        tracing::info!(app_id = %caller.app_id, profile_id = %id, deleted = deleted.len(), "deleted user");
    }
    Ok(deleted)
}

async fn delete_tree(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    request_id: Option<&str>,
    id: Uuid,
    delete_children: bool,
) -> AppResult<Vec<Uuid>> {
    let app_id = caller.app_id.as_str();
    let orphans = if delete_children {
        Vec::new()
    } else {
        db::profiles::orphan_children(conn, app_id, id).await?
    };
    let deleted = db::profiles::delete_tree(conn, app_id, id, delete_children).await?;
    let keys: Vec<(String, Uuid)> = deleted
        .iter()
        .map(|d| (d.app_id.clone(), d.profile_id))
        .collect();
    if !keys.is_empty() {
        db::outbox::drop_for_profiles(conn, &keys, None, "profile deleted").await?;
    }
    let mut events: Vec<NewAuditEvent> = deleted
        .iter()
        .map(|d| NewAuditEvent {
            app_id: &d.app_id,
            profile_id: Some(d.profile_id),
            actor: &caller.actor,
            operation: "deleteUser",
            details: Some(if d.depth == 0 {
                json!({ "deleteChildren": delete_children })
            } else {
                json!({ "deletedWithAncestor": id, "parentProfileId": d.parent_profile_id })
            }),
            request_id,
        })
        .collect();
    events.extend(orphans.iter().map(|(app, child)| NewAuditEvent {
        app_id: app,
        profile_id: Some(*child),
        actor: &caller.actor,
        operation: "orphanUser",
        details: Some(json!({ "formerParentProfileId": id })),
        request_id,
    }));
    if !events.is_empty() {
        db::audit::insert(conn, &events).await?;
    }
    Ok(deleted.into_iter().map(|d| d.profile_id).collect())
}
