//! updateUser: absent keeps, null clears, values are checked as the creates check them; the
//! version and `updatedAt` move only on a real change, with one audit event naming the changed
//! fields; `expectedVersion` makes concurrent updates have one winner; the parent rules hold.

use serde_json::{Value, json};

use super::*;
use crate::create::make_user;
use crate::harness::*;

const UPDATE: &str = "cloudcode:users:update";

async fn update(t: &TestApp, input: Value) -> Value {
    mutate(t, "a", UPDATE, "updateUser", input).await
}

#[tokio::test]
async fn absent_fields_stay_null_clears_and_only_real_changes_count() {
    let t = TestApp::new().await;
    let id = make_user(&t, "a", "pat@example.com").await;
    let created = user(&t, "a", &id).await;
    assert_eq!(created["version"], json!(1));
    assert_eq!(created["status"], json!("ACTIVE"));
    assert_eq!(created["loginCount"], json!(0));

    let v = update(
        &t,
        json!({
            "profileId": id, "expectedVersion": 1, "userName": "  Pat  ", "countryCode": "FR",
            "languageCode": "fr", "timeZoneOffset": 1.5, "pictureUrl": "https://cdn.example/p.png",
            "isTester": true, "summaryFriendData": {"level": 7},
        }),
    )
    .await;
    let u = user_of(&v, "updateUser");
    assert_eq!(u["userName"], json!("Pat"));
    assert_eq!(u["countryCode"], json!("FR"));
    assert_eq!(u["timeZoneOffset"], json!(1.5));
    assert_eq!(u["isTester"], json!(true));
    assert_eq!(u["summaryFriendData"], json!({"level": 7}));
    assert_eq!(
        u["contactEmail"],
        json!("pat@example.com"),
        "absent: unchanged"
    );
    assert_eq!(u["version"], json!(2));
    assert_ne!(u["updatedAt"], created["updatedAt"]);
    assert_eq!(
        last_audit_details(&t, &id).await["changedFields"],
        json!([
            "countryCode",
            "isTester",
            "languageCode",
            "pictureUrl",
            "summaryFriendData",
            "timeZoneOffset",
            "userName"
        ])
    );

    // The same values again, and nothing at all: nothing changes, nothing is written.
    let ops = audit_ops(&t, &id).await;
    for input in [
        json!({ "profileId": id, "userName": "Pat", "isTester": true, "summaryFriendData": {"level": 7} }),
        json!({ "profileId": id }),
        json!({ "profileId": id, "expectedVersion": 2, "parentProfileId": null }),
    ] {
        let same = user_of(&update(&t, input.clone()).await, "updateUser");
        assert_eq!(same, u, "{input}");
    }
    assert_eq!(user(&t, "a", &id).await, u);
    assert_eq!(
        audit_ops(&t, &id).await,
        ops,
        "a change of nothing writes no event"
    );

    // null clears; a blank string clears as a create stores nothing for it.
    let v = update(
        &t,
        json!({ "profileId": id, "userName": null, "countryCode": "", "timeZoneOffset": null,
                "summaryFriendData": null, "contactEmail": "Pat.New@Example.com" }),
    )
    .await;
    let u = user_of(&v, "updateUser");
    assert_eq!(u["userName"], Value::Null);
    assert_eq!(u["countryCode"], Value::Null);
    assert_eq!(u["timeZoneOffset"], Value::Null);
    assert_eq!(u["summaryFriendData"], Value::Null);
    assert_eq!(u["languageCode"], json!("fr"));
    assert_eq!(u["contactEmail"], json!("pat.new@example.com"));
    assert_eq!(u["version"], json!(3));
    assert_eq!(
        last_audit_details(&t, &id).await["changedFields"],
        json!([
            "contactEmail",
            "countryCode",
            "summaryFriendData",
            "timeZoneOffset",
            "userName"
        ])
    );
    let ops = audit_ops(&t, &id).await;
    assert_eq!(ops.iter().filter(|o| *o == "updateUser").count(), 2);
}

