//! Tenants and their settings.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::models::{App, NewApp};
use super::rendered::RenderOnce;
use super::schema::apps;

/// One app.
pub async fn find(conn: &mut AsyncPgConnection, app_id: &str) -> QueryResult<Option<App>> {
    apps::table
        .find(app_id)
        .select(App::as_select())
        .limit(1)
        .rendered_once()
        .get_result(conn)
        .await
        .optional()
}

/// Every app, by id.
pub async fn list(conn: &mut AsyncPgConnection) -> QueryResult<Vec<App>> {
    apps::table
        .order(apps::app_id.asc())
        .select(App::as_select())
        .load(conn)
        .await
}

/// Inserts an app.
pub async fn insert(conn: &mut AsyncPgConnection, app: &NewApp<'_>) -> QueryResult<App> {
    diesel::insert_into(apps::table)
        .values(app)
        .returning(App::as_returning())
        .get_result(conn)
        .await
}

/// Writes back every setting of an app.
pub async fn update_settings(conn: &mut AsyncPgConnection, app: &App) -> QueryResult<App> {
    diesel::update(apps::table.find(&app.app_id))
        .set((
            apps::name.eq(&app.name),
            apps::password_min_length.eq(app.password_min_length),
            apps::password_max_length.eq(app.password_max_length),
            apps::password_min_digits.eq(app.password_min_digits),
            apps::password_min_uppercase.eq(app.password_min_uppercase),
            apps::password_min_lowercase.eq(app.password_min_lowercase),
            apps::password_min_symbols.eq(app.password_min_symbols),
            apps::reset_ttl_minutes.eq(app.reset_ttl_minutes),
            apps::reset_mails_per_hour.eq(app.reset_mails_per_hour),
            apps::mail_from.eq(&app.mail_from),
            apps::external_auth_types.eq(&app.external_auth_types),
            apps::public_url.eq(&app.public_url),
            apps::mail_per_address_per_hour.eq(app.mail_per_address_per_hour),
            apps::mail_per_app_per_hour.eq(app.mail_per_app_per_hour),
            apps::login_max_failures.eq(app.login_max_failures),
            apps::login_failure_window_minutes.eq(app.login_failure_window_minutes),
            apps::updated_at.eq(diesel::dsl::now),
        ))
        .returning(App::as_returning())
        .get_result(conn)
        .await
}

/// What still belongs to an app: its profiles and its child apps.
pub async fn dependents(conn: &mut AsyncPgConnection, app_id: &str) -> QueryResult<(i64, i64)> {
    use super::schema::profiles;
    let profiles: i64 = profiles::table
        .filter(profiles::app_id.eq(app_id))
        .count()
        .get_result(conn)
        .await?;
    let children: i64 = apps::table
        .filter(apps::parent_app_id.eq(app_id))
        .count()
        .get_result(conn)
        .await?;
    Ok((profiles, children))
}

/// Deletes an app with what only it holds (templates, the audit trail, its outbox); returns
/// whether it existed. The caller makes sure it has no profiles and no child apps.
pub async fn delete(conn: &mut AsyncPgConnection, app_id: &str) -> QueryResult<bool> {
    use super::schema::{audit_events, outbox};
    diesel::delete(audit_events::table.filter(audit_events::app_id.eq(app_id)))
        .execute(conn)
        .await?;
    diesel::delete(outbox::table.filter(outbox::app_id.eq(app_id)))
        .execute(conn)
        .await?;
    // Templates go by cascade.
    diesel::delete(apps::table.find(app_id))
        .execute(conn)
        .await
        .map(|n| n > 0)
}
