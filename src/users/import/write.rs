//! Writing imported users: new ones together, updates one by one, each user's rows and audit
//! event in one transaction.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::future::join_all;
use serde_json::json;

use super::check::Checked;
use super::{Existing, ImportMode, ImportResult, ImportStatus, done, failed};
use crate::auth::Caller;
use crate::db::imports::{ImportedIdentity, ImportedProfile};
use crate::db::{self, DbPool, get_conn};
use crate::error::{AppError, AppResult};
use crate::passwords::Hasher;
use crate::telemetry::current_request_id;
use crate::users::refused_by_constraint;

/// Who imports into which app, how.
pub(super) struct Context<'a> {
    pub app_id: &'a str,
    pub parent_app_id: Option<&'a str>,
    pub caller: &'a Caller,
    pub mode: ImportMode,
}

impl Context<'_> {
    fn mode_name(&self) -> &'static str {
        match self.mode {
            ImportMode::CreateOnly => "CREATE_ONLY",
            ImportMode::Upsert => "UPSERT",
        }
    }

    fn audit(&self, c: &Checked, status: ImportStatus) -> (uuid::Uuid, serde_json::Value) {
        let types: Vec<&str> = c.identities.iter().map(|i| i.kind.as_str()).collect();
        (
            c.profile.profile_id,
            json!({ "mode": self.mode_name(), "result": status.as_str(), "identityTypes": types }),
        )
    }
}

/// Hashes the plaintext passwords of these users (argon2id, on the hashing threads, all queued
/// at once).
pub(super) async fn hash_passwords(
    hasher: &Hasher,
    app: &str,
    users: &mut [(usize, Checked)],
) -> AppResult<()> {
    let mut jobs = Vec::new();
    for (_, c) in users.iter_mut() {
        for i in c.identities.iter_mut() {
            if let Some(password) = i.password.take() {
                jobs.push(async move {
                    i.hash = Some(hasher.hash(app, password).await?);
                    AppResult::Ok(())
                });
            }
        }
    }
    join_all(jobs).await.into_iter().collect()
}

/// Whether an existing profile differs from what the import says; prepares the user for
/// [`update_one`] (a plaintext password that the stored hash already matches is not hashed
/// again and not counted as a change).
pub(super) async fn plan_update(
    hasher: &Hasher,
    app: &str,
    c: &mut Checked,
    (profile, stored): &Existing,
) -> AppResult<bool> {
    let p = &c.profile;
    let mut changed = profile.user_name != p.user_name
        || profile.contact_email != p.contact_email
        || profile.country_code != p.country_code
        || profile.language_code != p.language_code
        || profile.time_zone_offset != p.time_zone_offset
        || profile.picture_url != p.picture_url
        || profile.is_tester != p.is_tester
        || profile.summary_friend_data != p.summary_friend_data
        || profile.parent_profile_id != p.parent_profile_id
        || profile.status != p.status
        || p.created_at.is_some_and(|t| t != profile.created_at)
        || p.last_login_at
            .is_some_and(|t| Some(t) != profile.last_login_at);
    for i in c.identities.iter_mut() {
        let same = stored
            .iter()
            .find(|s| s.kind == i.kind.as_str() && s.external_auth_type == i.external_auth_type);
        let Some(same) = same else {
            changed = true;
            continue;
        };
        changed |= same.external_id != i.external_id;
        if let Some(hash) = &i.hash {
            changed |= same.password_hash.as_ref() != Some(hash);
        }
        if let Some(password) = i.password.take() {
            let matches = match &same.password_hash {
                Some(h) => hasher
                    .verify(app, Some(h.clone()), password.clone())
                    .await?
                    .is_ok_and(|v| v.matches),
                None => false,
            };
            if !matches {
                i.hash = Some(hasher.hash(app, password).await?);
                changed = true;
            }
        }
    }
    Ok(changed)
}

