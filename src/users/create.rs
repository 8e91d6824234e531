//! Creating users: SysCreateUserEmailPassword, SysCreateUserUniversalId,
//! SysCreateUserExternalAuth.
//!
//! Order of work: every argument is checked first (no I/O); then one short database visit
//! checks the app's rules (external auth types, password policy, parent profile) and whether
//! the identity is obviously taken; the connection goes back to the pool while the password
//! is hashed; a second visit writes profile, identity and audit event in one transaction.
//! Uniqueness is decided by the unique index, not by the early check, so concurrent creates
//! of one identity leave exactly one winner.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::AsyncConnection;
use serde_json::json;
use uuid::Uuid;

use super::caller_app;
use super::fields::{ProfileFields, ValidFields};
use crate::auth::Caller;
use crate::db::models::IdentityKind;
use crate::db::models::{Identity, NewAuditEvent, NewIdentity, NewProfile, Profile};
use crate::db::{self, DbPool, get_conn};
use crate::error::{AppError, AppResult};
use crate::mail::Kind;
use crate::mail::MailSettings;
use crate::mail::params::StoredParams;
use crate::mail::queue::{NewMail, OverLimit, queue};
use crate::normalise;
use crate::passwords::{Hasher, MAX_PASSWORD_BYTES, Policy, random_secret};
use crate::telemetry::current_request_id;

/// The identity a new user logs in with, as the caller sent it.
#[derive(Debug, Clone)]
pub enum NewIdentitySpec {
    /// An email address with a password (`None`: a random one nobody is told).
    Email {
        email: String,
        password: Option<String>,
    },
    /// A login name with a password (`None`: a random one nobody is told).
    UniversalId {
        universal_id: String,
        password: Option<String>,
    },
    /// An id in an external system, without a password.
    External {
        external_id: String,
        external_auth_type: String,
    },
}

/// A create call's arguments.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub identity: NewIdentitySpec,
    pub fields: ProfileFields,
}

/// What a create call made.
#[derive(Debug, Clone)]
pub struct Created {
    pub profile: Profile,
    pub identities: Vec<Identity>,
}

struct Checked {
    kind: IdentityKind,
    external_id: String,
    external_auth_type: String,
    password: Option<String>,
    fields: ValidFields,
}

fn check(input: NewUser) -> AppResult<Checked> {
    let (kind, external_id, external_auth_type, password) = match input.identity {
        NewIdentitySpec::Email { email, password } => (
            IdentityKind::Email,
            normalise::email(&email, "email")?,
            String::new(),
            password,
        ),
        NewIdentitySpec::UniversalId {
            universal_id,
            password,
        } => (
            IdentityKind::UniversalId,
            normalise::universal_id(&universal_id)?,
            String::new(),
            password,
        ),
        NewIdentitySpec::External {
            external_id,
            external_auth_type,
        } => (
            IdentityKind::External,
            normalise::external_id(&external_id)?,
            normalise::external_auth_type(&external_auth_type)?,
            None,
        ),
    };
    if let Some(p) = &password
        && p.len() > MAX_PASSWORD_BYTES
    {
        return Err(AppError::InvalidPasswordContent(format!(
            "must be at most {MAX_PASSWORD_BYTES} bytes long"
        )));
    }
    let mut fields = input.fields.validate()?;
    if kind == IdentityKind::Email && fields.contact_email.is_none() {
        fields.contact_email = Some(external_id.clone());
    }
    Ok(Checked {
        kind,
        external_id,
        external_auth_type,
        password,
        fields,
    })
}

