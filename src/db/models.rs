//! Row types: what a query reads (`Profile`, `Identity`, …) and what an insert writes
//! (`NewProfile`, …). The identity read model has no password hash field at all — it selects
//! only whether one exists — so a hash cannot leak through a type that was never loaded.
//!
//! In the insert types `None` means NULL (`treat_none_as_default_value = false`): none of their
//! nullable columns has another default, and an insert whose `None`s meant DEFAULT would have
//! SQL that depends on the values, which diesel never caches as a prepared statement.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::schema::{apps, audit_events, identities, profiles};

/// A tenant and its settings.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = apps, check_for_backend(diesel::pg::Pg))]
pub struct App {
    pub app_id: String,
    pub name: String,
    pub parent_app_id: Option<String>,
    pub password_min_length: i32,
    pub password_max_length: i32,
    pub password_min_digits: i32,
    pub password_min_uppercase: i32,
    pub password_min_lowercase: i32,
    pub password_min_symbols: i32,
    pub reset_ttl_minutes: i32,
    pub reset_mails_per_hour: i32,
    pub mail_from: Option<String>,
    pub external_auth_types: Vec<Option<String>>,
    pub public_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Mails one recipient address (normalised) may be sent per hour, cc and bcc counted.
    pub mail_per_address_per_hour: i32,
    /// Mails (recipients) the whole app may send per hour.
    pub mail_per_app_per_hour: i32,
    /// Failed `verifyPassword` attempts per identity within the window before further attempts
    /// are refused.
    pub login_max_failures: i32,
    /// The window of `login_max_failures`, in minutes.
    pub login_failure_window_minutes: i32,
}

/// A new tenant; settings take their column defaults.
#[derive(Debug, Insertable)]
#[diesel(table_name = apps)]
pub struct NewApp<'a> {
    pub app_id: &'a str,
    pub name: &'a str,
    pub parent_app_id: Option<&'a str>,
}

/// A user of an app. Serialises (for the export document) with the names of the GraphQL `User`.
#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Serialize)]
#[diesel(table_name = profiles, check_for_backend(diesel::pg::Pg))]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub app_id: String,
    pub profile_id: Uuid,
    pub user_name: Option<String>,
    pub contact_email: Option<String>,
    pub country_code: Option<String>,
    pub language_code: Option<String>,
    pub time_zone_offset: Option<f64>,
    pub picture_url: Option<String>,
    pub is_tester: bool,
    pub summary_friend_data: Option<serde_json::Value>,
    #[serde(skip)]
    pub parent_app_id: Option<String>,
    pub parent_profile_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// `ACTIVE` or `DISABLED` ([`ACTIVE`], [`DISABLED`]).
    pub status: String,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    /// Successful `verifyPassword` calls.
    pub login_count: i32,
    /// 1 at creation, +1 on every change of the profile or its identities.
    pub version: i32,
}

/// The status of a profile that can be used.
pub const ACTIVE: &str = "ACTIVE";
/// The status of a disabled profile: no resets, links or logins.
pub const DISABLED: &str = "DISABLED";

impl Profile {
    /// Whether the profile is disabled.
    pub fn is_disabled(&self) -> bool {
        self.status == DISABLED
    }
}

/// The states of a profile, as stored in `profiles.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileStatus {
    Active,
    Disabled,
}

impl ProfileStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileStatus::Active => ACTIVE,
            ProfileStatus::Disabled => DISABLED,
        }
    }
}

/// A profile to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = profiles, treat_none_as_default_value = false)]
pub struct NewProfile<'a> {
    pub app_id: &'a str,
    pub profile_id: Uuid,
    pub user_name: Option<&'a str>,
    pub contact_email: Option<&'a str>,
    pub country_code: Option<&'a str>,
    pub language_code: Option<&'a str>,
    pub time_zone_offset: Option<f64>,
    pub picture_url: Option<&'a str>,
    pub is_tester: bool,
    pub summary_friend_data: Option<&'a serde_json::Value>,
    pub parent_app_id: Option<&'a str>,
    pub parent_profile_id: Option<Uuid>,
}

/// The stored fields an update changes; `None` leaves a column as it is, `Some(None)` clears
/// it. Version and `updated_at` are set by the query that applies it.
#[derive(Debug, Default, Clone, PartialEq, AsChangeset)]
#[diesel(table_name = profiles)]
pub struct ProfileChanges<'a> {
    pub user_name: Option<Option<&'a str>>,
    pub contact_email: Option<Option<&'a str>>,
    pub country_code: Option<Option<&'a str>>,
    pub language_code: Option<Option<&'a str>>,
    pub time_zone_offset: Option<Option<f64>>,
    pub picture_url: Option<Option<&'a str>>,
    pub is_tester: Option<bool>,
    pub summary_friend_data: Option<Option<&'a serde_json::Value>>,
    pub parent_app_id: Option<Option<&'a str>>,
    pub parent_profile_id: Option<Option<Uuid>>,
}

