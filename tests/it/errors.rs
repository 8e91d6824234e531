//! The error contract as clients see it: for each code of the contract that the server can
//! produce, one real request over HTTP that provokes it, and a snapshot of the HTTP status and
//! the whole `errors[0]` object (message and extensions) in `tests/it/snapshots/`. A change
//! to a message, a code or a reasonCode shows up as a diff: a missing or different snapshot
//! fails the test (outside CI insta leaves a `.snap.new` to review; with `CI` set it writes
//! nothing).
//!
//! Each case is one row of [`cases`]; a code that the server learns to produce moves from
//! [`NOT_YET`] into a row.

use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use serde_json::{Value, json};

use crate::create::make_user;
use crate::harness::*;

/// Codes of the contract that no request can provoke yet.
const NOT_YET: &[&str] = &["GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"];

const USERS: &str = "{ users(first: 1) { totalCount } }";
const AFTER: &str = "query($after: String) { users(first: 2, after: $after) { totalCount } }";
const EXPORT: &str = "query($id: ID!) { userExport(profileId: $id) { profileId } }";
const CREATE_EMAIL: &str = "mutation($in: CreateUserEmailPasswordInput!) { createUserEmailPassword(input: $in) { user { profileId } } }";
const CREATE_UNIVERSAL: &str = "mutation($in: CreateUserUniversalIdInput!) { createUserUniversalId(input: $in) { user { profileId } } }";
const CREATE_EXTERNAL: &str = "mutation($in: CreateUserExternalAuthInput!) { createUserExternalAuth(input: $in) { user { profileId } } }";
const RESET_EMAIL: &str =
    "mutation($in: SendPasswordResetInput!) { sendPasswordResetEmail(input: $in) { emailId } }";
const RESET_UNIVERSAL: &str = "mutation($in: SendPasswordResetInput!) { sendPasswordResetUniversalId(input: $in) { emailId } }";
const RESET_URL: &str =
    "mutation($in: CreatePasswordResetUrlInput!) { createPasswordResetUrl(input: $in) { url } }";
const UPDATE: &str =
    "mutation($in: UpdateUserInput!) { updateUser(input: $in) { user { version } } }";
const ATTACH: &str =
    "mutation($in: AttachIdentityInput!) { attachIdentity(input: $in) { user { version } } }";
const DETACH: &str =
    "mutation($in: DetachIdentityInput!) { detachIdentity(input: $in) { user { version } } }";
const VERIFY: &str =
    "mutation($in: VerifyPasswordInput!) { verifyPassword(input: $in) { user { profileId } } }";
/// A profile id that no app has.
const NOBODY: &str = "00000000-0000-7000-8000-000000000000";

