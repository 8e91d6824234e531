//! The service layer's one error type. Storage code returns diesel's and the pool's errors,
//! which convert into it; the layers above turn it into what their clients see (GraphQL
//! errors with their codes, and the hosted pages' messages).
//!
//! [`AppError`]'s variants are the contract's error codes. It deliberately does **not**
//! implement `Display`: async-graphql converts any `Display` type into an error carrying its
//! text and no code, so a `?` on a type with `Display` could put a database message in front
//! of a client. Without it, the only way to a GraphQL error is the one conversion that sets
//! `extensions.code` and `reasonCode` and logs unexpected failures instead of showing them.

use std::fmt;

/// Everything a service can answer instead of a result.
pub enum AppError {
    /// A malformed argument: lengths, ranges, formats (`BAD_USER_INPUT`, 40660).
    BadUserInput(String),
    /// An email argument that is not an address; names the argument (`EMAIL_NOT_VALID`, 40221).
    EmailNotValid(&'static str),
    /// The identity already exists in this app (`USER_ALREADY_EXISTS`, 40683).
    UserAlreadyExists,
    /// The externalAuthType is not allowed by the app's settings (`INVALID_EXT_AUTH_TYPE`, 40684).
    InvalidExtAuthType(String),
    /// No such profile in the caller's app (`PROFILE_NOT_FOUND`, 40446).
    ProfileNotFound,
    /// The profile has no identity of the needed kind (`MISSING_IDENTITY_ERROR`, 40206).
    MissingIdentity(&'static str),
    /// A universal-id reset for a profile without a contact email (`SECURITY_ERROR`, 40209).
    SecurityError,
    /// A sender or reply-to parameter that is not acceptable (`INVALID_FROM_ADDRESS` 40485,
    /// `INVALID_FROM_NAME` 40486, `INVALID_REPLY_TO_ADDRESS` 40487, `INVALID_REPLY_TO_NAME` 40488).
    InvalidMailbox(MailboxField),
    /// Too many mails for one profile, one recipient address or the app (`RATE_LIMITED`).
    RateLimited(String),
    /// The password breaks the app's policy; the text names the rule (`INVALID_PASSWORD_CONTENT`, 550022).
    InvalidPasswordContent(String),
    /// Unknown email template id (`INVALID_TEMPLATE_ID`, 40375).
    InvalidTemplateId(String),
    /// parentProfileId does not name a profile of the parent app (`APP_PARENT_MISMATCH`, 40378).
    AppParentMismatch(&'static str),
    /// The parent profile already has a child in this app (`DUPLICATE_CHILD`, 40381).
    DuplicateChild,
    /// A cursor this server did not make for this app, filter and order (`INVALID_CURSOR`, 40383).
    InvalidCursor,
    /// `expectedVersion` differs from the stored version (`VERSION_CONFLICT`, 40344).
    VersionConflict,
    /// The profile already has an identity of that kind (`DUPLICATE_IDENTITY_TYPE`, 40211).
    DuplicateIdentityType,
    /// Detaching the profile's only identity (`LAST_IDENTITY`, 40210).
    LastIdentity,
    /// `verifyPassword`: an unknown identity or a wrong password, indistinguishable
    /// (`INVALID_CREDENTIALS`, 40307).
    InvalidCredentials,
    /// The profile is disabled (`USER_DISABLED`).
    UserDisabled,
    /// Too many failed `verifyPassword` calls for one identity (`TOO_MANY_ATTEMPTS`).
    TooManyAttempts,
    /// A one-time link that cannot be used, and why (the hosted pages show it; `BAD_USER_INPUT`
    /// elsewhere).
    DeadLink(DeadLink),
    /// The caller may not do this: a missing scope, or a token for an app that does not
    /// exist (`FORBIDDEN`). The text says which.
    Forbidden(String),
    /// A dependency (the database) is down or saturated; retrying later may work.
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
    /// Anything unexpected. The cause is logged, never shown.
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    /// An unexpected failure with a cause for the log.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        AppError::Internal(cause.into())
    }

    /// A malformed argument.
    pub fn bad_input(message: impl Into<String>) -> Self {
        AppError::BadUserInput(message.into())
    }

    /// The contract's `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadUserInput(_) | AppError::DeadLink(_) => "BAD_USER_INPUT",
            AppError::EmailNotValid(_) => "EMAIL_NOT_VALID",
            AppError::UserAlreadyExists => "USER_ALREADY_EXISTS",
            AppError::InvalidExtAuthType(_) => "INVALID_EXT_AUTH_TYPE",
            AppError::ProfileNotFound => "PROFILE_NOT_FOUND",
            AppError::MissingIdentity(_) => "MISSING_IDENTITY_ERROR",
            AppError::SecurityError => "SECURITY_ERROR",
            AppError::InvalidMailbox(f) => f.code(),
            AppError::RateLimited(_) => "RATE_LIMITED",
            AppError::InvalidPasswordContent(_) => "INVALID_PASSWORD_CONTENT",
            AppError::InvalidTemplateId(_) => "INVALID_TEMPLATE_ID",
            AppError::AppParentMismatch(_) => "APP_PARENT_MISMATCH",
            AppError::DuplicateChild => "DUPLICATE_CHILD",
            AppError::InvalidCursor => "INVALID_CURSOR",
            AppError::VersionConflict => "VERSION_CONFLICT",
            AppError::DuplicateIdentityType => "DUPLICATE_IDENTITY_TYPE",
            AppError::LastIdentity => "LAST_IDENTITY",
            AppError::InvalidCredentials => "INVALID_CREDENTIALS",
            AppError::UserDisabled => "USER_DISABLED",
            AppError::TooManyAttempts => "TOO_MANY_ATTEMPTS",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::Unavailable(_) | AppError::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// brainCloud's reason code, where it has one.
    pub fn reason_code(&self) -> Option<i32> {
        Some(match self {
            AppError::BadUserInput(_) | AppError::DeadLink(_) => 40660,
            AppError::EmailNotValid(_) => 40221,
            AppError::UserAlreadyExists => 40683,
            AppError::InvalidExtAuthType(_) => 40684,
            AppError::ProfileNotFound => 40446,
            AppError::MissingIdentity(_) => 40206,
            AppError::SecurityError => 40209,
            AppError::InvalidMailbox(f) => f.reason_code(),
            AppError::InvalidPasswordContent(_) => 550022,
            AppError::InvalidTemplateId(_) => 40375,
            AppError::AppParentMismatch(_) => 40378,
            AppError::DuplicateChild => 40381,
            AppError::InvalidCursor => 40383,
            AppError::VersionConflict => 40344,
            AppError::DuplicateIdentityType => 40211,
            AppError::LastIdentity => 40210,
            AppError::InvalidCredentials => 40307,
            AppError::Forbidden(_)
            | AppError::RateLimited(_)
            | AppError::UserDisabled
            | AppError::TooManyAttempts
            | AppError::Unavailable(_)
            | AppError::Internal(_) => {
                return None;
            }
        })
    }

    /// The message a person reads. Never contains a cause's text.
    pub fn message(&self) -> String {
        match self {
            AppError::BadUserInput(m) => m.clone(),
            AppError::EmailNotValid(field) => format!("{field} is not a valid email address"),
            AppError::UserAlreadyExists => {
                "a user with this identity already exists in this app".into()
            }
            AppError::InvalidExtAuthType(t) => {
                format!("externalAuthType \"{t}\" is not allowed for this app")
            }
            AppError::ProfileNotFound => "no such profile in this app".into(),
            AppError::MissingIdentity(kind) => format!("the profile has no {kind} identity"),
            AppError::SecurityError => {
                "the profile has no contact email to send a universal-id reset to".into()
            }
            AppError::InvalidMailbox(f) => f.message().into(),
            AppError::RateLimited(why) => why.clone(),
            AppError::InvalidPasswordContent(rule) => format!("invalid password: {rule}"),
            AppError::InvalidTemplateId(id) => format!("no email template \"{id}\" in this app"),
            AppError::AppParentMismatch(why) => why.to_string(),
            AppError::DuplicateChild => "the parent profile already has a child in this app".into(),
            AppError::InvalidCursor => {
                "the cursor was not made by this server for this app, filter and order".into()
            }
            AppError::VersionConflict => {
                "the profile has changed since the expected version; read it again and retry".into()
            }
            AppError::DuplicateIdentityType => {
                "the profile already has an identity of this type".into()
            }
            AppError::LastIdentity => {
                "this is the profile's only identity; attach another one first".into()
            }
            AppError::InvalidCredentials => "the identity or the password is wrong".into(),
            AppError::UserDisabled => "the user is disabled".into(),
            AppError::TooManyAttempts => {
                "too many failed attempts for this identity; try again later".into()
            }
            AppError::DeadLink(why) => format!("the link cannot be used: {why:?}"),
            AppError::Forbidden(why) => why.clone(),
            AppError::Unavailable(_) => {
                "the service is temporarily unavailable; retry later".into()
            }
            AppError::Internal(_) => "internal server error".into(),
        }
    }
}

/// Why a one-time link cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLink {
    /// Not a link of ours (or for another app or profile).
    Unknown,
    /// Past its expiry.
    Expired,
    /// Already used.
    Used,
    /// Replaced by a newer link, or revoked by a password change.
    Revoked,
}

/// Which caller-supplied mailbox part was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxField {
    /// The app's `mail.from` setting, which the composed sender would use.
    AppFrom,
    FromAddress,
    FromName,
    ReplyToAddress,
    ReplyToName,
}

