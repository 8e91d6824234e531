//! Password resets (SysSendPasswordResetEmail / …UniversalId with their Advanced and
//! WithExpiry variants), reset links returned to the caller, and `setPassword`.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;
use uuid::Uuid;

use super::check_ttl;
use crate::auth::Caller;
use crate::db::models::{Identity, IdentityKind, Profile};
use crate::db::tokens::{Expiry, NewToken};
use crate::db::{self, DbPool, get_conn};
use crate::error::{AppError, AppResult};
use crate::links::{self, new_token};
use crate::mail::params::{self, ServiceParams, StoredParams};
use crate::mail::queue::{NewMail, OverLimit, queue};
use crate::mail::{Kind, MailSettings};
use crate::passwords::{Hasher, MAX_PASSWORD_BYTES, Policy};
use crate::users::status::refuse_disabled;
use crate::users::{audit, caller_app, parse_profile_id};

/// Which reset: to the EMAIL identity's address, or (universal id) to the contact email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetVia {
    Email,
    UniversalId,
}

/// A reset request.
#[derive(Debug, Clone, Default)]
pub struct ResetRequest {
    pub profile_id: String,
    pub ttl_minutes: Option<i32>,
    pub params: Option<ServiceParams>,
}

/// A queued reset mail.
#[derive(Debug, Clone)]
pub struct QueuedReset {
    pub email_id: Uuid,
    pub recipient: String,
    pub expires_at: DateTime<Utc>,
}

/// A profile, locked for the rest of the transaction (resets for one profile are serialised,
/// which makes the per-profile rate limit exact), with its identities.
async fn locked_profile(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    id: Uuid,
) -> AppResult<(Profile, Vec<Identity>)> {
    let profile = db::profiles::find_for_update(conn, app_id, id)
        .await?
        .ok_or(AppError::ProfileNotFound)?;
    let ids = db::identities::for_profile(conn, app_id, id).await?;
    Ok((profile, ids))
}

fn identity(ids: &[Identity], kind: IdentityKind) -> Option<&Identity> {
    ids.iter().find(|i| i.kind == kind.as_str())
}

/// Queues a reset mail. Returns once the message and its audit event are committed; the
/// outbox worker mints the link and sends it.
pub async fn send_reset(
    pool: &mut DbPool<'_>,
    mail: &MailSettings,
    caller: &Caller,
    via: ResetVia,
    req: ResetRequest,
) -> AppResult<QueuedReset> {
    let id = parse_profile_id(&req.profile_id, "profileId")?;
    let ttl = check_ttl(req.ttl_minutes)?;
    let (template_id, stored) = params::check(req.params.unwrap_or_default())?;
    let mut conn = get_conn(pool).await?;
    let queued = conn
        .transaction::<_, AppError, _>(async |conn| {
            let app = caller_app(conn, caller).await?;
            let (profile, ids) = locked_profile(conn, &app.app_id, id).await?;
            refuse_disabled(&profile)?;
            let (recipient, kind) = match via {
                ResetVia::Email => {
                    let email = identity(&ids, IdentityKind::Email)
                        .ok_or(AppError::MissingIdentity("EMAIL"))?;
                    (email.external_id.clone(), IdentityKind::Email)
                }
                ResetVia::UniversalId => {
                    identity(&ids, IdentityKind::UniversalId)
                        .ok_or(AppError::MissingIdentity("UNIVERSAL_ID"))?;
                    let contact = profile
                        .contact_email
                        .clone()
                        .ok_or(AppError::SecurityError)?;
                    (contact, IdentityKind::UniversalId)
                }
            };
            if let Some(t) = &template_id {
                db::templates::find(conn, &app.app_id, t)
                    .await?
                    .ok_or_else(|| AppError::InvalidTemplateId(t.clone()))?;
            }
            let sent =
                db::outbox::count_last_hour(conn, &app.app_id, id, Kind::PasswordReset.as_str())
                    .await?;
            if sent >= i64::from(app.reset_mails_per_hour) {
                return Err(AppError::RateLimited(format!(
                    "at most {} reset mails per profile per hour",
                    app.reset_mails_per_hour
                )));
            }
            let ttl = ttl.unwrap_or(app.reset_ttl_minutes);
            let row = queue(
                conn,
                mail,
                NewMail {
                    app: &app,
                    profile_id: Some(id),
                    kind: Kind::PasswordReset,
                    identity_kind: Some(kind),
                    recipient: &recipient,
                    template_id: template_id.as_deref(),
                    params: &stored,
                    token_ttl_minutes: Some(ttl),
                },
                OverLimit::Refuse,
            )
            .await?;
            let message_id = row.message_id;
            let operation = match via {
                ResetVia::Email => "sendPasswordResetEmail",
                ResetVia::UniversalId => "sendPasswordResetUniversalId",
            };
            let mut details = json!({ "emailId": message_id, "tokenTtlInMinutes": ttl });
            if let Some(t) = &template_id {
                details["templateId"] = json!(t);
            }
            if !stored.categories.is_empty() {
                details["categories"] = json!(stored.categories);
            }
            audit(conn, caller, id, operation, details).await?;
            let expires_at = row
                .token_expires_at
                .ok_or_else(|| AppError::internal("reset without expiry"))?;
            Ok(QueuedReset {
                email_id: message_id,
                recipient,
                expires_at,
            })
        })
        .await?;
    mail.wake.notify_one();
    tracing::info!(app_id = %caller.app_id, profile_id = %id, email_id = %queued.email_id, "queued a reset mail");
    Ok(queued)
}

