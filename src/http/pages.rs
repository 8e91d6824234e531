//! The hosted pages behind the links: `/self-service/reset-password` and
//! `/self-service/delete-account`. Server-rendered HTML from the minijinja templates under
//! `assets/pages/` (values are HTML-escaped by the engine), with no script and no external
//! asset. GET only shows (mail scanners prefetch links); POST, from the page's own form, acts.
//!
//! Forms are CSRF-safe twice over: they carry the link's secret token, which another site does
//! not have, and a POST whose `Origin` is not this host, or that a browser labels cross-site,
//! is refused. Pages send `Referrer-Policy: no-referrer` so the token never leaks to another
//! site, and a strict CSP. Tokens are never logged (the request log has no query strings).

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use minijinja::{Environment, context};

use super::AppState;
use crate::error::{AppError, DeadLink};
use crate::recovery::self_service::{self, DeletionLink, ResetForm, ResetView};
use crate::telemetry::current_request_id;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The page templates, compiled once. Names ending in `.html` are auto-escaped.
static PAGES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    let templates = [
        (
            "layout.html",
            include_str!("../../assets/pages/layout.html"),
        ),
        (
            "message.html",
            include_str!("../../assets/pages/message.html"),
        ),
        ("reset.html", include_str!("../../assets/pages/reset.html")),
        (
            "delete.html",
            include_str!("../../assets/pages/delete.html"),
        ),
    ];
    for (name, source) in templates {
        env.add_template(name, source)
            .expect("the page templates are valid");
    }
    env
});

/// A page from a template, with the headers every page carries.
fn page(status: StatusCode, template: &str, vars: minijinja::Value) -> Response {
    let html = PAGES
        .get_template(template)
        .and_then(|t| t.render(vars))
        .unwrap_or_else(|e| {
            tracing::error!(template, error = %e, "a page template failed");
            "<!doctype html><title>Something went wrong</title><p>Something went wrong.</p>".into()
        });
    let mut resp = super::html_page(status, html, CSP);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A page with a title and one paragraph (`tone`: `ok` or `error`).
fn message(status: StatusCode, title: &str, text: &str, tone: &str) -> Response {
    page(status, "message.html", context! { title, text, tone })
}

fn dead(kind: DeadLink, what: &str) -> Response {
    let (status, title, text) = match kind {
        DeadLink::Unknown => (
            StatusCode::BAD_REQUEST,
            "Link not valid",
            format!("This {what} link is not valid, or it was already used. Ask for a new one."),
        ),
        DeadLink::Expired => (
            StatusCode::GONE,
            "Link expired",
            format!("This {what} link has expired. Ask for a new one."),
        ),
        DeadLink::Used => (
            StatusCode::GONE,
            "Link already used",
            format!("This {what} link was already used. Ask for a new one if you need it."),
        ),
        DeadLink::Revoked => (
            StatusCode::GONE,
            "Link replaced",
            format!(
                "This {what} link was replaced by a newer one or cancelled. Use the newest link you received."
            ),
        ),
    };
    message(status, title, &text, "error")
}

/// The page for a failure: a dead link says why; anything unexpected is logged with the
/// request id and never shown.
fn failed(e: AppError, what: &str) -> Response {
    if let AppError::DeadLink(kind) = e {
        return dead(kind, what);
    }
    tracing::error!(
        request_id = current_request_id().as_deref().unwrap_or("-"),
        error = ?e,
        "a page request failed"
    );
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again in a moment.",
        "error",
    )
}

/// Whether a form POST comes from a page of this host. Browsers say so in `Sec-Fetch-Site`;
/// under `Referrer-Policy: no-referrer` they send `Origin: null` even for a same-origin form, so
/// the `Origin` header is compared with the host only when fetch metadata is missing.
fn same_origin(headers: &HeaderMap) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = value("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = value(header::ORIGIN.as_str()) else {
        return true; // not a browser, or an old one: the token is the protection
    };
    let host = value(header::HOST.as_str()).unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, h)| !host.is_empty() && h.trim_end_matches('/') == host)
}

fn forbidden_origin() -> Response {
    message(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form can only be sent from its own page.",
        "error",
    )
}

fn reset_form(status: StatusCode, token: &str, view: &ResetView, error: Option<&str>) -> Response {
    let vars = context! {
        title => "Choose a new password",
        app_name => &view.app_name,
        rules => view.policy.describe(),
        token,
        error,
    };
    page(status, "reset.html", vars)
}

