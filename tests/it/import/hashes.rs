//! Imported password hashes: made by other implementations (Python's hashlib and its `bcrypt`
//! and `argon2-cffi` packages: `tests/fixtures/foreign_hashes.py`), checked by verifyPassword,
//! then replaced by a current argon2id hash; unusable hashes refused at import, naming the
//! field.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use usersvc::db::schema::identities;

use super::*;
use crate::harness::*;

fn fixtures() -> Vec<Value> {
    serde_json::from_str(include_str!("../../fixtures/foreign-hashes.json")).unwrap()
}

async fn stored_hash(t: &TestApp, login: &str) -> String {
    identities::table
        .filter(identities::app_id.eq("a"))
        .filter(identities::external_id.eq(login))
        .select(identities::password_hash)
        .first::<Option<String>>(&mut t.sql().await)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn hashes_made_elsewhere_log_in_and_are_upgraded_to_argon2id() {
    let t = TestApp::new().await;
    let fixtures = fixtures();
    let users: Vec<Value> = fixtures
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let kind = if i % 2 == 0 { "UNIVERSAL_ID" } else { "EMAIL" };
            let id = if i % 2 == 0 {
                format!("user{i}")
            } else {
                format!("user{i}@example.com")
            };
            json!({ "identities": [{ "type": kind, "externalId": id, "passwordHash": f["hash"] }] })
        })
        .collect();
    let payload = import(&t, "a", json!(users), "CREATE_ONLY").await;
    assert_eq!(payload["created"], fixtures.len(), "{payload}");
    for (i, f) in fixtures.iter().enumerate() {
        let (kind, id) = if i % 2 == 0 {
            ("UNIVERSAL_ID", format!("user{i}"))
        } else {
            ("EMAIL", format!("user{i}@example.com"))
        };
        let password = f["password"].as_str().unwrap();
        let scheme = f["scheme"].as_str().unwrap();
        assert_eq!(
            stored_hash(&t, &id).await,
            f["hash"].as_str().unwrap(),
            "stored as given"
        );
        let wrong = verify(&t, "a", kind, &id, &format!("{password}x")).await;
        assert_eq!(code(&wrong), "INVALID_CREDENTIALS", "{scheme}: {wrong}");
        let right = verify(&t, "a", kind, &id, password).await;
        assert!(right["errors"].is_null(), "{scheme}: {right}");
        assert_eq!(
            right["data"]["verifyPassword"]["user"]["profileId"],
            payload["results"][i]["profileId"]
        );
        let upgraded = stored_hash(&t, &id).await;
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{scheme}: {upgraded}"
        );
        // The upgraded hash still takes the same password, and only it.
        let again = verify(&t, "a", kind, &id, password).await;
        assert!(again["errors"].is_null(), "{scheme}: {again}");
        assert_eq!(again["data"]["verifyPassword"]["user"]["loginCount"], 2);
        let wrong = verify(&t, "a", kind, &id, &format!("x{password}")).await;
        assert_eq!(code(&wrong), "INVALID_CREDENTIALS", "{scheme}");
    }
}

#[tokio::test]
async fn unusable_hashes_fail_their_user_naming_the_field() {
    let t = TestApp::new().await;
    let good = fixtures()[0]["hash"].as_str().unwrap().to_owned();
    let salt = "c2FsdHNhbHRzYWx0c2FsdA";
    let out = "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
    let bad = [
        "plain text".to_owned(),
        "$md5$abc".to_owned(),
        "$1$saltsalt$hash".to_owned(),
        format!("$scrypt$ln=30,r=8,p=1${salt}${out}"),
        format!("$pbkdf2-sha256$i=4294967295,l=32${salt}${out}"),
        "$2b$31$abcdefghijklmnopqrstuuKd0gqE3Z/7L5K5t1dD4U8eY1F1HQxVG".to_owned(),
        "$2b$10$tooshort".to_owned(),
        "x".repeat(600),
    ];
    let mut users: Vec<Value> = bad
        .iter()
        .enumerate()
        .map(|(i, h)| json!({ "identities": [{ "type": "UNIVERSAL_ID", "externalId": format!("bad{i}"), "passwordHash": h }] }))
        .collect();
    users.push(json!({ "identities": [{ "type": "UNIVERSAL_ID", "externalId": "good", "passwordHash": good }] }));
    users.push(json!({ "identities": [{ "type": "UNIVERSAL_ID", "externalId": "both", "passwordHash": good, "password": "long enough pass" }] }));
    users.push(json!({ "identities": [{ "type": "EXTERNAL", "externalAuthType": "corpdir", "externalId": "ext", "passwordHash": good }] }));
    let payload = import(&t, "a", json!(users), "CREATE_ONLY").await;
    assert_eq!(payload["created"], 1, "{payload}");
    assert_eq!(payload["failed"], bad.len() + 2, "{payload}");
    for i in 0..bad.len() {
        assert_eq!(error_code(&payload, i), "BAD_USER_INPUT", "{i}: {payload}");
        assert_eq!(payload["results"][i]["error"]["reasonCode"], 40660);
        let message = payload["results"][i]["error"]["message"].as_str().unwrap();
        assert!(message.contains("identities[0].passwordHash"), "{message}");
        assert!(
            !message.contains(&bad[i]),
            "a hash is never echoed: {message}"
        );
    }
    assert_eq!(statuses(&payload)[bad.len()], "CREATED");
    assert_eq!(error_code(&payload, bad.len() + 1), "BAD_USER_INPUT");
    assert_eq!(error_code(&payload, bad.len() + 2), "BAD_USER_INPUT");
    let stored: i64 = identities::table
        .filter(identities::app_id.eq("a"))
        .count()
        .get_result(&mut t.sql().await)
        .await
        .unwrap();
    assert_eq!(stored, 1, "only the good user was written");
}
