//! Mutation root, third part: the user lifecycle — updating profiles, changing, attaching and
//! detaching identities, disabling and enabling users (`cloudcode:users:update`), and checking
//! passwords (`cloudcode:users:authenticate`). Every rule lives in `crate::users`.

use async_graphql::{Context, ID, InputObject, Json, MaybeUndefined, Object, Result, SimpleObject};

use super::types::{IdentityType, User};
use super::{caller, services};
use crate::users::identities::{AttachIdentity, ChangeIdentity, DetachIdentity};
use crate::users::login::Login;
use crate::users::update::{Patch, UserPatch};
use crate::users::{self};

/// Changes to a user's profile fields. Every field but `profileId` and `expectedVersion`:
/// absent = unchanged, null = cleared; values are checked as the creates check them.
#[derive(InputObject)]
pub struct UpdateUserInput {
    /// The profile id (a UUID).
    pub profile_id: ID,
    /// The `version` the caller last read: when the stored version differs,
    /// `VERSION_CONFLICT` and nothing changes. Absent: no check.
    pub expected_version: Option<i32>,
    /// Display name (brainCloud playerName), at most 128 characters.
    pub user_name: MaybeUndefined<String>,
    /// Address for mail (brainCloud emailAddress).
    pub contact_email: MaybeUndefined<String>,
    /// Country code, at most 16 letters, digits, '-' or '_'.
    pub country_code: MaybeUndefined<String>,
    /// Language code, at most 16 letters, digits, '-' or '_'.
    pub language_code: MaybeUndefined<String>,
    /// Offset from UTC in hours, -24 to 24.
    pub time_zone_offset: MaybeUndefined<f64>,
    /// Picture URL: http or https, at most 2048 characters.
    pub picture_url: MaybeUndefined<String>,
    /// Whether this is a tester account; cannot be null.
    pub is_tester: MaybeUndefined<bool>,
    /// Free-form data shown to friends, at most 16 KiB of JSON.
    pub summary_friend_data: MaybeUndefined<Json<serde_json::Value>>,
    /// A profile of the caller's app's parent app to be this profile's parent
    /// (`APP_PARENT_MISMATCH` otherwise; `DUPLICATE_CHILD` when it has a child in this app
    /// already); null detaches the profile from its parent.
    pub parent_profile_id: MaybeUndefined<ID>,
}

fn patch<T, U>(v: MaybeUndefined<T>, f: impl FnOnce(T) -> U) -> Patch<U> {
    match v {
        MaybeUndefined::Undefined => Patch::Keep,
        MaybeUndefined::Null => Patch::Clear,
        MaybeUndefined::Value(v) => Patch::Set(f(v)),
    }
}

impl From<UpdateUserInput> for UserPatch {
    fn from(i: UpdateUserInput) -> Self {
        UserPatch {
            profile_id: i.profile_id.0,
            expected_version: i.expected_version,
            user_name: patch(i.user_name, |v| v),
            contact_email: patch(i.contact_email, |v| v),
            country_code: patch(i.country_code, |v| v),
            language_code: patch(i.language_code, |v| v),
            time_zone_offset: patch(i.time_zone_offset, |v| v),
            picture_url: patch(i.picture_url, |v| v),
            is_tester: patch(i.is_tester, |v| v),
            summary_friend_data: patch(i.summary_friend_data, |j| j.0),
            parent_profile_id: patch(i.parent_profile_id, |id| id.0),
        }
    }
}

/// A new external id for a user's EMAIL or UNIVERSAL_ID identity (brainCloud
/// SysChangeEmailIdentity).
#[derive(InputObject)]
pub struct ChangeIdentityInput {
    /// The profile id (a UUID).
    pub profile_id: ID,
    /// Which identity: EMAIL or UNIVERSAL_ID.
    pub r#type: IdentityType,
    /// The new email address or universal id; normalised as at creation. Taken by another
    /// user → `USER_ALREADY_EXISTS`.
    pub new_external_id: String,
    /// EMAIL only: the contact email becomes the new address too.
    #[graphql(default_with = "Some(false)")]
    pub update_contact_email: Option<bool>,
}

