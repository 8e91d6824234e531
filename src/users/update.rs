//! updateUser: brainCloud's profile setters (UpdateUserName, UpdateContactEmail,
//! UpdateUserPictureUrl, UpdateTimeZoneOffset, UpdateLanguageCode, UpdateCountryCode,
//! UpdateSummaryFriendData, UpdateIsTester…) as one patch.
//!
//! Every field is [`Patch`]ed: kept, cleared or set, and checked exactly as the creates check
//! it (`crate::users::fields`) before any database call. The profile is then locked, its
//! version compared with `expectedVersion`, and the patch reduced to what actually differs
//! from the stored profile: an update that changes nothing writes nothing (no version, no
//! `updatedAt`, no audit event); one that does moves the version by one and writes one audit
//! event naming the changed fields, in the same transaction.

use diesel_async::AsyncConnection;
use serde_json::{Value, json};
use uuid::Uuid;

use super::fields;
use super::{audit, caller_app, lock_profile, parse_profile_id, refused_by_constraint};
use crate::auth::Caller;
use crate::db::models::{Profile, ProfileChanges};
use crate::db::{self, DbPool, get_conn};
use crate::error::{AppError, AppResult};

/// What to do with one field.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Patch<T> {
    /// Leave it as it is (the field was absent).
    #[default]
    Keep,
    /// Clear it (JSON `null`).
    Clear,
    /// Set it.
    Set(T),
}

/// An updateUser call's arguments.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub profile_id: String,
    /// The version the caller last read; another stored version → `VERSION_CONFLICT`.
    pub expected_version: Option<i32>,
    pub user_name: Patch<String>,
    pub contact_email: Patch<String>,
    pub country_code: Patch<String>,
    pub language_code: Patch<String>,
    pub time_zone_offset: Patch<f64>,
    pub picture_url: Patch<String>,
    pub is_tester: Patch<bool>,
    pub summary_friend_data: Patch<Value>,
    pub parent_profile_id: Patch<String>,
}

/// A checked patch: `None` keeps a field, `Some(None)` clears it.
#[derive(Debug, Default)]
struct Checked {
    user_name: Option<Option<String>>,
    contact_email: Option<Option<String>>,
    country_code: Option<Option<String>>,
    language_code: Option<Option<String>>,
    time_zone_offset: Option<Option<f64>>,
    picture_url: Option<Option<String>>,
    is_tester: Option<bool>,
    summary_friend_data: Option<Option<Value>>,
    parent_profile_id: Option<Option<Uuid>>,
}

/// Checks a nullable field's patch with the create's check of its value (which may itself
/// turn a blank value into "cleared").
fn nullable<T, U>(
    patch: Patch<T>,
    check: impl FnOnce(T) -> AppResult<Option<U>>,
) -> AppResult<Option<Option<U>>> {
    Ok(match patch {
        Patch::Keep => None,
        Patch::Clear => Some(None),
        Patch::Set(v) => Some(check(v)?),
    })
}

fn check(p: UserPatch) -> AppResult<Checked> {
    Ok(Checked {
        user_name: nullable(p.user_name, fields::user_name)?,
        contact_email: nullable(p.contact_email, fields::contact_email)?,
        country_code: nullable(p.country_code, fields::country_code)?,
        language_code: nullable(p.language_code, fields::language_code)?,
        time_zone_offset: nullable(p.time_zone_offset, |t| {
            fields::time_zone_offset(t).map(Some)
        })?,
        picture_url: nullable(p.picture_url, fields::picture_url)?,
        is_tester: match p.is_tester {
            Patch::Keep => None,
            Patch::Clear => {
                return Err(AppError::bad_input(
                    "isTester cannot be null; give true or false",
                ));
            }
            Patch::Set(b) => Some(b),
        },
        summary_friend_data: nullable(p.summary_friend_data, fields::summary_friend_data)?,
        parent_profile_id: nullable(p.parent_profile_id, |id: String| {
            fields::parent_profile_id(&id).map(Some)
        })?,
    })
}

/// `Some(new)` when a patch changes a stored value, recording the field's name.
fn differ<'a, T: PartialEq + ?Sized>(
    name: &'static str,
    stored: Option<&T>,
    patch: &'a Option<Option<impl std::borrow::Borrow<T> + 'a>>,
    changed: &mut Vec<&'static str>,
) -> Option<Option<&'a T>> {
    let new = patch.as_ref()?.as_ref().map(|v| v.borrow());
    if new == stored {
        return None;
    }
    changed.push(name);
    Some(new)
}

