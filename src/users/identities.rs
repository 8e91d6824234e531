//! Changing how a profile logs in: changeIdentity (brainCloud SysChangeEmailIdentity, for EMAIL
//! and UNIVERSAL_ID), attachIdentity and detachIdentity.
//!
//! Each runs in one transaction on the locked profile, with its audit event and a version
//! bump. Uniqueness is decided by the database's keys, not by the early checks, so concurrent
//! calls have one winner: `identities_external_key` (an identity belongs to one profile of an
//! app: `USER_ALREADY_EXISTS`) and `identities_pkey` (one identity of a kind per profile:
//! `DUPLICATE_IDENTITY_TYPE`). Passwords are hashed before the transaction, with no connection
//! held.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;

use super::{audit, caller_app, lock_profile, parse_profile_id, refused_by_constraint};
use crate::auth::Caller;
use crate::db::models::{Identity, IdentityKind, NewIdentity, Profile};
use crate::db::{self, DbPool, get_conn};
use crate::error::{AppError, AppResult};
use crate::mail::Kind;
use crate::mail::MailSettings;
use crate::mail::params::StoredParams;
use crate::mail::queue::{NewMail, OverLimit, queue};
use crate::normalise;
use crate::passwords::{Hasher, MAX_PASSWORD_BYTES, Policy, random_secret};

/// A profile and its identities after a change.
pub type Changed = (Profile, Vec<Identity>);

/// The normalised external id of an identity of `kind`, from an argument named `field`.
fn key(kind: IdentityKind, raw: &str, field: &'static str) -> AppResult<String> {
    match kind {
        IdentityKind::Email => normalise::email(raw, field),
        IdentityKind::UniversalId => normalise::universal_id(raw),
        IdentityKind::External => normalise::external_id(raw),
    }
}

/// The externalAuthType of an identity of `kind`: required for EXTERNAL, refused otherwise;
/// `""` for the others, as stored.
fn auth_type(kind: IdentityKind, raw: Option<&str>) -> AppResult<String> {
    match (kind, raw) {
        (IdentityKind::External, Some(t)) => normalise::external_auth_type(t),
        (IdentityKind::External, None) => Err(AppError::bad_input(
            "externalAuthType is required for EXTERNAL identities",
        )),
        (_, Some(_)) => Err(AppError::bad_input(
            "externalAuthType is only for EXTERNAL identities",
        )),
        (_, None) => Ok(String::new()),
    }
}

/// Revokes a profile's outstanding reset links and drops its queued reset mail: they were
/// made for an identity that changed or went.
async fn revoke_resets(
    conn: &mut AsyncPgConnection,
    profile: &Profile,
    why: &str,
) -> AppResult<()> {
    let app_id = &profile.app_id;
    db::tokens::revoke(
        conn,
        app_id,
        profile.profile_id,
        Some(db::tokens::PASSWORD_RESET),
    )
    .await?;
    db::outbox::drop_for_profiles(
        conn,
        &[(app_id.clone(), profile.profile_id)],
        Some(&[Kind::PasswordReset.as_str()]),
        why,
    )
    .await?;
    Ok(())
}

/// A changeIdentity call's arguments.
#[derive(Debug, Clone)]
pub struct ChangeIdentity {
    pub profile_id: String,
    /// EMAIL or UNIVERSAL_ID.
    pub kind: IdentityKind,
    pub new_external_id: String,
    /// EMAIL only: the contact email follows the new address.
    pub update_contact_email: bool,
}

