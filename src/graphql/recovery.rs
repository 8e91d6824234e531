//! Mutation root, second half: password resets, `setPassword` and self-service deletion links.
//! Scopes: `cloudcode:users:password` and `cloudcode:users:deletion-url`.

use super::datetime::DateTime;
use async_graphql::{Context, ID, InputObject, Json, Object, Result, SimpleObject};

use super::types::{IdentityType, User};
use super::{caller, services};
use crate::mail::params::ServiceParams;
use crate::recovery::reset::{ResetRequest, ResetUrlRequest, ResetVia, SetPassword};
use crate::recovery::{self};

/// How to send a reset mail (brainCloud's serviceParams of the Advanced variants).
#[derive(InputObject, Default)]
pub struct EmailServiceParams {
    /// An app email template (see `usersvc template put`); unknown → `INVALID_TEMPLATE_ID`.
    pub template_id: Option<String>,
    /// Template variables (a JSON object), on top of the built-in ones.
    pub dynamic_data: Option<Json<serde_json::Value>>,
    /// brainCloud's older name for template variables; dynamicData wins where both set one.
    pub substitutions: Option<Json<serde_json::Value>>,
    /// Ad-hoc subject (a template) when no templateId is given.
    pub subject: Option<String>,
    /// Ad-hoc body (a template) when no templateId is given; include `{{ webUrl }}`.
    pub body: Option<String>,
    /// Whether the ad-hoc body is HTML.
    pub use_html: Option<bool>,
    /// Sender address; invalid → `INVALID_FROM_ADDRESS`.
    pub from_address: Option<String>,
    /// Sender name; invalid → `INVALID_FROM_NAME`.
    pub from_name: Option<String>,
    /// Reply-to address; invalid → `INVALID_REPLY_TO_ADDRESS`.
    pub reply_to_address: Option<String>,
    /// Reply-to name; invalid → `INVALID_REPLY_TO_NAME`.
    pub reply_to_name: Option<String>,
    /// Copy recipients (at most 10), shown in the Cc header. They never receive the live link:
    /// they get a separate copy of the mail in which the link is replaced by a short note that
    /// it went to the account's own address. Each counts against the app's mail limits.
    pub cc: Option<Vec<String>>,
    /// Blind copy recipients (at most 10), in no header. Like cc, they get the copy without the
    /// live link, and each counts against the app's mail limits.
    pub bcc: Option<Vec<String>>,
    /// Labels recorded with the message (header `X-Usersvc-Categories` and the audit trail); no
    /// effect on delivery.
    pub categories: Option<Vec<String>>,
}

impl From<EmailServiceParams> for ServiceParams {
    fn from(p: EmailServiceParams) -> Self {
        ServiceParams {
            template_id: p.template_id,
            dynamic_data: p.dynamic_data.map(|j| j.0),
            substitutions: p.substitutions.map(|j| j.0),
            subject: p.subject,
            body: p.body,
            use_html: p.use_html,
            from_address: p.from_address,
            from_name: p.from_name,
            reply_to_address: p.reply_to_address,
            reply_to_name: p.reply_to_name,
            cc: p.cc,
            bcc: p.bcc,
            categories: p.categories,
        }
    }
}

/// A reset mail to send.
#[derive(InputObject)]
pub struct SendPasswordResetInput {
    /// The profile id (a UUID).
    pub profile_id: ID,
    /// Link lifetime, 1 to 43200 minutes; default: the app's setting (60).
    pub token_ttl_in_minutes: Option<i32>,
    /// Template, sender and variables (the Advanced variants).
    pub service_params: Option<EmailServiceParams>,
}

/// A queued reset mail.
#[derive(SimpleObject)]
pub struct SendPasswordResetPayload {
    /// The queued message's id.
    pub email_id: ID,
    /// Where it goes.
    pub recipient: String,
    /// When its link stops working.
    pub expires_at: DateTime,
}

/// A reset link to return instead of mailing.
#[derive(InputObject)]
pub struct CreatePasswordResetUrlInput {
    /// The profile id (a UUID).
    pub profile_id: ID,
    /// Whose password the link sets: EMAIL or UNIVERSAL_ID.
    pub identity_type: IdentityType,
    /// Link lifetime, 1 to 43200 minutes; default: the app's setting (60).
    pub token_ttl_in_minutes: Option<i32>,
}

/// A self-service deletion link to make.
#[derive(InputObject)]
pub struct CreateSelfServiceDeletionUrlInput {
    /// The profile id (a UUID).
    pub profile_id: ID,
    /// Link lifetime, 1 to 43200 minutes; default 1440 (one day).
    pub token_ttl_in_minutes: Option<i32>,
}

/// A single-use link.
#[derive(SimpleObject)]
pub struct UrlPayload {
    /// The link, built from the configured public URL.
    pub url: String,
    /// When it stops working.
    pub expires_at: DateTime,
}

