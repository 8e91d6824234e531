//! D4: the directive limit is what refuses many directives on one field (distinct ones, which
//! no other validation rule refuses for being repeated). D5: introspection and field
//! suggestions answer callers with a token, and `USERSVC_INTROSPECTION=false` turns both off.

use serde_json::{Value, json};
use usersvc::graphql::Limits;

use super::*;

fn messages(v: &Value) -> Vec<String> {
    v["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["message"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn directives(n: usize) -> String {
    (0..n).map(|i| format!("@d{i} ")).collect()
}

#[tokio::test]
async fn many_distinct_directives_on_a_field_are_refused_by_the_directive_limit() {
    let t = TestApp::new().await;
    let tok = t.token("a", ALL);
    let max = Limits::default().max_directives;
    // Up to the limit, unknown directives reach validation, which names each one.
    let (_, v) = t
        .gql(
            &tok,
            &format!("{{ users(first: 1) {}{{ totalCount }} }}", directives(max)),
            json!({}),
        )
        .await;
    let seen = messages(&v);
    assert_eq!(seen.len(), max, "{v}");
    assert!(seen.iter().all(|m| m.contains("Unknown directive")), "{v}");
    // One more, or five thousand (as many as fit in the body limit), and the directive limit
    // refuses the document before validation: one error, naming the limit.
    for n in [max + 1, 5_000] {
        let (status, v) = t
            .gql(
                &tok,
                &format!("{{ users(first: 1) {}{{ totalCount }} }}", directives(n)),
                json!({}),
            )
            .await;
        assert!(status < 500, "{status}");
        let seen = messages(&v);
        assert_eq!(seen.len(), 1, "{n} directives: {v}");
        assert!(
            seen[0].contains(&format!(
                "number of directives on the field `users` cannot be greater than `{max}`"
            )),
            "{n} directives: {v}"
        );
        assert!(v["data"].is_null(), "{v}");
    }
}

#[tokio::test]
async fn the_directive_limit_refuses_directives_that_are_otherwise_valid() {
    // Two different built-in directives on one field are a valid document; only the limit can
    // refuse them, here set to one.
    let q = "{ users(first: 1) @include(if: true) @skip(if: false) { totalCount } }";
    let t = TestApp::new().await;
    let (_, v) = t.gql(&t.token("a", ALL), q, json!({})).await;
    assert_eq!(v["data"]["users"]["totalCount"], json!(0), "{v}");

    let strict = TestApp::with(Options {
        limits: Limits {
            max_directives: 1,
            ..Limits::default()
        },
        ..Options::default()
    })
    .await;
    let (_, v) = strict.gql(&strict.token("a", ALL), q, json!({})).await;
    assert!(
        messages(&v)
            .iter()
            .any(|m| m.contains("number of directives")),
        "{v}"
    );
    assert!(v["data"].is_null(), "{v}");
}

const SCHEMA: &str = "{ __schema { queryType { name } } }";
const TYPE: &str = "{ __type(name: \"User\") { fields { name } } }";
const MISSPELT: &str =
    "{ userInf(profileId: \"00000000-0000-7000-8000-000000000000\") { profileId } }";

#[tokio::test]
async fn introspection_and_suggestions_answer_only_callers_with_a_token() {
    let t = TestApp::new().await;
    let tok = t.token("a", "cloudcode:users:read");
    let (_, v) = t.gql(&tok, SCHEMA, json!({})).await;
    assert_eq!(
        v["data"]["__schema"]["queryType"]["name"],
        json!("Query"),
        "{v}"
    );
    let (_, v) = t.gql(&tok, TYPE, json!({})).await;
    assert!(
        v["data"]["__type"]["fields"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "{v}"
    );
    let (_, v) = t.gql(&tok, MISSPELT, json!({})).await;
    assert!(messages(&v)[0].contains("Did you mean"), "{v}");
    // Without a token, nothing: not even the suggestions.
    let resp = t
        .client
        .post(format!("{}/graphql", t.base))
        .json(&json!({ "query": SCHEMA }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body = resp.text().await.unwrap();
    assert!(
        !body.contains("queryType") && !body.contains("Query"),
        "{body}"
    );
}

#[tokio::test]
async fn with_introspection_off_schema_queries_fail_and_misspellings_get_no_suggestion() {
    let t = TestApp::with(Options {
        limits: Limits {
            introspection: false,
            ..Limits::default()
        },
        ..Options::default()
    })
    .await;
    let tok = t.token("a", ALL);
    // Asked more than once: a document the server has seen before is refused again.
    for _ in 0..3 {
        // async-graphql answers a disabled `__schema`/`__type` with null, and nothing more.
        for (q, field) in [(SCHEMA, "__schema"), (TYPE, "__type")] {
            let (status, v) = t.gql(&tok, q, json!({})).await;
            assert_eq!(status, 200);
            assert!(v["data"][field].is_null(), "{q}: {v}");
            let text = v.to_string();
            assert!(
                !text.contains("Query") && !text.contains("fields"),
                "{q}: {v}"
            );
        }
        let (_, v) = t.gql(&tok, MISSPELT, json!({})).await;
        let seen = messages(&v);
        assert!(seen[0].contains("userInf"), "{v}");
        assert!(seen.iter().all(|m| !m.contains("Did you mean")), "{v}");
    }
    // Ordinary queries and __typename still work.
    let (_, v) = t
        .gql(&tok, "{ __typename users { totalCount } }", json!({}))
        .await;
    assert_eq!(v["data"]["__typename"], json!("Query"), "{v}");
    assert_eq!(v["data"]["users"]["totalCount"], json!(0), "{v}");
}
