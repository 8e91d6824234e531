//! Apps (tenants): creation with a parent of at most five levels, their settings and email
//! templates ([`templates`]), deletion. The CLI is the only way in; no GraphQL field touches
//! another app.

pub mod templates;

use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::db::models::{App, NewApp};
use crate::db::{self, DbPool, get_conn};
use crate::error::{AppError, AppResult};
use crate::normalise;

/// Deepest chain of apps, the root included (brainCloud allows five levels).
pub const MAX_LEVELS: usize = 5;

/// The keys `usersvc app set` understands, with what each takes.
pub const SETTINGS: &[(&str, &str)] = &[
    ("name", "display name, 1 to 200 characters"),
    ("password.min_length", "characters, 1..=1024 (default 8)"),
    (
        "password.max_length",
        "characters, min_length..=1024 (default 128)",
    ),
    ("password.min_digits", "count, 0.. (default 0)"),
    ("password.min_uppercase", "count, 0.. (default 0)"),
    ("password.min_lowercase", "count, 0.. (default 0)"),
    ("password.min_symbols", "count, 0.. (default 0)"),
    (
        "reset.ttl_minutes",
        "default reset link lifetime, 1..=43200 (default 60)",
    ),
    (
        "reset.mails_per_hour",
        "reset mails per profile per hour, 0..=1000 (default 5)",
    ),
    (
        "mail.from",
        "sender, e.g. 'Game <no-reply@example.com>'; empty: the server default",
    ),
    (
        "mail.per_address_per_hour",
        "mails to one address (normalised; cc/bcc count) per hour, 0..=1000 (default 10)",
    ),
    (
        "mail.per_app_per_hour",
        "mails (each recipient counts) the app sends per hour, 0..=1000000 (default 1000)",
    ),
    (
        "external_auth_types",
        "comma list of allowed externalAuthType values; empty: any",
    ),
    (
        "public_url",
        "base of links in mail, http(s)://…; empty: the server default",
    ),
    (
        "login.max_failures",
        "verifyPassword attempts per identity and window before TOO_MANY_ATTEMPTS, 1..=1000 (default 10)",
    ),
    (
        "login.failure_window_minutes",
        "the window of login.max_failures, 1..=1440 (default 15)",
    ),
];

fn bad(message: impl Into<String>) -> AppError {
    AppError::bad_input(message)
}

/// Creates an app under an optional parent.
pub async fn create(
    pool: &mut DbPool<'_>,
    id: &str,
    name: &str,
    parent: Option<&str>,
) -> AppResult<App> {
    if !valid_id(id) {
        return Err(bad("an app id is 1 to 64 letters, digits, '.', '_' or '-'"));
    }
    check_name(name)?;
    let mut conn = get_conn(pool).await?;
    if db::apps::find(&mut conn, id).await?.is_some() {
        return Err(bad(format!("app {id} already exists")));
    }
    if let Some(parent) = parent {
        let levels = ancestry(&mut conn, parent).await?.len();
        if levels >= MAX_LEVELS {
            return Err(bad(format!(
                "app {parent} is already {levels} levels deep; at most {MAX_LEVELS} levels are allowed"
            )));
        }
    }
    Ok(db::apps::insert(
        &mut conn,
        &NewApp {
            app_id: id,
            name,
            parent_app_id: parent,
        },
    )
    .await?)
}

/// One app, or `BAD_USER_INPUT` naming it.
pub async fn find(pool: &mut DbPool<'_>, id: &str) -> AppResult<App> {
    let mut conn = get_conn(pool).await?;
    db::apps::find(&mut conn, id)
        .await?
        .ok_or_else(|| bad(format!("no app {id}")))
}

/// Deletes an app with its templates, its audit trail and its mail history. Refused while it
/// has profiles or child apps: they would be lost with it.
pub async fn delete(pool: &mut DbPool<'_>, id: &str) -> AppResult<()> {
    let mut conn = get_conn(pool).await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        if db::apps::find(conn, id).await?.is_none() {
            return Err(bad(format!("no app {id}")));
        }
        let (profiles, children) = db::apps::dependents(conn, id).await?;
        if profiles > 0 || children > 0 {
            return Err(bad(format!(
                "app {id} still has {profiles} profile(s) and {children} child app(s); delete them first"
            )));
        }
        db::apps::delete(conn, id).await?;
        Ok(())
    })
    .await
}

/// Every app, by id.
pub async fn list(pool: &mut DbPool<'_>) -> AppResult<Vec<App>> {
    let mut conn = get_conn(pool).await?;
    Ok(db::apps::list(&mut conn).await?)
}

