//! verifyPassword: checks a password against an EMAIL or UNIVERSAL_ID identity, for Cloud
//! Code that logs users in against the passwords usersvc stores.
//!
//! What an answer can tell, and what it cannot:
//! - an unknown identity and a wrong password get the same `INVALID_CREDENTIALS` after the
//!   same work: the password is checked against a dummy hash of the current parameters;
//! - attempts are counted per identity, known or not, in the database
//!   ([`crate::db::logins`]), before the password is checked: past the app's
//!   `login.max_failures` within `login.failure_window_minutes`, `TOO_MANY_ATTEMPTS` without
//!   any check, on every instance, however many attempts run at once; a correct password clears
//!   the count;
//! - `USER_DISABLED` only after the password proved right, so a wrong guess learns nothing.
//!
//! A success records the login (`lastLoginAt`, `loginCount`); it is not an admin change, so
//! neither `version` nor `updatedAt` moves and no audit event is written. A matching hash that
//! is not current argon2id is replaced by one that is.

use super::caller_app;
use crate::auth::Caller;
use crate::db::models::{IdentityKind, Profile};
use crate::db::{self, DbPool, get_conn};
use crate::error::{AppError, AppResult};
use crate::normalise;
use crate::passwords::{Hasher, MAX_PASSWORD_BYTES};

/// A verifyPassword call's arguments.
#[derive(Clone)]
pub struct Login {
    /// EMAIL or UNIVERSAL_ID.
    pub kind: IdentityKind,
    pub external_id: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Checks a password; returns the profile with the login recorded.
pub async fn verify_password(
    pool: &mut DbPool<'_>,
    hasher: &Hasher,
    caller: &Caller,
    login: Login,
) -> AppResult<Profile> {
    let kind = login.kind;
    let key = match kind {
        // The lookup form: an address that is not one simply matches nothing.
        IdentityKind::Email => normalise::email_key(&login.external_id)?,
        IdentityKind::UniversalId => normalise::universal_id(&login.external_id)?,
        IdentityKind::External => {
            return Err(AppError::bad_input(
                "verifyPassword checks EMAIL or UNIVERSAL_ID identities",
            ));
        }
    };
    if login.password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::bad_input(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes long"
        )));
    }

    let (credential, window_minutes) = {
        let mut conn = get_conn(pool).await?;
        let app = caller_app(&mut conn, caller).await?;
        let counted = db::logins::count_attempt(
            &mut conn,
            &app.app_id,
            kind.as_str(),
            &key,
            app.login_max_failures,
            app.login_failure_window_minutes,
        )
        .await?;
        if counted.is_none() {
            tracing::info!(app_id = %app.app_id, kind = kind.as_str(), "login refused: too many attempts");
            return Err(AppError::TooManyAttempts);
        }
        let credential =
            db::logins::find_credential(&mut conn, &app.app_id, kind.as_str(), &key).await?;
        (credential, app.login_failure_window_minutes)
    };

    let stored = credential.as_ref().and_then(|c| c.password_hash.clone());
    let checked = hasher
        .verify(&caller.app_id, stored.clone(), login.password.clone())
        .await?;
    let (credential, stored, outdated) = match (credential, stored, checked) {
        (Some(c), Some(stored), Ok(v)) if v.matches => (c, stored, v.outdated),
        (credential, _, checked) => {
            if let (Some(c), Err(why)) = (&credential, &checked) {
                tracing::warn!(app_id = %caller.app_id, profile_id = %c.profile_id, reason = ?why, "a stored password hash cannot be checked");
            }
            let mut conn = get_conn(pool).await?;
            db::logins::prune_passed(&mut conn, &caller.app_id, window_minutes).await?;
            return Err(AppError::InvalidCredentials);
        }
    };
    let profile_id = credential.profile_id;

    // A current hash, made before any write (no connection held while hashing).
    let upgrade = if outdated {
        Some(hasher.hash(&caller.app_id, login.password).await?)
    } else {
        None
    };
    // Statements that need no transaction: each is right on its own, whatever happens to the
    // others (a cleared count stays cleared: the password was right).
    let mut conn = get_conn(pool).await?;
    let recorded = db::profile_updates::record_login(
        &mut conn,
        &caller.app_id,
        profile_id,
        kind.as_str(),
        &key,
    )
    .await?;
    let Some(profile) = recorded else {
        if db::profiles::is_disabled(&mut conn, &caller.app_id, profile_id).await? {
            return Err(AppError::UserDisabled);
        }
        // Deleted while its password was being checked.
        return Err(AppError::InvalidCredentials);
    };
    if let Some(new) = &upgrade {
        let replaced = db::logins::upgrade_hash(
            &mut conn,
            &caller.app_id,
            profile_id,
            kind.as_str(),
            &stored,
            new,
        )
        .await?;
        if replaced {
            tracing::info!(app_id = %caller.app_id, profile_id = %profile_id, "password hash upgraded to current argon2id");
        }
    }
    Ok(profile)
}