/// Creates a profile with one identity.
pub async fn create(
    pool: &mut DbPool<'_>,
    hasher: &Hasher,
    mail: &MailSettings,
    caller: &Caller,
    input: NewUser,
) -> AppResult<Created> {
    let c = check(input)?;

    let mut conn = get_conn(pool).await?;
    let app = caller_app(&mut conn, caller).await?;
    if c.kind == IdentityKind::External {
        let allowed: Vec<&str> = app
            .external_auth_types
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if !allowed.is_empty() && !allowed.contains(&c.external_auth_type.as_str()) {
            return Err(AppError::InvalidExtAuthType(c.external_auth_type));
        }
    }
    if let Some(p) = &c.password {
        Policy::of(&app)
            .check(p)
            .map_err(AppError::InvalidPasswordContent)?;
    }
    let parent_app_id = match c.fields.parent_profile_id {
        None => None,
        Some(parent) => {
            let Some(parent_app) = app.parent_app_id.clone() else {
                return Err(AppError::AppParentMismatch(
                    "parentProfileId was given but this app has no parent app",
                ));
            };
            if !db::profiles::exists(&mut conn, &parent_app, parent).await? {
                return Err(AppError::AppParentMismatch(
                    "parentProfileId does not name a profile of the parent app",
                ));
            }
            if db::profiles::has_child_in(&mut conn, &parent_app, parent, &app.app_id).await? {
                return Err(AppError::DuplicateChild);
            }
            Some(parent_app)
        }
    };
    if let Some(template) = &c.fields.notification_template_id {
        if db::templates::find(&mut conn, &app.app_id, template)
            .await?
            .is_none()
        {
            return Err(AppError::InvalidTemplateId(template.clone()));
        }
        if c.fields.contact_email.is_none() {
            return Err(AppError::bad_input(
                "notificationTemplateId needs a contactEmail to send the mail to",
            ));
        }
    }
    let taken = db::identities::find_owner(
        &mut conn,
        &app.app_id,
        c.kind.as_str(),
        &c.external_auth_type,
        &c.external_id,
    )
    .await?;
    if taken.is_some() {
        return Err(AppError::UserAlreadyExists);
    }
    drop(conn);

    let password_hash = match c.kind {
        IdentityKind::External => None,
        _ => {
            let password = match c.password.clone() {
                Some(p) => p,
                None => random_secret(32)?,
            };
            Some(hasher.hash(&app.app_id, password).await?)
        }
    };

    let mut conn = get_conn(pool).await?;
    let request_id = current_request_id();
    let profile_id = Uuid::now_v7();
    let f = &c.fields;
    let result = conn
        .transaction::<_, Refused, _>(async move |conn| {
            let profile = db::profiles::insert(
                conn,
                &NewProfile {
                    app_id: &app.app_id,
                    profile_id,
                    user_name: f.user_name.as_deref(),
                    contact_email: f.contact_email.as_deref(),
                    country_code: f.country_code.as_deref(),
                    language_code: f.language_code.as_deref(),
                    time_zone_offset: f.time_zone_offset,
                    picture_url: f.picture_url.as_deref(),
                    is_tester: f.is_tester,
                    summary_friend_data: f.summary_friend_data.as_ref(),
                    parent_app_id: parent_app_id.as_deref(),
                    parent_profile_id: f.parent_profile_id,
                },
            )
            .await?;
            let identity = db::identities::insert(
                conn,
                &NewIdentity {
                    app_id: &app.app_id,
                    profile_id,
                    kind: c.kind.as_str(),
                    external_auth_type: &c.external_auth_type,
                    external_id: &c.external_id,
                    password_hash: password_hash.as_deref(),
                },
            )
            .await?;
            let mut details = json!({ "identityType": c.kind.as_str() });
            if c.kind == IdentityKind::External {
                details["externalAuthType"] = json!(c.external_auth_type);
            }
            if c.password.is_none() && c.kind != IdentityKind::External {
                details["randomPassword"] = json!(true);
            }
            db::audit::insert(
                conn,
                &[NewAuditEvent {
                    app_id: &app.app_id,
                    profile_id: Some(profile_id),
                    actor: &caller.actor,
                    operation: operation_name(c.kind),
                    details: Some(details),
                    request_id: request_id.as_deref(),
                }],
            )
            .await?;
            if let (Some(template), Some(to)) = (&f.notification_template_id, &f.contact_email) {
                // Asked for by the caller: over a limit, the whole create fails (RATE_LIMITED).
                queue(
                    conn,
                    mail,
                    NewMail {
                        app: &app,
                        profile_id: Some(profile_id),
                        kind: Kind::AccountCreated,
                        identity_kind: None,
                        recipient: to,
                        template_id: Some(template),
                        params: &StoredParams::default(),
                        token_ttl_minutes: None,
                    },
                    OverLimit::Refuse,
                )
                .await
                .map_err(Refused::App)?;
            }
            Ok(Created {
                profile,
                identities: vec![identity],
            })
        })
        .await;
    match result {
        Ok(created) => {
            if f.notification_template_id.is_some() {
                mail.wake.notify_one();
            }
            tracing::info!(app_id = %caller.app_id, profile_id = %profile_id, kind = c.kind.as_str(), "created user");
            Ok(created)
        }
        Err(Refused::App(e)) => Err(e),
        Err(Refused::Db(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)))
            if info.constraint_name() == Some("identities_external_key") =>
        {
            Err(AppError::UserAlreadyExists)
        }
        Err(Refused::Db(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)))
            if info.constraint_name() == Some("profiles_one_child_per_app") =>
        {
            Err(AppError::DuplicateChild)
        }
        Err(Refused::Db(DieselError::DatabaseError(
            DatabaseErrorKind::ForeignKeyViolation,
            info,
        ))) if info.constraint_name() == Some("profiles_parent_fkey") => {
            Err(AppError::AppParentMismatch(
                "parentProfileId does not name a profile of the parent app",
            ))
        }
        Err(Refused::Db(e)) => Err(e.into()),
    }
}

/// Why the create's transaction rolled back: the database refused (a taken identity, a parent
/// that went away, …), or the welcome mail could not be queued.
enum Refused {
    Db(DieselError),
    App(AppError),
}

impl From<DieselError> for Refused {
    fn from(e: DieselError) -> Self {
        Refused::Db(e)
    }
}

fn operation_name(kind: IdentityKind) -> &'static str {
    match kind {
        IdentityKind::Email => "createUserEmailPassword",
        IdentityKind::UniversalId => "createUserUniversalId",
        IdentityKind::External => "createUserExternalAuth",
    }
}