/// Gives a profile's EMAIL or UNIVERSAL_ID identity a new external id, keeping its password.
/// Revokes outstanding reset links and drops queued reset mail (made for the old identity);
/// for EMAIL, queues a notice to the old address. Changing to the id it has already changes
/// nothing (unless the contact email is to follow it).
pub async fn change_identity(
    pool: &mut DbPool<'_>,
    mail: &MailSettings,
    caller: &Caller,
    req: ChangeIdentity,
) -> AppResult<Changed> {
    let id = parse_profile_id(&req.profile_id, "profileId")?;
    if req.kind == IdentityKind::External {
        return Err(AppError::bad_input(
            "changeIdentity changes EMAIL or UNIVERSAL_ID identities",
        ));
    }
    if req.update_contact_email && req.kind != IdentityKind::Email {
        return Err(AppError::bad_input(
            "updateContactEmail is only for EMAIL identities",
        ));
    }
    let new = key(req.kind, &req.new_external_id, "newExternalId")?;
    let kind = req.kind;
    let mut conn = get_conn(pool).await?;
    let (changed, notice) = conn
        .transaction::<_, AppError, _>(async |conn| {
            let app = caller_app(conn, caller).await?;
            let profile = lock_profile(conn, caller, id).await?;
            let ids = db::identities::for_profile(conn, &app.app_id, id).await?;
            let old = ids
                .iter()
                .find(|i| i.kind == kind.as_str())
                .ok_or(AppError::MissingIdentity(kind.as_str()))?
                .external_id
                .clone();
            let contact = (req.update_contact_email
                && profile.contact_email.as_deref() != Some(new.as_str()))
            .then_some(new.as_str());
            if old == new && contact.is_none() {
                return Ok(((profile, ids), false));
            }
            if old != new {
                let owner =
                    db::identities::find_owner(conn, &app.app_id, kind.as_str(), "", &new).await?;
                if owner.is_some_and(|o| o != id) {
                    return Err(AppError::UserAlreadyExists);
                }
                db::identities::change_external_id(conn, &app.app_id, id, kind.as_str(), &new)
                    .await
                    .map_err(refused_by_constraint)?;
                revoke_resets(conn, &profile, "superseded by an identity change").await?;
            }
            let profile = match contact {
                Some(c) => {
                    let changes = db::models::ProfileChanges {
                        contact_email: Some(Some(c)),
                        ..Default::default()
                    };
                    db::profile_updates::apply(conn, &app.app_id, id, &changes).await?
                }
                None => db::profile_updates::bump_version(conn, &app.app_id, id)
                    .await?
                    .ok_or(AppError::ProfileNotFound)?,
            };
            let notice = kind == IdentityKind::Email && old != new;
            if notice {
                let mut params = StoredParams::default();
                params.variables.insert("oldEmail".into(), json!(old));
                params.variables.insert("newEmail".into(), json!(new));
                // A notice over a mail limit is recorded unsent: the change itself stands.
                queue(
                    conn,
                    mail,
                    NewMail {
                        app: &app,
                        profile_id: Some(id),
                        kind: Kind::IdentityChanged,
                        identity_kind: None,
                        recipient: &old,
                        template_id: None,
                        params: &params,
                        token_ttl_minutes: None,
                    },
                    OverLimit::Record,
                )
                .await?;
            }
            let details = json!({
                "identityType": kind.as_str(),
                "updateContactEmail": contact.is_some(),
                "version": profile.version,
            });
            audit(conn, caller, id, "changeIdentity", details).await?;
            let ids = db::identities::for_profile(conn, &app.app_id, id).await?;
            Ok(((profile, ids), notice))
        })
        .await?;
    if notice {
        mail.wake.notify_one();
    }
    tracing::info!(app_id = %caller.app_id, profile_id = %id, kind = kind.as_str(), "changed identity");
    Ok(changed)
}

/// An attachIdentity call's arguments.
#[derive(Debug, Clone)]
pub struct AttachIdentity {
    pub profile_id: String,
    pub kind: IdentityKind,
    pub external_id: String,
    /// EXTERNAL only (and required there).
    pub external_auth_type: Option<String>,
    /// EMAIL and UNIVERSAL_ID only; `None`: a random password nobody is told.
    pub password: Option<String>,
}

