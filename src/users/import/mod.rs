//! importUsers: bringing users in from another system, with the password hashes they have.
//!
//! A batch (at most [`MAX_IMPORT_BATCH`] users) goes through in this order:
//! 1. every user is checked as a create would check it ([`check`]), without I/O; a user that
//!    fails is `FAILED` with its error and the others go on;
//! 2. one database visit looks up, for the whole batch, which ids and identities exist (and
//!    whose they are) and which parents exist with which children;
//! 3. each user is matched: new, or (`UPSERT`) an existing profile by `profileId`, else by its
//!    identities; an existing one that already holds what the import says is `UNCHANGED`;
//! 4. plaintext passwords are hashed (argon2id, on the hashing threads, with no connection
//!    held); hashes given as `passwordHash` are stored as they are;
//! 5. the new users are written together in one transaction with multi-row statements; if the
//!    database refuses any of them (a race with another writer), that transaction rolls back
//!    and each of them is written again in a transaction of its own, so one bad user fails
//!    alone. Updates, and users that repeat an id or identity of an earlier user of the same
//!    batch, are always written one by one, in order, each in its own transaction, so a later
//!    user sees what an earlier one wrote.
//!
//! Every user written gets an `import` audit event in its transaction. A user left
//! `UNCHANGED` is not written, and gets none.
//!
//! Each time imports have doubled an app's identities (from 5,000 on), the planner's
//! statistics of the identities are refreshed, so that step 2 keeps looking identities up one
//! by one instead of hashing the whole app, which stale statistics make the planner choose.

mod check;
pub mod export;
mod write;

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock, PoisonError};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Caller;
use crate::db::imports::StoredIdentity;
use crate::db::models::Profile;
use crate::db::{self, DbPool, get_conn};
use crate::error::{AppError, AppResult};
use crate::passwords::Hasher;
use check::{Checked, Rules};

pub use check::MAX_IDENTITIES;

/// Most users one importUsers call (or one batch of the CLI) takes.
pub const MAX_IMPORT_BATCH: usize = 1000;

/// One user to import: the `ImportUserInput` of the schema, and one line of an import file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_id: Option<String>,
    pub identities: Vec<ImportIdentity>,
    /// `ACTIVE` (default) or `DISABLED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone_offset: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_tester: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_friend_data: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_profile_id: Option<String>,
}

/// One identity of an imported user.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportIdentity {
    /// `EMAIL`, `UNIVERSAL_ID` or `EXTERNAL`.
    #[serde(rename = "type")]
    pub kind: String,
    pub external_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_auth_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Whether an import may change users that exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Existing ids or identities fail with `USER_ALREADY_EXISTS`.
    CreateOnly,
    /// Existing users (by id, else by identity) are updated in place.
    Upsert,
}

/// What happened to one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportStatus {
    Created,
    Updated,
    Unchanged,
    Failed,
}

impl ImportStatus {
    /// The schema's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Created => "CREATED",
            ImportStatus::Updated => "UPDATED",
            ImportStatus::Unchanged => "UNCHANGED",
            ImportStatus::Failed => "FAILED",
        }
    }
}

/// Why a user failed: the contract's error, as it would be reported for a create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportFailure {
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<i32>,
    pub message: String,
}

impl From<AppError> for ImportFailure {
    fn from(e: AppError) -> Self {
        if matches!(e, AppError::Internal(_) | AppError::Unavailable(_)) {
            tracing::error!(error = ?e, "importing a user failed");
        }
        ImportFailure {
            code: e.code(),
            reason_code: e.reason_code(),
            message: e.message(),
        }
    }
}

/// One user's outcome; `index` is its position in the batch.
#[derive(Debug, Clone)]
pub struct ImportResult {
    pub index: usize,
    pub profile_id: Option<Uuid>,
    pub status: ImportStatus,
    pub error: Option<ImportFailure>,
}

