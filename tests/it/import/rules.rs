//! importUsers' rules: one bad user fails alone, kept ids, dates and statuses, an `import`
//! audit event per user written, CREATE_ONLY and UPSERT (UNCHANGED on a re-run), users of one
//! batch that repeat each other, parents, plaintext passwords, the scope and the body limits.

use serde_json::{Value, json};

use super::*;
use crate::harness::*;
use crate::lifecycle::{audit_ops, last_audit_details, user};

fn universal(login: &str) -> Value {
    json!({ "identities": [{ "type": "UNIVERSAL_ID", "externalId": login }] })
}

#[tokio::test]
async fn one_bad_user_fails_alone_and_the_others_are_written() {
    let t = TestApp::new().await;
    let users = json!([
        universal("first"),
        { "identities": [{ "type": "EMAIL", "externalId": "not an address" }] },
        { "identities": [] },
        { "profileId": "not-a-uuid", "identities": [{ "type": "UNIVERSAL_ID", "externalId": "x1" }] },
        { "identities": [{ "type": "UNIVERSAL_ID", "externalId": "x2", "password": "short" }] },
        { "identities": [{ "type": "UNIVERSAL_ID", "externalId": "x3" }, { "type": "UNIVERSAL_ID", "externalId": "x4" }] },
        { "identities": [{ "type": "UNIVERSAL_ID", "externalId": "x5" }], "parentProfileId": "00000000-0000-0000-0000-000000000001" },
        universal("last"),
    ]);
    let payload = import(&t, "a", users, "CREATE_ONLY").await;
    assert_eq!(
        statuses(&payload),
        [
            "CREATED", "FAILED", "FAILED", "FAILED", "FAILED", "FAILED", "FAILED", "CREATED"
        ]
    );
    let codes: Vec<String> = (1..7).map(|i| error_code(&payload, i)).collect();
    assert_eq!(
        codes,
        [
            "EMAIL_NOT_VALID",
            "BAD_USER_INPUT",
            "BAD_USER_INPUT",
            "INVALID_PASSWORD_CONTENT",
            "DUPLICATE_IDENTITY_TYPE",
            "APP_PARENT_MISMATCH"
        ]
    );
    assert_eq!(payload["results"][6]["error"]["reasonCode"], 40378);
    assert_eq!(
        (payload["created"].as_i64(), payload["failed"].as_i64()),
        (Some(2), Some(6))
    );
    for (i, r) in payload["results"].as_array().unwrap().iter().enumerate() {
        assert_eq!(r["index"], i);
    }
    let first = payload["results"][0]["profileId"].as_str().unwrap();
    assert_eq!(audit_ops(&t, first).await, ["import"]);
    let details = last_audit_details(&t, first).await;
    assert_eq!(details["result"], "CREATED");
    assert_eq!(details["mode"], "CREATE_ONLY");
    let (_, count) = t
        .gql(
            &t.token("a", "cloudcode:users:read"),
            "{ users { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(count["data"]["users"]["totalCount"], 2, "{count}");
}

#[tokio::test]
async fn ids_dates_statuses_and_fields_are_kept() {
    let t = TestApp::new().await;
    let id = "0190f7a4-1c2b-7d3e-8f40-123456789abc";
    let users = json!([{
        "profileId": id,
        "identities": [
            { "type": "EMAIL", "externalId": " Kept@Example.COM " },
            { "type": "EXTERNAL", "externalAuthType": "corpdir", "externalId": "E-17" }
        ],
        "status": "DISABLED",
        "createdAt": "2019-03-04T05:06:07.123456Z",
        "lastLoginAt": "2024-01-02T03:04:05Z",
        "userName": "Kept",
        "countryCode": "CA",
        "languageCode": "fr",
        "timeZoneOffset": -5.0,
        "isTester": true,
        "summaryFriendData": { "level": 7 }
    }]);
    let payload = import(&t, "a", users, "CREATE_ONLY").await;
    assert_eq!(payload["results"][0]["profileId"], id, "{payload}");
    let u = user(&t, "a", id).await;
    assert_eq!(u["status"], "DISABLED");
    assert!(u["disabledAt"].is_string());
    assert_eq!(u["createdAt"], "2019-03-04T05:06:07.123456Z");
    assert_eq!(u["lastLoginAt"], "2024-01-02T03:04:05Z");
    assert_eq!(
        u["contactEmail"], "kept@example.com",
        "defaults to the EMAIL identity"
    );
    assert_eq!(u["userName"], "Kept");
    assert_eq!(u["timeZoneOffset"], -5.0);
    assert_eq!(u["isTester"], true);
    assert_eq!(u["summaryFriendData"], json!({ "level": 7 }));
    assert_eq!(u["version"], 1);
    let ids = u["identities"].as_array().unwrap();
    assert_eq!(ids.len(), 2, "{u}");
    assert!(ids.iter().all(|i| i["hasPassword"] == false), "{u}");
    assert!(ids.iter().any(|i| i["externalId"] == "kept@example.com"));
    // The same id in another app is another profile.
    let again = import(&t, "b", json!([{ "profileId": id, "identities": [{ "type": "UNIVERSAL_ID", "externalId": "b1" }] }]), "CREATE_ONLY").await;
    assert_eq!(statuses(&again), ["CREATED"]);
}

#[tokio::test]
async fn upsert_updates_in_place_and_a_rerun_is_unchanged() {
    let t = TestApp::new().await;
    let alice = json!({ "identities": [{ "type": "EMAIL", "externalId": "alice@example.com", "password": "alice's password" }], "userName": "Alice" });
    let first = import(&t, "a", json!([alice.clone()]), "CREATE_ONLY").await;
    let id = first["results"][0]["profileId"]
        .as_str()
        .unwrap()
        .to_owned();
    // CREATE_ONLY refuses what exists, by identity and by id.
    let again = import(&t, "a", json!([alice.clone(), { "profileId": id, "identities": [{ "type": "UNIVERSAL_ID", "externalId": "other" }] }]), "CREATE_ONLY").await;
    assert_eq!(statuses(&again), ["FAILED", "FAILED"]);
    assert_eq!(error_code(&again, 0), "USER_ALREADY_EXISTS");
    assert_eq!(again["results"][0]["error"]["reasonCode"], 40683);
    assert_eq!(error_code(&again, 1), "USER_ALREADY_EXISTS");
    // UPSERT of the same user (matched by identity; its plaintext password already matches).
    let same = import(&t, "a", json!([alice.clone()]), "UPSERT").await;
    assert_eq!(statuses(&same), ["UNCHANGED"], "{same}");
    assert_eq!(same["results"][0]["profileId"], id.as_str());
    assert_eq!(same["unchanged"], 1);
    assert_eq!(audit_ops(&t, &id).await, ["import"], "nothing written");
    // A change: matched by id, a field changed and an identity added.
    let changed = json!([{ "profileId": id, "identities": [
        { "type": "EMAIL", "externalId": "alice@example.com" },
        { "type": "UNIVERSAL_ID", "externalId": "alice" }
    ], "userName": "Alice B" }]);
    let updated = import(&t, "a", changed.clone(), "UPSERT").await;
    assert_eq!(statuses(&updated), ["UPDATED"], "{updated}");
    assert_eq!(updated["updated"], 1);
    let u = user(&t, "a", &id).await;
    assert_eq!(u["userName"], "Alice B");
    assert_eq!(u["version"], 2);
    assert_eq!(u["identities"].as_array().unwrap().len(), 2);
    assert_eq!(audit_ops(&t, &id).await, ["import", "import"]);
    assert_eq!(last_audit_details(&t, &id).await["result"], "UPDATED");
    // The password was kept (the identity came without one).
    let ok = verify(&t, "a", "EMAIL", "alice@example.com", "alice's password").await;
    assert!(ok["errors"].is_null(), "{ok}");
    let rerun = import(&t, "a", changed, "UPSERT").await;
    assert_eq!(statuses(&rerun), ["UNCHANGED"]);
    // An identity of another profile cannot be taken by an upsert.
    let bob = import(&t, "a", json!([universal("bob")]), "CREATE_ONLY").await;
    assert_eq!(statuses(&bob), ["CREATED"]);
    let steal = import(&t, "a", json!([{ "profileId": id, "identities": [{ "type": "UNIVERSAL_ID", "externalId": "bob" }] }]), "UPSERT").await;
    assert_eq!(error_code(&steal, 0), "USER_ALREADY_EXISTS", "{steal}");
}

#[tokio::test]
async fn users_of_one_batch_that_repeat_each_other_are_taken_in_order() {
    let t = TestApp::new().await;
    let batch = json!([universal("twin"), universal("twin"), universal("solo")]);
    let create = import(&t, "a", batch.clone(), "CREATE_ONLY").await;
    assert_eq!(statuses(&create), ["CREATED", "FAILED", "CREATED"]);
    assert_eq!(error_code(&create, 1), "USER_ALREADY_EXISTS");
    let batch = json!([universal("pair"), { "identities": [{ "type": "UNIVERSAL_ID", "externalId": "pair" }], "userName": "Second" }]);
    let upsert = import(&t, "a", batch, "UPSERT").await;
    assert_eq!(statuses(&upsert), ["CREATED", "UPDATED"], "{upsert}");
    assert_eq!(
        upsert["results"][0]["profileId"],
        upsert["results"][1]["profileId"]
    );
}

#[tokio::test]
async fn children_name_parents_already_present_or_imported_before() {
    let t = TestApp::new().await;
    let parents = import(
        &t,
        "parent",
        json!([universal("p1"), universal("p2")]),
        "CREATE_ONLY",
    )
    .await;
    let p1 = parents["results"][0]["profileId"].as_str().unwrap();
    let p2 = parents["results"][1]["profileId"].as_str().unwrap();
    let children = json!([
        { "identities": [{ "type": "UNIVERSAL_ID", "externalId": "c1" }], "parentProfileId": p1 },
        { "identities": [{ "type": "UNIVERSAL_ID", "externalId": "c2" }], "parentProfileId": "0190f7a4-0000-7000-8000-000000000000" },
        { "identities": [{ "type": "UNIVERSAL_ID", "externalId": "c3" }], "parentProfileId": p1 },
        { "identities": [{ "type": "UNIVERSAL_ID", "externalId": "c4" }], "parentProfileId": p2 }
    ]);
    let payload = import(&t, "child", children, "CREATE_ONLY").await;
    assert_eq!(
        statuses(&payload),
        ["CREATED", "FAILED", "FAILED", "CREATED"],
        "{payload}"
    );
    assert_eq!(error_code(&payload, 1), "APP_PARENT_MISMATCH");
    assert_eq!(error_code(&payload, 2), "DUPLICATE_CHILD");
    let c1 = payload["results"][0]["profileId"].as_str().unwrap();
    assert_eq!(user(&t, "child", c1).await["parentProfileId"], p1);
    // A parent in an app without a parent app.
    let orphan = import(&t, "a", json!([{ "identities": [{ "type": "UNIVERSAL_ID", "externalId": "o" }], "parentProfileId": p1 }]), "CREATE_ONLY").await;
    assert_eq!(error_code(&orphan, 0), "APP_PARENT_MISMATCH");
}

#[tokio::test]
async fn plaintext_passwords_follow_the_policy_and_are_hashed_with_argon2id() {
    let t = TestApp::new().await;
    let users = json!([
        { "identities": [{ "type": "UNIVERSAL_ID", "externalId": "plain", "password": "a fine password" }] },
        { "identities": [{ "type": "UNIVERSAL_ID", "externalId": "weak", "password": "1234567" }] }
    ]);
    let payload = import(&t, "a", users, "CREATE_ONLY").await;
    assert_eq!(statuses(&payload), ["CREATED", "FAILED"]);
    assert_eq!(error_code(&payload, 1), "INVALID_PASSWORD_CONTENT");
    let ok = verify(&t, "a", "UNIVERSAL_ID", "plain", "a fine password").await;
    assert!(ok["errors"].is_null(), "{ok}");
    let wrong = verify(&t, "a", "UNIVERSAL_ID", "plain", "a fine passwore").await;
    assert_eq!(code(&wrong), "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn the_import_scope_and_body_limits_apply() {
    let t = TestApp::new().await;
    let (status, v) = import_as(
        &t,
        "a",
        "cloudcode:users:create",
        json!([universal("x")]),
        "CREATE_ONLY",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(code(&v), "FORBIDDEN", "{v}");
    let too_many: Vec<Value> = (0..1001).map(|i| universal(&format!("u{i}"))).collect();
    let (_, v) = import_as(&t, "a", IMPORT, json!(too_many), "CREATE_ONLY").await;
    assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
    // 1,000 users: far over the general 64 KiB body limit, within the import limit.
    let users: Vec<Value> = (0..1000)
        .map(|i| json!({ "identities": [{ "type": "UNIVERSAL_ID", "externalId": format!("bulk-user-{i:05}") }], "userName": format!("Bulk user number {i}") }))
        .collect();
    let body_size = serde_json::to_vec(&users).unwrap().len();
    assert!(body_size > 64 * 1024, "{body_size}");
    let (status, v) = import_as(
        &t,
        "a",
        "cloudcode:users:read",
        json!(users.clone()),
        "CREATE_ONLY",
    )
    .await;
    assert_eq!(
        status, 413,
        "without the import scope, the general limit: {v}"
    );
    let payload = import(&t, "a", json!(users), "CREATE_ONLY").await;
    assert_eq!(payload["created"], 1000);
    let (_, all) = t
        .gql(
            &t.token("a", "cloudcode:users:read"),
            "{ users { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(all["data"]["users"]["totalCount"], 1000);
}

/// Whether the identities table has been analyzed by hand (not by autovacuum).
async fn identities_analyzed(t: &TestApp) -> bool {
    crate::sql::count(
        &mut t.sql().await,
        "SELECT count(*) AS n FROM pg_stat_user_tables \
         WHERE relname = 'identities' AND last_analyze IS NOT NULL",
    )
    .await
        == 1
}

#[tokio::test]
async fn an_app_grown_by_imports_has_its_statistics_refreshed() {
    use diesel_async::SimpleAsyncConnection;
    let t = TestApp::new().await;
    for app in ["big", "bulk"] {
        usersvc::apps::create(&mut t.db.pool(), app, app, None)
            .await
            .unwrap();
    }
    let batch = |prefix: &str, b: usize| {
        json!(
            (0..1000)
                .map(|i| json!({ "identities": [{ "type": "UNIVERSAL_ID", "externalId": format!("{prefix}{b}-{i}") }] }))
                .collect::<Vec<_>>()
        )
    };
    // An app that already held 10,000 identities: 5,000 more do not call for a refresh.
    t.sql()
        .await
        .batch_execute(
            "WITH p AS (INSERT INTO profiles (app_id, profile_id) \
               SELECT 'big', gen_random_uuid() FROM generate_series(1, 10000) \
               RETURNING app_id, profile_id) \
             INSERT INTO identities (app_id, profile_id, kind, external_auth_type, external_id) \
             SELECT app_id, profile_id, 'UNIVERSAL_ID', '', profile_id::text FROM p",
        )
        .await
        .unwrap();
    for b in 0..5 {
        let payload = import(&t, "big", batch("big", b), "CREATE_ONLY").await;
        assert_eq!(payload["created"], 1000);
    }
    assert!(
        !identities_analyzed(&t).await,
        "a large app grown by half: not yet"
    );
    // A new app: refreshed once it holds 5,000.
    for b in 0..4 {
        let payload = import(&t, "bulk", batch("u", b), "CREATE_ONLY").await;
        assert_eq!(payload["created"], 1000);
    }
    assert!(!identities_analyzed(&t).await, "4,000 identities: not yet");
    let payload = import(&t, "bulk", batch("u", 4), "CREATE_ONLY").await;
    assert_eq!(payload["created"], 1000);
    assert!(
        identities_analyzed(&t).await,
        "5,000 identities imported: the planner's statistics are refreshed"
    );
}
