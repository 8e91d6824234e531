//! The GraphQL-shaped error bodies `/graphql` answers with when it refuses a request before
//! (or instead of) executing it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::telemetry::current_request_id;

/// A response with a GraphQL-shaped error body.
pub fn error_response(status: StatusCode, message: &str, code: &str) -> Response {
    error_with(status, message, json!({ "code": code }))
}

/// An error response with these extensions (and the request id on a server error).
pub fn error_with(status: StatusCode, message: &str, mut ext: serde_json::Value) -> Response {
    if status.is_server_error()
        && let Some(id) = current_request_id()
    {
        ext["requestId"] = json!(id);
    }
    let body = json!({ "errors": [{ "message": message, "extensions": ext }] });
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
