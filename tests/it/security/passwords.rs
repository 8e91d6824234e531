//! A1/A4: passwords are kept exactly as given (no truncation, no case folding, any Unicode,
//! 8 to 128 characters under the default policy) and nothing reversible of them reaches the
//! database.

use proptest::prelude::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use usersvc::passwords::{Hasher, Policy};

use super::*;

/// The same password with its last character changed.
fn last_changed(p: &str) -> String {
    let mut chars: Vec<char> = p.chars().collect();
    let last = chars.last_mut().unwrap();
    *last = if *last == 'x' { 'y' } else { 'x' };
    chars.into_iter().collect()
}

#[tokio::test]
async fn any_unicode_password_the_policy_allows_verifies_exactly_and_only_itself() {
    let hasher = Hasher::new(2);
    let policy = Policy::default();
    let mut runner = TestRunner::new(Config {
        rng_seed: proptest::test_runner::RngSeed::Fixed(0xa4),
        ..Config::default()
    });
    // Printable characters of any script, from the shortest to the longest the policy allows.
    let strategy = prop_oneof![
        "\\PC{8,12}",
        "\\PC{60,70}",
        "\\PC{120,128}",
        "[a-zA-Z]{8,20}",
    ];
    for i in 0..16 {
        let password: String = strategy.new_tree(&mut runner).unwrap().current();
        assert_eq!(policy.check(&password), Ok(()), "case {i}: {password:?}");
        let phc = hasher.hash("a", password.clone()).await.unwrap();
        let verify = |p: String| {
            let (hasher, phc) = (hasher.clone(), phc.clone());
            async move {
                hasher
                    .verify("a", Some(phc), p)
                    .await
                    .unwrap()
                    .unwrap()
                    .matches
            }
        };
        assert!(verify(password.clone()).await, "case {i}: {password:?}");
        assert!(
            !verify(last_changed(&password)).await,
            "case {i}: last character changed"
        );
        let shorter: String = password
            .chars()
            .take(password.chars().count() - 1)
            .collect();
        assert!(!verify(shorter).await, "case {i}: no truncation");
        for folded in [password.to_uppercase(), password.to_lowercase()] {
            if folded != password {
                assert!(!verify(folded).await, "case {i}: no case folding");
            }
        }
    }
    // Nothing is cut off a long input either: a 200-character password hashes in full.
    let long = "long password ".repeat(15);
    let phc = hasher.hash("a", long.clone()).await.unwrap();
    let result = hasher
        .verify("a", Some(phc), last_changed(&long))
        .await
        .unwrap()
        .unwrap();
    assert!(!result.matches);
    // The policy's bounds: 7 characters and 129 are refused.
    assert!(policy.check("seven77").is_err());
    assert!(policy.check(&"x".repeat(129)).is_err());
}

#[tokio::test]
async fn no_password_is_stored_in_any_readable_form() {
    let t = TestApp::new().await;
    let tok = t.token("a", ALL);
    let passwords = [
        "Plain Text Password 1",
        "ünïcödé pässwörd 2",
        "third-password-3",
    ];
    let (_, v) = t
        .gql(&tok, "mutation($pw: String!) { createUserEmailPassword(input: {email: \"p1@example.com\", password: $pw}) { user { profileId } } }", json!({ "pw": passwords[0] }))
        .await;
    let id = v["data"]["createUserEmailPassword"]["user"]["profileId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, v) = t
        .gql(&tok, "mutation($id: ID!, $pw: String!) { attachIdentity(input: {profileId: $id, type: UNIVERSAL_ID, externalId: \"p1\", password: $pw}) { user { profileId } } }", json!({ "id": id, "pw": passwords[1] }))
        .await;
    assert_eq!(code(&v), "", "{v}");
    let (_, v) = t
        .gql(&tok, "mutation($id: ID!, $pw: String!) { setPassword(input: {profileId: $id, password: $pw, identityType: EMAIL}) { user { profileId } } }", json!({ "id": id, "pw": passwords[2] }))
        .await;
    assert_eq!(code(&v), "", "{v}");
    // Every row of every table, as text.
    #[derive(diesel::QueryableByName)]
    struct Dump {
        #[diesel(sql_type = diesel::sql_types::Text)]
        dump: String,
    }
    let tables: Vec<Dump> = diesel_async::RunQueryDsl::load(
        diesel::sql_query("SELECT tablename AS dump FROM pg_tables WHERE schemaname = 'public'"),
        &mut t.sql().await,
    )
    .await
    .unwrap();
    assert!(tables.len() > 5);
    let mut everything = String::new();
    for table in tables {
        let rows: Vec<Dump> = diesel_async::RunQueryDsl::load(
            diesel::sql_query(format!(
                "SELECT coalesce(string_agg(r::text, ''), '') AS dump FROM \"{}\" r",
                table.dump
            )),
            &mut t.sql().await,
        )
        .await
        .unwrap();
        everything.push_str(&rows[0].dump);
    }
    assert!(
        everything.contains("$argon2id$v=19$m=19456,t=2,p=1$"),
        "the hashes are there"
    );
    for p in passwords {
        assert!(!everything.contains(p), "{p} is in the database");
        assert!(
            !everything.to_lowercase().contains(&p.to_lowercase()),
            "{p} is in the database"
        );
    }
}
