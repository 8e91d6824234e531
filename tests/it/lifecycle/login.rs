//! verifyPassword: a login recorded without an admin change; unknown identities and wrong
//! passwords indistinguishable; attempts counted exactly in the database, under concurrency
//! and for unknown identities too; disabled users told only after a right password; outdated
//! and hostile stored hashes handled.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};
use usersvc::db::schema::{identities, login_failures};

use super::*;
use crate::create::make_user;
use crate::harness::*;

const AUTHENTICATE: &str = "cloudcode:users:authenticate";

async fn verify(t: &TestApp, kind: &str, id: &str, password: &str) -> Value {
    mutate(
        t,
        "a",
        AUTHENTICATE,
        "verifyPassword",
        json!({ "type": kind, "externalId": id, "password": password }),
    )
    .await
}

/// The attempts counted for an identity of app `a` (0: none).
async fn counted(t: &TestApp, kind: &str, id: &str) -> i32 {
    login_failures::table
        .find(("a", kind, id))
        .select(login_failures::failures)
        .first(&mut t.sql().await)
        .await
        .optional()
        .unwrap()
        .unwrap_or(0)
}

/// Moves every counting window of the test's database into the past by `minutes`.
async fn age_windows(t: &TestApp, minutes: i32) {
    t.sql()
        .await
        .batch_execute(&format!(
            "UPDATE login_failures SET window_started_at = window_started_at - interval '{minutes} minutes'"
        ))
        .await
        .unwrap();
}

async fn stored_hash(t: &TestApp, login: &str) -> String {
    identities::table
        .filter(identities::external_id.eq(login))
        .select(identities::password_hash)
        .first::<Option<String>>(&mut t.sql().await)
        .await
        .unwrap()
        .unwrap()
}