/// How a case reaches the server.
enum Trigger {
    /// A request with a token for `app` with `scope`.
    Gql(&'static str, &'static str, &'static str, Value),
    /// A request without a token.
    NoToken(&'static str),
    /// A request with every scope to a server whose database refuses connections.
    DatabaseDown(&'static str),
    /// A request with every scope to a server whose response budget is 16 bytes.
    SmallBudget(&'static str),
}
use Trigger::*;

/// The profiles the cases act on.
struct Fixture {
    /// An email user of app `a`.
    ann: String,
    /// A universal-id user of app `a` without a contact email.
    jim: String,
    /// An email user of app `a` who has had as many resets this hour as the app allows.
    pam: String,
    /// A profile of app `parent` that has a child in app `child`.
    mum: String,
    /// A disabled email user of app `a`.
    dee: String,
}

/// One row per code: the code and the request that provokes it.
#[rustfmt::skip] // a table: one row, one line
fn cases(f: &Fixture) -> Vec<(&'static str, Trigger)> {
    let reset = |params: Value| json!({ "in": { "profileId": f.ann, "serviceParams": params } });
    vec![
        ("UNAUTHENTICATED", NoToken(USERS)),
        ("FORBIDDEN", Gql("a", "cloudcode:users:read", EXPORT, json!({ "id": f.ann }))),
        ("BAD_USER_INPUT", Gql("a", ALL, "{ users(first: 501) { totalCount } }", json!({}))),
        ("EMAIL_NOT_VALID", Gql("a", ALL, CREATE_EMAIL, json!({ "in": { "email": "not-an-email" } }))),
        ("USER_ALREADY_EXISTS", Gql("a", ALL, CREATE_EMAIL, json!({ "in": { "email": "Ann@Example.com" } }))),
        ("INVALID_EXT_AUTH_TYPE", Gql("a", ALL, CREATE_EXTERNAL, json!({ "in": { "externalId": "x1", "externalAuthType": "facebook" } }))),
        ("PROFILE_NOT_FOUND", Gql("a", ALL, EXPORT, json!({ "id": NOBODY }))),
        ("MISSING_IDENTITY_ERROR", Gql("a", ALL, RESET_UNIVERSAL, json!({ "in": { "profileId": f.ann } }))),
        ("SECURITY_ERROR", Gql("a", ALL, RESET_UNIVERSAL, json!({ "in": { "profileId": f.jim } }))),
        ("INVALID_PASSWORD_CONTENT", Gql("a", ALL, CREATE_UNIVERSAL, json!({ "in": { "universalId": "u1", "password": "short" } }))),
        ("INVALID_TEMPLATE_ID", Gql("a", ALL, RESET_EMAIL, reset(json!({ "templateId": "nope" })))),
        ("INVALID_FROM_ADDRESS", Gql("a", ALL, RESET_EMAIL, reset(json!({ "fromAddress": "not an address" })))),
        ("INVALID_FROM_NAME", Gql("a", ALL, RESET_EMAIL, reset(json!({ "fromName": "Evil\r\nBcc: x@y.com" })))),
        ("INVALID_REPLY_TO_ADDRESS", Gql("a", ALL, RESET_EMAIL, reset(json!({ "replyToAddress": "x@" })))),
        ("INVALID_REPLY_TO_NAME", Gql("a", ALL, RESET_EMAIL, reset(json!({ "replyToName": "a\u{202E}b" })))),
        ("APP_PARENT_MISMATCH", Gql("child", ALL, CREATE_EMAIL, json!({ "in": { "email": "kid@example.com", "parentProfileId": NOBODY } }))),
        ("DUPLICATE_CHILD", Gql("child", ALL, CREATE_EMAIL, json!({ "in": { "email": "kid2@example.com", "parentProfileId": f.mum } }))),
        ("INVALID_CURSOR", Gql("a", ALL, AFTER, json!({ "after": "garbage!" }))),
        ("RATE_LIMITED", Gql("a", ALL, RESET_EMAIL, json!({ "in": { "profileId": f.pam } }))),
        ("VERSION_CONFLICT", Gql("a", ALL, UPDATE, json!({ "in": { "profileId": f.ann, "expectedVersion": 7, "userName": "Ann" } }))),
        ("DUPLICATE_IDENTITY_TYPE", Gql("a", ALL, ATTACH, json!({ "in": { "profileId": f.ann, "type": "EMAIL", "externalId": "ann2@example.com" } }))),
        ("LAST_IDENTITY", Gql("a", ALL, DETACH, json!({ "in": { "profileId": f.ann, "type": "EMAIL" } }))),
        ("INVALID_CREDENTIALS", Gql("a", ALL, VERIFY, json!({ "in": { "type": "EMAIL", "externalId": "ann@example.com", "password": "wrong password" } }))),
        ("USER_DISABLED", Gql("a", ALL, RESET_URL, json!({ "in": { "profileId": f.dee, "identityType": "EMAIL" } }))),
        ("TOO_MANY_ATTEMPTS", Gql("a", ALL, VERIFY, json!({ "in": { "type": "EMAIL", "externalId": "pam@example.com", "password": "wrong password" } }))),
        ("INTERNAL_SERVER_ERROR", DatabaseDown(USERS)),
        ("RESPONSE_TOO_LARGE", SmallBudget(USERS)),
    ]
}

/// Sends a GraphQL request; returns the HTTP status, the `x-request-id` header and the body.
async fn send(
    t: &TestApp,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> (u16, String, Value) {
    let mut req = t
        .client
        .post(format!("{}/graphql", t.base))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let request_id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, request_id, resp.json().await.unwrap_or(Value::Null))
}

/// A server whose database refuses new connections, as when it is down; its own pool has
/// opened none yet (no mail worker), so the first request needs one.
async fn database_down() -> TestApp {
    let t = TestApp::with(Options {
        mail_worker: false,
        ..Options::default()
    })
    .await;
    // Set from another database: a database cannot close itself to connections. The server's
    // open connections (it reads its keys at start) are ended too.
    let admin = t.db_url.replace(&format!("/{}", t.db_name), "/postgres");
    diesel_async::AsyncPgConnection::establish(&admin)
        .await
        .unwrap()
        .batch_execute(&format!(
            "ALTER DATABASE {0} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{0}'",
            t.db_name
        ))
        .await
        .unwrap();
    t
}

#[tokio::test]
async fn every_error_code_has_the_recorded_payload() {
    let t = TestApp::new().await;
    usersvc::apps::set(&mut t.db.pool(), "a", "external_auth_types", "corpdir")
        .await
        .unwrap();
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            CREATE_UNIVERSAL,
            json!({ "in": { "universalId": "jim", "password": "long enough 1" } }),
        )
        .await;
    let fixture = Fixture {
        ann: make_user(&t, "a", "ann@example.com").await,
        jim: v["data"]["createUserUniversalId"]["user"]["profileId"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}"))
            .to_owned(),
        pam: make_user(&t, "a", "pam@example.com").await,
        mum: make_user(&t, "parent", "mum@example.com").await,
        dee: make_user(&t, "a", "dee@example.com").await,
    };
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "mutation($id: ID!) { disableUser(input: {profileId: $id}) { user { status } } }",
            json!({ "id": fixture.dee }),
        )
        .await;
    assert_eq!(code(&v), "", "{v}");
    // One failed login per identity and window: pam's one is used up.
    usersvc::apps::set(&mut t.db.pool(), "a", "login.max_failures", "1")
        .await
        .unwrap();
    let wrong = json!({ "in": { "type": "EMAIL", "externalId": "pam@example.com", "password": "wrong password" } });
    let (_, v) = t.gql(&t.token("a", ALL), VERIFY, wrong).await;
    assert_eq!(code(&v), "INVALID_CREDENTIALS", "{v}");
    let (_, v) = t
        .gql(
            &t.token("child", ALL),
            CREATE_EMAIL,
            json!({ "in": { "email": "kid@example.com", "parentProfileId": fixture.mum } }),
        )
        .await;
    assert_eq!(code(&v), "", "{v}");
    for _ in 0..5 {
        let (_, v) = t
            .gql(
                &t.token("a", ALL),
                RESET_EMAIL,
                json!({ "in": { "profileId": fixture.pam } }),
            )
            .await;
        assert_eq!(code(&v), "", "{v}");
    }

    let cases = cases(&fixture);
    let mut seen = std::collections::BTreeSet::new();
    for (want, _) in &cases {
        assert!(
            !NOT_YET.contains(want),
            "{want} has a case: take it off NOT_YET"
        );
        assert!(seen.insert(*want), "{want} has two rows (and one snapshot)");
    }
    let mut settings = insta::Settings::clone_current();
    settings.set_omit_expression(true);
    let _settings = settings.bind_to_scope();
    for (want, trigger) in cases {
        let (status, request_id, body) = match trigger {
            Gql(app, scope, query, variables) => {
                send(&t, Some(&t.token(app, scope)), query, variables).await
            }
            NoToken(query) => send(&t, None, query, json!({})).await,
            DatabaseDown(query) => {
                let down = database_down().await;
                send(&down, Some(&down.token("a", ALL)), query, json!({})).await
            }
            SmallBudget(query) => {
                let small = TestApp::with(Options {
                    limits: usersvc::graphql::Limits {
                        max_response_bytes: 16,
                        ..Default::default()
                    },
                    ..Options::default()
                })
                .await;
                send(&small, Some(&small.token("a", ALL)), query, json!({})).await
            }
        };
        let error = &body["errors"][0];
        assert_eq!(error["extensions"]["code"], json!(want), "{body}");
        if let Some(id) = error["extensions"].get("requestId") {
            assert_eq!(
                id,
                &json!(request_id),
                "the id the response carries: {body}"
            );
        }
        insta::assert_json_snapshot!(
            format!("error_{}", want.to_lowercase()),
            json!({ "status": status, "error": error }),
            { ".error.extensions.requestId" => "[request-id]" }
        );
    }
}
