//! Operational routes: liveness, readiness, metrics, the SDL.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({ "status": "ok" }))).into_response()
}

async fn readiness(state: &AppState) -> Result<(), &'static str> {
    let mut conn = state.db.conn().await.map_err(|_| "database unreachable")?;
    match crate::db::migrations_applied(&mut conn).await {
        Ok(true) => Ok(()),
        Ok(false) => Err("migrations pending"),
        Err(_) => Err("migrations not applied"),
    }
}

/// `GET /readyz`: the database answers and every migration is applied.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match readiness(&state).await {
        Ok(()) => (StatusCode::OK, axum::Json(json!({ "status": "ready" }))).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "unavailable", "reason": reason })),
        )
            .into_response(),
    }
}

/// `GET /metrics`: Prometheus text format, with the pool's state sampled now.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let (size, idle, waiting) = state.db.status();
    metrics::gauge!("usersvc_db_pool_connections").set(size as f64);
    metrics::gauge!("usersvc_db_pool_idle_connections").set(idle as f64);
    metrics::gauge!("usersvc_db_pool_waiting_requests").set(waiting as f64);
    metrics::counter!("usersvc_db_statements_total").absolute(state.db.statements());
    let mut resp = state.metrics.render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// `GET /schema.graphql`: the SDL, the same text as the committed `schema.graphql`.
pub async fn schema_sdl(State(state): State<AppState>) -> Response {
    let mut resp = state.sdl.to_string().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Anything else.
pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({ "error": "not found" })),
    )
        .into_response()
}
