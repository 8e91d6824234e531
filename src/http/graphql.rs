//! `/graphql`, one step after the other:
//!
//! 1. GraphiQL for a browser's GET without a query ([`request::wants_graphiql`]);
//! 2. the bearer token, from the request's head, before the body is read ([`bearer`]): 401
//!    with a GraphQL-shaped body for any problem with it;
//! 3. the request's shape ([`request`]): JSON only (415), one operation (400 for arrays),
//!    mutations only over POST (405);
//! 4. the document, parsed once per distinct text ([`documents`]), and its root fields counted
//!    against the limit before anything runs ([`graphql::limits::root_fields`]);
//! 5. execution with the caller attached, under the request deadline ([`Endpoint::execute`]);
//! 6. the response shaped as the spec says ([`complete`]), the root fields counted
//!    ([`field_metrics`]), and sent with `Cache-Control: no-store`, serialised within the
//!    response budget (`RESPONSE_TOO_LARGE` instead, when it would not fit).
//!
//! [`bearer`]: super::bearer
//! [`request`]: super::request
//! [`documents`]: super::documents
//! [`complete`]: super::complete
//! [`field_metrics`]: super::field_metrics

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{OperationDefinition, OperationType};
use async_graphql::{Request, Schema};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::bearer::{Authenticated, Unauthenticated};
use super::complete::{self, OutputTypes};
use super::documents::{Document, Documents, selected_operation};
use super::error_body::error_with;
use super::known::KnownRequests;
use super::request::{self, JsonRequest, Refused};
use super::unknown_fields::{InputTypes, name_unknown_fields};
use crate::auth::Caller;
use crate::graphql::{self, AppSchema, Limits};

/// What `/graphql` runs requests with: the schema, the parse cache, the validation shortcut
/// (when on), the output types the responses are shaped by, and the deadline.
pub struct Endpoint {
    schema: AppSchema,
    documents: Documents,
    known: Option<KnownRequests>,
    types: OutputTypes,
    inputs: InputTypes,
    deadline: Duration,
    max_root_fields: usize,
    max_response_bytes: usize,
}

impl Endpoint {
    /// The endpoint for `schema` under `limits`; `known` is the validation shortcut, if any.
    pub fn new(
        schema: AppSchema,
        known: Option<KnownRequests>,
        deadline: Duration,
        limits: &Limits,
    ) -> Self {
        let sdl = schema.sdl();
        let types = OutputTypes::from_sdl(&sdl);
        let inputs = InputTypes::from_sdl(&sdl);
        Endpoint {
            schema,
            documents: Documents::new(512),
            known,
            types,
            inputs,
            deadline,
            max_root_fields: limits.max_root_fields,
            max_response_bytes: limits.max_response_bytes,
        }
    }

    /// The schema.
    pub fn schema(&self) -> &AppSchema {
        &self.schema
    }

    /// Runs `request`, which runs the operation `op` of `doc`, to completion; `None` when the
    /// deadline passed first (the request is then dropped, with whatever it was waiting for).
    async fn execute(
        &self,
        request: Request,
        doc: &Document,
        op: Option<&Positioned<OperationDefinition>>,
    ) -> Option<async_graphql::Response> {
        let run = async {
            match &self.known {
                Some(known) => known.execute(&self.schema, doc, op, request).await,
                None => Schema::execute(&self.schema, request).await,
            }
        };
        tokio::time::timeout(self.deadline, run).await.ok()
    }
}

/// `POST /graphql`: one JSON request. The token is checked before the body is read.
pub async fn post_graphql(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonRequest(request): JsonRequest,
) -> Response {
    let doc = state.graphql.documents.parse(&request.query);
    respond(&state, caller, request, doc).await
}