fn rows(c: &Checked) -> Vec<(ImportedIdentity, Option<chrono::DateTime<chrono::Utc>>)> {
    c.identities
        .iter()
        .map(|i| {
            (
                ImportedIdentity {
                    profile_id: c.profile.profile_id,
                    kind: i.kind.as_str(),
                    external_auth_type: i.external_auth_type.clone(),
                    external_id: i.external_id.clone(),
                    password_hash: i.hash.clone(),
                },
                c.profile.created_at,
            )
        })
        .collect()
}

/// Writes new users with their identities and audit events in one transaction.
async fn insert_all(
    conn: &mut AsyncPgConnection,
    ctx: &Context<'_>,
    users: &[&Checked],
) -> diesel::QueryResult<()> {
    let profiles: Vec<ImportedProfile> = users.iter().map(|c| c.profile.clone()).collect();
    let identities: Vec<_> = users.iter().flat_map(|c| rows(c)).collect();
    let events: Vec<_> = users
        .iter()
        .map(|c| ctx.audit(c, ImportStatus::Created))
        .collect();
    let request_id = current_request_id();
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        db::imports::insert_profiles(conn, ctx.app_id, ctx.parent_app_id, &profiles).await?;
        db::imports::write_identities(conn, ctx.app_id, &identities, false).await?;
        db::imports::audit_imports(
            conn,
            ctx.app_id,
            &ctx.caller.actor,
            request_id.as_deref(),
            &events,
        )
        .await?;
        Ok(())
    })
    .await
}

/// Creates new users: all together, else (when the database refuses any) one by one.
pub(super) async fn create_batch(
    pool: &mut DbPool<'_>,
    ctx: &Context<'_>,
    users: Vec<(usize, Checked)>,
) -> AppResult<Vec<(usize, ImportResult)>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = get_conn(pool).await?;
    let all: Vec<&Checked> = users.iter().map(|(_, c)| c).collect();
    let together = insert_all(&mut conn, ctx, &all).await;
    let created =
        |index: usize, c: &Checked| done(index, c.profile.profile_id, ImportStatus::Created);
    if together.is_ok() {
        return Ok(users.iter().map(|(i, c)| (*i, created(*i, c))).collect());
    }
    // Each on its own: the one the database refuses fails alone.
    let mut outcomes = Vec::with_capacity(users.len());
    for (index, c) in &users {
        let outcome = match insert_all(&mut conn, ctx, &[c]).await {
            Ok(()) => created(*index, c),
            Err(e) => failed(*index, Some(c.profile.profile_id), refused(e)),
        };
        outcomes.push((*index, outcome));
    }
    Ok(outcomes)
}

/// A database refusal as the contract names it; a taken profile id is a user that exists.
fn refused(e: diesel::result::Error) -> AppError {
    use diesel::result::{DatabaseErrorKind, Error};
    if let Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) = &e
        && info.constraint_name() == Some("profiles_pkey")
    {
        return AppError::UserAlreadyExists;
    }
    refused_by_constraint(e)
}

/// Updates one existing user in place, in its own transaction.
pub(super) async fn update_one(
    pool: &mut DbPool<'_>,
    ctx: &Context<'_>,
    c: Checked,
) -> AppResult<()> {
    let mut conn = get_conn(pool).await?;
    let identities = rows(&c);
    let event = ctx.audit(&c, ImportStatus::Updated);
    let request_id = current_request_id();
    let written = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            let there =
                db::imports::update_profile(conn, ctx.app_id, ctx.parent_app_id, &c.profile)
                    .await?;
            if there {
                db::imports::write_identities(conn, ctx.app_id, &identities, true).await?;
                db::imports::audit_imports(
                    conn,
                    ctx.app_id,
                    &ctx.caller.actor,
                    request_id.as_deref(),
                    &[event],
                )
                .await?;
            }
            Ok(there)
        })
        .await
        .map_err(refused)?;
    if written {
        Ok(())
    } else {
        // Deleted since it was looked up.
        Err(AppError::ProfileNotFound)
    }
}
