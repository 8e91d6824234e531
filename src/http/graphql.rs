//! `/graphql`: authentication, request shape checks, execution under a deadline.
//!
//! Order of checks: GraphiQL for a browser (GET, `Accept: text/html`, no query); then the
//! bearer token (401 with a GraphQL-shaped body for any problem with it); then the request
//! shape: JSON only (415 otherwise), one operation per request (arrays: 400), mutations only
//! over POST (405); then execution with the caller attached, under the request deadline.

use async_graphql::parser::types::ExecutableDocument;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::auth::Caller;
use crate::error::current_request_id;
use crate::graphql;

/// Largest `Authorization` header looked at.
const MAX_AUTH_HEADER: usize = 8 * 1024;

/// A response with a GraphQL-shaped error body.
pub fn error_response(status: StatusCode, message: &str, code: &str) -> Response {
    let mut ext = json!({ "code": code });
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

fn unauthenticated(message: &str) -> Response {
    let mut resp = error_response(StatusCode::UNAUTHORIZED, message, "UNAUTHENTICATED");
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

fn bad_request(status: StatusCode, message: &str) -> Response {
    error_response(status, message, "BAD_REQUEST")
}

/// The caller named by the bearer token, or the 401 response.
#[allow(clippy::result_large_err)]
fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, Response> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthenticated("missing bearer token"));
    };
    if value.len() > MAX_AUTH_HEADER {
        return Err(unauthenticated("invalid bearer token"));
    }
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(unauthenticated(
            "expected an Authorization: Bearer <token> header",
        ));
    };
    match state.verifier.verify(token) {
        Ok(claims) => Ok(Caller::from_claims(claims)),
        Err(e) => {
            tracing::info!(reason = %e, "token refused");
            Err(unauthenticated("invalid or expired token"))
        }
    }
}

async fn execute(
    state: &AppState,
    caller: Caller,
    mut request: async_graphql::Request,
) -> Response {
    let doc = state.documents.parse(&request.query);
    if let Some(doc) = &doc {
        request.set_parsed_query(ExecutableDocument::clone(doc));
    }
    let operation = request.operation_name.clone();
    let request = graphql::prepare(request, caller, &state.db);
    let deadline = state.settings.request_timeout;
    match tokio::time::timeout(
        deadline,
        async_graphql::Schema::execute(&state.schema, request),
    )
    .await
    {
        Ok(mut response) => {
            if let Some(doc) = &doc {
                super::order::reorder(&mut response.data, doc, operation.as_deref());
            }
            let mut resp = axum::Json(response).into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = deadline.as_millis() as u64,
                "request timed out"
            );
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "the request took too long and was cancelled",
                "INTERNAL_SERVER_ERROR",
            )
        }
    }
}

/// `POST /graphql`: one JSON request.
pub async fn post_graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match authenticate(&state, &headers) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json_body {
        return bad_request(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as Content-Type: application/json",
        );
    }
    // The common case in one pass: a JSON object straight into a request.
    if body.trim_ascii_start().starts_with(b"{")
        && let Ok(request) = serde_json::from_slice::<async_graphql::Request>(&body)
    {
        return execute(&state, caller, request).await;
    }
    // Otherwise, tell invalid JSON, batches and wrongly shaped objects apart.
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return bad_request(StatusCode::BAD_REQUEST, "the body is not valid JSON"),
    };
    if value.is_array() {
        return bad_request(
            StatusCode::BAD_REQUEST,
            "batched requests are not supported: send one operation per request",
        );
    }
    let request: async_graphql::Request = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(_) => {
            return bad_request(
                StatusCode::BAD_REQUEST,
                "the body must be an object with \"query\" and optional \"variables\" and \"operationName\"",
            );
        }
    };
    execute(&state, caller, request).await
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// Whether the operation a request would run is a mutation (or a subscription).
fn is_mutation(state: &AppState, request: &async_graphql::Request) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let Some(doc) = state.documents.parse(&request.query) else {
        return false; // execution reports the syntax error
    };
    let ty = match (&doc.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
    };
    matches!(
        ty,
        Some(OperationType::Mutation | OperationType::Subscription)
    )
}

/// `GET /graphql`: GraphiQL for a browser, else a query in the URL.
pub async fn get_graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    if query.is_empty() && wants_html(&headers) {
        return super::graphiql::page();
    }
    let caller = match authenticate(&state, &headers) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let request = match async_graphql::http::parse_query_string(&query) {
        Ok(r) => r,
        Err(_) => {
            return bad_request(
                StatusCode::BAD_REQUEST,
                "expected ?query=…[&variables=…][&operationName=…]",
            );
        }
    };
    if is_mutation(&state, &request) {
        let mut resp = bad_request(
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations are only accepted over POST",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    execute(&state, caller, request).await
}