/// Every user's outcome, in the batch's order.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub results: Vec<ImportResult>,
}

impl ImportReport {
    /// How many users ended with `status`.
    pub fn count(&self, status: ImportStatus) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }
}

/// A user matched to an existing profile (`UPSERT`).
type Existing = (Profile, Vec<StoredIdentity>);

/// Imports a batch of users into the caller's app.
pub async fn import_users(
    pool: &mut DbPool<'_>,
    hasher: &Hasher,
    caller: &Caller,
    users: Vec<ImportUser>,
    mode: ImportMode,
) -> AppResult<ImportReport> {
    if users.len() > MAX_IMPORT_BATCH {
        return Err(AppError::bad_input(format!(
            "users must hold at most {MAX_IMPORT_BATCH} users"
        )));
    }
    let app = {
        let mut conn = get_conn(pool).await?;
        super::caller_app(&mut conn, caller).await?
    };
    let rules = Rules::of(&app);
    let mut results: Vec<Option<ImportResult>> = vec![None; users.len()];
    let mut pending = Vec::with_capacity(users.len());
    for (index, user) in users.into_iter().enumerate() {
        let given = user
            .profile_id
            .as_deref()
            .and_then(|raw| Uuid::parse_str(raw.trim()).ok());
        match check::check(user, &rules) {
            Ok(checked) => pending.push((index, checked)),
            Err(e) => results[index] = Some(failed(index, given, e)),
        }
    }
    let ctx = write::Context {
        app_id: &app.app_id,
        parent_app_id: rules.parent_app_id.as_deref(),
        caller,
        mode,
    };
    // Users that repeat an earlier user's id or identity wait for the next round, which sees
    // what the earlier one wrote.
    while !pending.is_empty() {
        pending = round(pool, hasher, &ctx, pending, &mut results).await?;
    }
    Ok(ImportReport {
        results: results.into_iter().flatten().collect(),
    })
}

fn failed(index: usize, profile_id: Option<Uuid>, e: AppError) -> ImportResult {
    ImportResult {
        index,
        profile_id,
        status: ImportStatus::Failed,
        error: Some(e.into()),
    }
}

fn done(index: usize, profile_id: Uuid, status: ImportStatus) -> ImportResult {
    ImportResult {
        index,
        profile_id: Some(profile_id),
        status,
        error: None,
    }
}

/// What the database holds for a batch: owners of its identities, the profiles they match,
/// its parents and their children.
struct Found {
    owners: HashMap<(String, String, String), Uuid>,
    profiles: HashMap<Uuid, Existing>,
    parents: HashMap<Uuid, Option<Uuid>>,
}

async fn look_up(
    pool: &mut DbPool<'_>,
    ctx: &write::Context<'_>,
    users: &[(usize, Checked)],
) -> AppResult<Found> {
    let mut conn = get_conn(pool).await?;
    let keys: Vec<(&str, &str, &str)> = users
        .iter()
        .flat_map(|(_, c)| c.identities.iter().map(|i| i.key()))
        .collect();
    let owners: HashMap<_, _> = db::imports::identity_owners(&mut conn, ctx.app_id, &keys)
        .await?
        .into_iter()
        .collect();
    let mut ids: Vec<Uuid> = users
        .iter()
        .filter(|(_, c)| c.id_given)
        .map(|(_, c)| c.profile.profile_id)
        .collect();
    ids.extend(owners.values().copied());
    ids.sort_unstable();
    ids.dedup();
    let profiles = db::imports::profiles_with_identities(&mut conn, ctx.app_id, &ids)
        .await?
        .into_iter()
        .map(|(p, i)| (p.profile_id, (p, i)))
        .collect();
    let mut parent_ids: Vec<Uuid> = users
        .iter()
        .filter_map(|(_, c)| c.profile.parent_profile_id)
        .collect();
    parent_ids.sort_unstable();
    parent_ids.dedup();
    let parents = match ctx.parent_app_id {
        Some(parent_app) => {
            db::imports::parents(&mut conn, parent_app, &parent_ids, ctx.app_id).await?
        }
        None => Vec::new(),
    };
    Ok(Found {
        owners,
        profiles,
        parents: parents.into_iter().collect(),
    })
}

