//! `/graphql`, one step after the other:
//!
//! 1. GraphiQL for a browser's GET without a query ([`request::wants_graphiql`]);
//! 2. the bearer token, from the request's head, before the body is read ([`bearer`]): 401
//!    with a GraphQL-shaped body for any problem with it;
//! 3. the request's shape ([`request`]): JSON only (415), one operation (400 for arrays),
//!    mutations only over POST (405);
//! 4. the document, parsed once per distinct text ([`documents`]);
//! 5. execution with the caller attached, under the request deadline ([`Endpoint::execute`]);
//! 6. the response shaped as the spec says ([`complete`]), the root fields counted
//!    ([`field_metrics`]), and sent with `Cache-Control: no-store`.
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
use async_graphql_axum::GraphQLResponse;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::bearer::{Authenticated, Unauthenticated};
use super::complete::{self, OutputTypes};
use super::documents::{Document, Documents, selected_operation};
use super::known::KnownRequests;
use super::request::{self, JsonRequest, Refused};
use super::unknown_fields::{InputTypes, name_unknown_fields};
use crate::auth::Caller;
use crate::graphql::{self, AppSchema};
use crate::telemetry::current_request_id;

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

/// What `/graphql` runs requests with: the schema, the parse cache, the validation shortcut
/// (when on), the output types the responses are shaped by, and the deadline.
pub struct Endpoint {
    schema: AppSchema,
    documents: Documents,
    known: Option<KnownRequests>,
    types: OutputTypes,
    inputs: InputTypes,
    deadline: Duration,
}

impl Endpoint {
    /// The endpoint for `schema`; `known` is the validation shortcut, if any.
    pub fn new(schema: AppSchema, known: Option<KnownRequests>, deadline: Duration) -> Self {
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
        Err(e) => return reply(complete::parse_failed(e)),
    };
    let started = Instant::now();
    let op = selected_operation(&doc.parsed, request.operation_name.as_deref());
    // Kept for naming an input object's unknown fields, should validation refuse one.
    let variables = (!request.variables.is_empty()).then(|| request.variables.clone());
    let mut request = graphql::prepare(request, caller, &state.db);
    request.set_parsed_query(doc.parsed.clone());
    let Some(mut response) = state.graphql.execute(request, &doc, op).await else {
        tracing::warn!(
            timeout_ms = state.graphql.deadline.as_millis() as u64,
            "request timed out"
        );
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the request took too long and was cancelled",
            "INTERNAL_SERVER_ERROR",
        );
    };
    if matches!(response.data, async_graphql::Value::Null) {
        name_unknown_fields(
            &mut response.errors,
            &doc.parsed,
            variables.as_ref(),
            &state.graphql.inputs,
        );
    }
    complete::complete(&mut response, &doc.parsed, op, &state.graphql.types);
    super::field_metrics::count(&doc.parsed, op, &response, started.elapsed());
    reply(response)
}

/// The HTTP response for a GraphQL response: JSON, never stored by caches.
///
/// The media type stays `application/json` (async-graphql-axum says
/// `application/graphql-response+json`): under that newer type GraphQL over HTTP asks for a
/// 4xx status when a request fails validation, and these keep the 200 that `application/json`
/// asks for and that clients of this server already handle.
fn reply(response: async_graphql::Response) -> Response {
    let mut resp = GraphQLResponse::from(response).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
