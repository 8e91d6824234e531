//! Mutation root, fourth part: `importUsers` (`cloudcode:users:import`). Every rule lives in
//! `crate::users::import`.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::types::{IdentityType, UserStatus};
use super::{caller, services};
use crate::db::models::{IdentityKind, ProfileStatus};
use crate::users::import::{self as import, ImportIdentity, ImportUser};

/// Whether an import may change users that already exist.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ImportMode {
    /// Only new users: a user whose profileId or any identity exists in the app fails with
    /// `USER_ALREADY_EXISTS`.
    CreateOnly,
    /// New users are created; a user matching an existing profile (by profileId, else by any
    /// of its identities) updates it in place: every profile field takes the imported value
    /// (absent = cleared), `createdAt` and `lastLoginAt` where given, identities are added or
    /// replaced (none removed). One that already holds all that is `UNCHANGED` and is not
    /// written, so re-running an import is safe.
    Upsert,
}

/// One user to import.
#[derive(InputObject)]
pub struct ImportUserInput {
    /// The id it had elsewhere (a UUID), kept; absent: a new one.
    pub profile_id: Option<ID>,
    /// One or more identities, at most one of each kind (of each externalAuthType for
    /// EXTERNAL), at most 16.
    pub identities: Vec<ImportIdentityInput>,
    /// ACTIVE, or DISABLED (disabledAt is the time of the import, no reason).
    #[graphql(default_with = "Some(UserStatus::Active)")]
    pub status: Option<UserStatus>,
    /// When the profile was created elsewhere; absent: now.
    pub created_at: Option<DateTime<Utc>>,
    /// The last login elsewhere.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Display name (brainCloud playerName), at most 128 characters.
    pub user_name: Option<String>,
    /// Address for mail; defaults to the EMAIL identity's address.
    pub contact_email: Option<String>,
    /// Country code, at most 16 letters, digits, '-' or '_'.
    pub country_code: Option<String>,
    /// Language code, at most 16 letters, digits, '-' or '_'.
    pub language_code: Option<String>,
    /// Offset from UTC in hours, -24 to 24.
    pub time_zone_offset: Option<f64>,
    /// Picture URL: http or https.
    pub picture_url: Option<String>,
    /// Whether this is a tester account (default false).
    pub is_tester: Option<bool>,
    /// Free-form data shown to friends, at most 16 KiB of JSON.
    pub summary_friend_data: Option<Json<serde_json::Value>>,
    /// A profile of the caller's app's parent app: already present, or imported into that
    /// app before. Unknown → this user fails with `APP_PARENT_MISMATCH`.
    pub parent_profile_id: Option<ID>,
}

/// One identity of an imported user.
#[derive(InputObject)]
pub struct ImportIdentityInput {
    /// The kind of identity.
    pub r#type: IdentityType,
    /// The email address, universal id or external id; normalised as at creation.
    pub external_id: String,
    /// EXTERNAL only: the external system.
    pub external_auth_type: Option<String>,
    /// A password hash from another system, stored as it is and checked by verifyPassword
    /// (then replaced by argon2id): PHC `$argon2id$`, `$argon2i$`, `$scrypt$` (`ln,r,p`),
    /// `$pbkdf2-sha256$`/`$pbkdf2-sha512$` (`i,l`; salt and hash in unpadded standard
    /// base64), or bcrypt `$2a$`/`$2b$`/`$2y$`. Anything else, or costs above the caps
    /// (README), fails the user with `BAD_USER_INPUT`. Never returned by any API.
    pub password_hash: Option<String>,
    /// A plaintext password, checked against the app's policy and hashed with argon2id
    /// (slow: prefer passwordHash). Mutually exclusive with passwordHash; with neither, the
    /// identity has no password until one is set or reset.
    pub password: Option<String>,
}

/// A batch of users to import.
#[derive(InputObject)]
pub struct ImportUsersInput {
    /// At most 1,000 users.
    pub users: Vec<ImportUserInput>,
    /// CREATE_ONLY (default) or UPSERT.
    #[graphql(default_with = "Some(ImportMode::CreateOnly)")]
    pub mode: Option<ImportMode>,
}

/// What happened to one imported user.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ImportStatus {
    /// A new profile was written.
    Created,
    /// An existing profile was changed (UPSERT).
    Updated,
    /// An existing profile already held everything imported (UPSERT); nothing was written.
    Unchanged,
    /// Not imported; `error` says why. Nothing was written for this user.
    Failed,
}