/// How a profile logs in, without its secret. Serialises (for the export document) with the
/// names of the GraphQL `Identity`.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = identities, check_for_backend(diesel::pg::Pg))]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    #[serde(skip)]
    pub app_id: String,
    #[serde(skip)]
    pub profile_id: Uuid,
    /// `EMAIL`, `UNIVERSAL_ID` or `EXTERNAL`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Empty unless `kind` is `EXTERNAL` (serialised as null then).
    #[serde(serialize_with = "empty_as_null")]
    pub external_auth_type: String,
    pub external_id: String,
    #[diesel(
        select_expression = identities::password_hash.is_not_null(),
        select_expression_type = diesel::dsl::IsNotNull<identities::password_hash>
    )]
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
}

/// An identity to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = identities, treat_none_as_default_value = false)]
pub struct NewIdentity<'a> {
    pub app_id: &'a str,
    pub profile_id: Uuid,
    pub kind: &'a str,
    pub external_auth_type: &'a str,
    pub external_id: &'a str,
    pub password_hash: Option<&'a str>,
}

/// One entry of the audit trail. Serialises (for the export document) with the names of the
/// GraphQL `AuditEvent`.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = audit_events, check_for_backend(diesel::pg::Pg))]
pub struct AuditEvent {
    #[serde(skip)]
    pub app_id: String,
    #[serde(rename = "id", serialize_with = "as_string")]
    pub event_id: i64,
    #[serde(skip)]
    pub profile_id: Option<Uuid>,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub operation: String,
    pub details: Option<serde_json::Value>,
    #[serde(skip)]
    pub request_id: Option<String>,
}

fn empty_as_null<S: serde::Serializer>(s: &str, out: S) -> Result<S::Ok, S::Error> {
    if s.is_empty() {
        out.serialize_none()
    } else {
        out.serialize_str(s)
    }
}

fn as_string<S: serde::Serializer>(n: &i64, out: S) -> Result<S::Ok, S::Error> {
    out.collect_str(n)
}

/// An audit entry to insert; `at` is the transaction's time.
#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events, treat_none_as_default_value = false)]
pub struct NewAuditEvent<'a> {
    pub app_id: &'a str,
    pub profile_id: Option<Uuid>,
    pub actor: &'a str,
    pub operation: &'a str,
    pub details: Option<serde_json::Value>,
    pub request_id: Option<&'a str>,
}

/// An app's email template (minijinja source).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = super::schema::email_templates, check_for_backend(diesel::pg::Pg))]
pub struct EmailTemplate {
    pub app_id: String,
    pub template_id: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A one-time secret behind a reset or deletion link, known only by its hash.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = super::schema::one_time_tokens, check_for_backend(diesel::pg::Pg))]
pub struct OneTimeToken {
    pub token_hash: Vec<u8>,
    pub app_id: String,
    pub profile_id: Uuid,
    pub purpose: String,
    pub identity_kind: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A message in the outbox.
#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = super::schema::outbox, check_for_backend(diesel::pg::Pg))]
pub struct OutboxMessage {
    pub app_id: String,
    pub message_id: Uuid,
    pub profile_id: Option<Uuid>,
    pub kind: String,
    pub identity_kind: Option<String>,
    pub recipient: String,
    pub template_id: Option<String>,
    pub params: serde_json::Value,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The claim that holds the message now (a fresh one per claim).
    pub lease_token: Option<Uuid>,
}

/// A message to queue.
#[derive(Debug, Insertable)]
#[diesel(table_name = super::schema::outbox, treat_none_as_default_value = false)]
pub struct NewOutboxMessage<'a> {
    pub app_id: &'a str,
    pub message_id: Uuid,
    pub profile_id: Option<Uuid>,
    pub kind: &'a str,
    pub identity_kind: Option<&'a str>,
    pub recipient: &'a str,
    pub template_id: Option<&'a str>,
    pub params: serde_json::Value,
    /// `QUEUED`, or `DROPPED` for a notice recorded but not sent.
    pub status: &'a str,
    /// Why a message was dropped when it was asked for.
    pub last_error: Option<&'a str>,
}

/// The kinds of identity, as stored in `identities.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKind {
    Email,
    UniversalId,
    External,
}

impl IdentityKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Email => "EMAIL",
            IdentityKind::UniversalId => "UNIVERSAL_ID",
            IdentityKind::External => "EXTERNAL",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "EMAIL" => Some(IdentityKind::Email),
            "UNIVERSAL_ID" => Some(IdentityKind::UniversalId),
            "EXTERNAL" => Some(IdentityKind::External),
            _ => None,
        }
    }
}
