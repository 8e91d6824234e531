//! Inputs an attacker controls: forged and altered cursors, NUL characters inside JSON values,
//! picture URLs with other schemes. Each gets the contract's typed error and changes nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::harness::*;

const PAGE: &str = "query($after: String, $o: UserOrder) {
    users(first: 2, after: $after, orderBy: $o) { edges { node { userName } } pageInfo { endCursor } } }";

async fn page(t: &TestApp, tok: &str, after: Option<&str>, order: Value) -> Value {
    t.gql(tok, PAGE, json!({ "after": after, "o": order }))
        .await
        .1
}

async fn create(t: &TestApp, tok: &str, input: Value) -> Value {
    let q = "mutation($in: CreateUserUniversalIdInput!) {
        createUserUniversalId(input: $in) { user { profileId pictureUrl } } }";
    t.gql(tok, q, json!({ "in": input })).await.1
}

async fn profiles(t: &TestApp) -> i64 {
    crate::sql::count(&mut t.sql().await, "SELECT count(*) AS n FROM profiles").await
}

#[tokio::test]
async fn altered_and_forged_cursors_are_refused_as_invalid() {
    let t = TestApp::new().await;
    let tok = t.token("a", ALL);
    for name in ["ann", "bob", "cid", "dee", "eve"] {
        let v = create(&t, &tok, json!({ "universalId": name, "userName": name })).await;
        assert_eq!(code(&v), "", "{v}");
    }
    for order in [json!(null), json!({ "field": "USER_NAME" })] {
        let v = page(&t, &tok, None, order.clone()).await;
        let cursor = v["data"]["users"]["pageInfo"]["endCursor"]
            .as_str()
            .unwrap()
            .to_owned();
        // The real cursor works.
        let next = page(&t, &tok, Some(&cursor), order.clone()).await;
        assert_eq!(code(&next), "", "{next}");
        assert_eq!(next["data"]["users"]["edges"].as_array().unwrap().len(), 2);

        let bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        let mut forged = Vec::new();
        // Every single byte altered.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            forged.push(URL_SAFE_NO_PAD.encode(&b));
        }
        // A random profile id with the rest kept, a time key of year -200,000, a name key
        // holding NUL, a truncated MAC, and the MAC alone moved to another position.
        let mut random_id = bytes.clone();
        random_id[1..17].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        forged.push(URL_SAFE_NO_PAD.encode(&random_id));
        let mut ancient = bytes[..18].to_vec();
        ancient.extend_from_slice(&(-6_311_390_000_000_000_000i64).to_be_bytes());
        ancient.extend_from_slice(&bytes[bytes.len() - 16..]);
        forged.push(URL_SAFE_NO_PAD.encode(&ancient));
        let mut nul = bytes[..18].to_vec();
        nul.extend_from_slice(b"a\0b");
        nul.extend_from_slice(&bytes[bytes.len() - 16..]);
        forged.push(URL_SAFE_NO_PAD.encode(&nul));
        forged.push(URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() - 1]));
        for bad in forged {
            let v = page(&t, &tok, Some(&bad), order.clone()).await;
            assert_eq!(code(&v), "INVALID_CURSOR", "{bad}: {v}");
        }
        // Another app's token cannot use this app's cursor.
        let other = page(&t, &t.token("b", ALL), Some(&cursor), order).await;
        assert_eq!(code(&other), "INVALID_CURSOR", "{other}");
    }
}

#[tokio::test]
async fn nul_characters_inside_json_values_are_bad_input_and_change_nothing() {
    let t = TestApp::new().await;
    let tok = t.token("a", ALL);
    for data in [
        json!({ "note": "a\u{0}b" }),
        json!({ "a\u{0}": 1 }),
        json!([[["deep\u{0}"]]]),
    ] {
        let v = create(
            &t,
            &tok,
            json!({ "universalId": "nul", "summaryFriendData": data }),
        )
        .await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
        assert!(
            v["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("summaryFriendData")
        );
    }
    assert_eq!(profiles(&t).await, 0, "nothing was created");
    let v = create(
        &t,
        &tok,
        json!({ "universalId": "ok", "contactEmail": "ok@example.com" }),
    )
    .await;
    let id = v["data"]["createUserUniversalId"]["user"]["profileId"].clone();
    let q = "mutation($in: SendPasswordResetInput!) { sendPasswordResetUniversalId(input: $in) { emailId } }";
    for field in ["dynamicData", "substitutions"] {
        let params = json!({ field: { "x": "\u{0}" } });
        let (_, v) = t
            .gql(
                &tok,
                q,
                json!({ "in": { "profileId": id, "serviceParams": params } }),
            )
            .await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{field}: {v}");
    }
}

#[tokio::test]
async fn picture_urls_are_http_or_https_only() {
    let t = TestApp::new().await;
    let tok = t.token("a", ALL);
    for (i, bad) in [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>x</script>",
        "file:///etc/passwd",
        "ftp://example.com/a.png",
        "//example.com/a.png",
        "http://",
        "not a url",
    ]
    .iter()
    .enumerate()
    {
        let v = create(
            &t,
            &tok,
            json!({ "universalId": format!("p{i}"), "pictureUrl": bad }),
        )
        .await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{bad}: {v}");
    }
    assert_eq!(profiles(&t).await, 0);
    for (i, good) in ["https://cdn.example.com/a.png", "HTTP://example.com/x?y=1"]
        .iter()
        .enumerate()
    {
        let v = create(
            &t,
            &tok,
            json!({ "universalId": format!("g{i}"), "pictureUrl": good }),
        )
        .await;
        assert_eq!(code(&v), "", "{good}: {v}");
        assert_eq!(
            v["data"]["createUserUniversalId"]["user"]["pictureUrl"],
            json!(good)
        );
    }
}

#[tokio::test]
async fn a_misspelled_input_field_is_named_beside_the_missing_one() {
    let t = TestApp::new().await;
    let tok = t.token("a", ALL);
    let misspelled = json!({ "emial": "typo@example.com", "password": "correct horse 9" });
    let by_variable = "mutation($in: CreateUserEmailPasswordInput!) {
        createUserEmailPassword(input: $in) { user { profileId } } }";
    let by_literal = r#"mutation { createUserEmailPassword(input: {
        emial: "typo@example.com", password: "correct horse 9" }) { user { profileId } } }"#;
    for (query, variables) in [
        (by_variable, json!({ "in": misspelled })),
        (by_literal, json!({})),
    ] {
        let (status, v) = t.gql(&tok, query, variables).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(code(&v), "GRAPHQL_VALIDATION_FAILED", "{v}");
        let message = v["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(r#"field "email""#), "{message}");
        assert!(
            message.contains(r#"unknown field "emial" of type "CreateUserEmailPasswordInput""#),
            "{message}"
        );
        assert!(
            !message.contains(r#"unknown field "password""#),
            "{message}"
        );
    }
    assert_eq!(profiles(&t).await, 0);
}