/// A link and when it stops working.
#[derive(Debug, Clone)]
pub struct Link {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

fn password_kind(t: IdentityKind) -> AppResult<IdentityKind> {
    match t {
        IdentityKind::External => Err(AppError::bad_input("EXTERNAL identities have no password")),
        k => Ok(k),
    }
}

/// A reset link to return to the caller instead of mailing it.
#[derive(Debug, Clone)]
pub struct ResetUrlRequest {
    pub profile_id: String,
    /// Whose password the link sets.
    pub kind: IdentityKind,
    pub ttl_minutes: Option<i32>,
}

/// A reset link returned to the caller instead of mailed (it replaces older live links).
pub async fn create_reset_url(
    pool: &mut DbPool<'_>,
    mail: &MailSettings,
    caller: &Caller,
    req: ResetUrlRequest,
) -> AppResult<Link> {
    let id = parse_profile_id(&req.profile_id, "profileId")?;
    let kind = password_kind(req.kind)?;
    let ttl = check_ttl(req.ttl_minutes)?;
    let (token, hash) = new_token()?;
    let mut conn = get_conn(pool).await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let app = caller_app(conn, caller).await?;
        let (profile, ids) = locked_profile(conn, &app.app_id, id).await?;
        refuse_disabled(&profile)?;
        identity(&ids, kind).ok_or(AppError::MissingIdentity(kind.as_str()))?;
        let ttl = ttl.unwrap_or(app.reset_ttl_minutes);
        let token_row = NewToken {
            app_id: &app.app_id,
            profile_id: id,
            purpose: db::tokens::PASSWORD_RESET,
            identity_kind: Some(kind.as_str()),
            token_hash: &hash,
        };
        let row = db::tokens::issue(conn, &token_row, Expiry::InMinutes(ttl)).await?;
        // Reset mails still queued would carry older links than this one.
        db::outbox::drop_older_resets(
            conn,
            &app.app_id,
            id,
            row.created_at,
            "superseded by a newer reset link",
        )
        .await?;
        let details = json!({ "identityType": kind.as_str(), "tokenTtlInMinutes": ttl });
        audit(conn, caller, id, "createPasswordResetUrl", details).await?;
        Ok(Link {
            url: links::reset_url(mail.link_base(&app), &token),
            expires_at: row.expires_at,
        })
    })
    .await
}

