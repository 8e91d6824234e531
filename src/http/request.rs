//! The shape a `/graphql` request must have, checked before anything is executed: over POST a
//! JSON body (415 otherwise) within the caller's body limit (413: `USERSVC_MAX_BODY_BYTES`, or
//! `USERSVC_MAX_IMPORT_BODY_BYTES` for a token with the import scope) and its deadline (408)
//! holding one operation (a batch, an array of them, gets 400, as does a body that is not JSON or
//! not a request object); over GET the request in the query string (400 when it does not decode)
//! and only queries (405 for a mutation, which would change state on a link a crawler may
//! follow).

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::AppState;
use super::error_body::error_response;

/// A request refused for its shape: HTTP 4xx with a GraphQL-shaped body, code `BAD_REQUEST`.
#[derive(Debug)]
pub struct Refused {
    status: StatusCode,
    message: &'static str,
}

impl Refused {
    const fn new(status: StatusCode, message: &'static str) -> Self {
        Refused { status, message }
    }

    /// A mutation sent over GET.
    pub const MUTATION_OVER_GET: Refused = Refused::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "mutations are only accepted over POST",
    );
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut resp = error_response(self.status, self.message, "BAD_REQUEST");
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        resp
    }
}

/// The largest body a request may have, decided by its token's scopes (a request extension
/// set by [`super::bearer::Authenticated`]; without it, the general limit).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// The GraphQL request in a POST body.
#[derive(Debug)]
pub struct JsonRequest(pub async_graphql::Request);

impl FromRequest<AppState> for JsonRequest {
    type Rejection = Refused;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Refused> {
        if !is_json(req.headers()) {
            return Err(Refused::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the request as Content-Type: application/json",
            ));
        }
        // Read under the caller's body limit (set with the token, which was checked first).
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(state.settings.max_body_bytes, |l| l.0);
        let too_large = || {
            Refused::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is larger than this server accepts",
            )
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let body = Limited::new(req.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    too_large()
                } else if timed_out(&*e) {
                    Refused::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "the body did not arrive in time",
                    )
                } else {
                    Refused::new(StatusCode::BAD_REQUEST, "the body could not be read")
                }
            })?
            .to_bytes();
        one_request(&body).map(JsonRequest)
    }
}

/// Whether reading the body failed on its deadline ([`super::serve`]).
fn timed_out(rejection: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(rejection);
    while let Some(e) = cause {
        if e.is::<super::serve::BodyTimedOut>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Whether the body is declared as JSON.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// The one request a JSON body holds.
fn one_request(body: &[u8]) -> Result<async_graphql::Request, Refused> {
    if body.trim_ascii_start().starts_with(b"[") {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "batched requests are not supported: send one operation per request",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            Refused::new(
                StatusCode::BAD_REQUEST,
                "the body must be an object with \"query\" and optional \"variables\" and \"operationName\"",
            )
        } else {
            Refused::new(StatusCode::BAD_REQUEST, "the body is not valid JSON")
        }
    })
}

/// The GraphQL request in a GET query string.
pub fn from_query_string(query: &str) -> Result<async_graphql::Request, Refused> {
    async_graphql::http::parse_query_string(query).map_err(|_| {
        Refused::new(
            StatusCode::BAD_REQUEST,
            "expected ?query=…[&variables=…][&operationName=…]",
        )
    })
}

/// Whether a GET request wants the GraphiQL page: a browser's (HTML accepted), without a query.
pub fn wants_graphiql(headers: &HeaderMap, query: &str) -> bool {
    query.is_empty()
        && headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_holds_one_request_object() {
        assert!(one_request(br#"{"query":"{ a }","variables":{"x":1}}"#).is_ok());
        let batch = one_request(br#" [{"query":"{ a }"}]"#).unwrap_err();
        assert!(batch.message.contains("batched"), "{batch:?}");
        let broken = one_request(br#"{"query":"#).unwrap_err();
        assert!(broken.message.contains("not valid JSON"), "{broken:?}");
        let shape = one_request(br#"{"query":5}"#).unwrap_err();
        assert!(shape.message.contains("must be an object"), "{shape:?}");
        assert_eq!(shape.status, StatusCode::BAD_REQUEST);
    }
}
