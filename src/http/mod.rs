//! HTTP: the router and its layers. Routes: `/graphql` (POST, and GET for queries and for
//! GraphiQL), `/graphiql/*` (GraphiQL's own assets, so it works offline), `/schema.graphql`,
//! `/healthz`, `/readyz`, `/metrics`.
//!
//! Layers, outside in: every response gets `X-Content-Type-Options: nosniff`; a request id
//! (a UUIDv7 made here, never one a client sent) on the request, in `x-request-id` on the
//! response, and for the task serving it (logs, audit events, internal errors); one log line
//! and the route's metrics per request; a panic becomes a generic 500; an overall deadline; the
//! body limit on `/graphql`.

pub mod bearer;
pub mod complete;
pub mod documents;
pub mod error_body;
pub mod field_metrics;
pub mod graphiql;
pub mod graphql;
pub mod known;
pub mod ops;
pub mod pages;
pub mod request;
pub mod route_metrics;
pub mod serve;
pub mod unknown_fields;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::validate_request::ValidateRequestHeaderLayer;
use tracing::Instrument;

use crate::auth::jwt::Verifier;
use crate::db::Db;
use crate::graphql::{self as schema, Limits, Services};
use crate::telemetry::{REQUEST_ID, REQUEST_ROUTE, current_request_id};

/// Limits of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Largest request body on `/graphql`.
    pub max_body_bytes: usize,
    /// Largest request body on `/graphql` for a token with the import scope.
    pub max_import_body_bytes: usize,
    /// Deadline for executing one GraphQL request.
    pub request_timeout: Duration,
    /// Whether a request like one that passed full validation re-checks only what its
    /// variables can change (see [`known`]). Off only to compare the two paths.
    pub validation_shortcut: bool,
    /// Most connections open at once (see [`serve`]).
    pub max_connections: usize,
    /// Deadline for a request's head, from its first byte (or from the accept, for a new
    /// connection's first request).
    pub header_timeout: Duration,
    /// Deadline for a request's body, from its head.
    pub body_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// A token GraphiQL starts with in its headers: the development token, set only when the
    /// development key is in force (never with a configured key).
    pub graphiql_token: Option<String>,
}

impl Default for HttpSettings {
    /// The defaults of `usersvc serve`.
    fn default() -> Self {
        HttpSettings {
            max_body_bytes: 64 * 1024,
            max_import_body_bytes: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(15),
            validation_shortcut: true,
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            graphiql_token: None,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The schema and what `/graphql` runs requests with.
    pub graphql: Arc<graphql::Endpoint>,
    pub db: Db,
    pub verifier: Arc<Verifier>,
    pub metrics: PrometheusHandle,
    pub settings: Arc<HttpSettings>,
    pub sdl: Arc<str>,
    pub hasher: crate::passwords::Hasher,
    pub mail: Arc<crate::mail::MailSettings>,
}

/// The `/graphql` endpoint over the service layer, with its limits.
pub fn endpoint(services: Services, limits: &Limits, settings: &HttpSettings) -> graphql::Endpoint {
    let known = settings
        .validation_shortcut
        .then(|| known::KnownRequests::new(schema::build_fast(Some(services.clone()), limits)));
    graphql::Endpoint::new(
        schema::build(Some(services), limits),
        known,
        settings.request_timeout,
        limits,
    )
}

/// An HTML page with the headers every page usersvc serves carries: its Content-Security-Policy,
/// no referrer, no framing.
pub(crate) fn html_page(
    status: StatusCode,
    body: impl IntoResponse,
    csp: &'static str,
) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    // The body limit that applies is the caller's (see `request::BodyLimit`); this one only
    // bounds what any caller may send.
    let max_body = state
        .settings
        .max_body_bytes
        .max(state.settings.max_import_body_bytes);
    // The outer deadline only catches what the GraphQL deadline does not (a stuck body read,
    // a slow page): the GraphQL handler answers its own timeouts with a GraphQL error first.
    let outer_deadline = state.settings.request_timeout + Duration::from_secs(5);
    let routes = Router::new()
        .route(
            "/graphql",
            get(graphql::get_graphql)
                .post(graphql::post_graphql)
                .layer(DefaultBodyLimit::max(max_body)),
        )
        .route("/graphiql/{file}", get(graphiql::asset))
        .route(
            "/self-service/reset-password",
            get(pages::reset_get)
                .post(pages::reset_post)
                .layer(DefaultBodyLimit::max(16 * 1024)),
        )
        .route(
            "/self-service/delete-account",
            get(pages::delete_get)
                .post(pages::delete_post)
                .layer(DefaultBodyLimit::max(16 * 1024)),
        )
        .route("/schema.graphql", get(ops::schema_sdl))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(ops::not_found);
    let timeout = TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, outer_deadline);
    let catch_panic = CatchPanicLayer::custom(panicked);
    let nosniff = SetResponseHeaderLayer::overriding(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // One `layer` call for the whole stack: each call boxes the routes once more, which every
    // request pays for (about 6k instructions per request for seven separate calls).
    routes
        .layer((
            nosniff,
            ValidateRequestHeaderLayer::custom(forget_client_request_id),
            SetRequestIdLayer::x_request_id(MakeUuidV7),
            PropagateRequestIdLayer::x_request_id(),
            middleware::from_fn(log_request),
            catch_panic,
            timeout,
        ))
        .with_state(state)
}

/// The last-resort answer when a handler panics: a generic error carrying the request id, the
/// details only in the log. The panic ends that request alone; the server goes on serving.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!(
        request_id = %current_request_id().unwrap_or_default(),
        "a handler panicked"
    );
    error_body::error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal server error",
        "INTERNAL_SERVER_ERROR",
    )
}