async fn set_stored_hash(t: &TestApp, login: &str, hash: &str) {
    diesel::update(identities::table.filter(identities::external_id.eq(login)))
        .set(identities::password_hash.eq(hash))
        .execute(&mut t.sql().await)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_right_password_records_the_login_and_nothing_else() {
    let t = TestApp::new().await;
    let id = make_user(&t, "a", "lee@example.com").await;
    let before = user(&t, "a", &id).await;
    let ops = audit_ops(&t, &id).await;
    for n in 1..=2 {
        let v = verify(&t, "EMAIL", "  LEE@example.com ", "password-123").await;
        let u = user_of(&v, "verifyPassword");
        assert_eq!(u["profileId"], json!(id));
        assert_eq!(u["loginCount"], json!(n));
        assert!(u["lastLoginAt"].is_string());
        assert_eq!(
            u["version"], before["version"],
            "a login is not an admin change"
        );
        assert_eq!(u["updatedAt"], before["updatedAt"]);
    }
    assert_eq!(audit_ops(&t, &id).await, ops, "no audit event for logins");
    assert_eq!(counted(&t, "EMAIL", "lee@example.com").await, 0);

    let uni = make_universal(&t, "a", "lou", "lou's password").await;
    let v = verify(&t, "UNIVERSAL_ID", "LOU", "lou's password").await;
    assert_eq!(user_of(&v, "verifyPassword")["profileId"], json!(uni));

    for (kind, login, password) in [
        ("EXTERNAL", "lee@example.com", "password-123"),
        ("EMAIL", "lee@example.com", &"x".repeat(5000)),
    ] {
        let v = verify(&t, kind, login, password).await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{kind}: {v}");
    }
    let v = mutate(
        &t,
        "a",
        "cloudcode:users:update",
        "verifyPassword",
        json!({ "type": "EMAIL", "externalId": "lee@example.com", "password": "password-123" }),
    )
    .await;
    assert_eq!(code(&v), "FORBIDDEN");
}

#[tokio::test]
async fn unknown_identities_and_wrong_passwords_get_the_same_answer() {
    let t = TestApp::new().await;
    make_user(&t, "a", "kim@example.com").await;
    make_user(&t, "b", "only-in-b@example.com").await;
    let wrong = verify(&t, "EMAIL", "kim@example.com", "password-124").await;
    assert_eq!(
        error_of(&wrong),
        json!({
            "message": "the identity or the password is wrong",
            "extensions": { "code": "INVALID_CREDENTIALS", "reasonCode": 40307 },
        })
    );
    for (kind, login) in [
        ("EMAIL", "nobody@example.com"),
        ("EMAIL", "not even an address"),
        ("EMAIL", "only-in-b@example.com"),
        ("UNIVERSAL_ID", "kim@example.com"),
    ] {
        let v = verify(&t, kind, login, "password-123").await;
        assert_eq!(error_of(&v), error_of(&wrong), "{kind} {login}");
    }
}

#[tokio::test]
async fn twenty_parallel_wrong_passwords_are_counted_exactly() {
    let t = TestApp::new().await;
    make_user(&t, "a", "max@example.com").await;
    // Default: 10 attempts per 15 minutes. Of 20 at once, exactly 10 are checked.
    let guesses: Vec<String> = (0..20).map(|i| format!("wrong {i}")).collect();
    let results = futures_util::future::join_all(
        guesses
            .iter()
            .map(|g| verify(&t, "EMAIL", "max@example.com", g)),
    )
    .await;
    let codes: Vec<String> = results.iter().map(code).collect();
    assert_eq!(
        codes.iter().filter(|c| *c == "INVALID_CREDENTIALS").count(),
        10,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| *c == "TOO_MANY_ATTEMPTS").count(),
        10,
        "{codes:?}"
    );
    assert_eq!(counted(&t, "EMAIL", "max@example.com").await, 10);
    let refused = results
        .iter()
        .find(|v| code(v) == "TOO_MANY_ATTEMPTS")
        .unwrap();
    assert_eq!(
        error_of(refused),
        json!({
            "message": "too many failed attempts for this identity; try again later",
            "extensions": { "code": "TOO_MANY_ATTEMPTS" },
        })
    );
    // Even the right password waits for the window to pass.
    assert_eq!(
        code(&verify(&t, "EMAIL", "max@example.com", "password-123").await),
        "TOO_MANY_ATTEMPTS"
    );
    assert_eq!(counted(&t, "EMAIL", "max@example.com").await, 10);
    age_windows(&t, 14).await;
    assert_eq!(
        code(&verify(&t, "EMAIL", "max@example.com", "password-123").await),
        "TOO_MANY_ATTEMPTS"
    );
    age_windows(&t, 1).await;
    let v = verify(&t, "EMAIL", "max@example.com", "password-123").await;
    assert_eq!(user_of(&v, "verifyPassword")["loginCount"], json!(1));
    assert_eq!(
        counted(&t, "EMAIL", "max@example.com").await,
        0,
        "a success clears the count"
    );

    // With room for all of them, 20 at once are all checked and all counted: then 5 more fit,
    // and the 26th attempt is refused.
    usersvc::apps::set(&mut t.db.pool(), "a", "login.max_failures", "25")
        .await
        .unwrap();
    let results = futures_util::future::join_all(
        guesses
            .iter()
            .map(|g| verify(&t, "EMAIL", "max@example.com", g)),
    )
    .await;
    assert!(
        results.iter().all(|v| code(v) == "INVALID_CREDENTIALS"),
        "{results:?}"
    );
    assert_eq!(counted(&t, "EMAIL", "max@example.com").await, 20);
    for _ in 0..5 {
        assert_eq!(
            code(&verify(&t, "EMAIL", "max@example.com", "nope").await),
            "INVALID_CREDENTIALS"
        );
    }
    assert_eq!(
        code(&verify(&t, "EMAIL", "max@example.com", "nope").await),
        "TOO_MANY_ATTEMPTS"
    );
    assert_eq!(counted(&t, "EMAIL", "max@example.com").await, 25);
}

#[tokio::test]
async fn unknown_identities_are_counted_and_a_success_starts_over() {
    let t = TestApp::new().await;
    usersvc::apps::set(&mut t.db.pool(), "a", "login.max_failures", "3")
        .await
        .unwrap();
    make_user(&t, "a", "sam@example.com").await;
    // An identity that does not exist locks like one that does.
    for want in [
        "INVALID_CREDENTIALS",
        "INVALID_CREDENTIALS",
        "INVALID_CREDENTIALS",
        "TOO_MANY_ATTEMPTS",
    ] {
        assert_eq!(
            code(&verify(&t, "EMAIL", "ghost@example.com", "guess").await),
            want
        );
    }
    assert_eq!(counted(&t, "EMAIL", "ghost@example.com").await, 3);
    // Two failures, a success, and the count starts over.
    for _ in 0..2 {
        assert_eq!(
            code(&verify(&t, "EMAIL", "sam@example.com", "guess").await),
            "INVALID_CREDENTIALS"
        );
    }
    assert_eq!(
        code(&verify(&t, "EMAIL", "sam@example.com", "password-123").await),
        ""
    );
    for want in [
        "INVALID_CREDENTIALS",
        "INVALID_CREDENTIALS",
        "INVALID_CREDENTIALS",
        "TOO_MANY_ATTEMPTS",
    ] {
        assert_eq!(
            code(&verify(&t, "EMAIL", "sam@example.com", "guess").await),
            want
        );
    }
    // Another app's identity of the same name has its own count.
    make_user(&t, "b", "sam@example.com").await;
    let v = mutate(
        &t,
        "b",
        AUTHENTICATE,
        "verifyPassword",
        json!({ "type": "EMAIL", "externalId": "sam@example.com", "password": "password-123" }),
    )
    .await;
    assert_eq!(code(&v), "", "{v}");
    // A passed window starts over, and the rows of passed windows are pruned by later attempts.
    age_windows(&t, 16).await;
    assert_eq!(
        code(&verify(&t, "EMAIL", "sam@example.com", "guess").await),
        "INVALID_CREDENTIALS"
    );
    assert_eq!(counted(&t, "EMAIL", "sam@example.com").await, 1);
    assert_eq!(counted(&t, "EMAIL", "ghost@example.com").await, 0, "pruned");
}

