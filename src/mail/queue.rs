//! Queueing: the one way a service puts mail in the outbox, inside its own transaction.
//!
//! Before a message is queued, its envelope is composed exactly as the worker will compose it
//! ([`super::envelope::compose`]), and the app's limits are checked: at most
//! `mail.per_address_per_hour` mails to one recipient address (normalised as identifiers are:
//! NFKC, trimmed, lower-cased, so case and full-width variants are one address) and at most
//! `mail.per_app_per_hour` mails for the whole app, every recipient of every message counted —
//! To, Cc and Bcc alike. The count lives in the database (`outbox_recipients`) and is taken
//! under a transaction-scoped advisory lock per app, so every instance sees the same count and
//! concurrent calls cannot slip past a limit together.
//!
//! What happens to a message that cannot be sent depends on who asked for it:
//! [`OverLimit::Refuse`] for a mail the caller asked for (a reset, a welcome mail), which fails
//! the call with `RATE_LIMITED` or the sender's error and queues nothing;
//! [`OverLimit::Record`] for a notice that is the side effect of another change (password
//! changed, account deleted), which is recorded as `DROPPED` with the reason so that the
//! change itself still succeeds.

use std::collections::HashMap;

use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::Kind;
use super::MailSettings;
use super::envelope::{self, Refusal};
use super::params::StoredParams;
use crate::db::models::{App, IdentityKind, NewOutboxMessage, OutboxMessage};
use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::normalise;

/// What to do with a message that cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    /// Fail the call (`RATE_LIMITED`, or the sender's error); nothing is queued.
    Refuse,
    /// Record the message as `DROPPED` with the reason; the call goes on.
    Record,
}

/// A message to queue.
#[derive(Debug, Clone)]
pub struct NewMail<'a> {
    pub app: &'a App,
    /// The profile the message depends on (dropped unsent when it is deleted).
    pub profile_id: Option<Uuid>,
    pub kind: Kind,
    /// For resets: whose password the link sets.
    pub identity_kind: Option<IdentityKind>,
    /// The account's address.
    pub recipient: &'a str,
    pub template_id: Option<&'a str>,
    pub params: &'a StoredParams,
    /// For resets: the link's lifetime, fixed now by the database clock.
    pub token_ttl_minutes: Option<i32>,
}

/// Every recipient's normalised address, To first.
fn recipient_keys(mail: &NewMail<'_>) -> Result<Vec<String>, Refusal> {
    let key = |a: &str, refusal: Refusal| normalise::email_key(a).map_err(|_| refusal);
    let mut keys = vec![key(mail.recipient, Refusal::Recipient)?];
    for a in &mail.params.cc {
        keys.push(key(a, Refusal::Cc)?);
    }
    for a in &mail.params.bcc {
        keys.push(key(a, Refusal::Bcc)?);
    }
    Ok(keys)
}

/// Which limit the message would break, if any, given what was sent in the last hour.
fn over_limit(app: &App, keys: &[String], sent: &HashMap<String, i64>, all: i64) -> Option<String> {
    let mut this: HashMap<&str, i64> = HashMap::new();
    for k in keys {
        *this.entry(k.as_str()).or_default() += 1;
    }
    let per_address = i64::from(app.mail_per_address_per_hour);
    if this
        .iter()
        .any(|(k, n)| sent.get(*k).copied().unwrap_or(0) + n > per_address)
    {
        return Some(format!(
            "at most {per_address} mails per recipient address per hour"
        ));
    }
    let per_app = i64::from(app.mail_per_app_per_hour);
    let n = i64::try_from(keys.len()).unwrap_or(i64::MAX);
    (all + n > per_app).then(|| format!("at most {per_app} mails per hour for this app"))
}

async fn insert(
    conn: &mut AsyncPgConnection,
    mail: &NewMail<'_>,
    dropped: Option<&str>,
) -> AppResult<OutboxMessage> {
    let row = NewOutboxMessage {
        app_id: &mail.app.app_id,
        message_id: Uuid::now_v7(),
        profile_id: mail.profile_id,
        kind: mail.kind.as_str(),
        identity_kind: mail.identity_kind.map(IdentityKind::as_str),
        recipient: mail.recipient,
        template_id: mail.template_id,
        params: serde_json::to_value(mail.params).map_err(AppError::internal)?,
        status: if dropped.is_some() {
            "DROPPED"
        } else {
            "QUEUED"
        },
        last_error: dropped,
    };
    Ok(db::outbox::insert(conn, &row, mail.token_ttl_minutes).await?)
}

