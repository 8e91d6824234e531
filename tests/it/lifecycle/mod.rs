//! The user lifecycle over HTTP: updateUser's patches and versions ([`update`]), changing,
//! attaching and detaching identities with the change notice ([`identities`]), disabling and
//! enabling users and what a disabled user can no longer do ([`status`]), and verifyPassword
//! with its attempt counting and hash upgrades ([`login`]). The helpers they share live here.

mod identities;
mod login;
mod status;
mod update;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use usersvc::db::schema::audit_events;

use crate::harness::*;

/// Every field of a user these tests look at.
pub const USER: &str = "profileId userName contactEmail countryCode languageCode timeZoneOffset \
    pictureUrl isTester summaryFriendData parentProfileId createdAt updatedAt lastLoginAt status \
    disabledAt disabledReason loginCount version identities { type externalId externalAuthType hasPassword }";

/// Runs mutation `name` with `input` (`$in` of type `{Name}Input!`) and a token with `scope`;
/// returns the whole response body.
pub async fn mutate(t: &TestApp, app: &str, scope: &str, name: &str, input: Value) -> Value {
    let mut chars = name.chars();
    let first = chars.next().unwrap().to_ascii_uppercase();
    let input_type = format!("{first}{}Input", chars.as_str());
    let query =
        format!("mutation($in: {input_type}!) {{ {name}(input: $in) {{ user {{ {USER} }} }} }}");
    let (status, v) = t
        .gql(&t.token(app, scope), &query, json!({ "in": input }))
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

/// The user a successful mutation `name` returned; panics with the body otherwise.
pub fn user_of(v: &Value, name: &str) -> Value {
    assert!(v["errors"].is_null(), "{v}");
    v["data"][name]["user"].clone()
}

/// A user of app `app` as `userInfo` shows it (null when not found).
pub async fn user(t: &TestApp, app: &str, id: &str) -> Value {
    let query = format!("query($id: ID!) {{ userInfo(profileId: $id) {{ {USER} }} }}");
    let (_, v) = t.gql(&t.token(app, ALL), &query, json!({ "id": id })).await;
    assert!(v["errors"].is_null(), "{v}");
    v["data"]["userInfo"].clone()
}

/// The operations of a profile's audit trail, oldest first.
pub async fn audit_ops(t: &TestApp, id: &str) -> Vec<String> {
    audit_events::table
        .filter(audit_events::profile_id.eq(uuid::Uuid::parse_str(id).unwrap()))
        .order(audit_events::event_id.asc())
        .select(audit_events::operation)
        .load(&mut t.sql().await)
        .await
        .unwrap()
}

/// The details of a profile's latest audit event.
pub async fn last_audit_details(t: &TestApp, id: &str) -> Value {
    audit_events::table
        .filter(audit_events::profile_id.eq(uuid::Uuid::parse_str(id).unwrap()))
        .order(audit_events::event_id.desc())
        .select(audit_events::details)
        .first::<Option<Value>>(&mut t.sql().await)
        .await
        .unwrap()
        .unwrap_or(Value::Null)
}

/// A universal-id user of `app` with a password and a contact email; returns its profile id.
pub async fn make_universal(t: &TestApp, app: &str, login: &str, password: &str) -> String {
    let (_, v) = t
        .gql(
            &t.token(app, ALL),
            "mutation($u: String!, $p: String!, $c: String) { createUserUniversalId(input: {universalId: $u, password: $p, contactEmail: $c}) { user { profileId } } }",
            json!({ "u": login, "p": password, "c": format!("{login}@contact.example") }),
        )
        .await;
    v["data"]["createUserUniversalId"]["user"]["profileId"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned()
}

/// The first error of a response, without where it happened in the document (its
/// `locations` and `path` depend on the query text, not on the answer).
pub fn error_of(v: &Value) -> Value {
    let mut e = v["errors"][0].clone();
    if let Some(o) = e.as_object_mut() {
        o.remove("locations");
        o.remove("path");
    }
    e
}
