//! The GraphQL object types: `User`, `Identity`, `AuditEvent`, `UserExport` and the enums.
//! They wrap the row types and never hold a secret: no row they wrap has one.

use std::sync::Arc;

use super::datetime::DateTime;
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, ID, Json, Object, Result};

use super::limits::{audit_bytes, budget, charge_list, identity_bytes, json_bytes, user_bytes};
use super::loaders::{ChildrenLoader, IdentityLoader};
use crate::db::models;
use crate::db::models::{IdentityKind, ProfileStatus};
use crate::users::read::Export;

/// How a profile logs in.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum IdentityType {
    /// An email address with a password.
    Email,
    /// A login name (brainCloud universal id) with a password.
    UniversalId,
    /// An id in an external system, named by `externalAuthType`; no password.
    External,
}

impl From<IdentityType> for IdentityKind {
    fn from(t: IdentityType) -> Self {
        match t {
            IdentityType::Email => IdentityKind::Email,
            IdentityType::UniversalId => IdentityKind::UniversalId,
            IdentityType::External => IdentityKind::External,
        }
    }
}

impl From<IdentityKind> for IdentityType {
    fn from(k: IdentityKind) -> Self {
        match k {
            IdentityKind::Email => IdentityType::Email,
            IdentityKind::UniversalId => IdentityType::UniversalId,
            IdentityKind::External => IdentityType::External,
        }
    }
}

/// Whether a profile can be used.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum UserStatus {
    /// The profile works normally.
    Active,
    /// Blocked by `disableUser`: no password resets, reset or deletion links, or logins
    /// (`USER_DISABLED`) until `enableUser`. Reads, updates, `setPassword` and `deleteUser`
    /// still work.
    Disabled,
}

impl From<UserStatus> for ProfileStatus {
    fn from(s: UserStatus) -> Self {
        match s {
            UserStatus::Active => ProfileStatus::Active,
            UserStatus::Disabled => ProfileStatus::Disabled,
        }
    }
}

/// One way a profile logs in (brainCloud: a credential). Never carries the password or its hash.
pub struct Identity(pub models::Identity);

#[Object(serial)]
impl Identity {
    /// The kind of identity.
    async fn r#type(&self) -> IdentityType {
        IdentityKind::parse(&self.0.kind).map_or(IdentityType::External, Into::into)
    }

    /// The normalised email address, universal id, or external id.
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }

    /// The external system (EXTERNAL identities only).
    async fn external_auth_type(&self) -> Option<&str> {
        (!self.0.external_auth_type.is_empty()).then_some(self.0.external_auth_type.as_str())
    }

    /// Whether a password is set (true for EMAIL and UNIVERSAL_ID, even when it was generated
    /// at random and nobody knows it).
    async fn has_password(&self) -> bool {
        self.0.has_password
    }

    /// When the identity was added.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

/// A user (brainCloud: a profile) of the caller's app, or of one of its child apps when reached
/// through `children`.
#[derive(Clone)]
pub struct User {
    profile: Arc<models::Profile>,
    identities: Option<Arc<Vec<models::Identity>>>,
}

impl User {
    /// A user whose identities will be loaded (batched) if they are asked for.
    pub fn new(profile: models::Profile) -> Self {
        User {
            profile: Arc::new(profile),
            identities: None,
        }
    }

    /// A user whose identities are already known.
    pub fn with_identities(profile: models::Profile, identities: Vec<models::Identity>) -> Self {
        User {
            profile: Arc::new(profile),
            identities: Some(Arc::new(identities)),
        }
    }
}

#[Object(serial)]
impl User {
    /// The profile id (a UUID).
    async fn profile_id(&self) -> ID {
        ID(self.profile.profile_id.to_string())
    }

    /// The app (tenant) the profile belongs to.
    async fn app_id(&self) -> &str {
        &self.profile.app_id
    }

    /// Display name (brainCloud playerName).
    async fn user_name(&self) -> Option<&str> {
        self.profile.user_name.as_deref()
    }

    /// The address for mail (brainCloud emailAddress); separate from the EMAIL identity.
    async fn contact_email(&self) -> Option<&str> {
        self.profile.contact_email.as_deref()
    }

    /// Country code.
    async fn country_code(&self) -> Option<&str> {
        self.profile.country_code.as_deref()
    }

    /// Language code.
    async fn language_code(&self) -> Option<&str> {
        self.profile.language_code.as_deref()
    }

    /// Offset from UTC in hours.
    async fn time_zone_offset(&self) -> Option<f64> {
        self.profile.time_zone_offset
    }

    /// Picture URL.
    async fn picture_url(&self) -> Option<&str> {
        self.profile.picture_url.as_deref()
    }

    /// Whether this is a tester account.
    async fn is_tester(&self) -> bool {
        self.profile.is_tester
    }

    /// Free-form data shown to friends (brainCloud summaryFriendData).
    async fn summary_friend_data(&self) -> Option<Json<serde_json::Value>> {
        self.profile.summary_friend_data.clone().map(Json)
    }

    /// The parent profile, in the parent app (shared accounts), if any.
    async fn parent_profile_id(&self) -> Option<ID> {
        self.profile.parent_profile_id.map(|p| ID(p.to_string()))
    }

    /// When the profile was created.
    async fn created_at(&self) -> DateTime {
        self.profile.created_at.into()
    }

    /// When the profile last changed.
    async fn updated_at(&self) -> DateTime {
        self.profile.updated_at.into()
    }

