//! The User service: every rule about profiles and identities lives here, whichever way the
//! call came in (GraphQL, the hosted pages, the CLI). Functions take the database handle and
//! the [`Caller`](crate::auth::Caller), whose `app_id` scopes everything they touch.

pub mod create;
pub mod delete;
pub mod fields;
pub mod normalise;
pub mod page;
pub mod read;

use uuid::Uuid;

use crate::auth::Caller;
use crate::db::Conn;
use crate::db::models::App;
use crate::error::{AppError, AppResult};

/// The kinds of identity, as stored in `identities.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKind {
    Email,
    UniversalId,
    External,
}

impl IdentityKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Email => "EMAIL",
            IdentityKind::UniversalId => "UNIVERSAL_ID",
            IdentityKind::External => "EXTERNAL",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "EMAIL" => Some(IdentityKind::Email),
            "UNIVERSAL_ID" => Some(IdentityKind::UniversalId),
            "EXTERNAL" => Some(IdentityKind::External),
            _ => None,
        }
    }
}

/// A profile id from an argument: a UUID, else `BAD_USER_INPUT`.
pub fn parse_profile_id(raw: &str, field: &str) -> AppResult<Uuid> {
    if raw.len() > 64 {
        return Err(AppError::bad_input(format!("{field} is not a profile id")));
    }
    Uuid::parse_str(raw.trim())
        .map_err(|_| AppError::bad_input(format!("{field} is not a profile id")))
}

/// The caller's app. A token for an app that does not exist can do nothing.
pub async fn caller_app(conn: &mut Conn, caller: &Caller) -> AppResult<App> {
    crate::db::apps::find(conn, &caller.app_id)
        .await?
        .ok_or_else(|| AppError::Forbidden(format!("app \"{}\" does not exist", caller.app_id)))
}