impl MailboxField {
    fn code(self) -> &'static str {
        match self {
            MailboxField::AppFrom | MailboxField::FromAddress => "INVALID_FROM_ADDRESS",
            MailboxField::FromName => "INVALID_FROM_NAME",
            MailboxField::ReplyToAddress => "INVALID_REPLY_TO_ADDRESS",
            MailboxField::ReplyToName => "INVALID_REPLY_TO_NAME",
        }
    }

    fn reason_code(self) -> i32 {
        match self {
            MailboxField::AppFrom | MailboxField::FromAddress => 40485,
            MailboxField::FromName => 40486,
            MailboxField::ReplyToAddress => 40487,
            MailboxField::ReplyToName => 40488,
        }
    }

    fn message(self) -> &'static str {
        match self {
            MailboxField::AppFrom => {
                "the app's mail.from setting is not a valid sender (change it with `usersvc app set`)"
            }
            MailboxField::FromAddress => "serviceParams.fromAddress is not a valid email address",
            MailboxField::FromName => {
                "serviceParams.fromName must be one line of at most 128 visible characters"
            }
            MailboxField::ReplyToAddress => {
                "serviceParams.replyToAddress is not a valid email address"
            }
            MailboxField::ReplyToName => {
                "serviceParams.replyToName must be one line of at most 128 visible characters"
            }
        }
    }
}