/// An identity to add to a user.
#[derive(InputObject)]
pub struct AttachIdentityInput {
    /// The profile id (a UUID).
    pub profile_id: ID,
    /// The kind of identity; the user may have one of each (of each externalAuthType for
    /// EXTERNAL), else `DUPLICATE_IDENTITY_TYPE`.
    pub r#type: IdentityType,
    /// The email address, universal id or external id; unique within the app
    /// (`USER_ALREADY_EXISTS`).
    pub external_id: String,
    /// The external system: required for EXTERNAL, refused otherwise.
    pub external_auth_type: Option<String>,
    /// EMAIL and UNIVERSAL_ID: the password, checked against the app's policy; null: a random
    /// password nobody is told. Refused for EXTERNAL.
    pub password: Option<String>,
}

/// An identity to remove from a user.
#[derive(InputObject)]
pub struct DetachIdentityInput {
    /// The profile id (a UUID).
    pub profile_id: ID,
    /// The kind of identity. The user's only identity cannot go (`LAST_IDENTITY`).
    pub r#type: IdentityType,
    /// The external system: required for EXTERNAL, refused otherwise.
    pub external_auth_type: Option<String>,
}

/// A user to disable.
#[derive(InputObject)]
pub struct DisableUserInput {
    /// The profile id (a UUID).
    pub profile_id: ID,
    /// Why, for the people who will read `disabledReason`: one line, at most 500 characters.
    pub reason: Option<String>,
}

/// A user to enable.
#[derive(InputObject)]
pub struct EnableUserInput {
    /// The profile id (a UUID).
    pub profile_id: ID,
}

/// A password to check.
#[derive(InputObject)]
pub struct VerifyPasswordInput {
    /// Which identity: EMAIL or UNIVERSAL_ID.
    pub r#type: IdentityType,
    /// The email address or universal id, matched after normalisation.
    pub external_id: String,
    /// The password to check.
    pub password: String,
}

/// The user after the change.
#[derive(SimpleObject)]
pub struct UserPayload {
    /// The user as it is now.
    pub user: User,
}

/// The user whose password was right.
#[derive(SimpleObject)]
pub struct VerifyPasswordPayload {
    /// The user, with this login recorded (`lastLoginAt`, `loginCount`).
    pub user: User,
}

/// The user lifecycle.
#[derive(Default)]
pub struct LifecycleMutation;

