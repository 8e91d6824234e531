//! The bearer token of a `/graphql` request, checked from the request's head alone: as an
//! extractor that runs before any extractor of the body, a caller without a valid token gets its
//! 401 without the server reading (or waiting for) a byte of the body.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error_body::error_response;
use super::request::BodyLimit;
use crate::auth::jwt::Verifier;
use crate::auth::{Caller, scopes};

/// Largest `Authorization` header looked at.
const MAX_AUTH_HEADER: usize = 8 * 1024;

/// The caller named by a valid bearer token.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

/// Why a request has no caller: answered with HTTP 401 and a GraphQL-shaped body.
#[derive(Debug)]
pub struct Unauthenticated(&'static str);

impl IntoResponse for Unauthenticated {
    fn into_response(self) -> Response {
        let mut resp = error_response(StatusCode::UNAUTHORIZED, self.0, "UNAUTHENTICATED");
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        resp
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = Unauthenticated;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = authenticate(&state.verifier, &parts.headers).await?;
        // A batch of imported users is far larger than any other request: only a caller that
        // may import gets the larger body limit.
        let limit = if caller.has_scope(scopes::IMPORT) {
            state.settings.max_import_body_bytes
        } else {
            state.settings.max_body_bytes
        };
        parts.extensions.insert(BodyLimit(limit));
        Ok(Authenticated(caller))
    }
}

/// The caller named by the `Authorization: Bearer …` header.
async fn authenticate(verifier: &Verifier, headers: &HeaderMap) -> Result<Caller, Unauthenticated> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(Unauthenticated("missing bearer token"))?;
    if value.len() > MAX_AUTH_HEADER {
        return Err(Unauthenticated("invalid bearer token"));
    }
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or(Unauthenticated(
            "expected an Authorization: Bearer <token> header",
        ))?;
    match verifier.verify(token).await {
        Ok(claims) => Ok(Caller::from_claims(claims)),
        Err(e) => {
            tracing::info!(
                request_id = %crate::telemetry::current_request_id().unwrap_or_default(),
                reason = %e,
                "token refused"
            );
            Err(Unauthenticated("invalid or expired token"))
        }
    }
}