#[tokio::test]
async fn bad_input_gets_typed_errors_and_changes_nothing() {
    let t = TestApp::new().await;
    let id = make_user(&t, "a", "bea@example.com").await;
    let before = user(&t, "a", &id).await;
    let ops = audit_ops(&t, &id).await;
    for (input, want) in [
        (
            json!({ "pictureUrl": "ftp://files.example/p.png" }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "pictureUrl": "javascript:alert(1)" }),
            "BAD_USER_INPUT",
        ),
        (json!({ "timeZoneOffset": 24.5 }), "BAD_USER_INPUT"),
        (json!({ "isTester": null }), "BAD_USER_INPUT"),
        (
            json!({ "contactEmail": "not an address" }),
            "EMAIL_NOT_VALID",
        ),
        (json!({ "countryCode": "F R" }), "BAD_USER_INPUT"),
        (json!({ "userName": "x".repeat(129) }), "BAD_USER_INPUT"),
        (json!({ "userName": "a\u{202E}b" }), "BAD_USER_INPUT"),
        (
            json!({ "summaryFriendData": {"a": "\u{0}"} }),
            "BAD_USER_INPUT",
        ),
        (json!({ "parentProfileId": "not-a-uuid" }), "BAD_USER_INPUT"),
        // A valid change together with a bad one: neither happens.
        (
            json!({ "userName": "Bea", "pictureUrl": "data:image/png;base64,AA" }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "userName": "Bea", "expectedVersion": 7 }),
            "VERSION_CONFLICT",
        ),
        // This app has no parent app.
        (
            json!({ "parentProfileId": "00000000-0000-7000-8000-000000000000" }),
            "APP_PARENT_MISMATCH",
        ),
    ] {
        let mut input = input;
        input["profileId"] = json!(id);
        let v = update(&t, input.clone()).await;
        assert_eq!(code(&v), want, "{input}: {v}");
    }
    let v = update(
        &t,
        json!({ "profileId": "00000000-0000-7000-8000-000000000000", "userName": "x" }),
    )
    .await;
    assert_eq!(code(&v), "PROFILE_NOT_FOUND");
    let v = mutate(
        &t,
        "b",
        UPDATE,
        "updateUser",
        json!({ "profileId": id, "userName": "x" }),
    )
    .await;
    assert_eq!(
        code(&v),
        "PROFILE_NOT_FOUND",
        "another app's profile does not exist"
    );
    assert_eq!(user(&t, "a", &id).await, before);
    assert_eq!(audit_ops(&t, &id).await, ops);
}

#[tokio::test]
async fn concurrent_updates_with_one_expected_version_have_one_winner() {
    let t = TestApp::new().await;
    let id = make_user(&t, "a", "cid@example.com").await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let t = &t;
            let id = id.clone();
            async move {
                update(t, json!({ "profileId": id, "expectedVersion": 1, "userName": format!("writer {i}") }))
                    .await
            }
        })
        .collect();
    let results = futures_util::future::join_all(tasks).await;
    let won: Vec<&Value> = results.iter().filter(|v| v["errors"].is_null()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for v in results.iter().filter(|v| !v["errors"].is_null()) {
        assert_eq!(code(v), "VERSION_CONFLICT", "{v}");
    }
    let winner = won[0]["data"]["updateUser"]["user"]["userName"].clone();
    let now = user(&t, "a", &id).await;
    assert_eq!(now["userName"], winner);
    assert_eq!(now["version"], json!(2));
    assert_eq!(
        audit_ops(&t, &id)
            .await
            .iter()
            .filter(|o| *o == "updateUser")
            .count(),
        1
    );
}

#[tokio::test]
async fn parents_follow_the_parent_app_and_have_one_child_per_app() {
    let t = TestApp::new().await;
    let mum = make_user(&t, "parent", "mum@example.com").await;
    let dad = make_user(&t, "parent", "dad@example.com").await;
    let outsider = make_user(&t, "a", "out@example.com").await;
    let kid = make_user(&t, "child", "kid@example.com").await;
    let twin = make_user(&t, "child", "twin@example.com").await;
    let set = |id: &str, parent: Value| json!({ "profileId": id, "parentProfileId": parent });

    let v = mutate(
        &t,
        "child",
        UPDATE,
        "updateUser",
        set(&kid, json!(outsider)),
    )
    .await;
    assert_eq!(code(&v), "APP_PARENT_MISMATCH", "a profile of another app");
    let v = mutate(&t, "child", UPDATE, "updateUser", set(&kid, json!(mum))).await;
    assert_eq!(user_of(&v, "updateUser")["parentProfileId"], json!(mum));
    let v = mutate(&t, "child", UPDATE, "updateUser", set(&twin, json!(mum))).await;
    assert_eq!(code(&v), "DUPLICATE_CHILD");
    assert_eq!(user(&t, "child", &twin).await["version"], json!(1));

    // Moving to another parent, and away from any: mum is free again.
    let v = mutate(&t, "child", UPDATE, "updateUser", set(&kid, json!(dad))).await;
    assert_eq!(user_of(&v, "updateUser")["parentProfileId"], json!(dad));
    let v = mutate(&t, "child", UPDATE, "updateUser", set(&kid, Value::Null)).await;
    assert_eq!(user_of(&v, "updateUser")["parentProfileId"], Value::Null);
    assert_eq!(user_of(&v, "updateUser")["version"], json!(4));

    // Two profiles claiming one parent at once: the unique index leaves one winner.
    let (a, b) = tokio::join!(
        mutate(&t, "child", UPDATE, "updateUser", set(&kid, json!(mum))),
        mutate(&t, "child", UPDATE, "updateUser", set(&twin, json!(mum))),
    );
    let mut codes = [code(&a), code(&b)];
    codes.sort();
    assert_eq!(codes, ["", "DUPLICATE_CHILD"], "{a} {b}");
    let (_, v) = t
        .gql(
            &t.token("parent", ALL),
            "query($id: ID!) { userInfo(profileId: $id) { children { profileId } } }",
            json!({ "id": mum }),
        )
        .await;
    assert_eq!(
        v["data"]["userInfo"]["children"].as_array().unwrap().len(),
        1
    );
}
