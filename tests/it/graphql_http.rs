//! The `/graphql` request path: the token checked before the body, responses shaped as the
//! GraphQL spec says (failed fields nulled up to a nullable position, codes on request errors,
//! root fields in the order asked), request ids and `nosniff`.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::create::make_user;
use crate::harness::*;

/// A well-formed profile id no profile has.
const NOBODY: &str = "00000000-0000-7000-8000-000000000000";

/// POSTs a query and returns the status and the body as text (key order intact).
async fn post_text(t: &TestApp, token: &str, query: &str) -> (u16, String) {
    let resp = t
        .client
        .post(format!("{}/graphql", t.base))
        .bearer_auth(token)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The top-level keys of `data` in a response text, in the order they were written.
fn data_keys(text: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Body {
        data: Option<Keys>,
    }
    struct Keys(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Keys, A::Error> {
                    let mut keys = Vec::new();
                    while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                        keys.push(k);
                    }
                    Ok(Keys(keys))
                }
            }
            d.deserialize_map(V)
        }
    }
    let body: Body = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    body.data.map(|k| k.0).unwrap_or_default()
}

#[tokio::test]
async fn a_failed_non_null_root_field_makes_data_null() {
    let t = TestApp::new().await;
    let id = make_user(&t, "a", "nn@example.com").await;
    // `userExport: UserExport!` refused for lack of scope: the whole of `data` is null, as the
    // other root field cannot stand without it.
    let (status, v) = t
        .gql(
            &t.token("a", "cloudcode:users:read"),
            &format!(
                "{{ users(first: 1) {{ totalCount }} userExport(profileId: \"{id}\") {{ profileId }} }}"
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["data"], Value::Null, "{v}");
    assert_eq!(code(&v), "FORBIDDEN");
    assert_eq!(v["errors"][0]["path"], json!(["userExport"]), "{v}");

    // A nullable root field that fails is null, and the others keep their data.
    let (status, text) = post_text(
        &t,
        &t.token("a", "cloudcode:users:export"),
        &format!(
            "{{ userInfo(profileId: \"{id}\") {{ profileId }} userExport(profileId: \"{id}\") {{ profileId }} }}"
        ),
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(data_keys(&text), ["userInfo", "userExport"], "{text}");
    assert_eq!(v["data"]["userInfo"], Value::Null, "{text}");
    assert_eq!(v["data"]["userExport"]["profileId"], json!(id), "{text}");
    assert_eq!(code(&v), "FORBIDDEN");
    assert_eq!(v["errors"][0]["path"], json!(["userInfo"]));

    // A failed mutation (non-null payload) nulls `data` too.
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "mutation { createUserEmailPassword(input: {email: \"not an address\"}) { user { profileId } } }",
            json!({}),
        )
        .await;
    assert_eq!(v["data"], Value::Null, "{v}");
    assert_eq!(code(&v), "EMAIL_NOT_VALID");
}

#[tokio::test]
async fn parse_and_validation_errors_carry_their_codes() {
    let t = TestApp::new().await;
    let tok = t.token("a", ALL);
    let cases = [
        ("{ users(first: 1) { totalCount }", "GRAPHQL_PARSE_FAILED"),
        ("query { ", "GRAPHQL_PARSE_FAILED"),
        ("{ nonsense }", "GRAPHQL_VALIDATION_FAILED"),
        (
            "{ users(first: \"ten\") { totalCount } }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
        ("{ users { nodes } }", "GRAPHQL_VALIDATION_FAILED"),
        (
            "query A { users { totalCount } } query B { users { totalCount } }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            // Over the complexity limit.
            "{ users(first: 500) { nodes { children { children { profileId } } } } }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            // Over the directives limit.
            &format!(
                "{{ users(first: 1) {} {{ totalCount }} }}",
                "@include(if: true) ".repeat(20)
            ),
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ];
    // Twice: the second time the documents come from the parse cache.
    for _ in 0..2 {
        for (query, want) in &cases {
            let (status, v) = t.gql(&tok, query, json!({})).await;
            assert_eq!(status, 200, "{query}");
            assert_eq!(code(&v), *want, "{query}: {v}");
            assert!(v["data"].is_null(), "{query}: {v}");
            let errors = v["errors"].as_array().unwrap();
            assert!(
                errors
                    .iter()
                    .all(|e| e["extensions"]["code"] == json!(want)),
                "{query}: {v}"
            );
        }
    }
    // Too deep, on its own (complexity out of the way).
    let t = TestApp::with(Options {
        limits: usersvc::graphql::Limits {
            max_complexity: usize::MAX,
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let mut q = String::from("profileId");
    for _ in 0..15 {
        q = format!("children {{ {q} }}");
    }
    let (status, v) = t
        .gql(
            &t.token("a", ALL),
            &format!("{{ userInfo(profileId: \"{NOBODY}\") {{ {q} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(code(&v), "GRAPHQL_VALIDATION_FAILED", "{v}");
    // Over GET as well.
    let resp = t
        .client
        .get(format!("{}/graphql", t.base))
        .bearer_auth(t.token("a", ALL))
        .query(&[("query", "{ users { totalCount ")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(code(&v), "GRAPHQL_PARSE_FAILED", "{v}");
}

#[tokio::test]
async fn root_fields_come_in_the_order_asked_whatever_order_they_finish_in() {
    let t = TestApp::new().await;
    let id = make_user(&t, "a", "order@example.com").await;
    let tok = t.token("a", ALL);
    // `__typename` is known at once and `bad` fails before any database call, while the others
    // wait for the database (`export` for several statements): they finish in another order
    // than the one asked for.
    let query = format!(
        "{{ export: userExport(profileId: \"{id}\") {{ profileId }} page: users(first: 1) {{ totalCount }} \
         __typename info: userInfo(profileId: \"{id}\") {{ profileId }} bad: userInfo(profileId: \"nope\") {{ profileId }} \
         kind: __typename }}"
    );
    let want = ["export", "page", "__typename", "info", "bad", "kind"];
    for _ in 0..5 {
        let (status, text) = post_text(&t, &tok, &query).await;
        assert_eq!(status, 200);
        assert_eq!(data_keys(&text), want, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["data"]["bad"], Value::Null);
        assert_eq!(code(&v), "BAD_USER_INPUT");
    }
    // The fast ones first, then a slow one.
    let (_, text) = post_text(
        &t,
        &tok,
        &format!(
            "{{ __typename bad: userInfo(profileId: \"nope\") {{ profileId }} export: userExport(profileId: \"{id}\") {{ profileId }} }}"
        ),
    )
    .await;
    assert_eq!(data_keys(&text), ["__typename", "bad", "export"], "{text}");
}

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
            graphiql_token: None,
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
