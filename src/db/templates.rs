//! Per-app email templates.

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::models::EmailTemplate;
use super::schema::email_templates;

/// One template of an app.
pub async fn find(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    template_id: &str,
) -> QueryResult<Option<EmailTemplate>> {
    email_templates::table
        .find((app_id, template_id))
        .select(EmailTemplate::as_select())
        .first(conn)
        .await
        .optional()
}

/// Creates or replaces a template.
pub async fn upsert(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    template_id: &str,
    subject: &str,
    body_text: &str,
    body_html: Option<&str>,
) -> QueryResult<EmailTemplate> {
    diesel::insert_into(email_templates::table)
        .values((
            email_templates::app_id.eq(app_id),
            email_templates::template_id.eq(template_id),
            email_templates::subject.eq(subject),
            email_templates::body_text.eq(body_text),
            email_templates::body_html.eq(body_html),
        ))
        .on_conflict((email_templates::app_id, email_templates::template_id))
        .do_update()
        .set((
            email_templates::subject.eq(excluded(email_templates::subject)),
            email_templates::body_text.eq(excluded(email_templates::body_text)),
            email_templates::body_html.eq(excluded(email_templates::body_html)),
            email_templates::updated_at.eq(diesel::dsl::now),
        ))
        .returning(EmailTemplate::as_returning())
        .get_result(conn)
        .await
}

/// An app's templates, by id.
pub async fn list(conn: &mut AsyncPgConnection, app_id: &str) -> QueryResult<Vec<EmailTemplate>> {
    email_templates::table
        .filter(email_templates::app_id.eq(app_id))
        .order(email_templates::template_id.asc())
        .select(EmailTemplate::as_select())
        .load(conn)
        .await
}

/// Deletes a template; returns whether there was one.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    template_id: &str,
) -> QueryResult<bool> {
    diesel::delete(email_templates::table.find((app_id, template_id)))
        .execute(conn)
        .await
        .map(|n| n > 0)
}
