//! Junk at `POST /graphql`: random bytes, random JSON, random GraphQL-looking text and random
//! variables, each sent with a valid token. The server answers every one with a client error
//! or a GraphQL error, never a 5xx, never without an `errors` list, and keeps serving.

use proptest::prelude::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use crate::harness::*;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        Just(json!("\u{0}")),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Text that looks like GraphQL more often than chance would make it.
fn graphqlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just(":".to_owned()),
        Just("$v".to_owned()),
        Just("...".to_owned()),
        Just("@include(if: true)".to_owned()),
        Just("query".to_owned()),
        Just("mutation".to_owned()),
        Just("fragment f on User".to_owned()),
        Just("users(first: 2)".to_owned()),
        Just("userInfo(profileId: \"x\")".to_owned()),
        Just("edges".to_owned()),
        Just("node".to_owned()),
        Just("__schema".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        "[a-zA-Z_]{1,8}",
        "[0-9]{1,20}",
        ".{0,4}",
    ];
    prop::collection::vec(token, 0..40).prop_map(|parts| parts.join(" "))
}

/// One request body: raw bytes, a random JSON document, or a request-shaped object.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        (graphqlish(), json_value(), prop::option::of(".{0,10}")).prop_map(|(q, vars, op)| {
            serde_json::to_vec(&json!({ "query": q, "variables": vars, "operationName": op }))
                .unwrap()
        }),
    ]
}

#[tokio::test]
async fn junk_bodies_get_client_errors_never_a_server_error() {
    let t = TestApp::new().await;
    let token = t.token("a", ALL);
    let mut runner = TestRunner::new(Config {
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed),
        ..Config::default()
    });
    let strategy = body();
    for i in 0..400 {
        let bytes = strategy.new_tree(&mut runner).unwrap().current();
        let resp = t
            .client
            .post(format!("{}/graphql", t.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(bytes.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("case {i}: the server dropped the request: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let shown = String::from_utf8_lossy(&bytes);
        assert!(status < 500, "case {i}: {status} for {shown:?}: {text}");
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("case {i}: not JSON ({status}): {text}"));
        assert!(
            v["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "case {i}: {status} without errors for {shown:?}: {text}"
        );
    }
    // Still serving.
    let (status, v) = t
        .gql(&token, "{ users(first: 1) { totalCount } }", json!({}))
        .await;
    assert_eq!(status, 200, "{v}");
}
