//! Request limits: depth, complexity (aliases counted), batching, GET mutations, content
//! types, body size.

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn deep_and_wide_queries_are_refused_before_any_resolver_runs() {
    // Complexity out of the way, to see the depth limit on its own.
    let limits = usersvc::graphql::Limits {
        max_complexity: usize::MAX,
        ..Default::default()
    };
    let t = TestApp::with(Options {
        limits,
        ..Options::default()
    })
    .await;
    let tok = t.token("a", ALL);
    // Depth 16 through children.
    let mut q = String::from("profileId");
    for _ in 0..14 {
        q = format!("children {{ {q} }}");
    }
    let deep =
        format!("{{ userInfo(profileId: \"00000000-0000-7000-8000-000000000000\") {{ {q} }} }}");
    let (status, v) = t.gql(&tok, &deep, json!({})).await;
    assert_eq!(status, 200);
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nested too deep"),
        "{v}"
    );
    assert!(v["data"].is_null());

    let t = TestApp::new().await;
    let tok = t.token("a", ALL);
    let (_, v) = t.gql(&tok, &deep, json!({})).await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too complex"),
        "{v}"
    );

    // Aliases count: 20 aliases of a count are refused, though each alone is fine.
    let aliases: String = (0..20)
        .map(|i| format!("a{i}: users(first: 500) {{ totalCount }} "))
        .collect();
    let (_, v) = t.gql(&tok, &format!("{{ {aliases} }}"), json!({})).await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("complex"),
        "{}",
        &v.to_string()[..200]
    );

    // A big page of users with their children is too expensive.
    let (_, v) = t
        .gql(
            &tok,
            "{ users(first: 500) { nodes { children { children { profileId } } } } }",
            json!({}),
        )
        .await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("complex"),
        "{v}"
    );

    // Many directives on one field.
    let directives = "@include(if: true) ".repeat(50);
    let (_, v) = t
        .gql(
            &tok,
            &format!("{{ users(first: 1) {directives} {{ totalCount }} }}"),
            json!({}),
        )
        .await;
    assert!(!v["errors"].is_null(), "{v}");
}

#[tokio::test]
async fn batches_get_mutations_and_wrong_content_types_are_refused() {
    let t = TestApp::new().await;
    let tok = t.token("a", ALL);
    let url = format!("{}/graphql", t.base);
    let batch =
        json!([{ "query": "{ users { totalCount } }" }, { "query": "{ users { totalCount } }" }]);
    let resp = t
        .client
        .post(&url)
        .bearer_auth(&tok)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("batched")
    );

    let resp = t
        .client
        .get(&url)
        .bearer_auth(&tok)
        .query(&[("query", "mutation { deleteUser(input: {profileId: \"00000000-0000-7000-8000-000000000000\"}) { deletedProfileIds } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);

    let resp = t
        .client
        .get(&url)
        .bearer_auth(&tok)
        .query(&[("query", "{ users(first: 1) { totalCount } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["users"]["totalCount"], json!(0));

    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let resp = t
            .client
            .post(&url)
            .bearer_auth(&tok)
            .header("content-type", ct)
            .body(r#"{"query":"{ users { totalCount } }"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 415, "{ct}");
    }

    // Over the general limit; a token with the import scope (the wildcard's too) may send up
    // to USERSVC_MAX_IMPORT_BODY_BYTES, so this one has none.
    let big = "x".repeat(200 * 1024);
    let resp = t
        .client
        .post(&url)
        .bearer_auth(t.token("a", "cloudcode:users:read"))
        .json(&json!({ "query": "{ users { totalCount } }", "variables": { "pad": big } }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
}

#[tokio::test]
async fn errors_never_leak_internals() {
    let t = TestApp::new().await;
    let tok = t.token("a", ALL);
    let probes = [
        (
            "{ userInfo(profileId: \"'; DROP TABLE profiles; --\") { profileId } }",
            json!({}),
        ),
        (
            "{ users(first: 5, filter: {userNamePrefix: \"%_\\\\\"}) { totalCount } }",
            json!({}),
        ),
        (
            "mutation { createUserUniversalId(input: {universalId: \"\\u0000\"}) { user { profileId } } }",
            json!({}),
        ),
        ("{ nonsense }", json!({})),
    ];
    for (q, vars) in probes {
        let (_, v) = t.gql(&tok, q, vars).await;
        let text = v.to_string().to_lowercase();
        for leak in [
            "duplicate key",
            "relation",
            "diesel",
            "constraint",
            "sql",
            "postgres",
            "src/",
            "panicked",
        ] {
            assert!(!text.contains(leak), "{q} leaked {leak}: {text}");
        }
    }
}

/// A document that passed validation once runs later requests with a lighter check (see
/// `http::documents`); every request's variables must still be checked in full, and its
/// complexity computed from its own values.
#[tokio::test]
async fn a_validated_document_still_checks_each_requests_variables() {
    let t = TestApp::new().await;
    let tok = t.token("a", ALL);
    let by_identity = "query($t: IdentityType!, $e: String!) { userByIdentity(type: $t, externalId: $e) { profileId } }";
    // The same errors as on a server that never saw the document.
    let fresh = TestApp::new().await;
    let fresh_tok = fresh.token("a", ALL);
    let bad_values = [
        json!({"t": "NOPE", "e": "x@example.com"}),
        json!({"t": "EMAIL", "e": 5}),
        json!({"t": "EMAIL", "e": null}),
        json!({"t": "EMAIL", "e": ["x@example.com"]}),
        json!({"t": "EMAIL", "e": {"a": 1}}),
    ];
    for _ in 0..2 {
        let (status, v) = t
            .gql(
                &tok,
                by_identity,
                json!({"t": "EMAIL", "e": "nobody@example.com"}),
            )
            .await;
        assert_eq!(status, 200);
        assert!(v["errors"].is_null(), "{v}");
        for bad in &bad_values {
            let (_, got) = t.gql(&tok, by_identity, bad.clone()).await;
            let (_, want) = fresh.gql(&fresh_tok, by_identity, bad.clone()).await;
            assert!(!got["errors"].is_null(), "{bad}: {got}");
            assert_eq!(got, want, "{bad}");
        }
    }

    // Complexity follows each request's own page size.
    let page = "query($n: Int) { a: users(first: $n) { totalCount } b: users(first: $n) { nodes { children { children { profileId } } } } }";
    let (_, small) = t.gql(&tok, page, json!({"n": 1})).await;
    assert!(small["errors"].is_null(), "{small}");
    let (_, big) = t.gql(&tok, page, json!({"n": 500})).await;
    assert!(
        big["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("complex"),
        "{big}"
    );
    let (_, small) = t.gql(&tok, page, json!({"n": 1})).await;
    assert!(small["errors"].is_null(), "{small}");
}
