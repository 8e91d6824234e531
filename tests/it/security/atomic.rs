//! G6: a multi-step mutation is all or nothing. PostgreSQL itself fails one step at a time (a
//! trigger that raises an error on one table), and the mutation must then leave no trace: no
//! half-deleted family, no profile without its identity or audit event.

use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use serde_json::json;

use super::*;
use crate::create::make_user;

#[derive(diesel::QueryableByName, Debug, PartialEq)]
struct Dump {
    #[diesel(sql_type = diesel::sql_types::Text)]
    dump: String,
}

/// Every row that a create or a delete touches, as text.
async fn state(t: &TestApp) -> String {
    let rows: Vec<Dump> = diesel::sql_query(
        "SELECT concat_ws(' | ', \
           (SELECT string_agg(p::text, ',' ORDER BY app_id, profile_id) FROM profiles p), \
           (SELECT string_agg(i::text, ',' ORDER BY app_id, profile_id, kind) FROM identities i), \
           (SELECT string_agg(o::text, ',' ORDER BY message_id) FROM outbox o), \
           (SELECT string_agg(k::text, ',' ORDER BY token_hash) FROM one_time_tokens k), \
           (SELECT count(*)::text FROM audit_events)) AS dump",
    )
    .load(&mut t.sql().await)
    .await
    .unwrap();
    rows.into_iter().next().unwrap().dump
}

/// Makes `statement` on `table` fail (when `when` holds) until [`heal`] runs.
async fn break_step(t: &TestApp, timing: &str, table: &str, when: &str) {
    t.sql()
        .await
        .batch_execute(&format!(
            "CREATE OR REPLACE FUNCTION injected_failure() RETURNS trigger LANGUAGE plpgsql AS \
               $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$; \
             CREATE TRIGGER injected_failure {timing} ON {table} FOR EACH ROW WHEN ({when}) \
               EXECUTE FUNCTION injected_failure();"
        ))
        .await
        .unwrap();
}

async fn heal(t: &TestApp, table: &str) {
    t.sql()
        .await
        .batch_execute(&format!("DROP TRIGGER injected_failure ON {table}"))
        .await
        .unwrap();
}

const DELETE: &str = "mutation($id: ID!, $c: Boolean) { deleteUser(input: {profileId: $id, deleteChildren: $c}) { deletedProfileIds } }";

#[tokio::test]
async fn a_delete_that_fails_at_any_step_leaves_the_whole_family_as_it_was() {
    let t = TestApp::with(Options {
        mail_worker: false,
        ..Options::default()
    })
    .await;
    let parent = make_user(&t, "parent", "mum@example.com").await;
    let (_, v) = t
        .gql(&t.token("child", ALL), "mutation($p: ID!) { createUserEmailPassword(input: {email: \"kid@example.com\", password: \"password-123\", parentProfileId: $p}) { user { profileId } } }", json!({ "p": parent }))
        .await;
    let kid = v["data"]["createUserEmailPassword"]["user"]["profileId"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned();
    // Links and queued mail for both, which the delete must revoke and drop.
    for (app, id) in [("parent", &parent), ("child", &kid)] {
        let tok = t.token(app, ALL);
        for q in [
            "mutation($id: ID!) { createPasswordResetUrl(input: {profileId: $id, identityType: EMAIL}) { url } }",
            "mutation($id: ID!) { sendPasswordResetEmail(input: {profileId: $id}) { emailId } }",
        ] {
            let (_, v) = t.gql(&tok, q, json!({ "id": id })).await;
            assert_eq!(code(&v), "", "{v}");
        }
    }
    let before = state(&t).await;
    let tok = t.token("parent", ALL);
    let steps = [
        ("BEFORE DELETE", "profiles", "OLD.app_id = 'child'", true),
        ("BEFORE DELETE", "profiles", "OLD.app_id = 'parent'", true),
        ("BEFORE DELETE", "identities", "OLD.app_id = 'child'", true),
        (
            "BEFORE DELETE",
            "one_time_tokens",
            "OLD.app_id = 'child'",
            true,
        ),
        ("BEFORE UPDATE", "outbox", "OLD.app_id = 'child'", true),
        (
            "BEFORE INSERT",
            "audit_events",
            "NEW.app_id = 'child'",
            true,
        ),
        ("BEFORE UPDATE", "profiles", "OLD.app_id = 'child'", false),
        (
            "BEFORE INSERT",
            "audit_events",
            "NEW.operation = 'orphanUser'",
            false,
        ),
    ];
    for (timing, table, when, children) in steps {
        break_step(&t, timing, table, when).await;
        let (status, v) = t
            .gql(&tok, DELETE, json!({ "id": parent, "c": children }))
            .await;
        heal(&t, table).await;
        assert_eq!(status, 200, "{table}: {v}");
        assert_eq!(
            code(&v),
            "INTERNAL_SERVER_ERROR",
            "{timing} {table} {when}: {v}"
        );
        assert!(!v.to_string().contains("injected"), "no internals: {v}");
        assert_eq!(
            state(&t).await,
            before,
            "{timing} {table} {when}: nothing changed"
        );
    }
    // Healed, the same delete takes the whole family at once.
    let (_, v) = t
        .gql(&tok, DELETE, json!({ "id": parent, "c": true }))
        .await;
    assert_eq!(
        v["data"]["deleteUser"]["deletedProfileIds"],
        json!([parent, kid]),
        "{v}"
    );
}

#[tokio::test]
async fn a_create_that_fails_at_any_step_leaves_nothing_behind() {
    let t = TestApp::new().await;
    let before = state(&t).await;
    let tok = t.token("a", ALL);
    let create = "mutation { createUserEmailPassword(input: {email: \"half@example.com\", password: \"password-123\"}) { user { profileId } } }";
    for table in ["profiles", "identities", "audit_events"] {
        break_step(&t, "BEFORE INSERT", table, "true").await;
        let (_, v) = t.gql(&tok, create, json!({})).await;
        heal(&t, table).await;
        assert_eq!(code(&v), "INTERNAL_SERVER_ERROR", "{table}: {v}");
        assert_eq!(state(&t).await, before, "{table}: nothing was written");
    }
    let (_, v) = t.gql(&tok, create, json!({})).await;
    assert_eq!(code(&v), "", "{v}");
    let (_, v) = t.gql(&tok, create, json!({})).await;
    assert_eq!(code(&v), "USER_ALREADY_EXISTS", "created exactly once: {v}");
}
