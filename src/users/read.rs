//! Reading users: SysGetUserInfo, lookup by identity, SysGetUserExport.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
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

/// A profile with its identities, as the export document shows it.
#[derive(Serialize)]
struct ProfileWithIdentities<'a> {
    #[serde(flatten)]
    profile: &'a Profile,
    identities: &'a [Identity],
}

/// The export document: the names of the GraphQL `UserExport`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    profile_id: Uuid,
    app_id: &'a str,
    exported_at: DateTime<Utc>,
    profile: ProfileWithIdentities<'a>,
    credentials: &'a [Identity],
    children: &'a [Profile],
    audit_events: &'a [AuditEvent],
}

impl Export {
    /// The whole export as one JSON document.
    pub fn document(&self) -> Value {
        let document = Document {
            profile_id: self.profile.profile_id,
            app_id: &self.profile.app_id,
            exported_at: self.exported_at,
            profile: ProfileWithIdentities {
                profile: &self.profile,
                identities: &self.identities,
            },
            credentials: &self.identities,
            children: &self.children,
            audit_events: &self.audit_events,
        };
        serde_json::to_value(document).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_export_document_uses_the_graphql_names_and_holds_no_secret() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let id = Uuid::nil();
        let profile = Profile {
            app_id: "a".into(),
            profile_id: id,
            user_name: Some("Ann".into()),
            contact_email: Some("ann@example.com".into()),
            country_code: None,
            language_code: Some("en".into()),
            time_zone_offset: Some(1.5),
            picture_url: None,
            is_tester: false,
            summary_friend_data: Some(json!({"level": 3})),
            parent_app_id: Some("p".into()),
            parent_profile_id: None,
            created_at: at,
            updated_at: at,
            last_login_at: None,
            status: "ACTIVE".into(),
            disabled_at: None,
            disabled_reason: None,
            login_count: 0,
            version: 1,
        };
        let identity = |kind: &str, ext: &str| Identity {
            app_id: "a".into(),
            profile_id: id,
            kind: kind.into(),
            external_auth_type: ext.into(),
            external_id: "x".into(),
            has_password: ext.is_empty(),
            created_at: at,
        };
        let export = Export {
            exported_at: at,
            profile: profile.clone(),
            identities: vec![identity("EMAIL", ""), identity("EXTERNAL", "corpdir")],
            children: vec![],
            audit_events: vec![AuditEvent {
                app_id: "a".into(),
                event_id: 7,
                profile_id: Some(id),
                at,
                actor: "cli".into(),
                operation: "deleteUser".into(),
                details: None,
                request_id: Some("r".into()),
            }],
        };
        let t = "2023-11-14T22:13:20Z";
        let identities = json!([
            {"type": "EMAIL", "externalId": "x", "externalAuthType": null, "hasPassword": true, "createdAt": t},
            {"type": "EXTERNAL", "externalId": "x", "externalAuthType": "corpdir", "hasPassword": false, "createdAt": t},
        ]);
        let profile = json!({
            "appId": "a", "profileId": id, "userName": "Ann", "contactEmail": "ann@example.com",
            "countryCode": null, "languageCode": "en", "timeZoneOffset": 1.5, "pictureUrl": null,
            "isTester": false, "summaryFriendData": {"level": 3}, "parentProfileId": null,
            "createdAt": t, "updatedAt": t, "lastLoginAt": null, "status": "ACTIVE",
            "disabledAt": null, "disabledReason": null, "loginCount": 0, "version": 1,
            "identities": identities,
        });
        assert_eq!(
            export.document(),
            json!({
                "profileId": id,
                "appId": "a",
                "exportedAt": t,
                "profile": profile,
                "credentials": identities,
                "children": [],
                "auditEvents": [{"id": "7", "at": t, "actor": "cli", "operation": "deleteUser", "details": null}],
            })
        );
    }
}