#[Object(guard = "super::guard::RootScope::MUTATION")]
impl LifecycleMutation {
    /// Changes a user's profile fields (brainCloud's UpdateUserName, UpdateContactEmail,
    /// UpdateUserPictureUrl, UpdateTimeZoneOffset, UpdateLanguageCode, UpdateCountryCode,
    /// UpdateSummaryFriendData, UpdateIsTester…): only the fields given. `version` and
    /// `updatedAt` move only when something changed; the audit event names the changed fields.
    /// Scope: `cloudcode:users:update`.
    #[graphql(complexity = "200 + child_complexity")]
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which user, and what to change.")] input: UpdateUserInput,
    ) -> Result<UserPayload> {
        let profile =
            users::update::update(&mut super::db(ctx).pool(), caller(ctx), input.into()).await?;
        Ok(UserPayload {
            user: User::new(profile),
        })
    }

    /// Changes the external id of a user's EMAIL or UNIVERSAL_ID identity, keeping its password
    /// (brainCloud SysChangeEmailIdentity). Revokes outstanding reset links; for EMAIL, mails
    /// the old address a notice. No identity of that kind → `MISSING_IDENTITY_ERROR`.
    /// Scope: `cloudcode:users:update`.
    #[graphql(complexity = "200 + child_complexity")]
    async fn change_identity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which identity, and its new external id.")] input: ChangeIdentityInput,
    ) -> Result<UserPayload> {
        let svc = services(ctx);
        let (profile, ids) = users::identities::change_identity(
            &mut super::db(ctx).pool(),
            &svc.mail,
            caller(ctx),
            ChangeIdentity {
                profile_id: input.profile_id.0,
                kind: input.r#type.into(),
                new_external_id: input.new_external_id,
                update_contact_email: input.update_contact_email.unwrap_or(false),
            },
        )
        .await?;
        Ok(UserPayload {
            user: User::with_identities(profile, ids),
        })
    }

    /// Adds an identity to a user. Scope: `cloudcode:users:update`.
    #[graphql(complexity = "2000 + child_complexity")]
    async fn attach_identity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which user, and the identity to add.")] input: AttachIdentityInput,
    ) -> Result<UserPayload> {
        let svc = services(ctx);
        let (profile, ids) = users::identities::attach_identity(
            &mut super::db(ctx).pool(),
            &svc.hasher,
            caller(ctx),
            AttachIdentity {
                profile_id: input.profile_id.0,
                kind: input.r#type.into(),
                external_id: input.external_id,
                external_auth_type: input.external_auth_type,
                password: input.password,
            },
        )
        .await?;
        Ok(UserPayload {
            user: User::with_identities(profile, ids),
        })
    }

    /// Removes an identity from a user, never the last one (`LAST_IDENTITY`).
    /// Scope: `cloudcode:users:update`.
    #[graphql(complexity = "200 + child_complexity")]
    async fn detach_identity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which user, and the identity to remove.")] input: DetachIdentityInput,
    ) -> Result<UserPayload> {
        let (profile, ids) = users::identities::detach_identity(
            &mut super::db(ctx).pool(),
            caller(ctx),
            DetachIdentity {
                profile_id: input.profile_id.0,
                kind: input.r#type.into(),
                external_auth_type: input.external_auth_type,
            },
        )
        .await?;
        Ok(UserPayload {
            user: User::with_identities(profile, ids),
        })
    }

    /// Disables a user: revokes every outstanding reset and deletion link and drops queued
    /// reset mail; until `enableUser`, resets, reset and deletion links and logins answer
    /// `USER_DISABLED`. Disabling a disabled user changes nothing. Scope: `cloudcode:users:update`.
    #[graphql(complexity = "200 + child_complexity")]
    async fn disable_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which user, and why.")] input: DisableUserInput,
    ) -> Result<UserPayload> {
        let profile = users::status::disable(
            &mut super::db(ctx).pool(),
            caller(ctx),
            &input.profile_id,
            input.reason,
        )
        .await?;
        Ok(UserPayload {
            user: User::new(profile),
        })
    }

    /// Enables a disabled user; enabling an active user changes nothing.
    /// Scope: `cloudcode:users:update`.
    #[graphql(complexity = "200 + child_complexity")]
    async fn enable_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which user.")] input: EnableUserInput,
    ) -> Result<UserPayload> {
        let profile =
            users::status::enable(&mut super::db(ctx).pool(), caller(ctx), &input.profile_id)
                .await?;
        Ok(UserPayload {
            user: User::new(profile),
        })
    }

    /// Checks a password against a user's EMAIL or UNIVERSAL_ID identity and records the login
    /// (`lastLoginAt`, `loginCount`; no version change, no audit event). An unknown identity
    /// and a wrong password both get `INVALID_CREDENTIALS`; more failures for one identity than
    /// the app allows in its window get `TOO_MANY_ATTEMPTS`; a disabled user gets
    /// `USER_DISABLED`, only when the password was right. Scope: `cloudcode:users:authenticate`.
    #[graphql(complexity = "2000 + child_complexity")]
    async fn verify_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The identity and the password.")] input: VerifyPasswordInput,
    ) -> Result<VerifyPasswordPayload> {
        let svc = services(ctx);
        let profile = users::login::verify_password(
            &mut super::db(ctx).pool(),
            &svc.hasher,
            caller(ctx),
            Login {
                kind: input.r#type.into(),
                external_id: input.external_id,
                password: input.password,
            },
        )
        .await?;
        Ok(VerifyPasswordPayload {
            user: User::new(profile),
        })
    }
}