/// An app and its ancestors, the app first. Fails when `id` does not exist.
async fn ancestry(conn: &mut AsyncPgConnection, id: &str) -> AppResult<Vec<App>> {
    let mut chain = Vec::new();
    let mut next = Some(id.to_owned());
    while let Some(current) = next {
        let app = db::apps::find(conn, &current)
            .await?
            .ok_or_else(|| bad(format!("no app {current}")))?;
        next = app.parent_app_id.clone();
        chain.push(app);
        if chain.len() > MAX_LEVELS {
            break;
        }
    }
    Ok(chain)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn check_name(name: &str) -> AppResult<()> {
    let n = name.chars().count();
    if n == 0 || n > 200 || name.chars().any(normalise::is_invisible) {
        return Err(bad("an app name is 1 to 200 visible characters"));
    }
    Ok(())
}

fn int(value: &str, key: &str, range: std::ops::RangeInclusive<i32>) -> AppResult<i32> {
    let n: i32 = value
        .trim()
        .parse()
        .map_err(|_| bad(format!("{key} takes a whole number")))?;
    if !range.contains(&n) {
        return Err(bad(format!(
            "{key} must be within {}..={}",
            range.start(),
            range.end()
        )));
    }
    Ok(n)
}

fn optional(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// Changes one setting (see [`SETTINGS`]) and stores it.
pub async fn set(pool: &mut DbPool<'_>, id: &str, key: &str, value: &str) -> AppResult<App> {
    let mut conn = get_conn(pool).await?;
    let mut app = db::apps::find(&mut conn, id)
        .await?
        .ok_or_else(|| bad(format!("no app {id}")))?;
    match key {
        "name" => {
            check_name(value)?;
            app.name = value.to_owned();
        }
        "password.min_length" => app.password_min_length = int(value, key, 1..=1024)?,
        "password.max_length" => app.password_max_length = int(value, key, 1..=1024)?,
        "password.min_digits" => app.password_min_digits = int(value, key, 0..=1024)?,
        "password.min_uppercase" => app.password_min_uppercase = int(value, key, 0..=1024)?,
        "password.min_lowercase" => app.password_min_lowercase = int(value, key, 0..=1024)?,
        "password.min_symbols" => app.password_min_symbols = int(value, key, 0..=1024)?,
        "reset.ttl_minutes" => app.reset_ttl_minutes = int(value, key, 1..=43200)?,
        "reset.mails_per_hour" => app.reset_mails_per_hour = int(value, key, 0..=1000)?,
        "login.max_failures" => app.login_max_failures = int(value, key, 1..=1000)?,
        "login.failure_window_minutes" => {
            app.login_failure_window_minutes = int(value, key, 1..=1440)?;
        }
        "mail.from" => {
            if value.chars().any(normalise::is_invisible) || value.len() > 320 {
                return Err(bad("mail.from must be one line of at most 320 characters"));
            }
            // The sender the worker composes from it must be one it can send with.
            if let Some(from) = optional(value)
                && let Err(e) = crate::mail::address::parse_from_setting(&from)
            {
                return Err(bad(format!(
                    "mail.from: {e} (expected 'Name <address>' or an address)"
                )));
            }
            app.mail_from = optional(value);
        }
        "mail.per_address_per_hour" => app.mail_per_address_per_hour = int(value, key, 0..=1000)?,
        "mail.per_app_per_hour" => app.mail_per_app_per_hour = int(value, key, 0..=1_000_000)?,
        "external_auth_types" => {
            let mut types = Vec::new();
            for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                let t = normalise::external_auth_type(t)?;
                types.push(Some(t));
            }
            app.external_auth_types = types;
        }
        "public_url" => {
            let v = optional(value);
            if let Some(url) = &v
                && (!(url.starts_with("http://") || url.starts_with("https://"))
                    || url
                        .chars()
                        .any(|c| c.is_whitespace() || normalise::is_invisible(c)))
            {
                return Err(bad("public_url must be an http:// or https:// URL"));
            }
            app.public_url = v.map(|u| u.trim_end_matches('/').to_owned());
        }
        other => {
            let keys: Vec<&str> = SETTINGS.iter().map(|(k, _)| *k).collect();
            return Err(bad(format!(
                "unknown setting {other}; known: {}",
                keys.join(", ")
            )));
        }
    }
    let min_total = app.password_min_digits
        + app.password_min_uppercase
        + app.password_min_lowercase
        + app.password_min_symbols;
    if app.password_max_length < app.password_min_length || app.password_max_length < min_total {
        return Err(bad(format!(
            "password.max_length ({}) must be at least password.min_length ({}) and the sum of the minimum counts ({min_total})",
            app.password_max_length, app.password_min_length
        )));
    }
    Ok(db::apps::update_settings(&mut conn, &app).await?)
}

/// The settings of an app as `key = value` lines, in [`SETTINGS`] order.
pub fn describe(app: &App) -> Vec<(String, String)> {
    let types: Vec<&str> = app
        .external_auth_types
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    vec![
        ("id".into(), app.app_id.clone()),
        (
            "parent".into(),
            app.parent_app_id.clone().unwrap_or_default(),
        ),
        ("name".into(), app.name.clone()),
        (
            "password.min_length".into(),
            app.password_min_length.to_string(),
        ),
        (
            "password.max_length".into(),
            app.password_max_length.to_string(),
        ),
        (
            "password.min_digits".into(),
            app.password_min_digits.to_string(),
        ),
        (
            "password.min_uppercase".into(),
            app.password_min_uppercase.to_string(),
        ),
        (
            "password.min_lowercase".into(),
            app.password_min_lowercase.to_string(),
        ),
        (
            "password.min_symbols".into(),
            app.password_min_symbols.to_string(),
        ),
        (
            "reset.ttl_minutes".into(),
            app.reset_ttl_minutes.to_string(),
        ),
        (
            "reset.mails_per_hour".into(),
            app.reset_mails_per_hour.to_string(),
        ),
        (
            "mail.from".into(),
            app.mail_from.clone().unwrap_or_default(),
        ),
        (
            "mail.per_address_per_hour".into(),
            app.mail_per_address_per_hour.to_string(),
        ),
        (
            "mail.per_app_per_hour".into(),
            app.mail_per_app_per_hour.to_string(),
        ),
        ("external_auth_types".into(), types.join(",")),
        (
            "public_url".into(),
            app.public_url.clone().unwrap_or_default(),
        ),
        (
            "login.max_failures".into(),
            app.login_max_failures.to_string(),
        ),
        (
            "login.failure_window_minutes".into(),
            app.login_failure_window_minutes.to_string(),
        ),
    ]
}
