//! disableUser and enableUser: support blocking an account, and lifting the block.
//!
//! Disabling revokes every outstanding reset and deletion link of the profile and drops its
//! queued reset mail, in the same transaction; while disabled, the profile gets no reset,
//! reset link or deletion link, and no login (`USER_DISABLED`). Reads, updates, `setPassword`
//! and `deleteUser` still work. Both calls are idempotent: disabling a disabled profile (or
//! enabling an active one) changes nothing at all, its reason and `disabledAt` included.

use diesel_async::AsyncConnection;
use serde_json::json;

use super::{audit, caller_app, lock_profile, parse_profile_id};
use crate::auth::Caller;
use crate::db::models::Profile;
use crate::db::{self, DbPool, get_conn};
use crate::error::{AppError, AppResult};
use crate::mail::Kind;
use crate::normalise;

/// Longest `disabledReason`, in characters.
pub const MAX_REASON: usize = 500;

/// A reason as stored: one line of visible characters, trimmed (`None`: empty).
fn reason(raw: Option<String>) -> AppResult<Option<String>> {
    let Some(r) = raw else { return Ok(None) };
    normalise::at_most(&r, MAX_REASON, "reason")?;
    let r = r.trim();
    normalise::visible(r, "reason")?;
    Ok((!r.is_empty()).then(|| r.to_owned()))
}

/// Disables a profile of the caller's app.
pub async fn disable(
    pool: &mut DbPool<'_>,
    caller: &Caller,
    profile_id: &str,
    why: Option<String>,
) -> AppResult<Profile> {
    let id = parse_profile_id(profile_id, "profileId")?;
    let why = reason(why)?;
    let mut conn = get_conn(pool).await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        caller_app(conn, caller).await?;
        let profile = lock_profile(conn, caller, id).await?;
        if profile.is_disabled() {
            return Ok(profile);
        }
        let profile = db::profile_updates::disable(conn, &caller.app_id, id, why.as_deref())
            .await?
            .ok_or(AppError::ProfileNotFound)?;
        db::tokens::revoke(conn, &caller.app_id, id, None).await?;
        db::outbox::drop_for_profiles(
            conn,
            &[(caller.app_id.clone(), id)],
            Some(&[Kind::PasswordReset.as_str()]),
            "profile disabled",
        )
        .await?;
        let details = json!({ "reason": why, "version": profile.version });
        audit(conn, caller, id, "disableUser", details).await?;
        tracing::info!(app_id = %caller.app_id, profile_id = %id, "disabled user");
        Ok(profile)
    })
    .await
}

/// Enables a disabled profile of the caller's app.
pub async fn enable(
    pool: &mut DbPool<'_>,
    caller: &Caller,
    profile_id: &str,
) -> AppResult<Profile> {
    let id = parse_profile_id(profile_id, "profileId")?;
    let mut conn = get_conn(pool).await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        caller_app(conn, caller).await?;
        let profile = lock_profile(conn, caller, id).await?;
        if !profile.is_disabled() {
            return Ok(profile);
        }
        let profile = db::profile_updates::enable(conn, &caller.app_id, id)
            .await?
            .ok_or(AppError::ProfileNotFound)?;
        audit(
            conn,
            caller,
            id,
            "enableUser",
            json!({ "version": profile.version }),
        )
        .await?;
        tracing::info!(app_id = %caller.app_id, profile_id = %id, "enabled user");
        Ok(profile)
    })
    .await
}

/// `USER_DISABLED` for a disabled profile: what resets and links answer for one.
pub fn refuse_disabled(profile: &Profile) -> AppResult<()> {
    if profile.is_disabled() {
        return Err(AppError::UserDisabled);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_one_trimmed_visible_line() {
        assert_eq!(reason(None).unwrap(), None);
        assert_eq!(reason(Some("  ".into())).unwrap(), None);
        assert_eq!(
            reason(Some(" chargeback ".into())).unwrap().as_deref(),
            Some("chargeback")
        );
        assert!(reason(Some("a\nb".into())).is_err());
        assert!(reason(Some("x".repeat(MAX_REASON + 1))).is_err());
    }
}
