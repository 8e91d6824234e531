//! SysDeleteUser: idempotent deletion, children orphaned or deleted recursively, all in one
//! transaction with its audit events.

use diesel_async::AsyncConnection;
use serde_json::json;
use uuid::Uuid;

use super::parse_profile_id;
use crate::auth::Caller;
use crate::db::models::NewAuditEvent;
use crate::db::{self, Db};
use crate::error::{AppError, AppResult, current_request_id};

/// Deletes a profile of the caller's app. Without `delete_children` its children stay and lose
/// their parent; with it they (and their children, in the child apps) are deleted too.
/// Returns the deleted ids, the requested one first; `[]` when the profile does not exist.
pub async fn delete(
    db: &Db,
    caller: &Caller,
    profile_id: &str,
    delete_children: bool,
) -> AppResult<Vec<Uuid>> {
    let id = parse_profile_id(profile_id, "profileId")?;
    let mut conn = db.conn().await?;
    let request_id = current_request_id();
    let app_id = caller.app_id.as_str();
    let deleted = conn
        .transaction::<_, AppError, _>(async move |conn| {
            let orphans = if delete_children {
                Vec::new()
            } else {
                db::profiles::orphan_children(conn, app_id, id).await?
            };
            let deleted = db::profiles::delete_tree(conn, app_id, id, delete_children).await?;
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
                    request_id: request_id.as_deref(),
                })
                .collect();
            events.extend(orphans.iter().map(|(app, child)| NewAuditEvent {
                app_id: app,
                profile_id: Some(*child),
                actor: &caller.actor,
                operation: "orphanUser",
                details: Some(json!({ "formerParentProfileId": id })),
                request_id: request_id.as_deref(),
            }));
            if !events.is_empty() {
                db::audit::insert(conn, &events).await?;
            }
            Ok(deleted
                .into_iter()
                .map(|d| d.profile_id)
                .collect::<Vec<_>>())
        })
        .await?;
    if !deleted.is_empty() {
        tracing::info!(app_id = %caller.app_id, profile_id = %id, deleted = deleted.len(), "deleted user");
    }
    Ok(deleted)
}