/// `GET /self-service/reset-password?token=…`: the form, or why the link is dead.
pub async fn reset_get(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let token = q.get("token").map(String::as_str).unwrap_or("");
    match self_service::inspect_reset(&mut state.db.pool(), token).await {
        Ok(view) => reset_form(StatusCode::OK, token, &view, None),
        Err(e) => failed(e, "password reset"),
    }
}

/// `POST /self-service/reset-password`: sets the password, or says why not.
pub async fn reset_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !same_origin(&headers) {
        return forbidden_origin();
    }
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let token = field("token");
    let outcome = self_service::complete_reset(
        &mut state.db.pool(),
        &state.hasher,
        &state.mail,
        ResetForm {
            token: token.clone(),
            password: field("password"),
            confirmation: field("confirmation"),
        },
    )
    .await;
    let problem = match outcome {
        Ok(()) => {
            return message(
                StatusCode::OK,
                "Password changed",
                "Your password has been changed. You can now log in with it.",
                "ok",
            );
        }
        Err(AppError::BadUserInput(why)) => why,
        Err(AppError::InvalidPasswordContent(rule)) => format!("The password {rule}."),
        Err(e) => return failed(e, "password reset"),
    };
    // Nothing changed and the link still works: the form again, saying what to fix.
    match self_service::inspect_reset(&mut state.db.pool(), &token).await {
        Ok(view) => reset_form(StatusCode::BAD_REQUEST, &token, &view, Some(&problem)),
        Err(e) => failed(e, "password reset"),
    }
}

/// `GET /self-service/delete-account?appId=…&deletionToken=…&profileId=…`: the confirmation.
pub async fn delete_get(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let link = DeletionLink {
        app_id: get("appId"),
        token: get("deletionToken"),
        profile_id: get("profileId"),
    };
    match self_service::inspect_deletion(&mut state.db.pool(), link).await {
        Ok(view) => page(
            StatusCode::OK,
            "delete.html",
            context! {
                title => "Delete your account",
                app_name => view.app_name,
                app_id => view.app_id,
                token => link.token,
                profile_id => view.profile_id.to_string(),
            },
        ),
        Err(e) => failed(e, "account deletion"),
    }
}

/// `POST /self-service/delete-account`: deletes the account, or says why not.
pub async fn delete_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !same_origin(&headers) {
        return forbidden_origin();
    }
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let link = DeletionLink {
        app_id: get("appId"),
        token: get("deletionToken"),
        profile_id: get("profileId"),
    };
    match self_service::complete_deletion(&mut state.db.pool(), &state.mail, link).await {
        Ok(_) => message(
            StatusCode::OK,
            "Account deleted",
            "Your account has been deleted. A confirmation is on its way to your email address.",
            "ok",
        ),
        Err(e) => failed(e, "account deletion"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_template_renders_and_escapes_what_it_is_given() {
        let html = PAGES
            .get_template("reset.html")
            .unwrap()
            .render(context! { app_name => "<b>Game</b>", token => "a\"b", error => "<i>", rules => ["x"] })
            .unwrap();
        assert!(html.contains("&lt;b&gt;Game&lt;&#x2f;b&gt;"), "{html}");
        assert!(html.contains("value=\"a&quot;b\""), "{html}");
        assert!(html.contains("&lt;i&gt;"), "{html}");
        for name in ["message.html", "delete.html", "layout.html"] {
            assert!(
                PAGES
                    .get_template(name)
                    .unwrap()
                    .render(context! {})
                    .is_ok(),
                "{name}"
            );
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn form_posts_are_accepted_only_from_their_own_pages() {
        // A browser posting its own form under no-referrer: Origin null, fetch metadata same-origin.
        assert!(same_origin(&headers(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "null"),
            ("host", "u.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://u.example"),
            ("host", "u.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("sec-fetch-site", "same-site"),
            ("host", "u.example")
        ])));
        // Without fetch metadata the Origin must name this host.
        assert!(same_origin(&headers(&[
            ("origin", "https://u.example"),
            ("host", "u.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "u.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "null"),
            ("host", "u.example")
        ])));
        // Not a browser at all: the token in the form is the protection.
        assert!(same_origin(&headers(&[("host", "u.example")])));
    }
}
