//! `usersvc export` and `usersvc import`, run as the real binary on the test's database: an
//! export imported into another app restores the same users with working passwords; bad lines
//! go to the rejects file with their line numbers and make the exit status non-zero; a re-run
//! with `--mode upsert` finishes the job.

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use super::*;
use crate::harness::*;
use crate::lifecycle::{USER, user};

fn usersvc(t: &TestApp, dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_usersvc"))
        .args(args)
        .env("DATABASE_URL", &t.db_url)
        .env_remove("RUST_LOG")
        .current_dir(dir)
        .output()
        .expect("run usersvc")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every user of `app`, as `users` lists them in profile id order.
async fn all_users(t: &TestApp, app: &str) -> Vec<Value> {
    let query = format!("{{ users(first: 500) {{ nodes {{ {USER} }} }} }}");
    let (_, v) = t
        .gql(&t.token(app, "cloudcode:users:read"), &query, json!({}))
        .await;
    let mut nodes = v["data"]["users"]["nodes"].as_array().unwrap().clone();
    nodes.sort_by_key(|u| u["profileId"].as_str().unwrap().to_owned());
    nodes
}

#[tokio::test]
async fn an_export_imported_into_another_app_restores_the_users_and_their_passwords() {
    let t = TestApp::new().await;
    let hashes: Vec<Value> =
        serde_json::from_str(include_str!("../../fixtures/foreign-hashes.json")).unwrap();
    let bcrypt = hashes.iter().find(|h| h["scheme"] == "bcrypt").unwrap();
    let scrypt = hashes.iter().find(|h| h["scheme"] == "scrypt").unwrap();
    let users = json!([
        { "identities": [{ "type": "EMAIL", "externalId": "b@example.com", "passwordHash": bcrypt["hash"] }],
          "userName": "Bea", "createdAt": "2020-01-01T00:00:00Z", "lastLoginAt": "2021-02-03T04:05:06Z" },
        { "identities": [
            { "type": "UNIVERSAL_ID", "externalId": "scrypt-user", "passwordHash": scrypt["hash"] },
            { "type": "EXTERNAL", "externalAuthType": "corpdir", "externalId": "S-1" }
          ], "status": "DISABLED", "summaryFriendData": { "x": [1, 2] }, "timeZoneOffset": 2.5 },
        { "identities": [{ "type": "UNIVERSAL_ID", "externalId": "plain", "password": "a fine password" }] }
    ]);
    let payload = import(&t, "a", users, "CREATE_ONLY").await;
    assert_eq!(payload["created"], 3, "{payload}");
    let dir = tempfile::tempdir().unwrap();

    let out = usersvc(
        &t,
        dir.path(),
        &[
            "export",
            "--app",
            "a",
            "--out",
            "a.ndjson",
            "--include-password-hashes",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("3 users"),
        "{}",
        text(&out.stdout)
    );
    let exported = lines(&dir.path().join("a.ndjson"));
    assert_eq!(exported.len(), 3);
    let ids: Vec<&str> = exported
        .iter()
        .map(|u| u["profileId"].as_str().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "keyset order");
    for u in &exported {
        for i in u["identities"].as_array().unwrap() {
            assert_eq!(
                i["passwordHash"].is_string(),
                i["type"] != "EXTERNAL",
                "{u}"
            );
        }
    }

    let plain = usersvc(&t, dir.path(), &["export", "--app", "a"]);
    assert!(plain.status.success());
    let plain = text(&plain.stdout);
    assert_eq!(plain.lines().count(), 3);
    assert!(
        !plain.contains("passwordHash") && !plain.contains("$2b$"),
        "{plain}"
    );

    let imported = usersvc(&t, dir.path(), &["import", "--app", "b", "a.ndjson"]);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let summary = text(&imported.stdout);
    assert!(
        summary.contains("3 created") && summary.contains("0 failed"),
        "{summary}"
    );
    assert!(!dir.path().join("a.ndjson.rejects.ndjson").exists());

    let (before, after) = (all_users(&t, "a").await, all_users(&t, "b").await);
    assert_eq!(before.len(), 3);
    for (a, b) in before.iter().zip(&after) {
        for field in [
            "profileId",
            "userName",
            "contactEmail",
            "timeZoneOffset",
            "summaryFriendData",
            "createdAt",
            "lastLoginAt",
            "status",
            "identities",
            "isTester",
        ] {
            assert_eq!(a[field], b[field], "{field}: {a} / {b}");
        }
    }
    for (kind, id, password) in [
        (
            "EMAIL",
            "b@example.com",
            bcrypt["password"].as_str().unwrap(),
        ),
        ("UNIVERSAL_ID", "plain", "a fine password"),
    ] {
        let v = verify(&t, "b", kind, id, password).await;
        assert!(v["errors"].is_null(), "{id}: {v}");
        let wrong = verify(&t, "b", kind, id, "not the password").await;
        assert_eq!(code(&wrong), "INVALID_CREDENTIALS");
    }
    // The disabled user's password is right, and it is still disabled.
    let v = verify(
        &t,
        "b",
        "UNIVERSAL_ID",
        "scrypt-user",
        scrypt["password"].as_str().unwrap(),
    )
    .await;
    assert_eq!(code(&v), "USER_DISABLED", "{v}");
}

#[tokio::test]
async fn bad_lines_are_rejected_with_their_numbers_and_upsert_finishes_the_job() {
    let t = TestApp::new().await;
    let dir = tempfile::tempdir().unwrap();
    let good = |i: usize| {
        json!({ "identities": [{ "type": "UNIVERSAL_ID", "externalId": format!("u{i}") }] })
            .to_string()
    };
    let file = [
        good(1),
        "this is not json".to_owned(),
        json!({ "identities": [] }).to_string(),
        good(2),
        String::new(),
        json!({ "identities": [{ "type": "UNIVERSAL_ID", "externalId": "u1" }], "userName": "dup" }).to_string(),
        json!({ "identities": [{ "type": "UNIVERSAL_ID", "externalId": "u9" }], "unknownField": 1 }).to_string(),
        good(3),
    ]
    .join("\n");
    std::fs::write(dir.path().join("users.ndjson"), file + "\n").unwrap();
    let run = usersvc(&t, dir.path(), &["import", "--app", "a", "users.ndjson"]);
    assert!(!run.status.success(), "{}", text(&run.stdout));
    let summary = text(&run.stdout);
    assert!(
        summary.contains("7 users read")
            && summary.contains("3 created")
            && summary.contains("4 failed"),
        "{summary}"
    );
    assert!(
        text(&run.stderr).contains("users.ndjson.rejects.ndjson"),
        "{}",
        text(&run.stderr)
    );
    let rejects = lines(&dir.path().join("users.ndjson.rejects.ndjson"));
    let numbers: Vec<i64> = rejects
        .iter()
        .map(|r| r["line"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 3, 6, 7]);
    let codes: Vec<&str> = rejects
        .iter()
        .map(|r| r["error"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "BAD_USER_INPUT",
            "BAD_USER_INPUT",
            "USER_ALREADY_EXISTS",
            "BAD_USER_INPUT"
        ]
    );
    assert_eq!(rejects[0]["input"], "this is not json");
    assert_eq!(rejects[2]["input"]["userName"], "dup");

    // The lines fixed, the whole file again with upsert: what is there is left alone.
    let fixed = [good(1), good(4), good(2), good(5), good(3)].join("\n");
    std::fs::write(dir.path().join("users.ndjson"), fixed).unwrap();
    let rerun = usersvc(
        &t,
        dir.path(),
        &["import", "--app", "a", "users.ndjson", "--mode", "upsert"],
    );
    assert!(rerun.status.success(), "{}", text(&rerun.stderr));
    let summary = text(&rerun.stdout);
    assert!(
        summary.contains("2 created")
            && summary.contains("3 unchanged")
            && summary.contains("0 failed"),
        "{summary}"
    );
    assert!(
        !dir.path().join("users.ndjson.rejects.ndjson").exists(),
        "the old rejects are gone"
    );
    assert_eq!(all_users(&t, "a").await.len(), 5);
    let first = user(
        &t,
        "a",
        all_users(&t, "a").await[0]["profileId"].as_str().unwrap(),
    )
    .await;
    assert_eq!(first["version"], 1, "unchanged users were not written");
}

#[tokio::test]
async fn the_worked_example_of_the_readme_imports() {
    let t = TestApp::new().await;
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/import-example.ndjson");
    let dir = tempfile::tempdir().unwrap();
    let run = usersvc(
        &t,
        dir.path(),
        &["import", "--app", "a", example, "--mode", "upsert"],
    );
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(
        text(&run.stdout).contains("4 created"),
        "{}",
        text(&run.stdout)
    );
    for (kind, id) in [
        ("EMAIL", "ada@example.com"),
        ("UNIVERSAL_ID", "grace"),
        ("EMAIL", "linus@example.com"),
    ] {
        let v = verify(&t, "a", kind, id, "correct horse battery").await;
        assert!(v["errors"].is_null(), "{id}: {v}");
    }
}

#[tokio::test]
async fn a_later_batch_that_names_an_earlier_batchs_user_sees_it_written() {
    // Batches of 1,000 are written two at a time; these files repeat users across batches.
    let t = TestApp::new().await;
    let dir = tempfile::tempdir().unwrap();
    let line = |i: usize, name: &str| {
        json!({ "identities": [{ "type": "UNIVERSAL_ID", "externalId": format!("u{i}") }],
                "userName": name })
        .to_string()
    };
    let mut file: Vec<String> = (0..2500).map(|i| line(i, "first")).collect();
    // Line 1,201 (second batch) and line 2,101 (third) repeat users of the first batch.
    file[1200] = line(7, "again");
    file[2100] = line(8, "again");
    std::fs::write(dir.path().join("users.ndjson"), file.join("\n")).unwrap();
    let run = usersvc(&t, dir.path(), &["import", "--app", "a", "users.ndjson"]);
    assert!(!run.status.success());
    let summary = text(&run.stdout);
    assert!(
        summary.contains("2498 created") && summary.contains("2 failed"),
        "{summary}"
    );
    let rejects = lines(&dir.path().join("users.ndjson.rejects.ndjson"));
    let failed: Vec<(i64, &str)> = rejects
        .iter()
        .map(|r| {
            (
                r["line"].as_i64().unwrap(),
                r["error"]["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        failed,
        [(1201, "USER_ALREADY_EXISTS"), (2101, "USER_ALREADY_EXISTS")]
    );

    // With upsert, into an app without them, the repeats update what earlier batches wrote.
    let upsert = usersvc(
        &t,
        dir.path(),
        &["import", "--app", "b", "users.ndjson", "--mode", "upsert"],
    );
    assert!(upsert.status.success(), "{}", text(&upsert.stderr));
    let summary = text(&upsert.stdout);
    assert!(
        summary.contains("2498 created") && summary.contains("2 updated"),
        "{summary}"
    );
    let (_, v) = t
        .gql(
            &t.token("b", "cloudcode:users:read"),
            r#"{ a: userByIdentity(type: UNIVERSAL_ID, externalId: "u7") { userName }
                 b: userByIdentity(type: UNIVERSAL_ID, externalId: "u8") { userName } }"#,
            json!({}),
        )
        .await;
    assert_eq!(v["data"]["a"]["userName"], "again", "{v}");
    assert_eq!(v["data"]["b"]["userName"], "again", "{v}");
}