/// A password to set.
#[derive(InputObject)]
pub struct SetPasswordInput {
    /// The profile id (a UUID).
    pub profile_id: ID,
    /// The new password, checked against the app's policy.
    pub password: String,
    /// Whose password: UNIVERSAL_ID (brainCloud's SysSetPasswordUniversalId) or EMAIL.
    #[graphql(default_with = "Some(IdentityType::UniversalId)")]
    pub identity_type: Option<IdentityType>,
}

/// The user whose password was set.
#[derive(SimpleObject)]
pub struct SetPasswordPayload {
    /// The user.
    pub user: User,
}

/// Password resets and deletion links.
#[derive(Default)]
pub struct RecoveryMutation;

async fn reset(
    ctx: &Context<'_>,
    via: ResetVia,
    input: SendPasswordResetInput,
) -> Result<SendPasswordResetPayload> {
    let svc = services(ctx);
    let q = recovery::reset::send_reset(
        &mut super::db(ctx).pool(),
        &svc.mail,
        caller(ctx),
        via,
        ResetRequest {
            profile_id: input.profile_id.0,
            ttl_minutes: input.token_ttl_in_minutes,
            params: input.service_params.map(Into::into),
        },
    )
    .await?;
    Ok(SendPasswordResetPayload {
        email_id: ID(q.email_id.to_string()),
        recipient: q.recipient,
        expires_at: q.expires_at.into(),
    })
}

#[Object(guard = "super::guard::RootScope::MUTATION")]
impl RecoveryMutation {
    /// Mails a password reset link to the profile's EMAIL identity (brainCloud
    /// SysSendPasswordResetEmail, …Advanced, …WithExpiry, …AdvancedWithExpiry). Returns once
    /// the mail is durably queued. Scope: `cloudcode:users:password`.
    #[graphql(complexity = "200 + child_complexity")]
    async fn send_password_reset_email(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whose password, and how to mail.")] input: SendPasswordResetInput,
    ) -> Result<SendPasswordResetPayload> {
        reset(ctx, ResetVia::Email, input).await
    }

    /// Mails a reset link for the profile's UNIVERSAL_ID identity to its contact email
    /// (brainCloud SysSendPasswordResetUniversalId and its variants); `SECURITY_ERROR` without a
    /// contact email. Scope: `cloudcode:users:password`.
    #[graphql(complexity = "200 + child_complexity")]
    async fn send_password_reset_universal_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whose password, and how to mail.")] input: SendPasswordResetInput,
    ) -> Result<SendPasswordResetPayload> {
        reset(ctx, ResetVia::UniversalId, input).await
    }

    /// Makes a reset link and returns it without mailing it. Scope: `cloudcode:users:password`.
    #[graphql(complexity = "200 + child_complexity")]
    async fn create_password_reset_url(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whose password.")] input: CreatePasswordResetUrlInput,
    ) -> Result<UrlPayload> {
        let svc = services(ctx);
        let link = recovery::reset::create_reset_url(
            &mut super::db(ctx).pool(),
            &svc.mail,
            caller(ctx),
            ResetUrlRequest {
                profile_id: input.profile_id.0,
                kind: input.identity_type.into(),
                ttl_minutes: input.token_ttl_in_minutes,
            },
        )
        .await?;
        Ok(UrlPayload {
            url: link.url,
            expires_at: link.expires_at.into(),
        })
    }

    /// Sets a password (brainCloud SysSetPasswordUniversalId; EMAIL too). Revokes the
    /// profile's outstanding links, notifies its contact email, writes an audit event.
    /// Scope: `cloudcode:users:password`.
    #[graphql(complexity = "2000 + child_complexity")]
    async fn set_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whose password, and the new one.")] input: SetPasswordInput,
    ) -> Result<SetPasswordPayload> {
        let svc = services(ctx);
        let kind = input
            .identity_type
            .unwrap_or(IdentityType::UniversalId)
            .into();
        let (profile, ids) = recovery::reset::set_password(
            &mut super::db(ctx).pool(),
            &svc.hasher,
            &svc.mail,
            caller(ctx),
            SetPassword {
                profile_id: input.profile_id.0,
                password: input.password,
                kind,
            },
        )
        .await?;
        Ok(SetPasswordPayload {
            user: User::with_identities(profile, ids),
        })
    }

    /// Makes a single-use link to a page where the user confirms the deletion of their account
    /// (brainCloud SysCreateSelfServiceDeletionUrlForUser). Scope: `cloudcode:users:deletion-url`.
    #[graphql(complexity = "200 + child_complexity")]
    async fn create_self_service_deletion_url(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whose account.")] input: CreateSelfServiceDeletionUrlInput,
    ) -> Result<UrlPayload> {
        let svc = services(ctx);
        let link = recovery::deletion::create_deletion_url(
            &mut super::db(ctx).pool(),
            &svc.mail,
            caller(ctx),
            &input.profile_id,
            input.token_ttl_in_minutes,
        )
        .await?;
        Ok(UrlPayload {
            url: link.url,
            expires_at: link.expires_at.into(),
        })
    }
}
