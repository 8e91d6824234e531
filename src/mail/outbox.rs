//! The outbox workers: claim due messages, prepare them (mint the reset link now, check the
//! profile still exists, render the template), send them with no connection held, and record
//! the outcome.
//!
//! Delivery is at least once: a worker that dies after the SMTP server accepted a message but
//! before recording it leaves the message to be sent again when its lease runs out. A live
//! link is never stored: reset links are minted here, just before sending (replacing any older
//! link of the profile), and only their hash is kept.

use std::sync::Arc;

use chrono::Utc;
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::MailSettings;
use super::address;
use super::templates::{self, Builtin, TemplateSource};
use super::transport::{OutgoingMail, Transport};
use crate::db::models::IdentityKind;
use crate::db::models::{App, OutboxMessage};
use crate::db::tokens::{Expiry, NewToken};
use crate::db::{self, Db};
use crate::error::AppResult;
use crate::mail::params::StoredParams;

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

    fn parse(s: &str) -> Option<Self> {
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

/// A worker: one per `serve` process (several processes share the outbox safely).
#[derive(Clone)]
pub struct Worker {
    db: Db,
    transport: Arc<Transport>,
    settings: Arc<MailSettings>,
}

enum Prepared {
    Send(Box<OutgoingMail>),
    Drop(&'static str),
    Fail(String),
}

impl Worker {
    /// A worker sending through `transport`.
    pub fn new(db: Db, transport: Arc<Transport>, settings: Arc<MailSettings>) -> Self {
        Worker {
            db,
            transport,
            settings,
        }
    }

    /// Runs until `shutdown` turns true: works through due messages, then waits to be woken
    /// by a new message or for the poll interval.
    pub fn spawn(self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if *shutdown.borrow() {
                    return;
                }
                let handled = match self.tick().await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = ?e, "outbox: could not claim messages");
                        0
                    }
                };
                if handled == 0 {
                    tokio::select! {
                        _ = self.settings.wake.notified() => {}
                        _ = tokio::time::sleep(self.settings.poll_interval) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        })
    }

    /// Claims one batch of due messages and handles each; returns how many.
    pub async fn tick(&self) -> AppResult<usize> {
        let batch = {
            let mut conn = self.db.conn().await?;
            db::outbox::claim(&mut conn, 16, self.settings.lease).await?
        };
        let n = batch.len();
        for msg in batch {
            if let Err(e) = self.handle(&msg).await {
                // The lease brings it back; nothing is lost.
                tracing::warn!(message_id = %msg.message_id, error = ?e, "outbox: message left for a later attempt");
            }
        }
        Ok(n)
    }

    async fn handle(&self, msg: &OutboxMessage) -> AppResult<()> {
        let prepared = self.prepare(msg).await?;
        let mail = match prepared {
            Prepared::Send(mail) => mail,
            Prepared::Drop(why) => {
                let mut conn = self.db.conn().await?;
                db::outbox::mark_dropped(&mut conn, &msg.app_id, msg.message_id, why).await?;
                tracing::info!(message_id = %msg.message_id, why, "outbox: dropped");
                return Ok(());
            }
            Prepared::Fail(why) => {
                let mut conn = self.db.conn().await?;
                db::outbox::mark_failed(&mut conn, &msg.app_id, msg.message_id, &why, None).await?;
                tracing::warn!(message_id = %msg.message_id, why, "outbox: given up");
                return Ok(());
            }
        };
        let result = self.transport.send(&mail).await;
        let mut conn = self.db.conn().await?;
        match result {
            Ok(()) => {
                db::outbox::mark_sent(&mut conn, &msg.app_id, msg.message_id).await?;
                metrics::counter!("usersvc_mail_sent_total", "kind" => msg.kind.clone())
                    .increment(1);
                tracing::info!(message_id = %msg.message_id, kind = %msg.kind, "outbox: sent");
            }
            Err(e) => {
                let give_up = e.permanent || msg.attempts >= self.settings.max_attempts;
                let delay = (!give_up).then(|| self.settings.backoff(msg.attempts));
                db::outbox::mark_failed(&mut conn, &msg.app_id, msg.message_id, &e.message, delay)
                    .await?;
                if let Some(p) = msg
                    .profile_id
                    .filter(|_| give_up && msg.kind == Kind::PasswordReset.as_str())
                {
                    // The link of a mail that will never arrive is of no use to anyone.
                    db::tokens::revoke(&mut conn, &msg.app_id, p, Some(db::tokens::PASSWORD_RESET))
                        .await?;
                }
                metrics::counter!("usersvc_mail_failures_total", "kind" => msg.kind.clone(), "final" => give_up.to_string())
                    .increment(1);
                tracing::warn!(message_id = %msg.message_id, attempts = msg.attempts, give_up, error = %e.message, "outbox: send failed");
            }
        }
        Ok(())
    }

    async fn prepare(&self, msg: &OutboxMessage) -> AppResult<Prepared> {
        let Some(kind) = Kind::parse(&msg.kind) else {
            return Ok(Prepared::Fail(format!("unknown kind {}", msg.kind)));
        };
        let params: StoredParams = serde_json::from_value(msg.params.clone()).unwrap_or_default();
        let mut conn = self.db.conn().await?;
        let Some(app) = db::apps::find(&mut conn, &msg.app_id).await? else {
            return Ok(Prepared::Drop("app deleted"));
        };
        let profile = match msg.profile_id {
            Some(p) => match db::profiles::find(&mut conn, &msg.app_id, p).await? {
                Some(profile) => Some(profile),
                None => return Ok(Prepared::Drop("profile deleted")),
            },
            None => None,
        };
        let mut vars = params.variables.clone();
        let ours: Map<String, Value> = json!({
            "appName": app.name,
            "appId": app.app_id,
            "profileId": profile.as_ref().map(|p| p.profile_id).or(msg.profile_id),
            "userName": profile.as_ref().and_then(|p| p.user_name.clone()),
            "userEmail": msg.recipient,
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        // Caller variables first, ours on top: a caller cannot replace the link or the names.
        for (k, v) in ours {
            if !(v.is_null() && vars.contains_key(&k)) {
                vars.insert(k, v);
            }
        }

        if kind == Kind::PasswordReset {
            let (Some(profile), Some(expires_at)) = (&profile, msg.token_expires_at) else {
                return Ok(Prepared::Fail("reset without profile or expiry".into()));
            };
            let identity_kind = msg.identity_kind.as_deref().and_then(IdentityKind::parse);
            let Some(identity_kind) = identity_kind else {
                return Ok(Prepared::Fail("reset without identity kind".into()));
            };
            if expires_at <= Utc::now() {
                return Ok(Prepared::Drop("link expired before it could be sent"));
            }
            if profile.is_disabled() {
                return Ok(Prepared::Drop("profile disabled"));
            }
            let has_identity =
                db::identities::for_profile(&mut conn, &msg.app_id, profile.profile_id)
                    .await?
                    .iter()
                    .any(|i| i.kind == identity_kind.as_str());
            if !has_identity {
                return Ok(Prepared::Drop("identity removed"));
            }
            let (token, hash) = crate::links::new_token()?;
            let token_row = NewToken {
                app_id: &msg.app_id,
                profile_id: profile.profile_id,
                purpose: db::tokens::PASSWORD_RESET,
                identity_kind: Some(identity_kind.as_str()),
                token_hash: &hash,
            };
            db::tokens::issue(&mut conn, &token_row, Expiry::At(expires_at)).await?;
            let ttl = (expires_at - msg.created_at).num_minutes();
            vars.insert(
                "webUrl".into(),
                json!(crate::links::reset_url(
                    self.settings.link_base(&app),
                    &token
                )),
            );
            vars.insert("expiresAt".into(), json!(expires_at.to_rfc3339()));
            vars.insert("tokenTtlInMinutes".into(), json!(ttl));
        }

        let source = match self.source(&mut conn, &app, msg, kind, &params).await? {
            Ok(s) => s,
            Err(why) => return Ok(Prepared::Fail(why)),
        };
        drop(conn);
        let content = match templates::render(&source, &Value::Object(vars)) {
            Ok(c) => c,
            Err(e) => return Ok(Prepared::Fail(format!("template: {e}"))),
        };
        match self.envelope(&app, msg, &params, content) {
            Ok(mail) => Ok(Prepared::Send(Box::new(mail))),
            Err(why) => Ok(Prepared::Fail(why)),
        }
    }

    async fn source(
        &self,
        conn: &mut crate::db::Conn,
        app: &App,
        msg: &OutboxMessage,
        kind: Kind,
        params: &StoredParams,
    ) -> AppResult<Result<TemplateSource, String>> {
        let which = match (kind, msg.identity_kind.as_deref()) {
            (Kind::PasswordReset, Some("UNIVERSAL_ID")) => Builtin::PasswordResetUniversalId,
            (Kind::PasswordReset, _) => Builtin::PasswordResetEmail,
            (Kind::AccountCreated, _) => Builtin::AccountCreated,
            (Kind::AccountDeleted, _) => Builtin::AccountDeleted,
            (Kind::PasswordChanged, _) => Builtin::PasswordChanged,
            (Kind::IdentityChanged, _) => Builtin::IdentityChanged,
        };
        // The app's own version of the built-in template, under its reserved id, wins.
        let builtin = match msg.template_id {
            Some(_) => templates::builtin(which),
            None => match db::templates::find(conn, &app.app_id, which.override_id()).await? {
                Some(t) => TemplateSource {
                    subject: t.subject,
                    text: t.body_text,
                    html: t.body_html,
                },
                None => templates::builtin(which),
            },
        };
        if let Some(id) = &msg.template_id {
            return Ok(match db::templates::find(conn, &app.app_id, id).await? {
                Some(t) => Ok(TemplateSource {
                    subject: t.subject,
                    text: t.body_text,
                    html: t.body_html,
                }),
                None => Err(format!("template {id} no longer exists")),
            });
        }
        if params.subject.is_some() || params.body.is_some() {
            let subject = params.subject.clone().unwrap_or(builtin.subject.clone());
            return Ok(Ok(match (&params.body, params.use_html) {
                (Some(body), true) => TemplateSource {
                    subject,
                    text: builtin.text,
                    html: Some(body.clone()),
                },
                (Some(body), false) => TemplateSource {
                    subject,
                    text: body.clone(),
                    html: None,
                },
                (None, _) => TemplateSource { subject, ..builtin },
            }));
        }
        Ok(Ok(builtin))
    }

    fn envelope(
        &self,
        app: &App,
        msg: &OutboxMessage,
        params: &StoredParams,
        content: templates::Rendered,
    ) -> Result<OutgoingMail, String> {
        let default_from = match &app.mail_from {
            Some(s) => address::parse_from_setting(s).map_err(|e| format!("app mail.from: {e}"))?,
            None => self.settings.default_from.clone(),
        };
        let from = match (&params.from_address, &params.from_name) {
            (Some(a), name) => {
                address::mailbox(a, name.as_deref()).map_err(|e| format!("fromAddress: {e}"))?
            }
            (None, Some(name)) => address::mailbox(default_from.email.as_ref(), Some(name))
                .map_err(|e| format!("fromName: {e}"))?,
            (None, None) => default_from,
        };
        let reply_to = match &params.reply_to_address {
            Some(a) => Some(
                address::mailbox(a, params.reply_to_name.as_deref())
                    .map_err(|e| format!("replyToAddress: {e}"))?,
            ),
            None => None,
        };
        let list = |v: &[String]| -> Result<Vec<_>, String> {
            v.iter()
                .map(|a| address::mailbox(a, None).map_err(|e| format!("cc/bcc: {e}")))
                .collect()
        };
        let to = address::mailbox(&msg.recipient, None).map_err(|e| format!("recipient: {e}"))?;
        Ok(OutgoingMail {
            message_id: msg.message_id.to_string(),
            from,
            reply_to,
            to,
            cc: list(&params.cc)?,
            bcc: list(&params.bcc)?,
            categories: params.categories.clone(),
            content,
        })
    }
}
