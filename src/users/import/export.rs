//! Exporting an app's users in the import format, page by page in profile id order (keyset:
//! each page an index range scan from where the last one ended), so an export of any size
//! holds one page at a time.

use uuid::Uuid;

use super::{ImportIdentity, ImportUser};
use crate::auth::Caller;
use crate::db::{self, DbPool, get_conn};
use crate::error::AppResult;

/// One page of an export.
pub struct ExportPage {
    /// The users, in profile id order.
    pub users: Vec<ImportUser>,
    /// Where the next page starts (`None`: this was the last).
    pub next: Option<Uuid>,
}

/// How many profiles the caller's app has (and a check that the app exists).
pub async fn count(pool: &mut DbPool<'_>, caller: &Caller) -> AppResult<i64> {
    let mut conn = get_conn(pool).await?;
    let app = super::super::caller_app(&mut conn, caller).await?;
    Ok(db::imports::count_profiles(&mut conn, &app.app_id).await?)
}

/// Up to `limit` users after `after`, each as one line of an import file would hold it; with
/// `with_hashes`, their password hashes too.
pub async fn page(
    pool: &mut DbPool<'_>,
    caller: &Caller,
    after: Option<Uuid>,
    limit: i64,
    with_hashes: bool,
) -> AppResult<ExportPage> {
    let mut conn = get_conn(pool).await?;
    let found = db::imports::export_page(&mut conn, &caller.app_id, after, limit).await?;
    let full = usize::try_from(limit).is_ok_and(|l| found.len() == l);
    let next = if full {
        found.last().map(|(p, _)| p.profile_id)
    } else {
        None
    };
    let users = found
        .into_iter()
        .map(|(p, ids)| ImportUser {
            profile_id: Some(p.profile_id.to_string()),
            identities: ids
                .into_iter()
                .map(|i| ImportIdentity {
                    kind: i.kind,
                    external_id: i.external_id,
                    external_auth_type: (!i.external_auth_type.is_empty())
                        .then_some(i.external_auth_type),
                    password_hash: if with_hashes { i.password_hash } else { None },
                    password: None,
                })
                .collect(),
            status: Some(p.status),
            created_at: Some(p.created_at),
            last_login_at: p.last_login_at,
            user_name: p.user_name,
            contact_email: p.contact_email,
            country_code: p.country_code,
            language_code: p.language_code,
            time_zone_offset: p.time_zone_offset,
            picture_url: p.picture_url,
            is_tester: Some(p.is_tester),
            summary_friend_data: p.summary_friend_data,
            parent_profile_id: p.parent_profile_id.map(|id| id.to_string()),
        })
        .collect();
    Ok(ExportPage { users, next })
}