impl fmt::Debug for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Unavailable(cause) => write!(f, "Unavailable({cause})"),
            AppError::Internal(cause) => write!(f, "Internal({cause})"),
            other => write!(f, "{}({})", other.code(), other.message()),
        }
    }
}

/// Whether a database error means "the database went away or is busy; the same request may
/// work a moment later": a lost or closed connection, a server shutting down or starting up,
/// a cancelled statement (`statement_timeout`, `lock_timeout`), a serialisation failure.
fn retryable(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    let Error::DatabaseError(kind, info) = e else {
        return false;
    };
    if matches!(
        kind,
        DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::SerializationFailure
    ) {
        return true;
    }
    // PostgreSQL's own wording of SQLSTATE classes 08 (connection exception) and 57 (operator
    // intervention), which diesel reports without a kind of their own.
    const MESSAGES: [&str; 9] = [
        "canceling statement due to",
        "terminating connection",
        "connection closed",
        "server closed the connection",
        "the database system is shutting down",
        "the database system is starting up",
        "the database system is in recovery mode",
        "the database system is not yet accepting connections",
        "deadlock detected",
    ];
    let message = info.message();
    MESSAGES.iter().any(|m| message.starts_with(m))
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        if retryable(&e) {
            AppError::Unavailable(Box::new(e))
        } else {
            AppError::Internal(Box::new(e))
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for AppError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        AppError::Unavailable(Box::new(e))
    }
}

/// The service layer's result.
pub type AppResult<T> = Result<T, AppError>;
