//! Parents and children (brainCloud shared accounts): a parent profile has at most one child in
//! each child app, on every way in, under concurrency, and after the migration that brought
//! the rule to existing data.

use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use serde_json::json;

use crate::create::make_user;
use crate::harness::*;

const CREATE: &str = "mutation($in: CreateUserUniversalIdInput!) {
    createUserUniversalId(input: $in) { user { profileId parentProfileId } } }";

fn child(name: &str, parent: &str) -> serde_json::Value {
    json!({ "in": { "universalId": name, "parentProfileId": parent } })
}

#[derive(diesel::QueryableByName)]
struct Kids {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn children_of(t: &TestApp, parent: &str) -> i64 {
    let mut conn = t.sql().await;
    let rows: Vec<Kids> = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM profiles WHERE parent_profile_id = '{parent}'"
    ))
    .load(&mut conn)
    .await
    .unwrap();
    rows[0].n
}

#[tokio::test]
async fn a_parent_has_at_most_one_child_per_child_app() {
    let t = TestApp::new().await;
    usersvc::apps::create(&mut t.db.pool(), "child2", "child2", Some("parent"))
        .await
        .unwrap();
    let parent = make_user(&t, "parent", "mum@example.com").await;
    let (_, v) = t
        .gql(&t.token("child", ALL), CREATE, child("kid", &parent))
        .await;
    assert_eq!(code(&v), "", "{v}");
    let (_, v) = t
        .gql(&t.token("child", ALL), CREATE, child("kid2", &parent))
        .await;
    assert_eq!(code(&v), "DUPLICATE_CHILD", "{v}");
    assert_eq!(v["errors"][0]["extensions"]["reasonCode"], json!(40381));
    // Another child app may have its own child of the same parent.
    let (_, v) = t
        .gql(&t.token("child2", ALL), CREATE, child("kid3", &parent))
        .await;
    assert_eq!(code(&v), "", "{v}");
    assert_eq!(children_of(&t, &parent).await, 2);
    // The refused create left nothing behind: its identity is free.
    let (_, v) = t
        .gql(
            &t.token("child", ALL),
            CREATE,
            json!({ "in": { "universalId": "kid2" } }),
        )
        .await;
    assert_eq!(code(&v), "", "{v}");
}

#[tokio::test]
async fn concurrent_children_of_one_parent_in_one_app_have_one_winner() {
    let t = TestApp::new().await;
    let parent = make_user(&t, "parent", "dad@example.com").await;
    let tok = t.token("child", ALL);
    let attempts = (0..12).map(|i| {
        let (t, tok, parent) = (&t, &tok, &parent);
        async move {
            t.gql(tok, CREATE, child(&format!("twin{i}"), parent))
                .await
                .1
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let codes: Vec<String> = results.iter().map(code).collect();
    assert_eq!(
        codes.iter().filter(|c| c.is_empty()).count(),
        1,
        "{codes:?}"
    );
    assert!(
        codes.iter().all(|c| c.is_empty() || c == "DUPLICATE_CHILD"),
        "{codes:?}"
    );
    assert_eq!(children_of(&t, &parent).await, 1);
}

/// The migration's own SQL, run over data made before the rule: the oldest child in each
/// child app keeps its parent, the others keep existing without one.
#[tokio::test]
async fn the_migration_keeps_the_oldest_child_and_orphans_the_others() {
    let t = TestApp::new().await;
    let parent = make_user(&t, "parent", "old@example.com").await;
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/2026-12-07-000002_one_child_per_app"
    );
    let up = std::fs::read_to_string(format!("{dir}/up.sql")).unwrap();
    let down = std::fs::read_to_string(format!("{dir}/down.sql")).unwrap();
    let mut conn = t.sql().await;
    conn.batch_execute(&down).await.unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO profiles (app_id, profile_id, user_name, parent_app_id, parent_profile_id, created_at)
         VALUES ('child', '00000000-0000-0000-0000-000000000003', 'third', 'parent', '{parent}', '2026-01-03'),
                ('child', '00000000-0000-0000-0000-000000000001', 'first', 'parent', '{parent}', '2026-01-01'),
                ('child', '00000000-0000-0000-0000-000000000002', 'second', 'parent', '{parent}', '2026-01-02')"
    ))
    .await
    .unwrap();
    conn.batch_execute(&up).await.unwrap();
    #[derive(diesel::QueryableByName, Debug, PartialEq)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        user_name: String,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        has_parent: bool,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT user_name, parent_profile_id IS NOT NULL AS has_parent FROM profiles
          WHERE app_id = 'child' ORDER BY user_name",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let got: Vec<(&str, bool)> = rows
        .iter()
        .map(|r| (r.user_name.as_str(), r.has_parent))
        .collect();
    assert_eq!(got, [("first", true), ("second", false), ("third", false)]);
    // And the rule holds from then on.
    let (_, v) = t
        .gql(&t.token("child", ALL), CREATE, child("fourth", &parent))
        .await;
    assert_eq!(code(&v), "DUPLICATE_CHILD", "{v}");
}
