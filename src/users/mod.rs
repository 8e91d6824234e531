//! The User service: every rule about profiles and identities lives here, whichever way the
//! call came in (GraphQL, the hosted pages, the CLI). Functions take a [`DbPool`] (the pool, or
//! a connection inside the caller's transaction) and the [`Caller`], whose `app_id` scopes
//! everything they touch.

pub mod create;
pub mod delete;
pub mod fields;
pub mod identities;
pub mod import;
pub mod login;
pub mod page;
pub mod read;
pub mod status;
pub mod update;

use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::auth::Caller;
#[cfg(doc)]
use crate::db::DbPool;
use crate::db::models::{App, NewAuditEvent, Profile};
use crate::error::{AppError, AppResult};
use crate::telemetry::current_request_id;

/// A profile id from an argument: a UUID, else `BAD_USER_INPUT`.
pub fn parse_profile_id(raw: &str, field: &str) -> AppResult<Uuid> {
    if raw.len() > 64 {
        return Err(AppError::bad_input(format!("{field} is not a profile id")));
    }
    Uuid::parse_str(raw.trim())
        .map_err(|_| AppError::bad_input(format!("{field} is not a profile id")))
}

/// The caller's app. A token for an app that does not exist can do nothing.
pub async fn caller_app(conn: &mut AsyncPgConnection, caller: &Caller) -> AppResult<App> {
    crate::db::apps::find(conn, &caller.app_id)
        .await?
        .ok_or_else(|| AppError::Forbidden(format!("app \"{}\" does not exist", caller.app_id)))
}

/// One profile of the caller's app, locked until the end of the transaction (`FOR UPDATE`):
/// changes to one profile queue here, so each sees the one before it (versions, idempotent
/// repeats, the last identity). `PROFILE_NOT_FOUND` when it is not there.
pub async fn lock_profile(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    profile_id: Uuid,
) -> AppResult<Profile> {
    crate::db::profiles::find_for_update(conn, &caller.app_id, profile_id)
        .await?
        .ok_or(AppError::ProfileNotFound)
}

/// The contract's answer to a write that a constraint refused, for the constraints whose
/// violation is a caller's mistake (decided by the database, so concurrent writers get one
/// winner); any other database error as it is.
pub fn refused_by_constraint(e: diesel::result::Error) -> AppError {
    use diesel::result::{DatabaseErrorKind, Error};
    if let Error::DatabaseError(kind, info) = &e {
        match (kind, info.constraint_name()) {
            (DatabaseErrorKind::UniqueViolation, Some("identities_external_key")) => {
                return AppError::UserAlreadyExists;
            }
            (DatabaseErrorKind::UniqueViolation, Some("identities_pkey")) => {
                return AppError::DuplicateIdentityType;
            }
            (DatabaseErrorKind::UniqueViolation, Some("profiles_one_child_per_app")) => {
                return AppError::DuplicateChild;
            }
            (DatabaseErrorKind::ForeignKeyViolation, Some("profiles_parent_fkey")) => {
                return AppError::AppParentMismatch(
                    "parentProfileId does not name a profile of the parent app",
                );
            }
            _ => {}
        }
    }
    e.into()
}

/// Writes one audit event: `caller` did `operation` to a profile (of the caller's app), in the
/// current request.
pub async fn audit(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    profile_id: Uuid,
    operation: &str,
    details: serde_json::Value,
) -> AppResult<()> {
    let request_id = current_request_id();
    crate::db::audit::insert(
        conn,
        &[NewAuditEvent {
            app_id: &caller.app_id,
            profile_id: Some(profile_id),
            actor: &caller.actor,
            operation,
            details: Some(details),
            request_id: request_id.as_deref(),
        }],
    )
    .await?;
    Ok(())
}
