//! What the hosted pages do with a link: look at it without consuming it (GET — mail scanners
//! prefetch links), and act on it (POST — an explicit click by the user).

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;
use uuid::Uuid;

use super::{hash_token, plausible_token};
use crate::auth::Caller;
use crate::db::models::{NewOutboxMessage, OneTimeToken};
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};
use crate::mail::{MailSettings, outbox::Kind};
use crate::passwords::{Hasher, MAX_PASSWORD_BYTES, Policy};
use crate::users::IdentityKind;

/// Why a link cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLink {
    /// Not a link of ours (or for another app or profile).
    Unknown,
    /// Past its expiry.
    Expired,
    /// Already used.
    Used,
    /// Replaced by a newer link, or revoked by a password change.
    Revoked,
}

async fn state(
    conn: &mut AsyncPgConnection,
    token: &str,
    purpose: &str,
) -> AppResult<Result<OneTimeToken, DeadLink>> {
    if !plausible_token(token) {
        return Ok(Err(DeadLink::Unknown));
    }
    let hash = hash_token(token);
    let Some(row) = db::tokens::find(conn, &hash)
        .await?
        .filter(|r| r.purpose == purpose)
    else {
        return Ok(Err(DeadLink::Unknown));
    };
    if db::tokens::is_live(conn, &hash).await? {
        return Ok(Ok(row));
    }
    Ok(Err(if row.used_at.is_some() {
        DeadLink::Used
    } else if row.revoked_at.is_some() {
        DeadLink::Revoked
    } else {
        DeadLink::Expired
    }))
}

/// What the reset page shows for a live link.
#[derive(Debug, Clone)]
pub struct ResetView {
    pub app_name: String,
    pub policy: Policy,
}

async fn reset_view(conn: &mut AsyncPgConnection, row: &OneTimeToken) -> AppResult<ResetView> {
    let app = db::apps::find(conn, &row.app_id)
        .await?
        .ok_or_else(|| AppError::internal("token of a missing app"))?;
    Ok(ResetView {
        app_name: app.name.clone(),
        policy: Policy::of(&app),
    })
}

/// Looks at a reset link without consuming it.
pub async fn inspect_reset(db: &Db, token: &str) -> AppResult<Result<ResetView, DeadLink>> {
    let mut conn = db.conn().await?;
    match state(&mut conn, token, db::tokens::PASSWORD_RESET).await? {
        Ok(row) => Ok(Ok(reset_view(&mut conn, &row).await?)),
        Err(dead) => Ok(Err(dead)),
    }
}

/// The outcome of a reset form.
#[derive(Debug, Clone)]
pub enum ResetOutcome {
    /// The password is set and the link used up.
    Done,
    /// The two passwords differ; nothing changed, the link still works.
    Mismatch(ResetView),
    /// The password breaks the policy (the rule is named); nothing changed.
    Weak(ResetView, String),
    /// The link cannot be used.
    Dead(DeadLink),
}

/// Sets the password a reset link is for. Rejected attempts change nothing.
pub async fn complete_reset(
    db: &Db,
    hasher: &Hasher,
    mail: &MailSettings,
    token: &str,
    password: String,
    confirmation: &str,
) -> AppResult<ResetOutcome> {
    let view = {
        let mut conn = db.conn().await?;
        let row = match state(&mut conn, token, db::tokens::PASSWORD_RESET).await? {
            Ok(row) => row,
            Err(dead) => return Ok(ResetOutcome::Dead(dead)),
        };
        reset_view(&mut conn, &row).await?
    };
    if password != confirmation {
        return Ok(ResetOutcome::Mismatch(view));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(ResetOutcome::Weak(
            view,
            format!("must be at most {MAX_PASSWORD_BYTES} bytes long"),
        ));
    }
    if let Err(rule) = view.policy.check(&password) {
        return Ok(ResetOutcome::Weak(view, rule));
    }
    let phc = hasher.hash(password).await?;
    let hash = hash_token(token);
    let mut conn = db.conn().await?;
    let consumed = conn
        .transaction::<_, AppError, _>(async |conn| {
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
            let app = db::apps::find(conn, &row.app_id)
                .await?
                .ok_or(AppError::ProfileNotFound)?;
            let profile = db::profiles::find(conn, &row.app_id, row.profile_id)
                .await?
                .ok_or(AppError::ProfileNotFound)?;
            super::reset::write_password(
                conn,
                &app,
                &profile,
                kind,
                &phc,
                "self-service",
                "resetPassword",
                None,
            )
            .await?;
            Ok(true)
        })
        .await?;
    if !consumed {
        let mut conn = db.conn().await?;
        let dead = state(&mut conn, token, db::tokens::PASSWORD_RESET)
            .await?
            .err()
            .unwrap_or(DeadLink::Used);
        return Ok(ResetOutcome::Dead(dead));
    }
    mail.wake.notify_one();
    Ok(ResetOutcome::Done)
}

