//! An imported user's checks, before any database call: the same normalisation and limits as
//! the creates, the password policy for plaintext passwords, and the format and costs of
//! password hashes.

use std::collections::HashSet;

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use super::{ImportIdentity, ImportUser};
use crate::db::imports::ImportedProfile;
use crate::db::models::{ACTIVE, App, DISABLED, IdentityKind};
use crate::error::{AppError, AppResult};
use crate::normalise;
use crate::passwords::{MAX_PASSWORD_BYTES, Policy, verify};
use crate::users::fields::ProfileFields;

/// Most identities one imported user may have (one of each kind, one per external system).
pub const MAX_IDENTITIES: usize = 16;

/// The app's rules an import checks each user against.
pub(super) struct Rules {
    pub policy: Policy,
    pub external_auth_types: Vec<String>,
    pub parent_app_id: Option<String>,
}

impl Rules {
    pub fn of(app: &App) -> Self {
        Rules {
            policy: Policy::of(app),
            external_auth_types: app.external_auth_types.iter().flatten().cloned().collect(),
            parent_app_id: app.parent_app_id.clone(),
        }
    }
}

/// An identity, checked and normalised.
#[derive(Debug, Clone)]
pub(super) struct CheckedIdentity {
    pub kind: IdentityKind,
    pub external_auth_type: String,
    pub external_id: String,
    /// What to store: a given hash, or (later) the hash of a given password.
    pub hash: Option<String>,
    /// A plaintext password still to hash.
    pub password: Option<String>,
}

impl CheckedIdentity {
    /// The identity's unique key within the app.
    pub fn key(&self) -> (&'static str, &str, &str) {
        (
            self.kind.as_str(),
            &self.external_auth_type,
            &self.external_id,
        )
    }
}

/// A user, checked: the profile to write (its id chosen) and its identities.
#[derive(Debug, Clone)]
pub(super) struct Checked {
    pub profile: ImportedProfile,
    /// Whether the caller gave the profile id.
    pub id_given: bool,
    pub identities: Vec<CheckedIdentity>,
}

/// A timestamp as PostgreSQL stores it (microseconds), so a re-import compares equal.
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

fn identity(i: usize, raw: ImportIdentity, rules: &Rules) -> AppResult<CheckedIdentity> {
    let kind = IdentityKind::parse(&raw.kind).ok_or_else(|| {
        AppError::bad_input(format!(
            "identities[{i}].type must be EMAIL, UNIVERSAL_ID or EXTERNAL"
        ))
    })?;
    let (external_id, external_auth_type) = match (kind, raw.external_auth_type) {
        (IdentityKind::Email, None) => (
            normalise::email(&raw.external_id, "identities.externalId")?,
            String::new(),
        ),
        (IdentityKind::UniversalId, None) => {
            (normalise::universal_id(&raw.external_id)?, String::new())
        }
        (IdentityKind::External, Some(t)) => {
            let t = normalise::external_auth_type(&t)?;
            if !rules.external_auth_types.is_empty() && !rules.external_auth_types.contains(&t) {
                return Err(AppError::InvalidExtAuthType(t));
            }
            (normalise::external_id(&raw.external_id)?, t)
        }
        (IdentityKind::External, None) => {
            return Err(AppError::bad_input(format!(
                "identities[{i}].externalAuthType is required for EXTERNAL"
            )));
        }
        (_, Some(_)) => {
            return Err(AppError::bad_input(format!(
                "identities[{i}].externalAuthType is for EXTERNAL identities only"
            )));
        }
    };
    if kind == IdentityKind::External && (raw.password.is_some() || raw.password_hash.is_some()) {
        return Err(AppError::bad_input(format!(
            "identities[{i}]: EXTERNAL identities have no password"
        )));
    }
    let (hash, password) = match (raw.password_hash, raw.password) {
        (Some(_), Some(_)) => {
            return Err(AppError::bad_input(format!(
                "identities[{i}]: passwordHash and password are mutually exclusive"
            )));
        }
        (Some(hash), None) => {
            verify::inspect(&hash).map_err(|refused| {
                AppError::bad_input(format!("identities[{i}].passwordHash {refused}"))
            })?;
            (Some(hash), None)
        }
        (None, Some(password)) => {
            if password.len() > MAX_PASSWORD_BYTES {
                return Err(AppError::InvalidPasswordContent(format!(
                    "must be at most {MAX_PASSWORD_BYTES} bytes long"
                )));
            }
            rules
                .policy
                .check(&password)
                .map_err(AppError::InvalidPasswordContent)?;
            (None, Some(password))
        }
        (None, None) => (None, None),
    };
    Ok(CheckedIdentity {
        kind,
        external_auth_type,
        external_id,
        hash,
        password,
    })
}

/// Checks one user as a create would (no database call).
pub(super) fn check(user: ImportUser, rules: &Rules) -> AppResult<Checked> {
    if user.identities.is_empty() {
        return Err(AppError::bad_input(
            "identities must hold at least one identity",
        ));
    }
    if user.identities.len() > MAX_IDENTITIES {
        return Err(AppError::bad_input(format!(
            "identities must hold at most {MAX_IDENTITIES} identities"
        )));
    }
    let profile_id = match &user.profile_id {
        Some(raw) => Some(super::super::parse_profile_id(raw, "profileId")?),
        None => None,
    };
    let mut identities = Vec::with_capacity(user.identities.len());
    let mut kinds = HashSet::new();
    for (i, raw) in user.identities.into_iter().enumerate() {
        let checked = identity(i, raw, rules)?;
        if !kinds.insert((checked.kind.as_str(), checked.external_auth_type.clone())) {
            return Err(AppError::DuplicateIdentityType);
        }
        identities.push(checked);
    }
    let status = match user.status.as_deref() {
        None | Some(ACTIVE) => ACTIVE,
        Some(DISABLED) => DISABLED,
        Some(_) => return Err(AppError::bad_input("status must be ACTIVE or DISABLED")),
    };
    let mut fields = ProfileFields {
        user_name: user.user_name,
        contact_email: user.contact_email,
        country_code: user.country_code,
        language_code: user.language_code,
        time_zone_offset: user.time_zone_offset,
        picture_url: user.picture_url,
        is_tester: user.is_tester,
        summary_friend_data: user.summary_friend_data,
        parent_profile_id: user.parent_profile_id,
        notification_template_id: None,
    }
    .validate()?;
    if fields.contact_email.is_none()
        && let Some(email) = identities.iter().find(|i| i.kind == IdentityKind::Email)
    {
        fields.contact_email = Some(email.external_id.clone());
    }
    if fields.parent_profile_id.is_some() && rules.parent_app_id.is_none() {
        return Err(AppError::AppParentMismatch(
            "parentProfileId was given but this app has no parent app",
        ));
    }
    Ok(Checked {
        profile: ImportedProfile {
            profile_id: profile_id.unwrap_or_else(Uuid::now_v7),
            user_name: fields.user_name,
            contact_email: fields.contact_email,
            country_code: fields.country_code,
            language_code: fields.language_code,
            time_zone_offset: fields.time_zone_offset,
            picture_url: fields.picture_url,
            is_tester: fields.is_tester,
            summary_friend_data: fields.summary_friend_data,
            parent_profile_id: fields.parent_profile_id,
            created_at: user.created_at.map(micros),
            last_login_at: user.last_login_at.map(micros),
            status,
        },
        id_given: profile_id.is_some(),
        identities,
    })
}