/// Request ids: UUIDv7s (time-ordered) whose random part comes from the thread's CSPRNG, not a
/// system call per request as `Uuid::now_v7` makes.
#[derive(Debug, Clone, Copy)]
struct MakeUuidV7;

impl MakeRequestId for MakeUuidV7 {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&new_request_id())
            .ok()
            .map(RequestId::new)
    }
}

fn new_request_id() -> String {
    let mut random = [0u8; 10];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut random);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    uuid::Builder::from_unix_timestamp_millis(millis, &random)
        .into_uuid()
        .to_string()
}

const X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// Drops an `x-request-id` a client sent (a "validation" that lets every request through): the
/// id ends up in the audit trail and in internal errors, so it is always one this server made,
/// where `SetRequestIdLayer` would keep the client's.
#[expect(
    clippy::result_large_err,
    reason = "the signature tower-http's ValidateRequestHeaderLayer::custom asks for"
)]
fn forget_client_request_id(req: &mut Request) -> Result<(), Response> {
    req.headers_mut().remove(X_REQUEST_ID);
    Ok(())
}

/// The method as a metrics label. Clients may send any token as a method, and every distinct
/// label value is a series `/metrics` keeps for good, so methods outside the standard ones
/// share one label.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// Serves a request with its id in the task-local [`REQUEST_ID`] (for logs, audit events and
/// internal errors) and its method and route in [`REQUEST_ROUTE`] (for JSON log lines), within a
/// span when traces are exported; logs one line per request (method, route, status, latency:
/// never the query string, which may hold a token) and counts it for `/metrics`.
///
/// Without trace export there is no span: a span costs every request its formatted fields and an
/// enter and exit at each poll, and the task-locals give the log lines the same fields.
async fn log_request(req: Request, next: Next) -> Response {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let served = REQUEST_ID.scope(
        request_id.clone(),
        REQUEST_ROUTE.scope((method, route.clone()), next.run(req)),
    );
    let response = if crate::telemetry::otlp::exporting() {
        let span = tracing::info_span!(
            "request",
            request_id = %request_id,
            method,
            route = %route
        );
        served.instrument(span).await
    } else {
        served.await
    };
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    tracing::info!(
        request_id = %request_id,
        method,
        route = %route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    route_metrics::count(&route, method, status, elapsed);
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn methods_outside_the_standard_ones_share_one_metrics_label() {
        use axum::http::Method;
        assert_eq!(super::method_label(&Method::POST), "POST");
        let odd = Method::from_bytes(b"FROBNICATE").unwrap();
        assert_eq!(super::method_label(&odd), "OTHER");
    }

    #[tokio::test]
    async fn a_panicking_handler_gets_a_generic_error_and_the_server_serves_on() {
        use axum::routing::get;
        async fn boom() -> &'static str {
            panic!("secret detail from a bug")
        }
        let app = axum::Router::new()
            .route("/boom", get(boom))
            .route("/ok", get(|| async { "fine" }))
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(
                super::panicked,
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        for _ in 0..3 {
            let resp = client.get(format!("{base}/boom")).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 500);
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(
                body["errors"][0]["extensions"]["code"],
                "INTERNAL_SERVER_ERROR"
            );
            assert!(!body.to_string().contains("secret detail"), "{body}");
            let ok = client.get(format!("{base}/ok")).send().await.unwrap();
            assert_eq!(ok.text().await.unwrap(), "fine");
        }
        server.abort();
    }

    #[test]
    fn request_ids_are_distinct_time_ordered_uuids() {
        let a = super::new_request_id();
        let b = super::new_request_id();
        assert_ne!(a, b);
        for id in [&a, &b] {
            let u = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(u.get_version_num(), 7, "{id}");
        }
        let ms = |id: &str| uuid::Uuid::parse_str(id).unwrap().get_timestamp().unwrap();
        assert!(ms(&a).to_unix() <= ms(&b).to_unix());
    }
}