/// Adds an identity to a profile: at most one of each kind (of each externalAuthType for
/// EXTERNAL), and never one that exists anywhere in the app.
pub async fn attach_identity(
    pool: &mut DbPool<'_>,
    hasher: &Hasher,
    caller: &Caller,
    req: AttachIdentity,
) -> AppResult<Changed> {
    let id = parse_profile_id(&req.profile_id, "profileId")?;
    let kind = req.kind;
    let external_auth_type = auth_type(kind, req.external_auth_type.as_deref())?;
    let external_id = key(kind, &req.external_id, "externalId")?;
    match (&req.password, kind) {
        (Some(_), IdentityKind::External) => {
            return Err(AppError::bad_input("EXTERNAL identities have no password"));
        }
        (Some(p), _) if p.len() > MAX_PASSWORD_BYTES => {
            return Err(AppError::InvalidPasswordContent(format!(
                "must be at most {MAX_PASSWORD_BYTES} bytes long"
            )));
        }
        _ => {}
    }

    {
        let mut conn = get_conn(pool).await?;
        let app = caller_app(&mut conn, caller).await?;
        if kind == IdentityKind::External {
            let allowed: Vec<&str> = app
                .external_auth_types
                .iter()
                .flatten()
                .map(String::as_str)
                .collect();
            if !allowed.is_empty() && !allowed.contains(&external_auth_type.as_str()) {
                return Err(AppError::InvalidExtAuthType(external_auth_type));
            }
        }
        if let Some(p) = &req.password {
            Policy::of(&app)
                .check(p)
                .map_err(AppError::InvalidPasswordContent)?;
        }
        let (_, ids) = db::profiles::find_with_identities(&mut conn, &app.app_id, id)
            .await?
            .ok_or(AppError::ProfileNotFound)?;
        if ids
            .iter()
            .any(|i| i.kind == kind.as_str() && i.external_auth_type == external_auth_type)
        {
            return Err(AppError::DuplicateIdentityType);
        }
        let owner = db::identities::find_owner(
            &mut conn,
            &app.app_id,
            kind.as_str(),
            &external_auth_type,
            &external_id,
        )
        .await?;
        if owner.is_some() {
            return Err(AppError::UserAlreadyExists);
        }
    }

    let password_hash = match kind {
        IdentityKind::External => None,
        _ => {
            let password = match req.password.clone() {
                Some(p) => p,
                None => random_secret(32)?,
            };
            Some(hasher.hash(&caller.app_id, password).await?)
        }
    };

    let mut conn = get_conn(pool).await?;
    let changed = conn
        .transaction::<_, AppError, _>(async |conn| {
            lock_profile(conn, caller, id).await?;
            db::identities::insert(
                conn,
                &NewIdentity {
                    app_id: &caller.app_id,
                    profile_id: id,
                    kind: kind.as_str(),
                    external_auth_type: &external_auth_type,
                    external_id: &external_id,
                    password_hash: password_hash.as_deref(),
                },
            )
            .await
            .map_err(refused_by_constraint)?;
            let profile = db::profile_updates::bump_version(conn, &caller.app_id, id)
                .await?
                .ok_or(AppError::ProfileNotFound)?;
            let mut details = json!({ "identityType": kind.as_str(), "version": profile.version });
            if kind == IdentityKind::External {
                details["externalAuthType"] = json!(external_auth_type);
            } else if req.password.is_none() {
                details["randomPassword"] = json!(true);
            }
            audit(conn, caller, id, "attachIdentity", details).await?;
            let ids = db::identities::for_profile(conn, &caller.app_id, id).await?;
            Ok((profile, ids))
        })
        .await?;
    tracing::info!(app_id = %caller.app_id, profile_id = %id, kind = kind.as_str(), "attached identity");
    Ok(changed)
}

/// A detachIdentity call's arguments.
#[derive(Debug, Clone)]
pub struct DetachIdentity {
    pub profile_id: String,
    pub kind: IdentityKind,
    /// EXTERNAL only (and required there).
    pub external_auth_type: Option<String>,
}

/// Removes an identity from a profile, never its last one. Removing a password identity
/// revokes the profile's outstanding reset links.
pub async fn detach_identity(
    pool: &mut DbPool<'_>,
    caller: &Caller,
    req: DetachIdentity,
) -> AppResult<Changed> {
    let id = parse_profile_id(&req.profile_id, "profileId")?;
    let kind = req.kind;
    let external_auth_type = auth_type(kind, req.external_auth_type.as_deref())?;
    let mut conn = get_conn(pool).await?;
    let changed = conn
        .transaction::<_, AppError, _>(async |conn| {
            caller_app(conn, caller).await?;
            let profile = lock_profile(conn, caller, id).await?;
            let ids = db::identities::for_profile(conn, &caller.app_id, id).await?;
            if !ids
                .iter()
                .any(|i| i.kind == kind.as_str() && i.external_auth_type == external_auth_type)
            {
                return Err(AppError::MissingIdentity(kind.as_str()));
            }
            if ids.len() == 1 {
                return Err(AppError::LastIdentity);
            }
            db::identities::delete(conn, &caller.app_id, id, kind.as_str(), &external_auth_type)
                .await?;
            if kind != IdentityKind::External {
                revoke_resets(conn, &profile, "identity removed").await?;
            }
            let profile = db::profile_updates::bump_version(conn, &caller.app_id, id)
                .await?
                .ok_or(AppError::ProfileNotFound)?;
            let mut details = json!({ "identityType": kind.as_str(), "version": profile.version });
            if kind == IdentityKind::External {
                details["externalAuthType"] = json!(external_auth_type);
            }
            audit(conn, caller, id, "detachIdentity", details).await?;
            let ids = db::identities::for_profile(conn, &caller.app_id, id).await?;
            Ok((profile, ids))
        })
        .await?;
    tracing::info!(app_id = %caller.app_id, profile_id = %id, kind = kind.as_str(), "detached identity");
    Ok(changed)
}