/// The existing profile a user matches, or why it cannot be imported.
fn matched<'f>(
    ctx: &write::Context<'_>,
    found: &'f Found,
    c: &Checked,
) -> Result<Option<&'f Existing>, AppError> {
    let owners: HashSet<Uuid> = c
        .identities
        .iter()
        .filter_map(|i| {
            let (k, e, x) = i.key();
            found
                .owners
                .get(&(k.to_owned(), e.to_owned(), x.to_owned()))
                .copied()
        })
        .collect();
    let by_id = c
        .id_given
        .then(|| found.profiles.get(&c.profile.profile_id))
        .flatten();
    match ctx.mode {
        ImportMode::CreateOnly if by_id.is_some() || !owners.is_empty() => {
            Err(AppError::UserAlreadyExists)
        }
        ImportMode::CreateOnly => Ok(None),
        ImportMode::Upsert => {
            let target = match by_id {
                Some(existing) => Some(existing.0.profile_id),
                None if c.id_given => None,
                None => owners.iter().next().copied(),
            };
            if owners.iter().any(|o| Some(*o) != target) {
                // An identity belongs to another profile than the one matched.
                return Err(AppError::UserAlreadyExists);
            }
            Ok(target.and_then(|t| found.profiles.get(&t)))
        }
    }
}

/// One round over the pending users; returns those that must wait for the next.
async fn round(
    pool: &mut DbPool<'_>,
    hasher: &Hasher,
    ctx: &write::Context<'_>,
    pending: Vec<(usize, Checked)>,
    results: &mut [Option<ImportResult>],
) -> AppResult<Vec<(usize, Checked)>> {
    let found = look_up(pool, ctx, &pending).await?;
    let mut later = Vec::new();
    let mut fresh = Vec::new();
    let mut updates = Vec::new();
    let mut seen_ids = HashSet::new();
    let mut seen_keys = HashSet::new();
    let mut seen_parents = HashSet::new();
    for (index, mut c) in pending {
        let repeats = !seen_ids.insert(c.profile.profile_id)
            | c.profile
                .parent_profile_id
                .is_some_and(|p| !seen_parents.insert(p))
            | c.identities.iter().fold(false, |any, i| {
                let (k, e, x) = i.key();
                !seen_keys.insert((k, e.to_owned(), x.to_owned())) | any
            });
        if repeats {
            later.push((index, c));
            continue;
        }
        let existing = match matched(ctx, &found, &c) {
            Ok(existing) => existing,
            Err(e) => {
                results[index] = Some(failed(index, Some(c.profile.profile_id), e));
                continue;
            }
        };
        if let Some(parent) = c.profile.parent_profile_id {
            let refused = match found.parents.get(&parent) {
                None => Some(AppError::AppParentMismatch(
                    "parentProfileId does not name a profile of the parent app",
                )),
                Some(Some(child)) if Some(*child) != existing.map(|e| e.0.profile_id) => {
                    Some(AppError::DuplicateChild)
                }
                Some(_) => None,
            };
            if let Some(e) = refused {
                results[index] = Some(failed(index, Some(c.profile.profile_id), e));
                continue;
            }
        }
        match existing {
            None => fresh.push((index, c)),
            Some(existing) => {
                c.profile.profile_id = existing.0.profile_id;
                match write::plan_update(hasher, ctx.app_id, &mut c, existing).await {
                    Ok(true) => updates.push((index, c)),
                    Ok(false) => {
                        results[index] =
                            Some(done(index, c.profile.profile_id, ImportStatus::Unchanged))
                    }
                    Err(e) => results[index] = Some(failed(index, Some(c.profile.profile_id), e)),
                }
            }
        }
    }
    write::hash_passwords(hasher, ctx.app_id, &mut fresh).await?;
    let written = fresh.iter().map(|(_, c)| c.identities.len() as u64).sum();
    for (index, outcome) in write::create_batch(pool, ctx, fresh).await? {
        results[index] = Some(outcome);
    }
    if statistics_due(pool, ctx.app_id, written).await {
        refresh_statistics(pool).await;
    }
    for (index, c) in updates {
        let id = c.profile.profile_id;
        results[index] = Some(match write::update_one(pool, ctx, c).await {
            Ok(()) => done(index, id, ImportStatus::Updated),
            Err(e) => failed(index, Some(id), e),
        });
    }
    Ok(later)
}

