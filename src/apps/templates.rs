//! An app's email templates (minijinja): named by a call's `templateId` or
//! `notificationTemplateId`. Managed from the CLI.

use crate::db::models::EmailTemplate;
use crate::db::{self, DbPool, get_conn};
use crate::error::{AppError, AppResult};
use crate::mail::templates::{self as render, TemplateSource};

/// Longest template id.
pub const MAX_ID: usize = 128;

/// A template change: parts not given keep their stored value (a new template needs a subject
/// and a text body).
#[derive(Debug, Clone, Default)]
pub struct TemplateChange {
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

fn check_id(id: &str) -> AppResult<()> {
    if id.is_empty()
        || id.len() > MAX_ID
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(AppError::bad_input(format!(
            "a template id is 1 to {MAX_ID} letters, digits, '.', '_' or '-'"
        )));
    }
    Ok(())
}

async fn app_exists(conn: &mut diesel_async::AsyncPgConnection, app: &str) -> AppResult<()> {
    db::apps::find(conn, app)
        .await?
        .map(drop)
        .ok_or_else(|| AppError::bad_input(format!("no app {app}")))
}

/// Creates or updates a template; every part is checked (it must parse, with every variable
/// known) before anything is stored.
pub async fn put(
    pool: &mut DbPool<'_>,
    app: &str,
    id: &str,
    change: TemplateChange,
) -> AppResult<EmailTemplate> {
    check_id(id)?;
    let mut conn = get_conn(pool).await?;
    app_exists(&mut conn, app).await?;
    let existing = db::templates::find(&mut conn, app, id).await?;
    let missing = |what: &str| AppError::bad_input(format!("a new template needs {what}"));
    let source = TemplateSource {
        subject: match (change.subject, &existing) {
            (Some(s), _) => s,
            (None, Some(t)) => t.subject.clone(),
            (None, None) => return Err(missing("a subject")),
        },
        text: match (change.text, &existing) {
            (Some(s), _) => s,
            (None, Some(t)) => t.body_text.clone(),
            (None, None) => return Err(missing("a text body")),
        },
        html: change.html.or_else(|| existing.and_then(|t| t.body_html)),
    };
    render::check(&source).map_err(|e| AppError::bad_input(e.to_string()))?;
    Ok(db::templates::upsert(
        &mut conn,
        app,
        id,
        &source.subject,
        &source.text,
        source.html.as_deref(),
    )
    .await?)
}

/// An app's templates, by id.
pub async fn list(pool: &mut DbPool<'_>, app: &str) -> AppResult<Vec<EmailTemplate>> {
    let mut conn = get_conn(pool).await?;
    app_exists(&mut conn, app).await?;
    Ok(db::templates::list(&mut conn, app).await?)
}

/// One template.
pub async fn show(pool: &mut DbPool<'_>, app: &str, id: &str) -> AppResult<EmailTemplate> {
    check_id(id)?;
    let mut conn = get_conn(pool).await?;
    app_exists(&mut conn, app).await?;
    db::templates::find(&mut conn, app, id)
        .await?
        .ok_or_else(|| AppError::InvalidTemplateId(id.to_owned()))
}

/// Deletes a template. Mail already queued with it fails when its turn comes (and says why).
pub async fn delete(pool: &mut DbPool<'_>, app: &str, id: &str) -> AppResult<()> {
    check_id(id)?;
    let mut conn = get_conn(pool).await?;
    app_exists(&mut conn, app).await?;
    if !db::templates::delete(&mut conn, app, id).await? {
        return Err(AppError::InvalidTemplateId(id.to_owned()));
    }
    Ok(())
}