/// Why a user was not imported: the error a create would have given.
#[derive(SimpleObject)]
pub struct ImportError {
    /// The error code (section Errors of the contract), e.g. `USER_ALREADY_EXISTS`.
    pub code: String,
    /// brainCloud's reason code, where it has one.
    pub reason_code: Option<i32>,
    /// For people.
    pub message: String,
}

/// One user's outcome.
#[derive(SimpleObject)]
pub struct ImportResult {
    /// The user's position in `users`, from 0.
    pub index: i32,
    /// The profile written or matched (FAILED: the given profileId, if it was one).
    pub profile_id: Option<ID>,
    /// What happened.
    pub status: ImportStatus,
    /// FAILED only.
    pub error: Option<ImportError>,
}

/// The outcome of an import: counts, and one result per user in input order.
#[derive(SimpleObject)]
pub struct ImportUsersPayload {
    /// Users created.
    pub created: i32,
    /// Users updated.
    pub updated: i32,
    /// Users that already held what was imported.
    pub unchanged: i32,
    /// Users not imported.
    pub failed: i32,
    /// One per user, in input order.
    pub results: Vec<ImportResult>,
}

impl From<ImportIdentityInput> for ImportIdentity {
    fn from(i: ImportIdentityInput) -> Self {
        ImportIdentity {
            kind: IdentityKind::from(i.r#type).as_str().to_owned(),
            external_id: i.external_id,
            external_auth_type: i.external_auth_type,
            password_hash: i.password_hash,
            password: i.password,
        }
    }
}

impl From<ImportUserInput> for ImportUser {
    fn from(u: ImportUserInput) -> Self {
        ImportUser {
            profile_id: u.profile_id.map(|id| id.0),
            identities: u.identities.into_iter().map(Into::into).collect(),
            status: u.status.map(|s| ProfileStatus::from(s).as_str().to_owned()),
            created_at: u.created_at,
            last_login_at: u.last_login_at,
            user_name: u.user_name,
            contact_email: u.contact_email,
            country_code: u.country_code,
            language_code: u.language_code,
            time_zone_offset: u.time_zone_offset,
            picture_url: u.picture_url,
            is_tester: u.is_tester,
            summary_friend_data: u.summary_friend_data.map(|j| j.0),
            parent_profile_id: u.parent_profile_id.map(|id| id.0),
        }
    }
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Importing users.
#[derive(Default)]
pub struct ImportMutation;

#[Object(guard = "super::guard::RootScope::MUTATION")]
impl ImportMutation {
    /// Imports up to 1,000 users with their ids, identities, statuses and password hashes;
    /// each user is checked as a create would check it and written with an `import` audit
    /// event in its own transaction, so one bad user fails alone (its result says why) and
    /// never stops the others. Users are taken in order: a later user sees what an earlier one
    /// wrote. More than 1,000 users → `BAD_USER_INPUT` and nothing is imported.
    #[graphql(complexity = "5000 + child_complexity")]
    async fn import_users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The users and the mode.")] input: ImportUsersInput,
    ) -> Result<ImportUsersPayload> {
        let svc = services(ctx);
        let mode = match input.mode.unwrap_or(ImportMode::CreateOnly) {
            ImportMode::CreateOnly => import::ImportMode::CreateOnly,
            ImportMode::Upsert => import::ImportMode::Upsert,
        };
        if input.users.len() > import::MAX_IMPORT_BATCH {
            return Err(crate::error::AppError::bad_input(format!(
                "users must hold at most {} users",
                import::MAX_IMPORT_BATCH
            ))
            .into());
        }
        let users = input.users.into_iter().map(Into::into).collect();
        let report = import::import_users(
            &mut super::db(ctx).pool(),
            &svc.hasher,
            caller(ctx),
            users,
            mode,
        )
        .await?;
        Ok(ImportUsersPayload {
            created: count(report.count(import::ImportStatus::Created)),
            updated: count(report.count(import::ImportStatus::Updated)),
            unchanged: count(report.count(import::ImportStatus::Unchanged)),
            failed: count(report.count(import::ImportStatus::Failed)),
            results: report
                .results
                .into_iter()
                .map(|r| ImportResult {
                    index: count(r.index),
                    profile_id: r.profile_id.map(|id| ID(id.to_string())),
                    status: match r.status {
                        import::ImportStatus::Created => ImportStatus::Created,
                        import::ImportStatus::Updated => ImportStatus::Updated,
                        import::ImportStatus::Unchanged => ImportStatus::Unchanged,
                        import::ImportStatus::Failed => ImportStatus::Failed,
                    },
                    error: r.error.map(|e| ImportError {
                        code: e.code.to_owned(),
                        reason_code: e.reason_code,
                        message: e.message,
                    }),
                })
                .collect(),
        })
    }
}
