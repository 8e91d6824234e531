//! The reset mails: one test per brainCloud call (email and universal id, plain, advanced,
//! with expiry), their service parameters, the typed errors that queue nothing, the per-profile
//! rate limit, and templates stored with the CLI.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;
use usersvc::db::schema::outbox;

use super::*;
use crate::create::make_user;
use crate::harness::*;

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
    // The account gets its link; the cc and bcc recipients get a copy of their own without it.
    let mails = sink.wait_for(2, WAIT).await;
    let (own, copies): (Vec<_>, Vec<_>) =
        mails.into_iter().partition(|m| m.to == ["bob@example.com"]);
    let (mail, copy) = (&own[0], &copies[0]);
    assert_eq!(mail.subject(), "Reset for Bobby");
    assert!(
        mail.text_body().contains("Hi Bobby, go to http"),
        "{}",
        mail.text_body()
    );
    assert_eq!(mail.from, "support@game.example", "the envelope sender");
    assert!(mail.raw.contains("Game Support") && mail.raw.contains("support@game.example"));
    assert!(mail.raw.contains("help@game.example"));
    assert!(mail.raw.contains("boss@example.com"), "the Cc header");
    assert!(
        !mail.raw.contains("audit@example.com"),
        "bcc is not in the headers"
    );
    assert!(mail.raw.contains("reset,vip"), "categories header");
    let link = mail
        .find_link("token=")
        .expect("the account's mail has the link");
    assert_eq!(get_page(&t, &link).await.0, 200);

    let mut to = copy.to.clone();
    to.sort();
    assert_eq!(to, ["audit@example.com", "boss@example.com"], "cc and bcc");
    assert_eq!(copy.subject(), "Reset for Bobby");
    assert!(
        copy.text_body()
            .contains("Hi Bobby, go to (link sent only to the account's own address)"),
        "{}",
        copy.text_body()
    );
    assert!(
        !copy.raw.contains("token="),
        "no link in the copy: {}",
        copy.raw
    );
    assert!(copy.raw.contains("boss@example.com") && copy.raw.contains("bob@example.com"));
    assert!(
        !copy.raw.contains("audit@example.com"),
        "bcc is not in the headers"
    );
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

// --- Errors and limits ---------------------------------------------------------------

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
    // Six mails queued; a reset mail still queued when a newer one of its profile goes out is
    // dropped as superseded, so the newest of each profile is the one sure to arrive.
    outbox_drained(&t).await;
    let rows: Vec<(String, Option<String>)> = outbox::table
        .select((outbox::status, outbox::last_error))
        .load(&mut t.sql().await)
        .await
        .unwrap();
    assert_eq!(rows.len(), 6, "{rows:?}");
    for (status, why) in &rows {
        let superseded = why.as_deref().is_some_and(|w| w.starts_with("superseded"));
        assert!(
            status == "SENT" || (status == "DROPPED" && superseded),
            "{rows:?}"
        );
    }
    let sent = sink.messages();
    for to in ["pam@example.com", "pat@example.com"] {
        assert!(sent.iter().any(|m| m.to == [to]), "{to}: {sent:?}");
    }
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
