//! I1/B10: what a real `usersvc serve` process writes to its log while it refuses tokens and
//! scopes, sets and resets passwords, serves the hosted pages, exports and deletes: every
//! refusal carries the request id the caller was given, the admin changes name app and
//! profile, and no token, password, hash, link token or JWT ever appears.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use usersvc::db::schema::identities;

use super::*;
use crate::smtp_sink::SmtpSink;

/// A GraphQL call to the process: status, the request id it was given, body.
async fn gql(s: &Serve, token: &str, query: &str, variables: Value) -> (u16, String, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/graphql", s.base))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    (
        resp.status().as_u16(),
        id,
        resp.json().await.unwrap_or(Value::Null),
    )
}

fn param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{name} in {url}"))
}

/// The lines of `log` that mention `needle`.
fn lines_with<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(needle)).collect()
}

#[tokio::test]
async fn refusals_are_logged_with_their_request_id_and_no_secret_is_ever_logged() {
    let t = TestApp::with(Options {
        mail_worker: false,
        ..Options::default()
    })
    .await;
    let sink = SmtpSink::start();
    let s = Serve::start(
        &t,
        &[("USERSVC_SMTP_URL", &sink.url()), ("RUST_LOG", "debug")],
    )
    .await;
    let admin = t.token("a", ALL);
    let mut secrets: Vec<String> = vec![
        SECRET.into(),
        std::str::from_utf8(LINK_KEY).unwrap().into(),
        admin.clone(),
    ];

    // Refused tokens: expired, badly signed, garbage.
    let mut expired = claims("a", ALL);
    expired["exp"] = json!(now() - 120);
    let bad_tokens = [
        sign_hs256(&json!({ "alg": "HS256" }), &expired, SECRET.as_bytes()),
        sign_hs256(
            &json!({ "alg": "HS256" }),
            &claims("a", ALL),
            b"a-secret-the-server-does-not-know-0000",
        ),
        "not.a.jwt".to_owned(),
    ];
    let mut refused = Vec::new();
    for bad in &bad_tokens {
        let (status, id, _) = gql(&s, bad, "{ users { totalCount } }", json!({})).await;
        assert_eq!(status, 401);
        refused.push((id, "token refused"));
        secrets.push(bad.clone());
    }
    // A refused scope.
    let reader = t.token("a", "cloudcode:users:read");
    let (_, id, v) = gql(&s, &reader, "mutation { deleteUser(input: {profileId: \"00000000-0000-7000-8000-000000000000\"}) { deletedProfileIds } }", json!({})).await;
    assert_eq!(code(&v), "FORBIDDEN");
    refused.push((id, "scope denied"));
    secrets.push(reader);

    // Creates, setPassword, a reset through the hosted page, a reset mail, a wrong password.
    let passwords = [
        "first secret password",
        "second secret password",
        "third secret password",
        "wrong secret password",
    ];
    secrets.extend(passwords.iter().map(|p| p.to_string()));
    let (_, _, v) = gql(&s, &admin, "mutation($pw: String!) { createUserEmailPassword(input: {email: \"logged@example.com\", password: $pw}) { user { profileId } } }", json!({ "pw": passwords[0] })).await;
    let id = v["data"]["createUserEmailPassword"]["user"]["profileId"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned();
    let (_, _, v) = gql(&s, &admin, "mutation($id: ID!, $pw: String!) { setPassword(input: {profileId: $id, password: $pw, identityType: EMAIL}) { user { profileId } } }", json!({ "id": id, "pw": passwords[1] })).await;
    assert_eq!(code(&v), "", "{v}");
    let (_, _, v) = gql(&s, &admin, "mutation($id: ID!) { createPasswordResetUrl(input: {profileId: $id, identityType: EMAIL}) { url } }", json!({ "id": id })).await;
    let url = v["data"]["createPasswordResetUrl"]["url"]
        .as_str()
        .unwrap()
        .replace(&t.base, &s.base);
    let token = param(&url, "token");
    secrets.push(token.clone());
    let client = reqwest::Client::new();
    assert_eq!(
        client.get(&url).send().await.unwrap().status().as_u16(),
        200
    );
    let reset_post = format!("{}/self-service/reset-password", s.base);
    let form = [
        ("token", token.as_str()),
        ("password", passwords[2]),
        ("confirmation", passwords[2]),
    ];
    assert_eq!(
        client
            .post(&reset_post)
            .form(&form)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        client
            .post(&reset_post)
            .form(&form)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        410
    );
    let hash: Option<String> = identities::table
        .select(identities::password_hash)
        .first(&mut t.sql().await)
        .await
        .unwrap();
    let hash = hash.unwrap();
    secrets.push(hash.clone());
    secrets.push(hash.rsplit('$').next().unwrap().to_owned());
    let (_, _, v) = gql(
        &s,
        &admin,
        "mutation($id: ID!) { sendPasswordResetEmail(input: {profileId: $id}) { emailId } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(code(&v), "", "{v}");
    // The password-changed notices come first; the reset mail is the one with a link.
    let mailed = eventually(WAIT, || async {
        let mails = sink.messages();
        mails
            .iter()
            .find_map(|m| m.find_link("token="))
            .ok_or(mails.len())
    })
    .await;
    secrets.push(param(&mailed, "token"));
    let (_, _, v) = gql(&s, &admin, "mutation($pw: String!) { verifyPassword(input: {type: EMAIL, externalId: \"logged@example.com\", password: $pw}) { user { profileId } } }", json!({ "pw": passwords[3] })).await;
    assert_eq!(code(&v), "INVALID_CREDENTIALS");

    // An export, a self-service deletion through its page, and an admin delete.
    let (_, _, v) = gql(
        &s,
        &admin,
        "query($id: ID!) { userExport(profileId: $id) { document } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(code(&v), "", "{v}");
    let (_, _, v) = gql(
        &s,
        &admin,
        "mutation($id: ID!) { createSelfServiceDeletionUrl(input: {profileId: $id}) { url } }",
        json!({ "id": id }),
    )
    .await;
    let url = v["data"]["createSelfServiceDeletionUrl"]["url"]
        .as_str()
        .unwrap()
        .replace(&t.base, &s.base);
    let deletion = param(&url, "deletionToken");
    secrets.push(deletion.clone());
    assert_eq!(
        client.get(&url).send().await.unwrap().status().as_u16(),
        200
    );
    let form = [
        ("appId", "a"),
        ("deletionToken", deletion.as_str()),
        ("profileId", id.as_str()),
    ];
    let deleted = client
        .post(format!("{}/self-service/delete-account", s.base))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 200);
    let (_, _, v) = gql(&s, &admin, "mutation { createUserUniversalId(input: {universalId: \"second\", password: \"fifth secret password\"}) { user { profileId } } }", json!({})).await;
    secrets.push("fifth secret password".into());
    let other = v["data"]["createUserUniversalId"]["user"]["profileId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, last, v) = gql(
        &s,
        &admin,
        "mutation($id: ID!) { deleteUser(input: {profileId: $id}) { deletedProfileIds } }",
        json!({ "id": other }),
    )
    .await;
    assert_eq!(v["data"]["deleteUser"]["deletedProfileIds"], json!([other]));

    // The process logs each request once it has answered; wait for the last one's line.
    let log = eventually(WAIT, || async {
        let log = s.output();
        if log.contains(&last) {
            Ok(log)
        } else {
            Err(log)
        }
    })
    .await;

    assert!(log.contains(" DEBUG "), "the process logged at debug level");
    for (request_id, what) in &refused {
        let lines = lines_with(&log, request_id);
        assert!(
            lines.iter().any(|l| l.contains(what)),
            "{what} with {request_id}:\n{log}"
        );
    }
    let denied = lines_with(&log, "scope denied");
    assert!(
        denied
            .iter()
            .all(|l| l.contains("app_id=a") && l.contains("actor=tester")),
        "{denied:?}"
    );
    for (request_id, _) in &refused[..3] {
        let answered = lines_with(&log, request_id);
        assert!(
            answered.iter().any(|l| l.contains("status=401")),
            "{request_id}:\n{log}"
        );
    }
    for (what, profile) in [
        ("password set", &id),
        ("exported user", &id),
        ("deleted user", &other),
        ("created user", &other),
    ] {
        assert!(
            lines_with(&log, what)
                .iter()
                .any(|l| l.contains("app_id=a") && l.contains(profile.as_str())),
            "{what}:\n{log}"
        );
    }
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log holds a secret ({secret}):\n{log}"
        );
        // Nor any of a JWT's parts (the signature alone identifies a token).
        for part in secret.split('.').filter(|p| p.len() >= 16) {
            assert!(
                !log.contains(part),
                "the log holds part of a token ({part}):\n{log}"
            );
        }
    }
    assert!(
        !log.contains("token="),
        "no link's query string is logged:\n{log}"
    );
}
