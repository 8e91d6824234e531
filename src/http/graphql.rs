//! `/graphql`: authentication, request shape checks, execution under a deadline.
//!
//! Order of checks: GraphiQL for a browser (GET, `Accept: text/html`, no query); then the
//! bearer token (401 with a GraphQL-shaped body for any problem with it); then the request
//! shape: JSON only (415 otherwise), one operation per request (arrays: 400), mutations only
//! over POST (405); then execution with the caller attached, under the request deadline.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{ExecutableDocument, OperationDefinition, OperationType};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::documents::{Document, for_each_field, selected_operation, validation_key};
use crate::auth::Caller;
use crate::graphql;
use crate::telemetry::current_request_id;

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
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, Response> {
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
    match state.verifier.verify(token).await {
        Ok(claims) => Ok(Caller::from_claims(claims)),
        Err(e) => {
            tracing::info!(reason = %e, "token refused");
            Err(unauthenticated("invalid or expired token"))
        }
    }
}

/// Runs a request whose document is `doc` (from [`super::documents::Documents::parse`]; `None`
/// when it does not parse, and execution reports the syntax error).
async fn execute(
    state: &AppState,
    caller: Caller,
    mut request: async_graphql::Request,
    doc: Option<Arc<Document>>,
) -> Response {
    let operation = request.operation_name.clone();
    let op = doc
        .as_deref()
        .and_then(|d| selected_operation(&d.parsed, operation.as_deref()));
    // A request whose validation cannot differ from one that passed in full skips the rules
    // that depend on the document alone (see `documents`).
    let key = op.and_then(|op| validation_key(op, operation.as_deref(), &request.variables));
    let known = matches!((&doc, &key), (Some(d), Some(k)) if d.has_passed(k));
    if let Some(doc) = &doc {
        request.set_parsed_query(ExecutableDocument::clone(&doc.parsed));
    }
    let request = graphql::prepare(request, caller, &state.db);
    let schema = if known {
        &state.schemas.known
    } else {
        &state.schemas.strict
    };
    let deadline = state.settings.request_timeout;
    let started = Instant::now();
    match tokio::time::timeout(deadline, async_graphql::Schema::execute(schema, request)).await {
        Ok(mut response) => {
            if let Some(doc) = &doc {
                // Data comes back only from a request that passed validation.
                if !known
                    && !matches!(response.data, async_graphql::Value::Null)
                    && let Some(key) = key
                {
                    doc.record_passed(key);
                }
                if let Some(op) = op {
                    super::order::reorder(&mut response.data, &doc.parsed, op);
                    count_root_fields(&doc.parsed, op, &response, started);
                }
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

/// Counts the root fields an executed operation asked for, for `/metrics`: per field, how many
/// ended well or with an error for them, and the duration of the operation that asked for it.
/// A request refused before execution (validation) counts nothing.
fn count_root_fields(
    doc: &ExecutableDocument,
    op: &Positioned<OperationDefinition>,
    response: &async_graphql::Response,
    started: Instant,
) {
    if matches!(response.data, async_graphql::Value::Null)
        && response.errors.iter().all(|e| e.path.is_empty())
    {
        return;
    }
    let seconds = started.elapsed().as_secs_f64();
    // Root fields through fragments (nested at most 8 deep); introspection fields left out.
    let mut fields = Vec::new();
    for_each_field(doc, &op.node.selection_set.node, 8, &mut |f| {
        let name = f.name.node.as_str();
        if !name.starts_with("__") {
            fields.push((name, f.response_key().node.as_str()));
        }
    });
    for (name, key) in fields {
        let failed = response.errors.iter().any(
            |e| matches!(e.path.first(), Some(async_graphql::PathSegment::Field(f)) if f == key),
        );
        let outcome = if failed { "error" } else { "ok" };
        metrics::histogram!("usersvc_graphql_field_duration_seconds", "field" => name.to_owned())
            .record(seconds);
        metrics::counter!("usersvc_graphql_fields_total", "field" => name.to_owned(), "outcome" => outcome)
            .increment(1);
    }
}

/// `POST /graphql`: one JSON request.
pub async fn post_graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match authenticate(&state, &headers).await {
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
        let doc = state.documents.parse(&request.query);
        return execute(&state, caller, request, doc).await;
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
    let doc = state.documents.parse(&request.query);
    execute(&state, caller, request, doc).await
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// Whether the operation a request would run is a mutation (or a subscription). A document
/// that does not parse is not: execution reports the syntax error.
fn is_mutation(doc: Option<&Document>, operation: Option<&str>) -> bool {
    doc.and_then(|d| selected_operation(&d.parsed, operation))
        .is_some_and(|op| {
            matches!(
                op.node.ty,
                OperationType::Mutation | OperationType::Subscription
            )
        })
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
    let caller = match authenticate(&state, &headers).await {
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
    let doc = state.documents.parse(&request.query);
    if is_mutation(doc.as_deref(), request.operation_name.as_deref()) {
        let mut resp = bad_request(
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations are only accepted over POST",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    execute(&state, caller, request, doc).await
}