/// `GET /graphql`: GraphiQL for a browser, else a query in the URL.
pub async fn get_graphql(
    State(state): State<AppState>,
    auth: Result<Authenticated, Unauthenticated>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    if request::wants_graphiql(&headers, &query) {
        return super::graphiql::page(state.settings.graphiql_token.as_deref());
    }
    let caller = match auth {
        Ok(Authenticated(caller)) => caller,
        Err(refused) => return refused.into_response(),
    };
    let request = match request::from_query_string(&query) {
        Ok(request) => request,
        Err(refused) => return refused.into_response(),
    };
    let doc = state.graphql.documents.parse(&request.query);
    if let Ok(doc) = &doc
        && let Some(op) = selected_operation(&doc.parsed, request.operation_name.as_deref())
        && op.node.ty != OperationType::Query
    {
        return Refused::MUTATION_OVER_GET.into_response();
    }
    respond(&state, caller, request, doc).await
}

/// Executes a request whose shape passed, and answers it.
async fn respond(
    state: &AppState,
    caller: Caller,
    request: Request,
    doc: Result<Arc<Document>, async_graphql::parser::Error>,
) -> Response {
    let doc = match doc {
        Ok(doc) => doc,
        Err(e) => return reply(complete::parse_failed(e), state.graphql.max_response_bytes),
    };
    let started = Instant::now();
    let endpoint = &state.graphql;
    let op = selected_operation(&doc.parsed, request.operation_name.as_deref());
    if let Some(op) = op {
        let fields = graphql::limits::root_fields(&doc.parsed, &op.node);
        if fields > endpoint.max_root_fields {
            return reply(
                complete::refused(&format!(
                    "the operation selects {fields} root fields; at most {} are allowed",
                    endpoint.max_root_fields
                )),
                endpoint.max_response_bytes,
            );
        }
    }
    // Kept for naming an input object's unknown fields, should validation refuse one (only
    // variables of input object types can have such fields).
    let variables = (!request.variables.is_empty()
        && op.is_none_or(|op| endpoint.inputs.any_input_variable(&op.node)))
    .then(|| request.variables.clone());
    let prepared = graphql::prepare(request, caller, &state.db, endpoint.max_response_bytes);
    let mut request = prepared.request;
    request.set_parsed_query(doc.parsed.clone());
    let run = prepared.log.scope(endpoint.execute(request, &doc, op));
    let Some(mut response) = run.await else {
        tracing::warn!(
            timeout_ms = state.graphql.deadline.as_millis() as u64,
            "request timed out"
        );
        // Retryable as the database errors it usually stands for (a slow or unreachable
        // database) are.
        return error_with(
            StatusCode::SERVICE_UNAVAILABLE,
            "the request took too long and was cancelled",
            json!({ "code": "INTERNAL_SERVER_ERROR", "retryable": true }),
        );
    };
    if prepared.budget.exceeded() {
        response = complete::too_large(endpoint.max_response_bytes);
    }
    if matches!(response.data, async_graphql::Value::Null) {
        name_unknown_fields(
            &mut response.errors,
            &doc.parsed,
            variables.as_ref(),
            &endpoint.inputs,
        );
    }
    complete::complete(&mut response, &doc.parsed, op, &endpoint.types);
    super::field_metrics::count(&doc.parsed, op, &response, started.elapsed());
    reply(response, endpoint.max_response_bytes)
}

/// The HTTP response for a GraphQL response: JSON, never stored by caches, and at most
/// `max_bytes` long (`RESPONSE_TOO_LARGE` in its place otherwise: the serialiser stops at the
/// limit, so a larger body is never built).
///
/// The media type stays `application/json` (not `application/graphql-response+json`, which
/// async-graphql's axum integration sends): under that newer type GraphQL over HTTP asks for a
/// 4xx status when a request fails validation, and these keep the 200 that `application/json`
/// asks for and that clients of this server already handle.
fn reply(response: async_graphql::Response, max_bytes: usize) -> Response {
    let body = match complete::serialise(&response, max_bytes) {
        Some(body) => body,
        None => {
            complete::serialise(&complete::too_large(max_bytes), usize::MAX).unwrap_or_default()
        }
    };
    let mut resp = (StatusCode::OK, body).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
