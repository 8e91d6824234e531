//! importUsers over HTTP on real PostgreSQL: hashes of every scheme made by other
//! implementations log in and are upgraded ([`hashes`]); per-user results, kept fields,
//! modes, parents, scopes and body limits ([`rules`]); the CLI's import and export
//! ([`cli`]). The helpers they share live here.

mod cli;
mod hashes;
mod rules;

use serde_json::{Value, json};

use crate::harness::*;

pub const IMPORT: &str = "cloudcode:users:import";

/// What an import returns, in full.
const PAYLOAD: &str = "created updated unchanged failed \
    results { index profileId status error { code reasonCode message } }";

/// Runs importUsers on app `app` with a token of `scope`; returns status and body.
pub async fn import_as(
    t: &TestApp,
    app: &str,
    scope: &str,
    users: Value,
    mode: &str,
) -> (u16, Value) {
    let query =
        format!("mutation($in: ImportUsersInput!) {{ importUsers(input: $in) {{ {PAYLOAD} }} }}");
    t.gql(
        &t.token(app, scope),
        &query,
        json!({ "in": { "users": users, "mode": mode } }),
    )
    .await
}

/// The payload of a successful importUsers call; panics with the body otherwise.
pub async fn import(t: &TestApp, app: &str, users: Value, mode: &str) -> Value {
    let (status, v) = import_as(t, app, IMPORT, users, mode).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["errors"].is_null(), "{v}");
    v["data"]["importUsers"].clone()
}

/// The statuses of an import's results, in order.
pub fn statuses(payload: &Value) -> Vec<String> {
    payload["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect()
}

/// The error code of result `i`.
pub fn error_code(payload: &Value, i: usize) -> String {
    payload["results"][i]["error"]["code"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// verifyPassword on app `app`; returns the body.
pub async fn verify(t: &TestApp, app: &str, kind: &str, id: &str, password: &str) -> Value {
    let (_, v) = t
        .gql(
            &t.token(app, "cloudcode:users:authenticate"),
            "mutation($in: VerifyPasswordInput!) { verifyPassword(input: $in) { user { profileId loginCount } } }",
            json!({ "in": { "type": kind, "externalId": id, "password": password } }),
        )
        .await;
    v
}
