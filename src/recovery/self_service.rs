//! What the hosted pages do with a link: look at it without consuming it (GET — mail scanners
//! prefetch links), and act on it (POST — an explicit click by the user). A link that cannot be
//! used is [`AppError::DeadLink`], saying why.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;
use uuid::Uuid;

use crate::auth::Caller;
use crate::db::models::{IdentityKind, OneTimeToken};
use crate::db::{self, DbPool, get_conn};
use crate::error::{AppError, AppResult, DeadLink};
use crate::links::{hash_token, plausible_token};
use crate::mail::params::StoredParams;
use crate::mail::queue::{NewMail, OverLimit, queue};
use crate::mail::{Kind, MailSettings};
use crate::passwords::{Hasher, MAX_PASSWORD_BYTES, Policy};

/// A live token of `purpose`, or why it is not.
async fn live_token(
    conn: &mut AsyncPgConnection,
    token: &str,
    purpose: &str,
) -> AppResult<OneTimeToken> {
    if !plausible_token(token) {
        return Err(AppError::DeadLink(DeadLink::Unknown));
    }
    let hash = hash_token(token);
    // One read decides: a link revoked while it is looked at is either still live or revoked,
    // never taken for expired.
    let Some((row, expired)) = db::tokens::find_with_expiry(conn, &hash)
        .await?
        .filter(|(r, _)| r.purpose == purpose)
    else {
        // A link whose work removed its row (a deletion link) is remembered as used.
        let spent = db::tokens::was_spent(conn, &hash).await?;
        return Err(AppError::DeadLink(if spent {
            DeadLink::Used
        } else {
            DeadLink::Unknown
        }));
    };
    Err(AppError::DeadLink(if row.used_at.is_some() {
        DeadLink::Used
    } else if row.revoked_at.is_some() {
        DeadLink::Revoked
    } else if expired {
        DeadLink::Expired
    } else if db::profiles::is_disabled(conn, &row.app_id, row.profile_id).await? {
        // Disabling revokes a profile's links; one made in a race with it is just as dead.
        DeadLink::Revoked
    } else {
        return Ok(row);
    }))
}

/// Why a token that was live a moment ago could not be consumed: whatever its row says now,
/// and `Used` when the row is gone (it was consumed and deleted with its profile).
async fn lost_race(conn: &mut AsyncPgConnection, token: &str, purpose: &str) -> AppError {
    match live_token(conn, token, purpose).await {
        Err(AppError::DeadLink(DeadLink::Unknown)) | Ok(_) => AppError::DeadLink(DeadLink::Used),
        Err(e) => e,
    }
}

/// What the reset page shows for a live link.
#[derive(Debug, Clone)]
pub struct ResetView {
    /// The link's app (whose hashing slots the new password is hashed in).
    pub app_id: String,
    pub app_name: String,
    pub policy: Policy,
}

async fn reset_view(conn: &mut AsyncPgConnection, row: &OneTimeToken) -> AppResult<ResetView> {
    let app = db::apps::find(conn, &row.app_id)
        .await?
        .ok_or_else(|| AppError::internal("token of a missing app"))?;
    Ok(ResetView {
        app_id: app.app_id.clone(),
        app_name: app.name.clone(),
        policy: Policy::of(&app),
    })
}

/// Looks at a reset link without consuming it.
pub async fn inspect_reset(pool: &mut DbPool<'_>, token: &str) -> AppResult<ResetView> {
    let mut conn = get_conn(pool).await?;
    let row = live_token(&mut conn, token, db::tokens::PASSWORD_RESET).await?;
    reset_view(&mut conn, &row).await
}

/// A password chosen on the reset page, typed twice.
#[derive(Debug, Clone)]
pub struct ResetForm {
    pub token: String,
    pub password: String,
    pub confirmation: String,
}

/// Sets the password a reset link is for. A rejected attempt (`BAD_USER_INPUT` when the two
/// passwords differ, `INVALID_PASSWORD_CONTENT` naming the broken rule, or the dead link)
/// changes nothing and leaves a live link usable.
pub async fn complete_reset(
    pool: &mut DbPool<'_>,
    hasher: &Hasher,
    mail: &MailSettings,
    form: ResetForm,
) -> AppResult<()> {
    let (view, owner) = {
        let mut conn = get_conn(pool).await?;
        let row = live_token(&mut conn, &form.token, db::tokens::PASSWORD_RESET).await?;
        (
            reset_view(&mut conn, &row).await?,
            (row.app_id.clone(), row.profile_id),
        )
    };
    if form.password != form.confirmation {
        return Err(AppError::bad_input("The two passwords are not the same."));
    }
    if form.password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::InvalidPasswordContent(format!(
            "must be at most {MAX_PASSWORD_BYTES} bytes long"
        )));
    }
    view.policy
        .check(&form.password)
        .map_err(AppError::InvalidPasswordContent)?;
    let phc = hasher.hash(&view.app_id, form.password).await?;
    let hash = hash_token(&form.token);
    let mut conn = get_conn(pool).await?;
    let consumed = conn
        .transaction::<_, AppError, _>(async |conn| {
            // The profile row first, as `setPassword` and every other change of the profile
            // take it: a reset racing one of them waits for it instead of deadlocking (the
            // token, the identity and the profile locked in opposite orders), and then sees
            // the link as that change left it.
            let Some(profile) = db::profiles::find_for_update(conn, &owner.0, owner.1).await?
            else {
                return Ok(false);
            };
            // The guarded consume is the one decision point: of concurrent submissions exactly
            // one gets the row; the password write commits or rolls back with it.
            let Some(row) = db::tokens::consume(conn, &hash, db::tokens::PASSWORD_RESET).await?
            else {
                return Ok(false);
            };
            let kind = row
                .identity_kind
                .as_deref()
                .and_then(IdentityKind::parse)
                .ok_or_else(|| AppError::internal("reset token without identity kind"))?;
            if profile.is_disabled() {
                // Rolled back with the consumption: the link stays as dead as the profile is.
                return Err(AppError::DeadLink(DeadLink::Revoked));
            }
            // The profile's tokens go with it: remember this one as used.
            db::tokens::remember_spent(conn, &hash, row.expires_at).await?;
            let caller = Caller::system(row.app_id.clone(), "self-service");
            super::reset::write_password(
                conn,
                mail,
                &caller,
                &profile,
                kind,
                &phc,
                "resetPassword",
            )
            .await?;
            Ok(true)
        })
        .await?;
    if !consumed {
        return Err(lost_race(&mut conn, &form.token, db::tokens::PASSWORD_RESET).await);
    }
    mail.wake.notify_one();
    Ok(())
}

