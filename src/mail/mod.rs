//! Mail: templates (minijinja), strict sender/recipient checks, the SMTP or file transport, and
//! the durable outbox with its workers.
//!
//! A mutation that sends mail only writes a row to the outbox, in its own transaction, through
//! [`queue`] (which checks the sender and the app's limits first); workers in every `serve`
//! process claim due rows one at a time (`FOR UPDATE SKIP LOCKED` with a lease they renew while
//! they work), render and send them with no database connection held, retry with backoff and
//! give up after a number of attempts, recording why. An SMTP server that is down, slow or
//! refusing never makes a mutation fail or wait.

pub mod address;
pub mod envelope;
pub mod outbox;
pub mod params;
mod prepare;
pub mod queue;
pub mod status;
pub mod templates;
pub mod transport;

use std::time::Duration;

use tokio::sync::Notify;

use crate::db::models::App;
pub use crate::links::LinkKey;

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A password reset link.
    PasswordReset,
    /// Welcome mail of `notificationTemplateId`.
    AccountCreated,
    /// Confirmation that a self-service deletion happened.
    AccountDeleted,
    /// Notice that the password was changed.
    PasswordChanged,
    /// Notice to an old email address that changeIdentity replaced it.
    IdentityChanged,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PasswordReset => "PASSWORD_RESET",
            Kind::AccountCreated => "ACCOUNT_CREATED",
            Kind::AccountDeleted => "ACCOUNT_DELETED",
            Kind::PasswordChanged => "PASSWORD_CHANGED",
            Kind::IdentityChanged => "IDENTITY_CHANGED",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Kind::PasswordReset,
            Kind::AccountCreated,
            Kind::AccountDeleted,
            Kind::PasswordChanged,
            Kind::IdentityChanged,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// How the server sends mail, as configured.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// Base of links; default `http://{bound address}`.
    pub public_url: Option<String>,
    /// Default sender, e.g. `usersvc <no-reply@localhost>`.
    pub from: String,
    /// SMTP server URL; `None` writes `.eml` files to `mail_dir`.
    pub smtp_url: Option<String>,
    /// Where file mail goes.
    pub mail_dir: std::path::PathBuf,
    /// SMTP connect/command timeout.
    pub smtp_timeout: std::time::Duration,
    /// Attempts before giving up a message.
    pub max_attempts: i32,
    /// First retry delay (doubling).
    pub retry_base: std::time::Duration,
    /// How long a claimed message stays with its worker.
    pub lease: std::time::Duration,
    /// Whether this process runs an outbox worker.
    pub worker: bool,
    /// The secret mail links are derived from (`USERSVC_LINK_KEY`), at least 32 bytes: the same
    /// for every instance on a database, so that a retry by any of them sends the same link.
    pub link_key: Vec<u8>,
}

/// How mail is sent and retried.
#[derive(Debug)]
pub struct MailSettings {
    /// Base of links when the app has no `public_url` of its own.
    pub public_url: String,
    /// Sender when neither the call nor the app names one.
    pub default_from: lettre::message::Mailbox,
    /// Attempts before a message is given up.
    pub max_attempts: i32,
    /// First retry delay; doubles per attempt up to [`MailSettings::max_retry_delay`].
    pub retry_base: Duration,
    /// Longest retry delay.
    pub max_retry_delay: Duration,
    /// How long a claimed message stays invisible to other workers.
    pub lease: Duration,
    /// How often idle workers look for due messages.
    pub poll_interval: Duration,
    /// Wakes the local worker when a message is queued.
    pub wake: Notify,
    /// The secret mail links are derived from.
    pub link_key: LinkKey,
}

impl MailSettings {
    /// Settings with the defaults: 8 attempts, retries from 5 s doubling to 10 min, 60 s lease,
    /// 1 s poll.
    pub fn new(
        public_url: String,
        default_from: lettre::message::Mailbox,
        link_key: LinkKey,
    ) -> Self {
        MailSettings {
            public_url: public_url.trim_end_matches('/').to_owned(),
            default_from,
            max_attempts: 8,
            retry_base: Duration::from_secs(5),
            max_retry_delay: Duration::from_secs(600),
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            wake: Notify::new(),
            link_key,
        }
    }

    /// The base of an app's links: its own `public_url`, else the server's.
    pub fn link_base<'a>(&'a self, app: &'a App) -> &'a str {
        app.public_url
            .as_deref()
            .unwrap_or(&self.public_url)
            .trim_end_matches('/')
    }

    /// The delay before attempt `attempts + 1`.
    pub fn backoff(&self, attempts: i32) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(0);
        self.retry_base
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.max_retry_delay)
    }
}
