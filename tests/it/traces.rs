//! OpenTelemetry trace export: `usersvc serve` as a child process sends its spans over
//! OTLP/HTTP (protobuf) to a receiver in this test process, which decodes them with the
//! OpenTelemetry protocol's own message types.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

use crate::harness::*;
use crate::serve::{listening, serve_on};

/// What the receiver got: each span with its resource's `service.name`.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

/// `POST /v1/traces` as a collector answers it.
async fn receive(State(received): State<Received>, body: Bytes) -> StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut received = received.lock().unwrap();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| string(&r.attributes, "service.name"))
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            received.extend(scope_spans.spans.into_iter().map(|s| (service.clone(), s)));
        }
    }
    StatusCode::OK
}

/// A string attribute.
fn string(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

/// An OTLP/HTTP receiver on a free port: its base URL and what it received.
async fn receiver() -> (String, Received) {
    let received = Received::default();
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

#[tokio::test]
async fn each_request_and_root_field_reaches_an_otlp_receiver_as_a_span_with_the_request_id() {
    let t = TestApp::new().await;
    let (endpoint, received) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_on(
        &t,
        dir.path(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let base = serve.wait_for("start banner", listening).await;
    let resp = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .bearer_auth(t.token("a", ALL))
        .json(&json!({
            "query": "{ one: users(first: 1) { totalCount } two: users(first: 2) { totalCount } }"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();

    let received = &received;
    let request_id = &request_id;
    let (request, fields) = eventually(WAIT, || async move {
        let spans = received.lock().unwrap().clone();
        let ours = |s: &Span| string(&s.attributes, "request_id").as_ref() == Some(request_id);
        let request = spans.iter().find(|(_, s)| s.name == "request" && ours(s));
        let fields: Vec<_> = spans
            .iter()
            .filter(|(_, s)| s.name == "graphql.field" && ours(s))
            .cloned()
            .collect();
        match request {
            Some(request) if fields.len() == 2 => Ok((request.clone(), fields)),
            _ => Err(format!("received so far: {spans:#?}")),
        }
    })
    .await;
    let (service, request) = request;
    assert_eq!(service, "usersvc");
    assert_eq!(
        string(&request.attributes, "method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        string(&request.attributes, "route").as_deref(),
        Some("/graphql")
    );
    for (_, field) in &fields {
        assert_eq!(field.trace_id, request.trace_id, "{field:?}");
        assert_eq!(field.parent_span_id, request.span_id, "{field:?}");
        assert_eq!(string(&field.attributes, "field").as_deref(), Some("users"));
        assert!(field.start_time_unix_nano >= request.start_time_unix_nano);
        assert!(field.end_time_unix_nano <= request.end_time_unix_nano);
    }
    serve.stop().await;
}