/// What the deletion page shows for a live link.
#[derive(Debug, Clone)]
pub struct DeletionView {
    pub app_name: String,
    pub app_id: String,
    pub profile_id: Uuid,
}

/// A deletion link's three parts, as the page got them.
#[derive(Debug, Clone, Copy)]
pub struct DeletionLink<'a> {
    pub app_id: &'a str,
    pub token: &'a str,
    pub profile_id: &'a str,
}

async fn deletion_row(
    conn: &mut AsyncPgConnection,
    link: DeletionLink<'_>,
) -> AppResult<OneTimeToken> {
    let row = live_token(conn, link.token, db::tokens::ACCOUNT_DELETION).await?;
    // The link's appId and profileId must be the token's own.
    if row.app_id != link.app_id || Uuid::parse_str(link.profile_id).ok() != Some(row.profile_id) {
        return Err(AppError::DeadLink(DeadLink::Unknown));
    }
    Ok(row)
}

/// Looks at a deletion link without consuming it.
pub async fn inspect_deletion(
    pool: &mut DbPool<'_>,
    link: DeletionLink<'_>,
) -> AppResult<DeletionView> {
    let mut conn = get_conn(pool).await?;
    let row = deletion_row(&mut conn, link).await?;
    let app = db::apps::find(&mut conn, &row.app_id)
        .await?
        .ok_or(AppError::ProfileNotFound)?;
    Ok(DeletionView {
        app_name: app.name,
        app_id: app.app_id,
        profile_id: row.profile_id,
    })
}

/// Deletes the account a deletion link is for, with its children, and queues a confirmation to
/// the contact email it had at that moment. Returns the deleted ids.
pub async fn complete_deletion(
    pool: &mut DbPool<'_>,
    mail: &MailSettings,
    link: DeletionLink<'_>,
) -> AppResult<Vec<Uuid>> {
    let mut conn = get_conn(pool).await?;
    let owner = deletion_row(&mut conn, link).await?;
    let hash = hash_token(link.token);
    let deleted = conn
        .transaction::<_, AppError, _>(async |conn| {
            // The profile row before the token, in the order every other change of the
            // profile takes them (see `complete_reset`).
            let profile =
                db::profiles::find_for_update(conn, &owner.app_id, owner.profile_id).await?;
            let Some(row) = db::tokens::consume(conn, &hash, db::tokens::ACCOUNT_DELETION).await?
            else {
                return Ok(None);
            };
            // The profile's tokens go with it: remember this one as used.
            db::tokens::remember_spent(conn, &hash, row.expires_at).await?;
            let caller = Caller::system(row.app_id.clone(), "self-service");
            let deleted = crate::users::delete::delete(
                &mut DbPool::from(&mut **conn),
                &caller,
                &row.profile_id.to_string(),
                true,
            )
            .await?;
            if let Some(to) = profile.as_ref().and_then(|p| p.contact_email.clone())
                && let Some(app) = db::apps::find(conn, &row.app_id).await?
            {
                let variables = json!({
                    "profileId": row.profile_id,
                    "userName": profile.as_ref().and_then(|p| p.user_name.clone()),
                });
                let params = StoredParams {
                    variables: variables.as_object().cloned().unwrap_or_default(),
                    ..StoredParams::default()
                };
                // A notice of a change that has happened: over a limit it is recorded unsent.
                queue(
                    conn,
                    mail,
                    NewMail {
                        app: &app,
                        profile_id: None,
                        kind: Kind::AccountDeleted,
                        identity_kind: None,
                        recipient: &to,
                        template_id: None,
                        params: &params,
                        token_ttl_minutes: None,
                    },
                    OverLimit::Record,
                )
                .await?;
            }
            Ok(Some(deleted))
        })
        .await?;
    let Some(ids) = deleted else {
        return Err(lost_race(&mut conn, link.token, db::tokens::ACCOUNT_DELETION).await);
    };
    mail.wake.notify_one();
    tracing::info!(
        app_id = link.app_id,
        deleted = ids.len(),
        "account deleted through its self-service link"
    );
    Ok(ids)
}