/// Identities an app gains through imports before its statistics are first refreshed.
const REFRESH_AFTER: u64 = 5_000;

/// Identities imported into one app (by this process) since the planner's statistics were last
/// refreshed, and how many had been when they were.
#[derive(Debug, Default)]
struct Growth {
    since: u64,
    at_refresh: u64,
}

impl Growth {
    /// Counts `written` identities; `true` when the statistics are due: the app has grown by
    /// as many as it had at the last refresh, and by at least [`REFRESH_AFTER`]. A million
    /// users are refreshed for eight times, and the planner never thinks the app less than
    /// half its size.
    fn add(&mut self, written: u64) -> bool {
        self.since += written;
        if self.since < REFRESH_AFTER.max(self.at_refresh) {
            return false;
        }
        self.at_refresh += self.since;
        self.since = 0;
        true
    }
}

/// Identities counted, at most, when this process first imports into an app.
const COUNT_UP_TO: i64 = 100_000;

/// Whether `app_id`'s statistics are due after `written` more identities (see [`Growth`]). The
/// first time this process writes to an app, it counts what the app held before (up to
/// [`COUNT_UP_TO`]): an app that was already large waits until it has grown by as much again,
/// as its statistics already describe it.
async fn statistics_due(pool: &mut DbPool<'_>, app_id: &str, written: u64) -> bool {
    static GROWTH: OnceLock<Mutex<HashMap<String, Growth>>> = OnceLock::new();
    let growth = || {
        GROWTH
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    };
    if written == 0 {
        return false;
    }
    if let Some(g) = growth().get_mut(app_id) {
        return g.add(written);
    }
    let held = match get_conn(pool).await {
        Ok(mut conn) => db::imports::count_identities(&mut conn, app_id, COUNT_UP_TO)
            .await
            .unwrap_or(0),
        Err(_) => 0,
    };
    let before = u64::try_from(held).unwrap_or(0).saturating_sub(written);
    growth()
        .entry(app_id.to_owned())
        .or_insert(Growth {
            since: 0,
            at_refresh: before,
        })
        .add(written)
}

/// Refreshes the planner's statistics of the identities (migration `import_statistics`):
/// without it, an app that grows by an import is planned as the small app it was, and each
/// batch's look-up hashes all of its identities. A failure only costs speed: it is logged.
async fn refresh_statistics(pool: &mut DbPool<'_>) {
    let refreshed: AppResult<()> = async {
        let mut conn = get_conn(pool).await?;
        Ok(db::imports::refresh_statistics(&mut conn).await?)
    }
    .await;
    if let Err(e) = refreshed {
        tracing::warn!(error = ?e, "refreshing the statistics after an import's batch failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_are_refreshed_each_time_the_app_doubles() {
        let mut g = Growth::default();
        let mut refreshed_at = Vec::new();
        let mut total = 0;
        for _ in 0..1_000 {
            total += 1_000;
            if g.add(1_000) {
                refreshed_at.push(total);
            }
        }
        assert_eq!(
            refreshed_at,
            [
                5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 640_000
            ]
        );
        assert!(!Growth::default().add(0));
    }
}
