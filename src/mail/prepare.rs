//! Preparing a claimed message: check that it may still go (the app and the profile exist, a
//! reset's identity is still there and its link has not expired), store the hash of the link
//! it carries, render the template and compose the envelope.
//!
//! A reset link is derived from the message (see [`crate::links::LinkKey`]), so every attempt
//! at one message — by this instance or another that took over — carries the same link. Its
//! hash is stored here, idempotently, while the claim still holds the message, and it replaces
//! nothing yet: the profile's older links stay usable until this one has been delivered (see
//! the worker). Cc and bcc recipients get a copy of their own in which the link is replaced by
//! [`LINK_WITHHELD`]: a live link only ever goes to the account's own address.

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::Kind;
use super::MailSettings;
use super::envelope;
use super::params::StoredParams;
use super::templates::{self, Builtin, TemplateSource};
use super::transport::OutgoingMail;
use crate::db::models::{App, IdentityKind, OutboxMessage};
use crate::db::tokens::NewToken;
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};

/// What cc and bcc recipients read where the account's own mail has its link.
pub const LINK_WITHHELD: &str = "(link sent only to the account's own address)";

/// A reset link on its way: once its mail is delivered it replaces the profile's older links.
#[derive(Debug, Clone)]
pub struct MailedLink {
    pub profile_id: Uuid,
    pub hash: [u8; 32],
    /// When the reset was asked for: it orders the profile's links.
    pub asked_at: DateTime<Utc>,
}

/// A message ready to go.
#[derive(Debug)]
pub struct Ready {
    /// The mail to the account's address, with its link.
    pub primary: OutgoingMail,
    /// The copy for the cc and bcc recipients, without the link.
    pub copy: Option<OutgoingMail>,
    /// The reset link the mail carries.
    pub link: Option<MailedLink>,
}

/// What to do with a claimed message.
#[derive(Debug)]
pub enum Prepared {
    Send(Box<Ready>),
    /// Not to be sent any more, and why.
    Drop(String),
    /// Can never be sent, and why.
    Fail(String),
    /// Another claim holds it now (the lease ran out, or it was dropped meanwhile).
    Lost,
}

/// Prepares a message that the claim `lease_token` holds.
pub async fn prepare(
    pool: &Db,
    settings: &MailSettings,
    msg: &OutboxMessage,
    lease_token: Uuid,
) -> AppResult<Prepared> {
    let Some(kind) = Kind::parse(&msg.kind) else {
        return Ok(Prepared::Fail(format!("unknown kind {}", msg.kind)));
    };
    let params: StoredParams = serde_json::from_value(msg.params.clone()).unwrap_or_default();
    let mut conn = pool.conn().await?;
    let Some(app) = db::apps::find(&mut conn, &msg.app_id).await? else {
        return Ok(Prepared::Drop("app deleted".into()));
    };
    let profile = match msg.profile_id {
        Some(p) => match db::profiles::find(&mut conn, &msg.app_id, p).await? {
            Some(profile) => Some(profile),
            None => return Ok(Prepared::Drop("profile deleted".into())),
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

    let mut link = None;
    if kind == Kind::PasswordReset {
        let (Some(profile), Some(expires_at)) = (&profile, msg.token_expires_at) else {
            return Ok(Prepared::Fail("reset without profile or expiry".into()));
        };
        let identity_kind = msg.identity_kind.as_deref().and_then(IdentityKind::parse);
        let Some(identity_kind) = identity_kind else {
            return Ok(Prepared::Fail("reset without identity kind".into()));
        };
        if expires_at <= Utc::now() {
            return Ok(Prepared::Drop(
                "link expired before it could be sent".into(),
            ));
        }
        if profile.is_disabled() {
            return Ok(Prepared::Drop("profile disabled".into()));
        }
        let has_identity = db::identities::for_profile(&mut conn, &msg.app_id, profile.profile_id)
            .await?
            .iter()
            .any(|i| i.kind == identity_kind.as_str());
        if !has_identity {
            return Ok(Prepared::Drop("identity removed".into()));
        }
        let (token, hash) = settings.link_key.reset_token(msg.message_id);
        let token_row = NewToken {
            app_id: &msg.app_id,
            profile_id: profile.profile_id,
            purpose: db::tokens::PASSWORD_RESET,
            identity_kind: Some(identity_kind.as_str()),
            token_hash: &hash,
        };
        let stored = conn
            .transaction::<_, AppError, _>(async |conn| {
                if !db::outbox::lock_held(conn, &msg.app_id, msg.message_id, lease_token).await? {
                    return Ok(None);
                }
                let row =
                    db::tokens::insert_once(conn, &token_row, expires_at, msg.created_at).await?;
                Ok(Some(row))
            })
            .await?;
        let Some(stored) = stored else {
            return Ok(Prepared::Lost);
        };
        if stored.used_at.is_some() {
            return Ok(Prepared::Drop("its link was already used".into()));
        }
        if stored.revoked_at.is_some() {
            return Ok(Prepared::Drop(
                "its link was replaced or revoked before it was sent".into(),
            ));
        }
        let ttl = (expires_at - msg.created_at).num_minutes();
        vars.insert(
            "webUrl".into(),
            json!(crate::links::reset_url(settings.link_base(&app), &token)),
        );
        vars.insert("expiresAt".into(), json!(expires_at.to_rfc3339()));
        vars.insert("tokenTtlInMinutes".into(), json!(ttl));
        link = Some(MailedLink {
            profile_id: profile.profile_id,
            hash,
            asked_at: msg.created_at,
        });
    }

    let source = match source(&mut conn, &app, msg, kind, &params).await? {
        Ok(s) => s,
        Err(why) => return Ok(Prepared::Fail(why)),
    };
    drop(conn);
    let has_copy = !(params.cc.is_empty() && params.bcc.is_empty());
    let render =
        |vars: &Map<String, Value>| templates::render(&source, &Value::Object(vars.clone()));
    let content = match render(&vars) {
        Ok(c) => c,
        Err(e) => return Ok(Prepared::Fail(format!("template: {e}"))),
    };
    let copy_content = if has_copy {
        if vars.contains_key("webUrl") {
            vars.insert("webUrl".into(), json!(LINK_WITHHELD));
        }
        match render(&vars) {
            Ok(c) => Some(c),
            Err(e) => return Ok(Prepared::Fail(format!("template: {e}"))),
        }
    } else {
        None
    };
    let env = match envelope::compose(
        &settings.default_from,
        app.mail_from.as_deref(),
        &params,
        &msg.recipient,
    ) {
        Ok(env) => env,
        Err(refusal) => return Ok(Prepared::Fail(refusal.reason().into())),
    };
    let primary = OutgoingMail {
        message_id: msg.message_id.to_string(),
        from: env.from.clone(),
        reply_to: env.reply_to.clone(),
        to: env.to.clone(),
        cc: env.cc.clone(),
        bcc: Vec::new(),
        categories: params.categories.clone(),
        content,
        deliver_to: has_copy.then(|| vec![env.to.email.clone()]),
    };
    let copy = copy_content.map(|content| OutgoingMail {
        message_id: format!("{}-copy", msg.message_id),
        deliver_to: Some(
            env.cc
                .iter()
                .chain(&env.bcc)
                .map(|m| m.email.clone())
                .collect(),
        ),
        content,
        ..primary.clone()
    });
    Ok(Prepared::Send(Box::new(Ready {
        primary,
        copy,
        link,
    })))
}

/// The template of a message: the app's (named when it was queued), the caller's ad-hoc
/// subject and body, or the built-in one of its kind (the app's own version of it, under its
/// reserved id, when the app has one).
async fn source(
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
