//! Mail flows end to end with a real SMTP server in the process: every brainCloud reset
//! variant, links read out of the received mail and followed over HTTP, errors, supersession,
//! revocation, rate limits, an SMTP outage, a worker that dies mid-batch, deletion links.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use usersvc::db::schema::{identities, one_time_tokens, outbox};

use crate::create::make_user;
use crate::harness::*;
use crate::smtp_sink::SmtpSink;

const RESET_EMAIL: &str = "mutation($in: SendPasswordResetInput!) { sendPasswordResetEmail(input: $in) { emailId recipient expiresAt } }";
const RESET_UNIVERSAL: &str = "mutation($in: SendPasswordResetInput!) { sendPasswordResetUniversalId(input: $in) { emailId recipient expiresAt } }";

async fn app_with_smtp() -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start();
    let t = TestApp::with(Options {
        smtp_url: Some(sink.url()),
        ..Options::default()
    })
    .await;
    (t, sink)
}

/// A universal-id user with a contact email; returns its profile id.
async fn make_universal(t: &TestApp, app: &str, login: &str, contact: Option<&str>) -> String {
    let (_, v) = t
        .gql(
            &t.token(app, ALL),
            "mutation($u: String!, $c: String) { createUserUniversalId(input: {universalId: $u, password: \"first-password\", contactEmail: $c}) { user { profileId } } }",
            json!({ "u": login, "c": contact }),
        )
        .await;
    v["data"]["createUserUniversalId"]["user"]["profileId"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned()
}

fn minutes_from_now(expires_at: &Value) -> i64 {
    let t = chrono::DateTime::parse_from_rfc3339(expires_at.as_str().unwrap()).unwrap();
    (t.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes()
}

async fn reset(t: &TestApp, query: &str, input: Value) -> Value {
    let (status, v) = t
        .gql(
            &t.token("a", "cloudcode:users:password"),
            query,
            json!({ "in": input }),
        )
        .await;
    assert_eq!(status, 200);
    v
}

async fn stored_hash(t: &TestApp, profile: &str) -> Option<String> {
    let mut conn = t.sql().await;
    identities::table
        .filter(identities::profile_id.eq(uuid::Uuid::parse_str(profile).unwrap()))
        .select(identities::password_hash)
        .first(&mut conn)
        .await
        .unwrap()
}

async fn post_form(t: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let resp = t
        .client
        .post(format!("{}{path}", t.base))
        .form(form)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn get_page(t: &TestApp, url: &str) -> (u16, String) {
    let resp = t.client.get(url).send().await.unwrap();
    assert_eq!(resp.headers()["referrer-policy"], "no-referrer");
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// An outbox worker like the server's (same database, transport and settings), for tests that
/// drive it tick by tick.
fn worker(t: &TestApp) -> usersvc::mail::outbox::Worker {
    let running = t.server();
    usersvc::mail::outbox::Worker::new(
        running.db.clone(),
        running.transport.clone(),
        running.mail.clone(),
    )
}

/// Starts a worker loop like the server's; it runs while the returned sender lives.
fn start_worker(t: &TestApp) -> tokio::sync::watch::Sender<bool> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    worker(t).spawn(stopped);
    stop
}

/// Waits until the worker has handled every queued message (each one SENT, FAILED or DROPPED).
async fn outbox_drained(t: &TestApp) {
    eventually(WAIT, || async {
        let queued: i64 = outbox::table
            .filter(outbox::status.eq("QUEUED"))
            .count()
            .get_result(&mut t.sql().await)
            .await
            .unwrap();
        if queued == 0 {
            Ok(())
        } else {
            Err(format!("{queued} messages still queued"))
        }
    })
    .await;
}

fn token_of(link: &str) -> String {
    link.split("token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned()
}

// --- One test per brainCloud call -------------------------------------------------------

#[tokio::test]
async fn sys_send_password_reset_email() {
    let (t, sink) = app_with_smtp().await;
    let id = make_user(&t, "a", "ann@example.com").await;
    let v = reset(&t, RESET_EMAIL, json!({ "profileId": id })).await;
    let p = &v["data"]["sendPasswordResetEmail"];
    assert_eq!(p["recipient"], "ann@example.com", "{v}");
    assert!(
        (58..=60).contains(&minutes_from_now(&p["expiresAt"])),
        "default TTL is the app's 60 minutes"
    );
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(mail.to, ["ann@example.com"]);
    assert!(mail.raw.contains("Test Service"), "default sender");
    let link = mail
        .find_link("/self-service/reset-password?token=")
        .expect("a reset link");
    assert!(link.starts_with(&t.base), "{link}");
    let (status, html) = get_page(&t, &link).await;
    assert_eq!(status, 200);
    assert!(html.contains("Choose a new password"));
}

#[tokio::test]
async fn sys_send_password_reset_email_advanced() {
    let (t, sink) = app_with_smtp().await;
    let id = make_user(&t, "a", "bob@example.com").await;
    let v = reset(
        &t,
        RESET_EMAIL,
        json!({ "profileId": id, "serviceParams": {
            "subject": "Reset for {{ name }}", "body": "Hi {{ name }}, go to {{ webUrl }}",
            "dynamicData": { "name": "Bobby" }, "fromAddress": "support@game.example", "fromName": "Game Support",
            "replyToAddress": "help@game.example", "replyToName": "Help Desk",
            "cc": ["boss@example.com"], "bcc": ["audit@example.com"], "categories": ["reset", "vip"] } }),
    )
    .await;
    assert_eq!(
        v["data"]["sendPasswordResetEmail"]["recipient"], "bob@example.com",
        "{v}"
    );
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(mail.subject(), "Reset for Bobby");
    assert!(
        mail.text_body().contains("Hi Bobby, go to http"),
        "{}",
        mail.text_body()
    );
    assert_eq!(mail.from, "support@game.example", "the envelope sender");
    assert!(mail.raw.contains("Game Support") && mail.raw.contains("support@game.example"));
    assert!(mail.raw.contains("help@game.example"));
    assert!(mail.raw.contains("boss@example.com"));
    assert!(
        mail.to.contains(&"audit@example.com".to_owned()),
        "bcc is a recipient"
    );
    assert!(
        !mail.raw.contains("audit@example.com"),
        "bcc is not in the headers"
    );
    assert!(mail.raw.contains("reset,vip"), "categories header");
}

#[tokio::test]
async fn sys_send_password_reset_email_with_expiry() {
    let (t, sink) = app_with_smtp().await;
    let id = make_user(&t, "a", "cat@example.com").await;
    let v = reset(
        &t,
        RESET_EMAIL,
        json!({ "profileId": id, "tokenTtlInMinutes": 15 }),
    )
    .await;
    assert!(
        (13..=15).contains(&minutes_from_now(
            &v["data"]["sendPasswordResetEmail"]["expiresAt"]
        )),
        "{v}"
    );
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert!(
        mail.text_body().contains("15 minutes"),
        "{}",
        mail.text_body()
    );
    let mut conn = t.sql().await;
    let minutes: f64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::Double>(
        "(SELECT extract(epoch FROM expires_at - now()) / 60 FROM one_time_tokens LIMIT 1)::float8",
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    assert!((13.0..=15.0).contains(&minutes), "stored expiry {minutes}");
}

#[tokio::test]
async fn sys_send_password_reset_email_advanced_with_expiry() {
    let (t, sink) = app_with_smtp().await;
    {
        let mut conn = t.db.conn().await.unwrap();
        usersvc::db::templates::upsert(
            &mut conn,
            "a",
            "reset-v2",
            "{{ appName }}: new password",
            "Use {{ webUrl }} within {{ tokenTtlInMinutes }} minutes, {{ who }}.",
            Some("<p>Hello {{ who }}</p><a href=\"{{ webUrl }}\">reset</a>"),
        )
        .await
        .unwrap();
    }
    let id = make_user(&t, "a", "dan@example.com").await;
    let v = reset(
        &t,
        RESET_EMAIL,
        json!({ "profileId": id, "tokenTtlInMinutes": 120,
                "serviceParams": { "templateId": "reset-v2", "substitutions": { "who": "old" }, "dynamicData": { "who": "<script>x</script>" } } }),
    )
    .await;
    assert!(
        (118..=120).contains(&minutes_from_now(
            &v["data"]["sendPasswordResetEmail"]["expiresAt"]
        )),
        "{v}"
    );
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(mail.subject(), "a: new password");
    assert!(
        mail.text_body()
            .contains("within 120 minutes, <script>x</script>."),
        "text is not escaped"
    );
    assert!(mail.raw.contains("&lt;script&gt;"), "HTML is escaped");
    assert!(
        mail.find_link("/self-service/reset-password?token=")
            .is_some()
    );
}

#[tokio::test]
async fn sys_send_password_reset_universal_id() {
    let (t, sink) = app_with_smtp().await;
    let id = make_universal(&t, "a", "eve", Some("eve@example.com")).await;
    let v = reset(&t, RESET_UNIVERSAL, json!({ "profileId": id })).await;
    assert_eq!(
        v["data"]["sendPasswordResetUniversalId"]["recipient"], "eve@example.com",
        "{v}"
    );
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(mail.to, ["eve@example.com"]);
    let link = mail
        .find_link("/self-service/reset-password?token=")
        .unwrap();
    // Following the link sets the UNIVERSAL_ID password.
    let before = stored_hash(&t, &id).await;
    let (status, html) = post_form(
        &t,
        "/self-service/reset-password",
        &[
            ("token", &token_of(&link)),
            ("password", "a new password"),
            ("confirmation", "a new password"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert_ne!(stored_hash(&t, &id).await, before);
}

#[tokio::test]
async fn sys_send_password_reset_universal_id_advanced() {
    let (t, sink) = app_with_smtp().await;
    let id = make_universal(&t, "a", "fay", Some("fay@example.com")).await;
    let v = reset(
        &t,
        RESET_UNIVERSAL,
        json!({ "profileId": id, "serviceParams": { "subject": "Your login {{ login }}", "body": "<b>{{ webUrl }}</b>", "useHtml": true, "dynamicData": { "login": "fay" } } }),
    )
    .await;
    assert_eq!(
        v["data"]["sendPasswordResetUniversalId"]["recipient"], "fay@example.com",
        "{v}"
    );
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(mail.subject(), "Your login fay");
    assert!(mail.raw.contains("text/html"));
}

#[tokio::test]
async fn sys_send_password_reset_universal_id_with_expiry() {
    let (t, sink) = app_with_smtp().await;
    let id = make_universal(&t, "a", "gus", Some("gus@example.com")).await;
    let v = reset(
        &t,
        RESET_UNIVERSAL,
        json!({ "profileId": id, "tokenTtlInMinutes": 1 }),
    )
    .await;
    assert!(
        minutes_from_now(&v["data"]["sendPasswordResetUniversalId"]["expiresAt"]) <= 1,
        "{v}"
    );
    sink.wait_for(1, WAIT).await;
}

#[tokio::test]
async fn sys_send_password_reset_universal_id_advanced_with_expiry() {
    let (t, sink) = app_with_smtp().await;
    let id = make_universal(&t, "a", "hal", Some("hal@example.com")).await;
    let v = reset(
        &t,
        RESET_UNIVERSAL,
        json!({ "profileId": id, "tokenTtlInMinutes": 43200, "serviceParams": { "fromName": "Hal's Game" } }),
    )
    .await;
    assert!(
        minutes_from_now(&v["data"]["sendPasswordResetUniversalId"]["expiresAt"]) > 43_000,
        "{v}"
    );
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert!(
        mail.raw.contains("no-reply@usersvc.test"),
        "the name alone keeps the default address"
    );
}

// --- Errors ----------------------------------------------------------------------------

#[tokio::test]
async fn reset_errors_are_typed_and_change_nothing() {
    let (t, sink) = app_with_smtp().await;
    let email_user = make_user(&t, "a", "ivy@example.com").await;
    let no_contact = make_universal(&t, "a", "jim", None).await;
    let foreign = make_user(&t, "b", "kim@example.com").await;
    let cases = [
        (
            RESET_UNIVERSAL,
            json!({ "profileId": email_user }),
            "MISSING_IDENTITY_ERROR",
            Some(40206),
        ),
        (
            RESET_EMAIL,
            json!({ "profileId": no_contact }),
            "MISSING_IDENTITY_ERROR",
            Some(40206),
        ),
        (
            RESET_UNIVERSAL,
            json!({ "profileId": no_contact }),
            "SECURITY_ERROR",
            Some(40209),
        ),
        (
            RESET_EMAIL,
            json!({ "profileId": foreign }),
            "PROFILE_NOT_FOUND",
            Some(40446),
        ),
        (
            RESET_EMAIL,
            json!({ "profileId": "00000000-0000-7000-8000-000000000000" }),
            "PROFILE_NOT_FOUND",
            Some(40446),
        ),
        (
            RESET_EMAIL,
            json!({ "profileId": email_user, "serviceParams": { "templateId": "nope" } }),
            "INVALID_TEMPLATE_ID",
            Some(40375),
        ),
        (
            RESET_EMAIL,
            json!({ "profileId": email_user, "serviceParams": { "fromAddress": "not an address" } }),
            "INVALID_FROM_ADDRESS",
            Some(40485),
        ),
        (
            RESET_EMAIL,
            json!({ "profileId": email_user, "serviceParams": { "fromAddress": "a@b.com\r\nBcc: x@y.com" } }),
            "INVALID_FROM_ADDRESS",
            Some(40485),
        ),
        (
            RESET_EMAIL,
            json!({ "profileId": email_user, "serviceParams": { "fromName": "Evil\r\nBcc: x@y.com" } }),
            "INVALID_FROM_NAME",
            Some(40486),
        ),
        (
            RESET_EMAIL,
            json!({ "profileId": email_user, "serviceParams": { "replyToAddress": "x@" } }),
            "INVALID_REPLY_TO_ADDRESS",
            Some(40487),
        ),
        (
            RESET_EMAIL,
            json!({ "profileId": email_user, "serviceParams": { "replyToName": "a\u{202E}b" } }),
            "INVALID_REPLY_TO_NAME",
            Some(40488),
        ),
        (
            RESET_EMAIL,
            json!({ "profileId": email_user, "tokenTtlInMinutes": 0 }),
            "BAD_USER_INPUT",
            Some(40660),
        ),
        (
            RESET_EMAIL,
            json!({ "profileId": email_user, "tokenTtlInMinutes": 43201 }),
            "BAD_USER_INPUT",
            Some(40660),
        ),
        (
            RESET_EMAIL,
            json!({ "profileId": email_user, "tokenTtlInMinutes": -1 }),
            "BAD_USER_INPUT",
            Some(40660),
        ),
        (
            RESET_EMAIL,
            json!({ "profileId": email_user, "serviceParams": { "dynamicData": [1, 2] } }),
            "BAD_USER_INPUT",
            Some(40660),
        ),
    ];
    for (q, input, want, reason) in cases {
        let v = reset(&t, q, input.clone()).await;
        assert_eq!(code(&v), want, "{input} → {v}");
        assert_eq!(v["errors"][0]["extensions"]["reasonCode"].as_i64(), reason);
    }
    let mut conn = t.sql().await;
    let queued: i64 = outbox::table
        .filter(outbox::kind.eq("PASSWORD_RESET"))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(queued, 0);
    // Nothing was queued. To see that nothing went out either, a valid reset follows the
    // refused ones through the same worker: once the outbox is drained, its mail is the only one.
    let v = reset(&t, RESET_EMAIL, json!({ "profileId": email_user })).await;
    assert_eq!(code(&v), "", "{v}");
    outbox_drained(&t).await;
    let mails = sink.messages();
    assert_eq!(mails.len(), 1, "only the valid reset's mail");
    assert_eq!(mails[0].to, ["ivy@example.com"]);
}

// --- Links ------------------------------------------------------------------------------

#[tokio::test]
async fn reset_page_rejects_mismatch_and_weak_passwords_then_works_once() {
    let (t, sink) = app_with_smtp().await;
    {
        usersvc::apps::set(&mut t.db.pool(), "a", "password.min_digits", "1")
            .await
            .unwrap();
    }
    let id = make_user(&t, "a", "lou@example.com").await;
    reset(&t, RESET_EMAIL, json!({ "profileId": id })).await;
    let link = sink.wait_for(1, WAIT).await[0]
        .find_link("/self-service/reset-password?token=")
        .unwrap();
    let token = token_of(&link);
    // GET twice and HEAD: a mail scanner changes nothing.
    for _ in 0..2 {
        assert_eq!(get_page(&t, &link).await.0, 200);
    }
    assert_eq!(
        t.client.head(&link).send().await.unwrap().status().as_u16(),
        200
    );
    let (_, html) = get_page(&t, &link).await;
    assert!(
        html.contains("at least 1 digit"),
        "the page shows the policy"
    );

    let before = stored_hash(&t, &id).await;
    let (status, html) = post_form(
        &t,
        "/self-service/reset-password",
        &[
            ("token", &token),
            ("password", "abcdefgh1"),
            ("confirmation", "abcdefgh2"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(html.contains("not the same"));
    let (status, html) = post_form(
        &t,
        "/self-service/reset-password",
        &[
            ("token", &token),
            ("password", "abcdefgh"),
            ("confirmation", "abcdefgh"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(html.contains("at least 1 digit"), "{html}");
    assert_eq!(
        stored_hash(&t, &id).await,
        before,
        "rejected attempts change nothing"
    );

    let (status, html) = post_form(
        &t,
        "/self-service/reset-password",
        &[
            ("token", &token),
            ("password", "abcdefgh1"),
            ("confirmation", "abcdefgh1"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Password changed"));
    assert_ne!(stored_hash(&t, &id).await, before);
    let (status, html) = post_form(
        &t,
        "/self-service/reset-password",
        &[
            ("token", &token),
            ("password", "abcdefgh9"),
            ("confirmation", "abcdefgh9"),
        ],
    )
    .await;
    assert_eq!(status, 410);
    assert!(html.contains("already used"));
    assert_eq!(get_page(&t, &link).await.0, 410);
    // A "password changed" notice went to the user.
    let mails = sink.wait_for(2, WAIT).await;
    assert!(
        mails[1].subject().to_lowercase().contains("password"),
        "{}",
        mails[1].subject()
    );

    for junk in ["", "abc", "A".repeat(43).as_str(), "../../etc/passwd"] {
        let (status, _) = get_page(
            &t,
            &format!("{}/self-service/reset-password?token={junk}", t.base),
        )
        .await;
        assert_eq!(status, 400, "{junk}");
    }
}

#[tokio::test]
async fn expired_links_are_refused_by_the_database_clock() {
    let t = TestApp::new().await;
    let id = make_user(&t, "a", "max@example.com").await;
    let (_, v) = t
        .gql(&t.token("a", ALL), "mutation($id: ID!) { createPasswordResetUrl(input: {profileId: $id, identityType: EMAIL}) { url expiresAt } }", json!({ "id": id }))
        .await;
    let url = v["data"]["createPasswordResetUrl"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned();
    assert_eq!(get_page(&t, &url).await.0, 200);
    let mut conn = t.sql().await;
    diesel::sql_query("UPDATE one_time_tokens SET expires_at = now() - interval '1 second'")
        .execute(&mut conn)
        .await
        .unwrap();
    let (status, html) = get_page(&t, &url).await;
    assert_eq!(status, 410);
    assert!(html.contains("expired"));
    let (status, _) = post_form(
        &t,
        "/self-service/reset-password",
        &[
            ("token", &token_of(&url)),
            ("password", "long enough 1"),
            ("confirmation", "long enough 1"),
        ],
    )
    .await;
    assert_eq!(status, 410);
    diesel::sql_query("UPDATE one_time_tokens SET expires_at = now() + interval '5 minutes'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(get_page(&t, &url).await.0, 200);

    let (_, v) = t
        .gql(&t.token("a", ALL), "mutation($id: ID!) { createPasswordResetUrl(input: {profileId: $id, identityType: EXTERNAL}) { url } }", json!({ "id": id }))
        .await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    let (_, v) = t
        .gql(&t.token("a", ALL), "mutation($id: ID!) { createPasswordResetUrl(input: {profileId: $id, identityType: UNIVERSAL_ID}) { url } }", json!({ "id": id }))
        .await;
    assert_eq!(code(&v), "MISSING_IDENTITY_ERROR");
}

#[tokio::test]
async fn a_newer_reset_replaces_older_links_and_set_password_and_delete_revoke_them() {
    let (t, sink) = app_with_smtp().await;
    let id = make_user(&t, "a", "ned@example.com").await;
    reset(&t, RESET_EMAIL, json!({ "profileId": id })).await;
    let first = sink.wait_for(1, WAIT).await[0].find_link("token=").unwrap();
    reset(&t, RESET_EMAIL, json!({ "profileId": id })).await;
    let second = sink.wait_for(2, WAIT).await[1].find_link("token=").unwrap();
    assert_ne!(first, second);
    let (status, html) = get_page(&t, &first).await;
    assert_eq!(status, 410);
    assert!(html.contains("replaced"));
    assert_eq!(get_page(&t, &second).await.0, 200);

    let (_, v) = t
        .gql(&t.token("a", ALL), "mutation($id: ID!) { setPassword(input: {profileId: $id, password: \"brand new pass\", identityType: EMAIL}) { user { profileId } } }", json!({ "id": id }))
        .await;
    assert_eq!(code(&v), "", "{v}");
    assert_eq!(
        get_page(&t, &second).await.0,
        410,
        "setPassword revokes outstanding links"
    );

    let (_, v) = t
        .gql(&t.token("a", ALL), "mutation($id: ID!) { createPasswordResetUrl(input: {profileId: $id, identityType: EMAIL}) { url } }", json!({ "id": id }))
        .await;
    let third = v["data"]["createPasswordResetUrl"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(get_page(&t, &third).await.0, 200);
    t.gql(
        &t.token("a", ALL),
        "mutation($id: ID!) { deleteUser(input: {profileId: $id}) { deletedProfileIds } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        get_page(&t, &third).await.0,
        400,
        "deleteUser revokes outstanding links"
    );
}

#[tokio::test]
async fn sixteen_concurrent_submissions_of_one_link_have_one_winner() {
    let t = TestApp::new().await;
    let id = make_user(&t, "a", "oli@example.com").await;
    let (_, v) = t
        .gql(&t.token("a", ALL), "mutation($id: ID!) { createPasswordResetUrl(input: {profileId: $id, identityType: EMAIL}) { url } }", json!({ "id": id }))
        .await;
    let token = token_of(v["data"]["createPasswordResetUrl"]["url"].as_str().unwrap());
    let mut tasks = Vec::new();
    for i in 0..16 {
        let client = t.client.clone();
        let url = format!("{}/self-service/reset-password", t.base);
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let pw = format!("password number {i}");
            client
                .post(url)
                .form(&[
                    ("token", token.as_str()),
                    ("password", &pw),
                    ("confirmation", &pw),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 410).count(),
        15,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn resets_are_rate_limited_per_profile() {
    let (t, sink) = app_with_smtp().await;
    let id = make_user(&t, "a", "pam@example.com").await;
    let other = make_user(&t, "a", "pat@example.com").await;
    for _ in 0..5 {
        let v = reset(&t, RESET_EMAIL, json!({ "profileId": id })).await;
        assert_eq!(code(&v), "", "{v}");
    }
    let v = reset(&t, RESET_EMAIL, json!({ "profileId": id })).await;
    assert_eq!(code(&v), "RATE_LIMITED");
    let v = reset(&t, RESET_EMAIL, json!({ "profileId": other })).await;
    assert_eq!(code(&v), "", "another profile has its own allowance");
    sink.wait_for(6, WAIT).await;
}

// --- Reliability ------------------------------------------------------------------------

#[tokio::test]
async fn mail_queued_during_an_smtp_outage_arrives_after_it() {
    // The SMTP port listens but nothing on it ever answers or accepts: a mutation that talked
    // to SMTP would leave a connection waiting there (and hang on it).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    silent.set_nonblocking(true).unwrap();
    let port = silent.local_addr().unwrap().port();
    let t = TestApp::with(Options {
        smtp_url: Some(format!("smtp://127.0.0.1:{port}")),
        mail_worker: false,
        ..Options::default()
    })
    .await;
    let id = make_user(&t, "a", "quinn@example.com").await;
    let v = reset(&t, RESET_EMAIL, json!({ "profileId": id })).await;
    assert_eq!(code(&v), "", "{v}");
    let mut conn = t.sql().await;
    let (status, attempts): (String, i32) = outbox::table
        .select((outbox::status, outbox::attempts))
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!((status.as_str(), attempts), ("QUEUED", 0), "durably queued");
    assert_eq!(
        silent.accept().map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock),
        "the mutation does not wait for SMTP: it never even connected"
    );

    // The outage: the port refuses connections while a worker runs.
    drop(silent);
    let _worker = start_worker(&t);
    let (status, attempts, error) = eventually(WAIT, || async {
        let row: (String, i32, Option<String>) = outbox::table
            .select((outbox::status, outbox::attempts, outbox::last_error))
            .first(&mut t.sql().await)
            .await
            .unwrap();
        if row.2.is_some() { Ok(row) } else { Err(row) }
    })
    .await;
    assert_eq!(status, "QUEUED");
    assert!(attempts >= 1);
    assert!(error.is_some());
    let sink = SmtpSink::start_on(port);
    let mails = sink.wait_for(1, WAIT).await;
    assert_eq!(mails[0].to, ["quinn@example.com"]);
    let status = eventually(WAIT, || async {
        let status: String = outbox::table
            .select(outbox::status)
            .first(&mut t.sql().await)
            .await
            .unwrap();
        if status == "QUEUED" {
            Err(status)
        } else {
            Ok(status)
        }
    })
    .await;
    assert_eq!(status, "SENT");
}

#[tokio::test]
async fn a_worker_that_dies_mid_batch_loses_nothing() {
    let sink = SmtpSink::start();
    let t = TestApp::with(Options {
        smtp_url: Some(sink.url()),
        mail_worker: false,
        ..Options::default()
    })
    .await;
    for i in 0..5 {
        let id = make_user(&t, "a", &format!("r{i}@example.com")).await;
        reset(&t, RESET_EMAIL, json!({ "profileId": id })).await;
    }
    // A worker claims the whole batch and dies before sending anything. Its lease is long, so
    // no machine is slow enough for it to run out before the next look.
    {
        let mut conn = t.db.conn().await.unwrap();
        let claimed = usersvc::db::outbox::claim(&mut conn, 16, Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 5);
    }
    let worker = worker(&t);
    assert_eq!(
        worker.tick().await.unwrap(),
        0,
        "leased messages are not taken twice"
    );
    // The lease runs out (by the database clock, as it would after an hour).
    diesel::sql_query("UPDATE outbox SET next_attempt_at = now()")
        .execute(&mut t.sql().await)
        .await
        .unwrap();
    assert_eq!(
        worker.tick().await.unwrap(),
        5,
        "after the lease they come due again"
    );
    let mails = sink.wait_for(5, WAIT).await;
    assert_eq!(mails.len(), 5);
    // The worker recorded every delivery and has nothing left to send: no sixth mail can come.
    let statuses: Vec<String> = outbox::table
        .select(outbox::status)
        .load(&mut t.sql().await)
        .await
        .unwrap();
    assert_eq!(statuses, ["SENT"; 5]);
    assert_eq!(worker.tick().await.unwrap(), 0);
    let mails = sink.messages();
    assert_eq!(mails.len(), 5, "each exactly once");
    let mut to: Vec<String> = mails.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 5, "each exactly once: {to:?}");
}

#[tokio::test]
async fn permanent_refusals_are_given_up_with_a_reason() {
    let sink = SmtpSink::start();
    sink.set_reject(true);
    let t = TestApp::with(Options {
        smtp_url: Some(sink.url()),
        ..Options::default()
    })
    .await;
    let id = make_user(&t, "a", "sam@example.com").await;
    reset(&t, RESET_EMAIL, json!({ "profileId": id })).await;
    let mut conn = t.sql().await;
    let status = eventually(WAIT, || async {
        let status: String = outbox::table
            .select(outbox::status)
            .first(&mut t.sql().await)
            .await
            .unwrap();
        if status == "QUEUED" {
            Err(status)
        } else {
            Ok(status)
        }
    })
    .await;
    assert_eq!(status, "FAILED");
    let error: Option<String> = outbox::table
        .select(outbox::last_error)
        .first(&mut conn)
        .await
        .unwrap();
    assert!(error.unwrap().contains("55"), "the SMTP reply is recorded");
}

#[tokio::test]
async fn mail_for_a_profile_deleted_before_sending_is_dropped() {
    let sink = SmtpSink::start();
    let t = TestApp::with(Options {
        smtp_url: Some(sink.url()),
        mail_worker: false,
        ..Options::default()
    })
    .await;
    let id = make_user(&t, "a", "tia@example.com").await;
    reset(&t, RESET_EMAIL, json!({ "profileId": id })).await;
    t.gql(
        &t.token("a", ALL),
        "mutation($id: ID!) { deleteUser(input: {profileId: $id}) { deletedProfileIds } }",
        json!({ "id": id }),
    )
    .await;
    let worker = worker(&t);
    // A tick returns once it has handled its batch: whatever it sent has been received.
    worker.tick().await.unwrap();
    assert!(sink.messages().is_empty());
    let mut conn = t.sql().await;
    let status: String = outbox::table
        .select(outbox::status)
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(status, "DROPPED");
    // The same worker still delivers a mail for a profile that exists, and only that one.
    let other = make_user(&t, "a", "tod@example.com").await;
    reset(&t, RESET_EMAIL, json!({ "profileId": other })).await;
    assert_eq!(worker.tick().await.unwrap(), 1);
    let mails = sink.wait_for(1, WAIT).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["tod@example.com"]);
}

#[tokio::test]
async fn no_live_link_sits_at_rest_and_links_ignore_the_host_header() {
    let (t, sink) = app_with_smtp().await;
    let id = make_user(&t, "a", "uma@example.com").await;
    let resp = t
        .client
        .post(format!("{}/graphql", t.base))
        .bearer_auth(t.token("a", ALL))
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .json(&json!({ "query": RESET_EMAIL, "variables": { "in": { "profileId": id } } }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let link = sink.wait_for(1, WAIT).await[0].find_link("token=").unwrap();
    assert!(link.starts_with(&t.base), "{link}");
    assert!(!link.contains("evil"));
    let token = token_of(&link);
    let mut conn = t.sql().await;
    #[derive(diesel::QueryableByName)]
    struct Dump {
        #[diesel(sql_type = diesel::sql_types::Text)]
        dump: String,
    }
    let dumps: Vec<Dump> = diesel::sql_query(
        "SELECT (SELECT coalesce(string_agg(o::text, ''), '') FROM outbox o)
             || (SELECT coalesce(string_agg(encode(token_hash, 'escape') || t::text, ''), '') FROM one_time_tokens t)
             || (SELECT coalesce(string_agg(a::text, ''), '') FROM audit_events a) AS dump",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert!(
        !dumps[0].dump.contains(&token),
        "the raw token is nowhere in the database"
    );
    let hashes: Vec<Vec<u8>> = one_time_tokens::table
        .select(one_time_tokens::token_hash)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(hashes.len(), 1);
    assert_ne!(hashes[0], token.as_bytes());
}

// --- setPassword, welcome mails, deletion links ------------------------------------------

#[tokio::test]
async fn set_password_checks_the_policy_and_notifies_the_user() {
    let (t, sink) = app_with_smtp().await;
    let id = make_universal(&t, "a", "val", Some("val@example.com")).await;
    let q = "mutation($id: ID!, $p: String!) { setPassword(input: {profileId: $id, password: $p}) { user { profileId identities { type hasPassword } } } }";
    let (_, v) = t
        .gql(
            &t.token("a", "cloudcode:users:password"),
            q,
            json!({ "id": id, "p": "short" }),
        )
        .await;
    assert_eq!(code(&v), "INVALID_PASSWORD_CONTENT");
    let before = stored_hash(&t, &id).await;
    let (_, v) = t
        .gql(
            &t.token("a", "cloudcode:users:password"),
            q,
            json!({ "id": id, "p": "a long new password" }),
        )
        .await;
    assert_eq!(
        v["data"]["setPassword"]["user"]["profileId"],
        json!(id),
        "{v}"
    );
    assert_ne!(stored_hash(&t, &id).await, before);
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(mail.to, ["val@example.com"]);
    let (_, v) = t
        .gql(&t.token("a", ALL), "mutation($id: ID!) { setPassword(input: {profileId: $id, password: \"long enough!\", identityType: EMAIL}) { user { profileId } } }", json!({ "id": id }))
        .await;
    assert_eq!(code(&v), "MISSING_IDENTITY_ERROR");
    let (_, v) = t
        .gql(
            &t.token("b", ALL),
            q,
            json!({ "id": id, "p": "a long new password" }),
        )
        .await;
    assert_eq!(code(&v), "PROFILE_NOT_FOUND");
    let mut conn = t.sql().await;
    let ops: Vec<String> = usersvc::db::schema::audit_events::table
        .select(usersvc::db::schema::audit_events::operation)
        .load(&mut conn)
        .await
        .unwrap();
    assert!(ops.contains(&"setPassword".to_owned()));
}

#[tokio::test]
async fn notification_template_sends_an_account_created_mail() {
    let (t, sink) = app_with_smtp().await;
    {
        let mut conn = t.db.conn().await.unwrap();
        usersvc::db::templates::upsert(
            &mut conn,
            "a",
            "welcome",
            "Welcome to {{ appName }}",
            "Hello {{ userEmail }}",
            None,
        )
        .await
        .unwrap();
    }
    let q = "mutation($t: String) { createUserEmailPassword(input: {email: \"wes@example.com\", notificationTemplateId: $t}) { user { profileId } } }";
    let (_, v) = t
        .gql(&t.token("a", ALL), q, json!({ "t": "unknown" }))
        .await;
    assert_eq!(code(&v), "INVALID_TEMPLATE_ID");
    let (_, v) = t
        .gql(&t.token("a", ALL), q, json!({ "t": "welcome" }))
        .await;
    assert_eq!(code(&v), "", "{v}");
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(mail.subject(), "Welcome to a");
    assert!(mail.text_body().contains("Hello wes@example.com"));
}

#[tokio::test]
async fn self_service_deletion_links_delete_after_an_explicit_confirmation() {
    let (t, sink) = app_with_smtp().await;
    let parent = make_universal(&t, "parent", "xena", Some("xena@example.com")).await;
    let (_, v) = t
        .gql(
            &t.token("child", ALL),
            "mutation($p: ID!) { createUserUniversalId(input: {universalId: \"kid\", parentProfileId: $p}) { user { profileId } } }",
            json!({ "p": parent }),
        )
        .await;
    assert_eq!(code(&v), "", "{v}");
    let q = "mutation($id: ID!, $ttl: Int) { createSelfServiceDeletionUrl(input: {profileId: $id, tokenTtlInMinutes: $ttl}) { url expiresAt } }";
    let (_, v) = t
        .gql(
            &t.token("parent", "cloudcode:users:read"),
            q,
            json!({ "id": parent }),
        )
        .await;
    assert_eq!(code(&v), "FORBIDDEN");
    let (_, v) = t
        .gql(
            &t.token("parent", "cloudcode:users:deletion-url"),
            q,
            json!({ "id": parent }),
        )
        .await;
    let url = v["data"]["createSelfServiceDeletionUrl"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned();
    assert!(
        (1430..=1440).contains(&minutes_from_now(
            &v["data"]["createSelfServiceDeletionUrl"]["expiresAt"]
        )),
        "default one day"
    );
    assert!(
        url.contains("/self-service/delete-account?appId=parent&deletionToken=")
            && url.contains(&format!("profileId={parent}")),
        "{url}"
    );

    for _ in 0..2 {
        let (status, html) = get_page(&t, &url).await;
        assert_eq!(status, 200);
        assert!(html.contains("Delete your parent account?"), "{html}");
    }
    let q_info =
        "query($id: ID!) { userInfo(profileId: $id) { profileId children { profileId } } }";
    let (_, v) = t
        .gql(&t.token("parent", ALL), q_info, json!({ "id": parent }))
        .await;
    assert_eq!(
        v["data"]["userInfo"]["children"].as_array().unwrap().len(),
        1,
        "GET deleted nothing"
    );

    let query: std::collections::HashMap<String, String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let form: Vec<(&str, &str)> = ["appId", "deletionToken", "profileId"]
        .iter()
        .map(|k| (*k, query[*k].as_str()))
        .collect();
    let (status, _) = post_form(
        &t,
        "/self-service/delete-account",
        &[
            ("appId", "b"),
            ("deletionToken", &query["deletionToken"]),
            ("profileId", &parent),
        ],
    )
    .await;
    assert_eq!(status, 400, "a link is bound to its app");
    let resp = t
        .client
        .post(format!("{}/self-service/delete-account", t.base))
        .header("origin", "https://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403, "cross-site posts are refused");
    let (status, html) = post_form(&t, "/self-service/delete-account", &form).await;
    assert_eq!(status, 200, "{html}");
    let (_, v) = t
        .gql(&t.token("parent", ALL), q_info, json!({ "id": parent }))
        .await;
    assert!(v["data"]["userInfo"].is_null());
    let (_, v) = t
        .gql(
            &t.token("child", ALL),
            "{ users { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        v["data"]["users"]["totalCount"],
        json!(0),
        "children went too"
    );
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(
        mail.to,
        ["xena@example.com"],
        "confirmation to the contact email it had"
    );
    let (status, _) = post_form(&t, "/self-service/delete-account", &form).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn templates_put_with_the_cli_are_used_by_resets() {
    let (t, sink) = app_with_smtp().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.txt"),
        "Hi from {{ appName }}: {{ webUrl }}",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("t.html"),
        "<p>{{ appName }}</p><a href=\"{{ webUrl }}\">go</a>",
    )
    .unwrap();
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_usersvc"))
            .args(args)
            .env("DATABASE_URL", &t.db_url)
            .env_remove("USERSVC_JWT_SECRET")
            .current_dir(dir.path())
            .output()
            .expect("run usersvc")
    };
    let put = [
        "template",
        "put",
        "--app",
        "a",
        "--id",
        "cli-reset",
        "--subject",
        "Reset for {{ appName }}",
        "--text",
        "t.txt",
        "--html",
        "t.html",
    ];
    let out = cli(&put);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An unknown app or a template that does not compile is refused with one clear line.
    let mut unknown = put;
    unknown[3] = "no-such-app";
    let out = cli(&unknown);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-app"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.path().join("bad.txt"), "{% if %}").unwrap();
    let mut bad = put;
    bad[9] = "bad.txt";
    let out = cli(&bad);
    assert!(
        !out.status.success(),
        "a broken template must not be stored"
    );

    let id = make_user(&t, "a", "tim@example.com").await;
    let v = reset(
        &t,
        RESET_EMAIL,
        json!({ "profileId": id, "serviceParams": { "templateId": "cli-reset" } }),
    )
    .await;
    assert_eq!(code(&v), "", "{v}");
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(mail.subject(), "Reset for a");
    assert!(
        mail.text_body().starts_with("Hi from a: "),
        "{}",
        mail.text_body()
    );
    assert!(
        mail.find_link("/self-service/reset-password?token=")
            .is_some()
    );
}
