//! SysCreateSelfServiceDeletionUrlForUser: a single-use link to a page where the user confirms
//! the deletion of their account.

use diesel_async::AsyncConnection;
use serde_json::json;

use super::check_ttl;
use super::reset::Link;
use crate::auth::Caller;
use crate::db::tokens::{Expiry, NewToken};
use crate::db::{self, DbPool, get_conn};
use crate::error::{AppError, AppResult};
use crate::links::{self, new_token};
use crate::mail::MailSettings;
use crate::users::status::refuse_disabled;
use crate::users::{audit, caller_app, parse_profile_id};

/// Default lifetime of a deletion link: one day.
pub const DEFAULT_TTL_MINUTES: i32 = 1440;

/// Makes a deletion link (it replaces older live deletion links of the profile).
pub async fn create_deletion_url(
    pool: &mut DbPool<'_>,
    mail: &MailSettings,
    caller: &Caller,
    profile_id: &str,
    ttl_minutes: Option<i32>,
) -> AppResult<Link> {
    let id = parse_profile_id(profile_id, "profileId")?;
    let ttl = check_ttl(ttl_minutes)?.unwrap_or(DEFAULT_TTL_MINUTES);
    let (token, hash) = new_token()?;
    let mut conn = get_conn(pool).await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let app = caller_app(conn, caller).await?;
        let profile = db::profiles::find_for_update(conn, &app.app_id, id)
            .await?
            .ok_or(AppError::ProfileNotFound)?;
        refuse_disabled(&profile)?;
        let token_row = NewToken {
            app_id: &app.app_id,
            profile_id: id,
            purpose: db::tokens::ACCOUNT_DELETION,
            identity_kind: None,
            token_hash: &hash,
        };
        let row = db::tokens::issue(conn, &token_row, Expiry::InMinutes(ttl)).await?;
        let details = json!({ "tokenTtlInMinutes": ttl });
        audit(conn, caller, id, "createSelfServiceDeletionUrl", details).await?;
        Ok(Link {
            url: links::deletion_url(mail.link_base(&app), &app.app_id, &token, id),
            expires_at: row.expires_at,
        })
    })
    .await
}
