//! The hosted pages behind the links: `/self-service/reset-password` and
//! `/self-service/delete-account`. Plain server-rendered HTML with no script and no external
//! asset. GET only shows (mail scanners prefetch links); POST, from the page's own form, acts.
//!
//! Forms are CSRF-safe twice over: they carry the link's secret token, which another site does
//! not have, and a POST whose `Origin` is not this host, or that a browser labels cross-site,
//! is refused. Pages send `Referrer-Policy: no-referrer` so the token never leaks to another
//! site, and a strict CSP. Tokens are never logged (the request log has no query strings).

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::AppState;
use crate::error::AppError;
use crate::passwords::Policy;
use crate::recovery::self_service::{self, DeadLink, ResetOutcome};

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}}\
         h1{{font-size:1.4rem}}label{{display:block;margin:1rem 0 .3rem}}\
         input[type=password]{{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}}\
         button{{margin-top:1.2rem;padding:.6rem 1.2rem;font-size:1rem;cursor:pointer}}\
         .error{{color:#a00;background:#fee;padding:.6rem;border-radius:4px}}\
         .ok{{color:#060;background:#efe;padding:.6rem;border-radius:4px}}\
         .danger{{background:#b00;color:#fff;border:0;border-radius:4px}}</style></head>\
         <body><main>{body}</main></body></html>",
        title = esc(title),
    );
    let mut resp = super::html_page(status, html, CSP);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
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
    page(
        status,
        title,
        &format!("<h1>{title}</h1><p class=\"error\">{}</p>", esc(&text)),
    )
}

/// The page for an unexpected failure. The cause is logged with the request id (turning it
/// into a GraphQL error is what logs it) and never shown.
fn failed(e: AppError) -> Response {
    let _ = async_graphql::Error::from(e);
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "<h1>Something went wrong</h1><p class=\"error\">Please try again in a moment.</p>",
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
    page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "<h1>Request refused</h1><p class=\"error\">This form can only be sent from its own page.</p>",
    )
}

fn reset_form(token: &str, app_name: &str, policy: &Policy, error: Option<&str>) -> String {
    let rules: String = policy
        .describe()
        .iter()
        .map(|r| format!("<li>{}</li>", esc(r)))
        .collect();
    let error = error
        .map(|e| format!("<p class=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    format!(
        "<h1>Choose a new password</h1><p>for your {app} account.</p>{error}\
         <p>Your password must be:</p><ul>{rules}</ul>\
         <form method=\"post\" action=\"/self-service/reset-password\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <label for=\"password\">New password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"new-password\" required>\
         <label for=\"confirmation\">New password, again</label>\
         <input type=\"password\" id=\"confirmation\" name=\"confirmation\" autocomplete=\"new-password\" required>\
         <button type=\"submit\" id=\"submit\">Set password</button></form>",
        app = esc(app_name),
        token = esc(token),
    )
}

/// `GET /self-service/reset-password?token=…`: the form, or why the link is dead.
pub async fn reset_get(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let token = q.get("token").map(String::as_str).unwrap_or("");
    match self_service::inspect_reset(&state.db, token).await {
        Ok(Ok(view)) => page(
            StatusCode::OK,
            "Choose a new password",
            &reset_form(token, &view.app_name, &view.policy, None),
        ),
        Ok(Err(d)) => dead(d, "password reset"),
        Err(e) => failed(e),
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
        &state.db,
        &state.hasher,
        &state.mail,
        &token,
        field("password"),
        &field("confirmation"),
    )
    .await;
    match outcome {
        Ok(ResetOutcome::Done) => page(
            StatusCode::OK,
            "Password changed",
            "<h1>Password changed</h1><p class=\"ok\" id=\"result\">Your password has been changed. \
             You can now log in with it.</p>",
        ),
        Ok(ResetOutcome::Mismatch(view)) => page(
            StatusCode::BAD_REQUEST,
            "Choose a new password",
            &reset_form(
                &token,
                &view.app_name,
                &view.policy,
                Some("The two passwords are not the same."),
            ),
        ),
        Ok(ResetOutcome::Weak(view, rule)) => page(
            StatusCode::BAD_REQUEST,
            "Choose a new password",
            &reset_form(
                &token,
                &view.app_name,
                &view.policy,
                Some(&format!("The password {rule}.")),
            ),
        ),
        Ok(ResetOutcome::Dead(d)) => dead(d, "password reset"),
        Err(e) => failed(e),
    }
}

/// `GET /self-service/delete-account?appId=…&deletionToken=…&profileId=…`: the confirmation.
pub async fn delete_get(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let (app_id, token, profile_id) = (get("appId"), get("deletionToken"), get("profileId"));
    match self_service::inspect_deletion(&state.db, app_id, token, profile_id).await {
        Ok(Ok(view)) => page(
            StatusCode::OK,
            "Delete your account",
            &format!(
                "<h1>Delete your {app} account?</h1>\
                 <p>This deletes your account and everything that belongs to it, for good. \
                 It cannot be undone.</p>\
                 <form method=\"post\" action=\"/self-service/delete-account\">\
                 <input type=\"hidden\" name=\"appId\" value=\"{app_id}\">\
                 <input type=\"hidden\" name=\"deletionToken\" value=\"{token}\">\
                 <input type=\"hidden\" name=\"profileId\" value=\"{profile}\">\
                 <button type=\"submit\" class=\"danger\" id=\"confirm\">Delete my account</button></form>",
                app = esc(&view.app_name),
                app_id = esc(&view.app_id),
                token = esc(token),
                profile = view.profile_id,
            ),
        ),
        Ok(Err(d)) => dead(d, "account deletion"),
        Err(e) => failed(e),
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
    match self_service::complete_deletion(
        &state.db,
        &state.mail,
        get("appId"),
        get("deletionToken"),
        get("profileId"),
    )
    .await
    {
        Ok(Ok(_)) => page(
            StatusCode::OK,
            "Account deleted",
            "<h1>Account deleted</h1><p class=\"ok\" id=\"result\">Your account has been deleted. \
             A confirmation is on its way to your email address.</p>",
        ),
        Ok(Err(d)) => dead(d, "account deletion"),
        Err(e) => failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
