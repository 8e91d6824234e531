//! Mutation root: creating and deleting users. Scopes: `cloudcode:users:create` for the
//! three creates, `cloudcode:users:delete` for `deleteUser`; see [`crate::auth::scopes`].

use async_graphql::{Context, ID, InputObject, Json, Object, Result, SimpleObject};

use super::types::User;
use super::{caller, services};
use crate::users::create::{NewIdentitySpec, NewUser};
use crate::users::fields::ProfileFields;
use crate::users::{self};

/// Optional profile fields, accepted by all three create inputs.
#[derive(InputObject, Default)]
pub struct ProfileFieldsInput {
    /// Display name (brainCloud playerName), at most 128 characters.
    pub user_name: Option<String>,
    /// Address for mail (brainCloud emailAddress). For email-password users it defaults to
    /// the email.
    pub contact_email: Option<String>,
    /// Country code, at most 16 letters, digits, '-' or '_'.
    pub country_code: Option<String>,
    /// Language code, at most 16 letters, digits, '-' or '_'.
    pub language_code: Option<String>,
    /// Offset from UTC in hours, -24 to 24.
    pub time_zone_offset: Option<f64>,
    /// Picture URL: http or https, at most 2048 characters.
    pub picture_url: Option<String>,
    /// Whether this is a tester account (default false).
    pub is_tester: Option<bool>,
    /// Free-form data shown to friends, at most 16 KiB of JSON.
    pub summary_friend_data: Option<Json<serde_json::Value>>,
    /// A profile of the caller's app's parent app to be this profile's parent; else
    /// `APP_PARENT_MISMATCH`.
    pub parent_profile_id: Option<ID>,
    /// An app email template to send an "account created" mail with, to the contact email;
    /// unknown → `INVALID_TEMPLATE_ID` and nothing is created.
    pub notification_template_id: Option<String>,
}

impl From<ProfileFieldsInput> for ProfileFields {
    fn from(f: ProfileFieldsInput) -> Self {
        ProfileFields {
            user_name: f.user_name,
            contact_email: f.contact_email,
            country_code: f.country_code,
            language_code: f.language_code,
            time_zone_offset: f.time_zone_offset,
            picture_url: f.picture_url,
            is_tester: f.is_tester,
            summary_friend_data: f.summary_friend_data.map(|j| j.0),
            parent_profile_id: f.parent_profile_id.map(|id| id.0),
            notification_template_id: f.notification_template_id,
        }
    }
}

/// A new user who logs in with an email address and a password.
#[derive(InputObject)]
pub struct CreateUserEmailPasswordInput {
    /// The email address; stored trimmed and lower-cased. Unique within the app.
    pub email: String,
    /// The password, checked against the app's policy. Null: a random password nobody is told
    /// (the user must reset it).
    pub password: Option<String>,
    #[graphql(flatten)]
    pub profile: ProfileFieldsInput,
}

/// A new user who logs in with a universal id (login name) and a password.
#[derive(InputObject)]
pub struct CreateUserUniversalIdInput {
    /// The login name; stored trimmed and lower-cased. Unique within the app.
    pub universal_id: String,
    /// The password, checked against the app's policy. Null: a random password nobody is told.
    pub password: Option<String>,
    #[graphql(flatten)]
    pub profile: ProfileFieldsInput,
}

/// A new user who logs in through an external system.
#[derive(InputObject)]
pub struct CreateUserExternalAuthInput {
    /// The user's id in the external system; stored trimmed. Unique within the app and type.
    pub external_id: String,
    /// The external system's name, e.g. "corpdir"; the app may restrict which are allowed.
    pub external_auth_type: String,
    #[graphql(flatten)]
    pub profile: ProfileFieldsInput,
}

/// The created user.
#[derive(SimpleObject)]
pub struct CreateUserPayload {
    /// The new user, with its identity.
    pub user: User,
}

/// Which user to delete.
#[derive(InputObject)]
pub struct DeleteUserInput {
    /// The profile id (a UUID).
    pub profile_id: ID,
    /// Also delete its children (recursively, across child apps). Otherwise they stay and
    /// lose their parentProfileId.
    #[graphql(default_with = "Some(false)")]
    pub delete_children: Option<bool>,
}

/// What a delete removed.
#[derive(SimpleObject)]
pub struct DeleteUserPayload {
    /// The deleted profiles, the requested one first; empty when it did not exist.
    pub deleted_profile_ids: Vec<ID>,
}

/// Creating and deleting users of the caller's app.
#[derive(Default)]
pub struct UsersMutation;

/// Every mutation.
#[derive(async_graphql::MergedObject, Default)]
pub struct Mutation(
    UsersMutation,
    super::recovery::RecoveryMutation,
    super::lifecycle::LifecycleMutation,
    super::import::ImportMutation,
);

async fn create(ctx: &Context<'_>, input: NewUser) -> Result<CreateUserPayload> {
    let svc = services(ctx);
    let created = users::create::create(
        &mut super::db(ctx).pool(),
        &svc.hasher,
        &svc.mail,
        caller(ctx),
        input,
    )
    .await?;
    Ok(CreateUserPayload {
        user: User::with_identities(created.profile, created.identities),
    })
}

#[Object(guard = "super::guard::RootScope::MUTATION")]
impl UsersMutation {
    /// Creates a user with an email identity (brainCloud SysCreateUserEmailPassword).
    /// Scope: `cloudcode:users:create`.
    #[graphql(complexity = "2000 + child_complexity")]
    async fn create_user_email_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new user.")] input: CreateUserEmailPasswordInput,
    ) -> Result<CreateUserPayload> {
        let identity = NewIdentitySpec::Email {
            email: input.email,
            password: input.password,
        };
        create(
            ctx,
            NewUser {
                identity,
                fields: input.profile.into(),
            },
        )
        .await
    }

    /// Creates a user with a universal id (brainCloud SysCreateUserUniversalId).
    /// Scope: `cloudcode:users:create`.
    #[graphql(complexity = "2000 + child_complexity")]
    async fn create_user_universal_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new user.")] input: CreateUserUniversalIdInput,
    ) -> Result<CreateUserPayload> {
        let identity = NewIdentitySpec::UniversalId {
            universal_id: input.universal_id,
            password: input.password,
        };
        create(
            ctx,
            NewUser {
                identity,
                fields: input.profile.into(),
            },
        )
        .await
    }

    /// Creates a user with an external identity (brainCloud SysCreateUserExternalAuth).
    /// Scope: `cloudcode:users:create`.
    #[graphql(complexity = "200 + child_complexity")]
    async fn create_user_external_auth(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new user.")] input: CreateUserExternalAuthInput,
    ) -> Result<CreateUserPayload> {
        let identity = NewIdentitySpec::External {
            external_id: input.external_id,
            external_auth_type: input.external_auth_type,
        };
        create(
            ctx,
            NewUser {
                identity,
                fields: input.profile.into(),
            },
        )
        .await
    }

    /// Deletes a user (brainCloud SysDeleteUser); idempotent: a profile that does not exist
    /// gives an empty list. Scope: `cloudcode:users:delete`.
    #[graphql(complexity = "200 + child_complexity")]
    async fn delete_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which user.")] input: DeleteUserInput,
    ) -> Result<DeleteUserPayload> {
        let deleted = users::delete::delete(
            &mut super::db(ctx).pool(),
            caller(ctx),
            &input.profile_id,
            input.delete_children.unwrap_or(false),
        )
        .await?;
        Ok(DeleteUserPayload {
            deleted_profile_ids: deleted.into_iter().map(|id| ID(id.to_string())).collect(),
        })
    }
}