#[tokio::test]
async fn a_disabled_user_learns_it_only_with_the_right_password() {
    let t = TestApp::new().await;
    let id = make_user(&t, "a", "dan@example.com").await;
    mutate(
        &t,
        "a",
        "cloudcode:users:update",
        "disableUser",
        json!({ "profileId": id }),
    )
    .await;
    assert_eq!(
        code(&verify(&t, "EMAIL", "dan@example.com", "wrong one").await),
        "INVALID_CREDENTIALS"
    );
    let v = verify(&t, "EMAIL", "dan@example.com", "password-123").await;
    assert_eq!(
        error_of(&v),
        json!({ "message": "the user is disabled", "extensions": { "code": "USER_DISABLED" } })
    );
    let u = user(&t, "a", &id).await;
    assert_eq!(
        (u["loginCount"].clone(), u["lastLoginAt"].clone()),
        (json!(0), Value::Null)
    );
    mutate(
        &t,
        "a",
        "cloudcode:users:update",
        "enableUser",
        json!({ "profileId": id }),
    )
    .await;
    assert_eq!(
        code(&verify(&t, "EMAIL", "dan@example.com", "password-123").await),
        ""
    );
}

#[tokio::test]
async fn outdated_hashes_are_upgraded_and_hostile_ones_refused() {
    let t = TestApp::new().await;
    make_user(&t, "a", "old@example.com").await;
    let older = |alg: Algorithm, m: u32, t_cost: u32| {
        Argon2::new(
            alg,
            Version::V0x13,
            Params::new(m, t_cost, 1, None).unwrap(),
        )
        .hash_password(b"legacy password")
        .unwrap()
        .to_string()
    };
    for legacy in [
        older(Algorithm::Argon2id, 4096, 3),
        older(Algorithm::Argon2i, 19_456, 2),
    ] {
        set_stored_hash(&t, "old@example.com", &legacy).await;
        assert_eq!(
            code(&verify(&t, "EMAIL", "old@example.com", "legacy passworD").await),
            "INVALID_CREDENTIALS"
        );
        assert_eq!(
            stored_hash(&t, "old@example.com").await,
            legacy,
            "a wrong password upgrades nothing"
        );
        assert_eq!(
            code(&verify(&t, "EMAIL", "old@example.com", "legacy password").await),
            ""
        );
        let upgraded = stored_hash(&t, "old@example.com").await;
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{upgraded}"
        );
        assert_eq!(
            code(&verify(&t, "EMAIL", "old@example.com", "legacy password").await),
            ""
        );
        assert_eq!(
            stored_hash(&t, "old@example.com").await,
            upgraded,
            "current hashes stay"
        );
    }
    // A stored hash asking for 4 TiB of memory is refused, not run; the server carries on.
    let current = stored_hash(&t, "old@example.com").await;
    let tail = current.splitn(5, '$').nth(4).unwrap();
    set_stored_hash(
        &t,
        "old@example.com",
        &format!("$argon2id$v=19$m=4294967295,t=2,p=1${tail}"),
    )
    .await;
    assert_eq!(
        code(&verify(&t, "EMAIL", "old@example.com", "legacy password").await),
        "INVALID_CREDENTIALS"
    );
    let (status, _) = t
        .gql(
            &t.token("a", ALL),
            "{ users(first: 1) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_login_record_is_prepared_once_per_connection() {
    let t = TestApp::new().await;
    let id: uuid::Uuid = make_user(&t, "a", "ann@example.com").await.parse().unwrap();
    let mut conn = t.db.scoped("a").conn().await.unwrap();
    for count in 1..=2 {
        let profile = usersvc::db::profile_updates::record_login(
            &mut conn,
            "a",
            id,
            "EMAIL",
            "ann@example.com",
        )
        .await
        .unwrap()
        .expect("an active profile is recorded");
        assert_eq!(profile.login_count, count);
        assert!(profile.last_login_at.is_some());
    }
    #[derive(QueryableByName)]
    struct Prepared {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let prepared: Prepared = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE 'WITH cleared AS%'",
    )
    .get_result(&mut *conn)
    .await
    .unwrap();
    assert_eq!(prepared.n, 1, "one prepared statement, used twice");
}