/// What the deletion page shows for a live link.
#[derive(Debug, Clone)]
pub struct DeletionView {
    pub app_name: String,
    pub app_id: String,
    pub profile_id: Uuid,
}

async fn deletion_row(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    token: &str,
    profile_id: &str,
) -> AppResult<Result<OneTimeToken, DeadLink>> {
    let row = match state(conn, token, db::tokens::ACCOUNT_DELETION).await? {
        Ok(row) => row,
        Err(dead) => return Ok(Err(dead)),
    };
    // The link's appId and profileId must be the token's own.
    if row.app_id != app_id || Uuid::parse_str(profile_id).ok() != Some(row.profile_id) {
        return Ok(Err(DeadLink::Unknown));
    }
    Ok(Ok(row))
}

/// Looks at a deletion link without consuming it.
pub async fn inspect_deletion(
    db: &Db,
    app_id: &str,
    token: &str,
    profile_id: &str,
) -> AppResult<Result<DeletionView, DeadLink>> {
    let mut conn = db.conn().await?;
    let row = match deletion_row(&mut conn, app_id, token, profile_id).await? {
        Ok(row) => row,
        Err(dead) => return Ok(Err(dead)),
    };
    let app = db::apps::find(&mut conn, &row.app_id)
        .await?
        .ok_or(AppError::ProfileNotFound)?;
    Ok(Ok(DeletionView {
        app_name: app.name,
        app_id: app.app_id,
        profile_id: row.profile_id,
    }))
}

/// Deletes the account a deletion link is for, with its children, and queues a confirmation to
/// the contact email it had at that moment.
pub async fn complete_deletion(
    db: &Db,
    mail: &MailSettings,
    app_id: &str,
    token: &str,
    profile_id: &str,
) -> AppResult<Result<Vec<Uuid>, DeadLink>> {
    {
        let mut conn = db.conn().await?;
        if let Err(dead) = deletion_row(&mut conn, app_id, token, profile_id).await? {
            return Ok(Err(dead));
        }
    }
    let hash = hash_token(token);
    let mut conn = db.conn().await?;
    let deleted = conn
        .transaction::<_, AppError, _>(async |conn| {
            let Some(row) = db::tokens::consume(conn, &hash, db::tokens::ACCOUNT_DELETION).await?
            else {
                return Ok(None);
            };
            let profile = db::profiles::find(conn, &row.app_id, row.profile_id).await?;
            let caller = Caller::system(row.app_id.clone(), "self-service");
            let deleted =
                crate::users::delete::delete_in(conn, &caller, None, row.profile_id, true).await?;
            if let Some(to) = profile.as_ref().and_then(|p| p.contact_email.clone()) {
                db::outbox::insert(
                    conn,
                    &NewOutboxMessage {
                        app_id: &row.app_id,
                        message_id: Uuid::now_v7(),
                        profile_id: None,
                        kind: Kind::AccountDeleted.as_str(),
                        identity_kind: None,
                        recipient: &to,
                        template_id: None,
                        params: json!({ "variables": {
                            "profileId": row.profile_id,
                            "userName": profile.as_ref().and_then(|p| p.user_name.clone()),
                        }}),
                    },
                    None,
                )
                .await?;
            }
            Ok(Some(deleted))
        })
        .await?;
    match deleted {
        Some(ids) => {
            mail.wake.notify_one();
            tracing::info!(
                app_id,
                deleted = ids.len(),
                "account deleted through its self-service link"
            );
            Ok(Ok(ids))
        }
        None => {
            let mut conn = db.conn().await?;
            let dead = state(&mut conn, token, db::tokens::ACCOUNT_DELETION)
                .await?
                .err()
                .unwrap_or(DeadLink::Used);
            Ok(Err(dead))
        }
    }
}
