//! SysCreateSelfServiceDeletionUrlForUser: a single-use link to a page where the user confirms
//! the deletion of their account.

use diesel_async::AsyncConnection;
use serde_json::json;

use super::reset::Link;
use super::{check_ttl, link_base, new_token, query_value};
use crate::auth::Caller;
use crate::db::models::{App, NewAuditEvent};
use crate::db::tokens::{Expiry, NewToken};
use crate::db::{self, Db};
use crate::error::{AppError, AppResult, current_request_id};
use crate::mail::MailSettings;
use crate::users::{caller_app, parse_profile_id};

/// Default lifetime of a deletion link: one day.
pub const DEFAULT_TTL_MINUTES: i32 = 1440;

/// The deletion page's link, in brainCloud's shape.
pub fn deletion_url(app: &App, mail: &MailSettings, token: &str, profile_id: uuid::Uuid) -> String {
    format!(
        "{}/self-service/delete-account?appId={}&deletionToken={}&profileId={}",
        link_base(app.public_url.as_deref(), &mail.public_url),
        query_value(&app.app_id),
        query_value(token),
        profile_id
    )
}

/// Makes a deletion link (it replaces older live deletion links of the profile).
pub async fn create_deletion_url(
    db: &Db,
    mail: &MailSettings,
    caller: &Caller,
    profile_id: &str,
    ttl_minutes: Option<i32>,
) -> AppResult<Link> {
    let id = parse_profile_id(profile_id, "profileId")?;
    let ttl = check_ttl(ttl_minutes)?.unwrap_or(DEFAULT_TTL_MINUTES);
    let (token, hash) = new_token()?;
    let request_id = current_request_id();
    let mut conn = db.conn().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let app = caller_app(conn, caller).await?;
        db::profiles::find(conn, &app.app_id, id)
            .await?
            .ok_or(AppError::ProfileNotFound)?;
        let token_row = NewToken {
            app_id: &app.app_id,
            profile_id: id,
            purpose: db::tokens::ACCOUNT_DELETION,
            identity_kind: None,
            token_hash: &hash,
        };
        let row = db::tokens::issue(conn, &token_row, Expiry::InMinutes(ttl)).await?;
        db::audit::insert(
            conn,
            &[NewAuditEvent {
                app_id: &app.app_id,
                profile_id: Some(id),
                actor: &caller.actor,
                operation: "createSelfServiceDeletionUrl",
                details: Some(json!({ "tokenTtlInMinutes": ttl })),
                request_id: request_id.as_deref(),
            }],
        )
        .await?;
        Ok(Link {
            url: deletion_url(&app, mail, &token, id),
            expires_at: row.expires_at,
        })
    })
    .await
}
