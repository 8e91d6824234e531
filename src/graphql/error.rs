//! The one place where a service error becomes a GraphQL error: `extensions.code`, brainCloud's
//! `reasonCode` where it has one, and for unexpected failures a log line with the request id
//! (which the client gets instead of the cause). A request logs its first unexpected failure
//! only: when one cause fails many aliases (a database outage under a request of twenty root
//! fields), the log gets one line, not one per alias.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::ErrorExtensions;

use crate::error::AppError;
use crate::telemetry::current_request_id;

tokio::task_local! {
    /// Whether the request being served has logged a failure.
    static LOGGED: Arc<AtomicBool>;
}

/// One request's error log: its first unexpected failure is logged at error level, the rest at
/// debug level.
#[derive(Clone, Default)]
pub struct LogOnce(Arc<AtomicBool>);

impl LogOnce {
    /// Runs `fut` (the request, or a task working for it) under this log.
    pub fn scope<F: Future>(
        self,
        fut: F,
    ) -> tokio::task::futures::TaskLocalFuture<Arc<AtomicBool>, F> {
        LOGGED.scope(self.0, fut)
    }
}

/// Logs the request's later failures at debug level only: its answer is decided already.
pub(crate) fn quiet() {
    let _ = LOGGED.try_with(|logged| logged.store(true, Ordering::Relaxed));
}

/// Whether this failure is the first of its request (always, outside a request).
fn first_failure() -> bool {
    LOGGED
        .try_with(|logged| !logged.swap(true, Ordering::Relaxed))
        .unwrap_or(true)
}

impl From<AppError> for async_graphql::Error {
    fn from(e: AppError) -> Self {
        let request_id = current_request_id();
        if let AppError::Internal(cause) | AppError::Unavailable(cause) = &e {
            if first_failure() {
                tracing::error!(
                    request_id = request_id.as_deref().unwrap_or("-"),
                    error = %cause,
                    kind = e.code(),
                    "request failed"
                );
            } else {
                tracing::debug!(
                    request_id = request_id.as_deref().unwrap_or("-"),
                    error = %cause,
                    "request failed again"
                );
            }
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
