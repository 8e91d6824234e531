//! Optional trace export with OpenTelemetry over OTLP/HTTP (protobuf), off unless an endpoint is
//! configured. `tracing` spans become OpenTelemetry spans (their fields become attributes):
//! one per HTTP request and one per root field of a GraphQL operation, each with the request
//! id. Spans leave in batches from a thread of the SDK's own; the standard `OTEL_*` variables
//! of the SDK and exporter (`OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`,
//! …) apply; one export gives up after 10 s.
//!
//! The exporter sends through the `reqwest` client usersvc already has (and its TLS), run on
//! the server's Tokio runtime, rather than a second HTTP stack of its own.

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

/// The provider in force, kept to flush its last spans on the way out.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are exported (what decides whether per-field spans are made at all).
pub fn exporting() -> bool {
    PROVIDER.get().is_some()
}

/// A tracer exporting to `endpoint`, the OTLP/HTTP base URL (`/v1/traces` is added, as for
/// `OTEL_EXPORTER_OTLP_ENDPOINT`). Must run inside the Tokio runtime the exports are to use.
pub(super) fn tracer(endpoint: &str) -> Result<SdkTracer, String> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| "OTLP export needs the async runtime".to_owned())?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("OTLP HTTP client: {e}"))?;
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_http_client(OnRuntime { client, runtime })
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    let service = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "usersvc".to_owned());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build();
    let tracer = provider.tracer("usersvc");
    PROVIDER
        .set(provider)
        .map_err(|_| "OTLP export is already set up".to_owned())?;
    Ok(tracer)
}

/// Sends the spans still waiting. The runtime must still be there (not be shutting down).
pub fn flush() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.shutdown()
    {
        tracing::warn!(error = %e, "OTLP: the last spans were not sent");
    }
}

/// `reqwest` on the server's runtime, called from the exporter's thread (which has none).
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let (status, body) = self
            .runtime
            .spawn(async move {
                let response = client.execute(request).await?;
                let status = response.status();
                Ok::<_, reqwest::Error>((status, response.bytes().await?))
            })
            .await??;
        Ok(Response::builder().status(status).body(body)?)
    }
}