/// Updates a profile of the caller's app; returns it as stored afterwards.
pub async fn update(
    pool: &mut DbPool<'_>,
    caller: &Caller,
    patch: UserPatch,
) -> AppResult<Profile> {
    let id = parse_profile_id(&patch.profile_id, "profileId")?;
    let expected = patch.expected_version;
    let c = check(patch)?;
    let mut conn = get_conn(pool).await?;
    let (profile, changed) = conn
        .transaction::<_, AppError, _>(async |conn| {
            let app = caller_app(conn, caller).await?;
            let stored = lock_profile(conn, caller, id).await?;
            if expected.is_some_and(|v| v != stored.version) {
                return Err(AppError::VersionConflict);
            }
            let mut changed = Vec::new();
            let mut changes = ProfileChanges {
                user_name: differ(
                    "userName",
                    stored.user_name.as_deref(),
                    &c.user_name,
                    &mut changed,
                ),
                contact_email: differ(
                    "contactEmail",
                    stored.contact_email.as_deref(),
                    &c.contact_email,
                    &mut changed,
                ),
                country_code: differ(
                    "countryCode",
                    stored.country_code.as_deref(),
                    &c.country_code,
                    &mut changed,
                ),
                language_code: differ(
                    "languageCode",
                    stored.language_code.as_deref(),
                    &c.language_code,
                    &mut changed,
                ),
                time_zone_offset: differ(
                    "timeZoneOffset",
                    stored.time_zone_offset.as_ref(),
                    &c.time_zone_offset,
                    &mut changed,
                )
                .map(|t| t.copied()),
                picture_url: differ(
                    "pictureUrl",
                    stored.picture_url.as_deref(),
                    &c.picture_url,
                    &mut changed,
                ),
                is_tester: c.is_tester.filter(|t| *t != stored.is_tester),
                summary_friend_data: differ(
                    "summaryFriendData",
                    stored.summary_friend_data.as_ref(),
                    &c.summary_friend_data,
                    &mut changed,
                ),
                parent_app_id: None,
                parent_profile_id: differ(
                    "parentProfileId",
                    stored.parent_profile_id.as_ref(),
                    &c.parent_profile_id,
                    &mut changed,
                )
                .map(|p| p.copied()),
            };
            if changes.is_tester.is_some() {
                changed.push("isTester");
            }
            if changed.is_empty() {
                return Ok((stored, changed));
            }
            match changes.parent_profile_id {
                None => {}
                Some(None) => changes.parent_app_id = Some(None),
                Some(Some(parent)) => {
                    let Some(parent_app) = app.parent_app_id.as_deref() else {
                        return Err(AppError::AppParentMismatch(
                            "parentProfileId was given but this app has no parent app",
                        ));
                    };
                    if !db::profiles::exists(conn, parent_app, parent).await? {
                        return Err(AppError::AppParentMismatch(
                            "parentProfileId does not name a profile of the parent app",
                        ));
                    }
                    // The profile is not this parent's child yet (else nothing would change),
                    // so any child found is another one. The unique index decides races.
                    if db::profiles::has_child_in(conn, parent_app, parent, &app.app_id).await? {
                        return Err(AppError::DuplicateChild);
                    }
                    changes.parent_app_id = Some(Some(parent_app));
                }
            }
            let profile = db::profile_updates::apply(conn, &app.app_id, id, &changes)
                .await
                .map_err(refused_by_constraint)?;
            changed.sort_unstable();
            let details = json!({ "changedFields": changed, "version": profile.version });
            audit(conn, caller, id, "updateUser", details).await?;
            Ok((profile, changed))
        })
        .await?;
    if !changed.is_empty() {
        tracing::info!(app_id = %caller.app_id, profile_id = %id, changed = ?changed, "updated user");
    }
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_are_checked_like_creates() {
        let bad = [
            UserPatch {
                picture_url: Patch::Set("javascript:alert(1)".into()),
                ..UserPatch::default()
            },
            UserPatch {
                time_zone_offset: Patch::Set(25.0),
                ..UserPatch::default()
            },
            UserPatch {
                contact_email: Patch::Set("nope".into()),
                ..UserPatch::default()
            },
            UserPatch {
                country_code: Patch::Set("a b".into()),
                ..UserPatch::default()
            },
            UserPatch {
                is_tester: Patch::Clear,
                ..UserPatch::default()
            },
            UserPatch {
                parent_profile_id: Patch::Set("not-a-uuid".into()),
                ..UserPatch::default()
            },
            UserPatch {
                user_name: Patch::Set("x".repeat(fields::MAX_USER_NAME + 1)),
                ..UserPatch::default()
            },
        ];
        for p in bad {
            assert!(check(p.clone()).is_err(), "{p:?}");
        }
        let c = check(UserPatch {
            user_name: Patch::Set("  ".into()),
            contact_email: Patch::Set("Ann@Example.COM".into()),
            language_code: Patch::Clear,
            ..UserPatch::default()
        })
        .unwrap();
        assert_eq!(
            c.user_name,
            Some(None),
            "blank clears, as a create stores nothing"
        );
        assert_eq!(c.contact_email, Some(Some("ann@example.com".into())));
        assert_eq!(c.language_code, Some(None));
        assert_eq!(c.country_code, None);
    }

    #[test]
    fn only_differences_count_as_changes() {
        let mut changed = Vec::new();
        let same = Some(Some("Ann".to_owned()));
        assert_eq!(differ("userName", Some("Ann"), &same, &mut changed), None);
        let none: Option<Option<String>> = None;
        assert_eq!(differ("userName", Some("Ann"), &none, &mut changed), None);
        assert!(changed.is_empty());
        let cleared: Option<Option<String>> = Some(None);
        assert_eq!(
            differ("userName", Some("Ann"), &cleared, &mut changed),
            Some(None)
        );
        assert_eq!(
            differ::<str>("countryCode", None, &cleared, &mut changed),
            None
        );
        assert_eq!(changed, ["userName"]);
    }
}
