//! The one place where a service error becomes a GraphQL error: `extensions.code`, brainCloud's
//! `reasonCode` where it has one, and for unexpected failures a log line with the request id
//! (which the client gets instead of the cause).

use async_graphql::ErrorExtensions;

use crate::error::AppError;
use crate::telemetry::current_request_id;

impl From<AppError> for async_graphql::Error {
    fn from(e: AppError) -> Self {
        let request_id = current_request_id();
        if let AppError::Internal(cause) | AppError::Unavailable(cause) = &e {
            tracing::error!(
                request_id = request_id.as_deref().unwrap_or("-"),
                error = %cause,
                kind = e.code(),
                "request failed"
            );
        }
        let code = e.code();
        let reason = e.reason_code();
        let retryable = matches!(e, AppError::Unavailable(_));
        let internal = matches!(e, AppError::Internal(_) | AppError::Unavailable(_));
        async_graphql::Error::new(e.message()).extend_with(move |_, ext| {
            ext.set("code", code);
            if let Some(reason) = reason {
                ext.set("reasonCode", reason);
            }
            if internal && let Some(id) = &request_id {
                ext.set("requestId", id.as_str());
            }
            if retryable {
                ext.set("retryable", true);
            }
        })
    }
}
