//! The `/graphql` request path and the layers every route shares: the token checked before
//! the body, request ids and `nosniff`.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

/// Sends the head of a POST with a `content-length` of 60,000 and 1,000 bytes of its body, and
/// reads the response without sending the rest.
async fn post_head_only(t: &TestApp, authorization: Option<&str>) -> (u16, Value) {
    let addr = t.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = authorization.map_or(String::new(), |a| format!("authorization: {a}\r\n"));
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{auth}content-length: 60000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut partial = String::from(r#"{"query":"{ users { totalCount } }","variables":{"pad":""#);
    partial.push_str(&"x".repeat(1000 - partial.len()));
    stream.write_all(partial.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    // The response ends the exchange: the server closes the connection after it, as the body
    // it did not read leaves the connection unusable.
    loop {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = find(&raw, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|l| l.trim().parse::<usize>().ok());
            if length.is_some_and(|len| raw.len() >= end + 4 + len) {
                break;
            }
        }
    }
    let end = find(&raw, b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&raw[..end]);
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = serde_json::from_slice(&raw[end + 4..]).unwrap_or(Value::Null);
    (status, body)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn the_token_is_checked_before_the_body_is_read() {
    // With a one-second deadline, a server that waited for the body would answer 503 after
    // the outer deadline (six seconds), never 401.
    let t = TestApp::with(Options {
        http: usersvc::http::HttpSettings {
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(1),
            validation_shortcut: true,
        },
        ..Options::default()
    })
    .await;
    for auth in [None, Some("Bearer not-a-token"), Some("Basic dXNlcjpwdw==")] {
        let (status, body) = post_head_only(&t, auth).await;
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert_eq!(code(&body), "UNAUTHENTICATED", "{auth:?}: {body}");
    }
}

#[tokio::test]
async fn request_ids_are_the_servers_and_every_response_says_nosniff() {
    let t = TestApp::new().await;
    let mut seen = Vec::new();
    for path in ["/graphql", "/healthz", "/nowhere", "/schema.graphql"] {
        let resp = t
            .client
            .get(format!("{}{path}", t.base))
            .header("x-request-id", "chosen-by-the-client")
            .send()
            .await
            .unwrap();
        let headers = resp.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let id = headers["x-request-id"].to_str().unwrap().to_owned();
        let uuid = uuid::Uuid::parse_str(&id).unwrap_or_else(|e| panic!("{path}: {id}: {e}"));
        assert_eq!(uuid.get_version_num(), 7, "{path}: {id}");
        assert!(!seen.contains(&id), "{path}: {id} seen before");
        seen.push(id);
    }
    // A GraphQL response is never stored by caches.
    let resp = t
        .client
        .post(format!("{}/graphql", t.base))
        .bearer_auth(t.token("a", ALL))
        .json(&json!({ "query": "{ users { totalCount } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["content-type"], "application/json");
}
