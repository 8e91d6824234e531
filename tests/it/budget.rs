//! What one request may ask for and hold (contract §9): at most `USERSVC_MAX_ROOT_FIELDS` root
//! fields, refused before anything runs; a response budget (`RESPONSE_TOO_LARGE`); complexity
//! that prices `totalCount` as a scan.

use serde_json::{Value, json};

use crate::harness::*;

async fn profiles(t: &TestApp) -> i64 {
    crate::sql::count(&mut t.sql().await, "SELECT count(*) AS n FROM profiles").await
}

fn creates(range: std::ops::Range<usize>) -> String {
    range
        .map(|i| {
            format!(
                "c{i}: createUserExternalAuth(input: {{externalId: \"u{i}\", externalAuthType: \"corp\"}}) {{ user {{ profileId }} }} "
            )
        })
        .collect()
}

#[tokio::test]
async fn more_root_fields_than_allowed_are_refused_before_anything_runs() {
    let t = TestApp::new().await;
    let tok = t.token("a", ALL);
    // 21 aliases of a create: refused whole, nothing created.
    let (status, v) = t
        .gql(
            &tok,
            &format!("mutation {{ {} }}", creates(0..21)),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(code(&v), "GRAPHQL_VALIDATION_FAILED", "{v}");
    assert!(v["data"].is_null(), "{v}");
    let message = v["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("21 root fields"), "{message}");
    assert_eq!(profiles(&t).await, 0, "no resolver ran");

    // Fields inside fragments count as the root's own: 12 + 9 through spreads and an inline
    // fragment are refused too.
    let q = format!(
        "mutation {{ {} ...F ... on Mutation {{ {} }} }} fragment F on Mutation {{ {} }}",
        creates(0..12),
        creates(12..16),
        creates(16..21)
    );
    let (_, v) = t.gql(&tok, &q, json!({})).await;
    assert_eq!(code(&v), "GRAPHQL_VALIDATION_FAILED", "{v}");
    assert_eq!(profiles(&t).await, 0);

    // Exactly the limit runs, and a field repeated under one key (merged into one) counts once.
    let q = format!(
        "mutation {{ {} ...F }} fragment F on Mutation {{ {} }}",
        creates(0..15),
        creates(15..20)
    );
    let (_, v) = t.gql(&tok, &q, json!({})).await;
    assert!(v["errors"].is_null(), "{v}");
    assert_eq!(profiles(&t).await, 20);
    let info = "userInfo(profileId: \"00000000-0000-7000-8000-000000000000\") { profileId }";
    let repeated: String = (0..20).map(|i| format!("i{i}: {info} ")).collect();
    let (_, v) = t
        .gql(
            &tok,
            &format!("{{ {repeated} i0: {info} ...R }} fragment R on Query {{ i1: {info} }}"),
            json!({}),
        )
        .await;
    assert!(v["errors"].is_null(), "{v}");
    let (_, v) = t
        .gql(&tok, &format!("{{ {repeated} i20: {info} }}"), json!({}))
        .await;
    assert_eq!(code(&v), "GRAPHQL_VALIDATION_FAILED", "{v}");
}

#[tokio::test]
async fn the_root_field_limit_is_configurable() {
    let t = TestApp::with(Options {
        limits: usersvc::graphql::Limits {
            max_root_fields: 2,
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let tok = t.token("a", ALL);
    let (_, v) = t
        .gql(
            &tok,
            &format!("mutation {{ {} }}", creates(0..3)),
            json!({}),
        )
        .await;
    assert_eq!(code(&v), "GRAPHQL_VALIDATION_FAILED", "{v}");
    let (_, v) = t
        .gql(
            &tok,
            &format!("mutation {{ {} }}", creates(0..2)),
            json!({}),
        )
        .await;
    assert!(v["errors"].is_null(), "{v}");
    assert_eq!(profiles(&t).await, 2);
}

/// 4,000 characters of friend data.
fn friend_data(i: usize) -> Value {
    json!({ "note": format!("{i:04}{}", "x".repeat(3996)) })
}

#[tokio::test]
async fn a_response_over_the_budget_is_refused_not_built() {
    let budget = 64 * 1024;
    let t = TestApp::with(Options {
        limits: usersvc::graphql::Limits {
            max_response_bytes: budget,
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let tok = t.token("a", ALL);
    let create = "mutation($in: CreateUserExternalAuthInput!) {
        createUserExternalAuth(input: $in) { user { profileId } } }";
    let mut ids = Vec::new();
    for i in 0..30 {
        let input = json!({ "in": {
            "externalId": format!("u{i}"), "externalAuthType": "corp",
            "summaryFriendData": friend_data(i),
        }});
        let (_, v) = t.gql(&tok, create, input).await;
        ids.push(
            v["data"]["createUserExternalAuth"]["user"]["profileId"]
                .as_str()
                .unwrap_or_else(|| panic!("{v}"))
                .to_owned(),
        );
    }
    let too_large = |v: &Value| {
        assert_eq!(code(v), "RESPONSE_TOO_LARGE", "{v}");
        assert!(v["data"].is_null(), "{v}");
        assert_eq!(v["errors"].as_array().map(Vec::len), Some(1), "{v}");
        let message = v["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(&budget.to_string()), "{message}");
    };

    // A page of 30 users of 4 KB each: the list charges its items before it is built.
    let page = "query($n: Int) { users(first: $n) { nodes { profileId summaryFriendData } } }";
    let (status, v) = t.gql(&tok, page, json!({ "n": 30 })).await;
    assert_eq!(status, 200);
    too_large(&v);
    // Through edges as well.
    let edges = "{ users(first: 30) { edges { cursor node { summaryFriendData } } } }";
    too_large(&t.gql(&tok, edges, json!({})).await.1);
    // A smaller page fits.
    let (_, v) = t.gql(&tok, page, json!({ "n": 10 })).await;
    assert!(v["errors"].is_null(), "{v}");
    assert_eq!(v["data"]["users"]["nodes"].as_array().unwrap().len(), 10);
    // The same page with fields that take little room fits: items are charged for the fields
    // selected, not for the whole stored profile.
    let (_, v) = t
        .gql(
            &tok,
            "{ users(first: 30) { nodes { profileId } } }",
            json!({}),
        )
        .await;
    assert!(v["errors"].is_null(), "{v}");

    // Twenty single users, no list among them: the serialiser stops at the budget.
    let aliases: String = ids[..20]
        .iter()
        .enumerate()
        .map(|(i, id)| format!("u{i}: userInfo(profileId: \"{id}\") {{ summaryFriendData }} "))
        .collect();
    let (_, v) = t.gql(&tok, &format!("{{ {aliases} }}"), json!({})).await;
    too_large(&v);
    let (_, v) = t
        .gql(
            &tok,
            &format!(
                "{{ u0: userInfo(profileId: \"{}\") {{ summaryFriendData }} }}",
                ids[0]
            ),
            json!({}),
        )
        .await;
    assert_eq!(v["data"]["u0"]["summaryFriendData"], friend_data(0), "{v}");
}

#[tokio::test]
async fn total_count_is_priced_as_the_scan_it_is() {
    let t = TestApp::new().await;
    let tok = t.token("a", ALL);
    let counts = |n: usize| {
        let aliases: String = (0..n)
            .map(|i| format!("c{i}: users(first: 0) {{ totalCount }} "))
            .collect();
        format!("{{ {aliases} }}")
    };
    // Nine counts fit the default complexity (50,000); ten do not, whatever the page size.
    let (_, v) = t.gql(&tok, &counts(9), json!({})).await;
    assert!(v["errors"].is_null(), "{v}");
    assert_eq!(v["data"]["c8"]["totalCount"], json!(0));
    let (_, v) = t.gql(&tok, &counts(10), json!({})).await;
    assert_eq!(code(&v), "GRAPHQL_VALIDATION_FAILED", "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("complex"),
        "{v}"
    );
    // A count is made once per page, not once per user: a page with its count is fine, also
    // when the count sits in a fragment.
    for q in [
        "{ users(first: 500) { totalCount nodes { profileId } } }",
        "{ users(last: 500) { ...C } } fragment C on UserConnection { totalCount nodes { profileId } }",
    ] {
        let (_, v) = t.gql(&tok, q, json!({})).await;
        assert!(v["errors"].is_null(), "{q}: {v}");
    }
}