    /// When the user last logged in (a successful `verifyPassword`), if ever.
    async fn last_login_at(&self) -> Option<DateTime> {
        self.profile.last_login_at.map(DateTime)
    }

    /// Whether the profile is active or disabled.
    async fn status(&self) -> UserStatus {
        if self.profile.is_disabled() {
            UserStatus::Disabled
        } else {
            UserStatus::Active
        }
    }

    /// When the profile was disabled; null while it is active.
    async fn disabled_at(&self) -> Option<DateTime> {
        self.profile.disabled_at.map(DateTime)
    }

    /// Why the profile was disabled, as `disableUser` was told; null while it is active.
    async fn disabled_reason(&self) -> Option<&str> {
        self.profile.disabled_reason.as_deref()
    }

    /// Successful `verifyPassword` calls.
    async fn login_count(&self) -> i32 {
        self.profile.login_count
    }

    /// 1 at creation, +1 on every change of the profile or its identities (not on logins).
    /// Give it to `updateUser` as `expectedVersion` to update only what you read.
    async fn version(&self) -> i32 {
        self.profile.version
    }

    /// How the user logs in. Loaded for all users of a response in one query.
    #[graphql(complexity = "child_complexity.saturating_mul(5).min(super::MAX_FIELD_COST)")]
    async fn identities(&self, ctx: &Context<'_>) -> Result<Vec<Identity>> {
        if let Some(known) = &self.identities {
            charge_list(ctx, &known[..], &[], identity_bytes)?;
        }
        let rows = match &self.identities {
            Some(known) => known.as_ref().clone(),
            None => ctx
                .data_unchecked::<DataLoader<IdentityLoader>>()
                .load_one((self.profile.app_id.clone(), self.profile.profile_id))
                .await?
                .unwrap_or_default(),
        };
        if self.identities.is_none() {
            charge_list(ctx, &rows, &[], identity_bytes)?;
        }
        Ok(rows.into_iter().map(Identity).collect())
    }

    /// Profiles (in child apps) whose parentProfileId is this profile. Loaded for all users of
    /// a response in one query.
    #[graphql(
        complexity = "child_complexity.saturating_mul(super::CHILDREN_PRICED).min(super::MAX_FIELD_COST)"
    )]
    async fn children(&self, ctx: &Context<'_>) -> Result<Vec<User>> {
        let rows = ctx
            .data_unchecked::<DataLoader<ChildrenLoader>>()
            .load_one((self.profile.app_id.clone(), self.profile.profile_id))
            .await?
            .unwrap_or_default();
        charge_list(ctx, &rows, &[], user_bytes)?;
        Ok(rows.into_iter().map(User::new).collect())
    }
}

/// One entry of a profile's audit trail.
pub struct AuditEvent(pub models::AuditEvent);

#[Object(serial)]
impl AuditEvent {
    /// The entry's id (increasing within an app).
    async fn id(&self) -> ID {
        ID(self.0.event_id.to_string())
    }

    /// When it happened (the transaction's time).
    async fn at(&self) -> DateTime {
        self.0.at.into()
    }

    /// Who did it: the token's `sub`, or the CLI or page that acted.
    async fn actor(&self) -> &str {
        &self.0.actor
    }

    /// The operation, e.g. `createUserEmailPassword`, `deleteUser`.
    async fn operation(&self) -> &str {
        &self.0.operation
    }

    /// What else is worth knowing about it (never a secret).
    async fn details(&self) -> Option<Json<serde_json::Value>> {
        self.0.details.clone().map(Json)
    }
}

/// Everything usersvc holds about a profile (brainCloud SysGetUserExport), without secrets.
pub struct UserExport(pub Export);

#[Object(serial)]
impl UserExport {
    /// The exported profile's id.
    async fn profile_id(&self) -> ID {
        ID(self.0.profile.profile_id.to_string())
    }

    /// Its app.
    async fn app_id(&self) -> &str {
        &self.0.profile.app_id
    }

    /// When the export was made.
    async fn exported_at(&self) -> DateTime {
        self.0.exported_at.into()
    }

    /// The profile.
    async fn profile(&self) -> User {
        User::with_identities(self.0.profile.clone(), self.0.identities.clone())
    }

    /// Its identities (brainCloud credentials).
    async fn credentials(&self, ctx: &Context<'_>) -> Result<Vec<Identity>> {
        charge_list(ctx, &self.0.identities, &[], identity_bytes)?;
        Ok(self.0.identities.iter().cloned().map(Identity).collect())
    }

    /// Its children in child apps.
    #[graphql(
        complexity = "child_complexity.saturating_mul(super::CHILDREN_PRICED).min(super::MAX_FIELD_COST)"
    )]
    async fn children(&self, ctx: &Context<'_>) -> Result<Vec<User>> {
        charge_list(ctx, &self.0.children, &[], user_bytes)?;
        Ok(self.0.children.iter().cloned().map(User::new).collect())
    }

    /// Its audit trail, oldest first.
    async fn audit_events(&self, ctx: &Context<'_>) -> Result<Vec<AuditEvent>> {
        charge_list(ctx, &self.0.audit_events, &[], audit_bytes)?;
        Ok(self
            .0
            .audit_events
            .iter()
            .cloned()
            .map(AuditEvent)
            .collect())
    }

    /// The whole export as one JSON document.
    async fn document(&self, ctx: &Context<'_>) -> Result<Json<serde_json::Value>> {
        let document = self.0.document();
        budget(ctx).charge(json_bytes(&document))?;
        Ok(Json(document))
    }
}