/// Queues a message in the caller's transaction, or refuses or records it as `over` says when
/// it cannot be sent. Returns the stored message (`DROPPED` when it was only recorded).
pub async fn queue(
    conn: &mut AsyncPgConnection,
    settings: &MailSettings,
    mail: NewMail<'_>,
    over: OverLimit,
) -> AppResult<OutboxMessage> {
    let checked = envelope::compose(
        &settings.default_from,
        mail.app.mail_from.as_deref(),
        mail.params,
        mail.recipient,
    )
    .and_then(|_| recipient_keys(&mail));
    let keys = match (checked, over) {
        (Ok(keys), _) => keys,
        (Err(refusal), OverLimit::Refuse) => return Err(refusal.into_error()),
        (Err(refusal), OverLimit::Record) => {
            let why = format!("not sent: {}", refusal.reason());
            tracing::warn!(app_id = %mail.app.app_id, kind = mail.kind.as_str(), why, "outbox: notice recorded unsent");
            return insert(conn, &mail, Some(&why)).await;
        }
    };
    let app_id = &mail.app.app_id;
    db::outbox::lock_app_mail(conn, app_id).await?;
    let (per_address, all) = db::outbox::recipients_last_hour(conn, app_id, &keys).await?;
    let sent: HashMap<String, i64> = per_address.into_iter().collect();
    if let Some(limit) = over_limit(mail.app, &keys, &sent, all) {
        metrics::counter!("usersvc_mail_rate_limited_total", "kind" => mail.kind.as_str())
            .increment(1);
        return match over {
            OverLimit::Refuse => Err(AppError::RateLimited(limit)),
            OverLimit::Record => {
                let why = format!("not sent: {limit}");
                tracing::warn!(app_id = %app_id, kind = mail.kind.as_str(), why, "outbox: notice recorded unsent");
                insert(conn, &mail, Some(&why)).await
            }
        };
    }
    let row = insert(conn, &mail, None).await?;
    db::outbox::add_recipients(conn, app_id, row.message_id, &keys).await?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(per_address: i32, per_app: i32) -> App {
        let now = chrono::Utc::now();
        App {
            app_id: "a".into(),
            name: "a".into(),
            parent_app_id: None,
            password_min_length: 8,
            password_max_length: 128,
            password_min_digits: 0,
            password_min_uppercase: 0,
            password_min_lowercase: 0,
            password_min_symbols: 0,
            reset_ttl_minutes: 60,
            reset_mails_per_hour: 5,
            mail_from: None,
            external_auth_types: Vec::new(),
            public_url: None,
            created_at: now,
            updated_at: now,
            mail_per_address_per_hour: per_address,
            mail_per_app_per_hour: per_app,
            login_max_failures: 10,
            login_failure_window_minutes: 15,
        }
    }

    #[test]
    fn variants_of_one_address_are_one_address() {
        let params = StoredParams {
            cc: vec!["Ann@Example.com".into()],
            bcc: vec![
                "ａｎｎ@ｅｘａｍｐｌｅ.ｃｏｍ".into(),
                "bob@example.com".into(),
            ],
            ..StoredParams::default()
        };
        let a = app(10, 1000);
        let mail = NewMail {
            app: &a,
            profile_id: None,
            kind: Kind::PasswordChanged,
            identity_kind: None,
            recipient: " ANN@example.COM ",
            template_id: None,
            params: &params,
            token_ttl_minutes: None,
        };
        let keys = recipient_keys(&mail).unwrap();
        assert_eq!(
            keys,
            [
                "ann@example.com",
                "ann@example.com",
                "ann@example.com",
                "bob@example.com"
            ]
        );
    }

    #[test]
    fn every_recipient_counts_against_both_limits() {
        let keys: Vec<String> = ["x@e.com", "x@e.com", "y@e.com"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let sent = HashMap::from([("x@e.com".to_owned(), 8)]);
        assert_eq!(over_limit(&app(10, 1000), &keys, &sent, 8), None);
        assert!(over_limit(&app(9, 1000), &keys, &sent, 8).is_some());
        assert!(over_limit(&app(10, 10), &keys, &sent, 8).is_some());
        assert_eq!(over_limit(&app(10, 11), &keys, &sent, 8), None);
        assert!(over_limit(&app(0, 1000), &keys, &HashMap::new(), 0).is_some());
    }
}