/// Writes a new password hash to a profile's identity and does what every password change
/// does, inside the caller's transaction: bump the profile's version, revoke its live links,
/// drop its queued reset mails, queue a "password changed" notice (recorded unsent when it is
/// over a mail limit: the change itself must not fail for it), write the audit event
/// (`operation`). Returns the profile as it is afterwards.
pub(crate) async fn write_password(
    conn: &mut AsyncPgConnection,
    mail: &MailSettings,
    caller: &Caller,
    profile: &Profile,
    kind: IdentityKind,
    hash: &str,
    operation: &str,
) -> AppResult<Profile> {
    let app_id = &profile.app_id;
    let updated =
        db::identities::set_password_hash(conn, app_id, profile.profile_id, kind.as_str(), hash)
            .await?;
    if updated == 0 {
        return Err(AppError::MissingIdentity(kind.as_str()));
    }
    let changed = db::profile_updates::bump_version(conn, app_id, profile.profile_id)
        .await?
        .ok_or(AppError::ProfileNotFound)?;
    db::tokens::revoke(conn, app_id, profile.profile_id, None).await?;
    db::outbox::drop_for_profiles(
        conn,
        &[(app_id.clone(), profile.profile_id)],
        Some(&[Kind::PasswordReset.as_str()]),
        "superseded by a password change",
    )
    .await?;
    if let Some(to) = &profile.contact_email {
        let app = db::apps::find(conn, app_id)
            .await?
            .ok_or(AppError::ProfileNotFound)?;
        queue(
            conn,
            mail,
            NewMail {
                app: &app,
                profile_id: Some(profile.profile_id),
                kind: Kind::PasswordChanged,
                identity_kind: None,
                recipient: to,
                template_id: None,
                params: &StoredParams::default(),
                token_ttl_minutes: None,
            },
            OverLimit::Record,
        )
        .await?;
    }
    let details = json!({ "identityType": kind.as_str() });
    audit(conn, caller, profile.profile_id, operation, details).await?;
    Ok(changed)
}

/// A password chosen by the caller for one of a profile's identities.
#[derive(Debug, Clone)]
pub struct SetPassword {
    pub profile_id: String,
    pub password: String,
    /// EMAIL or UNIVERSAL_ID.
    pub kind: IdentityKind,
}

/// SysSetPasswordUniversalId (and the EMAIL twin): sets a password chosen by the caller.
pub async fn set_password(
    pool: &mut DbPool<'_>,
    hasher: &Hasher,
    mail: &MailSettings,
    caller: &Caller,
    req: SetPassword,
) -> AppResult<(Profile, Vec<Identity>)> {
    let id = parse_profile_id(&req.profile_id, "profileId")?;
    let kind = password_kind(req.kind)?;
    if req.password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::InvalidPasswordContent(format!(
            "must be at most {MAX_PASSWORD_BYTES} bytes long"
        )));
    }
    {
        let mut conn = get_conn(pool).await?;
        let app = caller_app(&mut conn, caller).await?;
        let (_, ids) = db::profiles::find_with_identities(&mut conn, &app.app_id, id)
            .await?
            .ok_or(AppError::ProfileNotFound)?;
        identity(&ids, kind).ok_or(AppError::MissingIdentity(kind.as_str()))?;
        Policy::of(&app)
            .check(&req.password)
            .map_err(AppError::InvalidPasswordContent)?;
    }
    let hash = hasher.hash(&caller.app_id, req.password).await?;
    let mut conn = get_conn(pool).await?;
    let result = conn
        .transaction::<_, AppError, _>(async |conn| {
            let app = caller_app(conn, caller).await?;
            let (profile, _) = locked_profile(conn, &app.app_id, id).await?;
            let profile =
                write_password(conn, mail, caller, &profile, kind, &hash, "setPassword").await?;
            let ids = db::identities::for_profile(conn, &app.app_id, id).await?;
            Ok((profile, ids))
        })
        .await?;
    mail.wake.notify_one();
    tracing::info!(app_id = %caller.app_id, profile_id = %id, "password set");
    Ok(result)
}
