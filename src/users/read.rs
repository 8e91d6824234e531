//! Reading users: SysGetUserInfo, lookup by identity, SysGetUserExport.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::parse_profile_id;
use crate::auth::Caller;
use crate::db::models::IdentityKind;
use crate::db::models::{AuditEvent, Identity, Profile};
use crate::db::{self, DbPool, get_conn};
use crate::error::{AppError, AppResult};
use crate::normalise;

/// A profile, with its identities when they were asked for.
#[derive(Debug, Clone)]
pub struct Found {
    pub profile: Profile,
    pub identities: Option<Vec<Identity>>,
}

/// One profile of the caller's app, or `None`. With `with_identities`, profile and identities
/// come back from one query, so the common `userInfo { identities }` costs one round trip.
pub async fn user_info(
    pool: &mut DbPool<'_>,
    caller: &Caller,
    profile_id: &str,
    with_identities: bool,
) -> AppResult<Option<Found>> {
    let id = parse_profile_id(profile_id, "profileId")?;
    let mut conn = get_conn(pool).await?;
    if !with_identities {
        let profile = db::profiles::find(&mut conn, &caller.app_id, id).await?;
        return Ok(profile.map(|profile| Found {
            profile,
            identities: None,
        }));
    }
    let found = db::profiles::find_with_identities(&mut conn, &caller.app_id, id).await?;
    Ok(found.map(|(profile, identities)| Found {
        profile,
        identities: Some(identities),
    }))
}

/// The profile of the caller's app that owns an identity, or `None`.
pub async fn user_by_identity(
    pool: &mut DbPool<'_>,
    caller: &Caller,
    kind: IdentityKind,
    external_id: &str,
    external_auth_type: Option<&str>,
) -> AppResult<Option<Profile>> {
    let (key, auth_type) = match (kind, external_auth_type) {
        (IdentityKind::External, Some(t)) => (
            normalise::external_id(external_id)?,
            normalise::external_auth_type(t)?,
        ),
        (IdentityKind::External, None) => {
            return Err(AppError::bad_input(
                "externalAuthType is required for EXTERNAL identities",
            ));
        }
        (_, Some(_)) => {
            return Err(AppError::bad_input(
                "externalAuthType is only for EXTERNAL identities",
            ));
        }
        (IdentityKind::Email, None) => (normalise::email_key(external_id)?, String::new()),
        (IdentityKind::UniversalId, None) => (normalise::universal_id(external_id)?, String::new()),
    };
    let mut conn = get_conn(pool).await?;
    let Some(owner) =
        db::identities::find_owner(&mut conn, &caller.app_id, kind.as_str(), &auth_type, &key)
            .await?
    else {
        return Ok(None);
    };
    Ok(db::profiles::find(&mut conn, &caller.app_id, owner).await?)
}

/// A profile's key: `(app_id, profile_id)`. Children live in child apps, so keys may name
/// several apps.
pub type ProfileKey = (String, Uuid);

/// The identities of many profiles (each list in its stable order), in one query.
pub async fn identities_of(
    pool: &mut DbPool<'_>,
    keys: &[ProfileKey],
) -> AppResult<HashMap<ProfileKey, Vec<Identity>>> {
    let mut conn = get_conn(pool).await?;
    let rows = db::identities::for_profiles(&mut conn, keys).await?;
    let mut out: HashMap<ProfileKey, Vec<Identity>> = HashMap::new();
    for row in rows {
        out.entry((row.app_id.clone(), row.profile_id))
            .or_default()
            .push(row);
    }
    for ids in out.values_mut() {
        db::identities::in_order(ids);
    }
    Ok(out)
}

/// The children of many profiles, in one query.
pub async fn children_of(
    pool: &mut DbPool<'_>,
    keys: &[ProfileKey],
) -> AppResult<HashMap<ProfileKey, Vec<Profile>>> {
    let mut conn = get_conn(pool).await?;
    let rows = db::profiles::children_of(&mut conn, keys).await?;
    let mut out: HashMap<ProfileKey, Vec<Profile>> = HashMap::new();
    for row in rows {
        if let (Some(app), Some(parent)) = (row.parent_app_id.clone(), row.parent_profile_id) {
            out.entry((app, parent)).or_default().push(row);
        }
    }
    Ok(out)
}

/// Everything usersvc holds about a profile, without secrets.
#[derive(Debug, Clone)]
pub struct Export {
    pub exported_at: DateTime<Utc>,
    pub profile: Profile,
    pub identities: Vec<Identity>,
    pub children: Vec<Profile>,
    pub audit_events: Vec<AuditEvent>,
}

/// SysGetUserExport: `PROFILE_NOT_FOUND` when the profile is not in the caller's app.
pub async fn export(pool: &mut DbPool<'_>, caller: &Caller, profile_id: &str) -> AppResult<Export> {
    let id = parse_profile_id(profile_id, "profileId")?;
    let mut conn = get_conn(pool).await?;
    let profile = db::profiles::find(&mut conn, &caller.app_id, id)
        .await?
        .ok_or(AppError::ProfileNotFound)?;
    let identities = db::identities::for_profile(&mut conn, &caller.app_id, id).await?;
    let children = db::profiles::children_of(&mut conn, &[(caller.app_id.clone(), id)]).await?;
    let audit_events = db::audit::for_profile(&mut conn, &caller.app_id, id).await?;
    tracing::info!(app_id = %caller.app_id, profile_id = %id, actor = %caller.actor, "exported user");
    Ok(Export {
        exported_at: Utc::now(),
        profile,
        identities,
        children,
        audit_events,
    })
}

/// A profile as export JSON (the same names as the GraphQL `User` type).
pub fn profile_json(p: &Profile) -> Value {
    json!({
        "profileId": p.profile_id,
        "appId": p.app_id,
        "userName": p.user_name,
        "contactEmail": p.contact_email,
        "countryCode": p.country_code,
        "languageCode": p.language_code,
        "timeZoneOffset": p.time_zone_offset,
        "pictureUrl": p.picture_url,
        "isTester": p.is_tester,
        "summaryFriendData": p.summary_friend_data,
        "parentProfileId": p.parent_profile_id,
        "createdAt": p.created_at,
        "updatedAt": p.updated_at,
        "lastLoginAt": p.last_login_at,
    })
}

/// An identity as export JSON. There is no hash to leave out: the read model has none.
pub fn identity_json(i: &Identity) -> Value {
    json!({
        "type": i.kind,
        "externalId": i.external_id,
        "externalAuthType": (!i.external_auth_type.is_empty()).then_some(&i.external_auth_type),
        "hasPassword": i.has_password,
        "createdAt": i.created_at,
    })
}

impl Export {
    /// The whole export as one JSON document.
    pub fn document(&self) -> Value {
        let mut profile = profile_json(&self.profile);
        profile["identities"] = self.identities.iter().map(identity_json).collect();
        json!({
            "profileId": self.profile.profile_id,
            "appId": self.profile.app_id,
            "exportedAt": self.exported_at,
            "profile": profile,
            "credentials": self.identities.iter().map(identity_json).collect::<Vec<_>>(),
            "children": self.children.iter().map(profile_json).collect::<Vec<_>>(),
            "auditEvents": self.audit_events.iter().map(|e| json!({
                "id": e.event_id.to_string(),
                "at": e.at,
                "actor": e.actor,
                "operation": e.operation,
                "details": e.details,
            })).collect::<Vec<_>>(),
        })
    }
}
