//! GraphiQL, served entirely by usersvc (it works with no internet access). The assets are
//! vendored under `assets/graphiql/` (see its README for their origin) and compiled in.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../../assets/graphiql/index.html");

/// The page needs inline styles (GraphiQL injects a `<style>` for its dialogs) and `data:`
/// fonts and images from its CSS; nothing else, and nothing from another origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The GraphiQL page; with `dev_token` (the development key in force), one that starts with
/// that token in its headers, read by `init.js` from a `<meta>` tag.
pub fn page(dev_token: Option<&str>) -> Response {
    let Some(token) = dev_token else {
        return super::html_page(StatusCode::OK, INDEX, CSP);
    };
    let meta = format!(
        "<meta name=\"usersvc-dev-token\" content=\"{}\" />\n  </head>",
        escape_attribute(token)
    );
    let mut resp = super::html_page(StatusCode::OK, INDEX.replacen("</head>", &meta, 1), CSP);
    // A page with a token in it is kept by no cache.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Text for an HTML attribute value in double quotes.
fn escape_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `GET /graphiql/{file}`: one of the vendored assets.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, content_type): (&'static [u8], &str) = match file.as_str() {
        "graphiql.min.js" => (
            include_bytes!("../../assets/graphiql/graphiql.min.js"),
            "text/javascript",
        ),
        "graphiql.min.css" => (
            include_bytes!("../../assets/graphiql/graphiql.min.css"),
            "text/css",
        ),
        "react.production.min.js" => (
            include_bytes!("../../assets/graphiql/react.production.min.js"),
            "text/javascript",
        ),
        "react-dom.production.min.js" => (
            include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
            "text/javascript",
        ),
        "init.js" => (
            include_bytes!("../../assets/graphiql/init.js"),
            "text/javascript",
        ),
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    resp
}
