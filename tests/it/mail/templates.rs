//! The exact text of the mails usersvc sends, as snapshots in `tests/it/snapshots/`: every
//! built-in template rendered with fixed variables (subject, text and HTML), and one reset mail
//! as the SMTP server received it, its variable parts redacted. A change to any of them shows
//! up as a diff: a missing or different snapshot fails the test. Outside CI insta then writes
//! the new text beside it as `.snap.new` for review (`cargo insta review`, or rerun with
//! `INSTA_UPDATE=always` to accept); with `CI` set it writes nothing.

use serde_json::json;
use usersvc::mail::templates::{self, Builtin};

use super::*;
use crate::create::make_user;

/// Snapshots of these tests live with the others, in `tests/it/snapshots/`, each saying what
/// it shows.
fn snapshot_settings(description: &str) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_description(description);
    settings.set_omit_expression(true);
    settings
}

#[test]
fn every_builtin_mail_renders_as_recorded() {
    // What the worker gives every mail of a profile, and a reset mail in addition.
    let profile = json!({
        "appName": "Starfall Arena",
        "appId": "13229",
        "profileId": "0190f5c2-7d1e-7a3b-9c4d-5e6f7a8b9c0d",
        "userName": "Ann",
        "userEmail": "ann@example.com",
    });
    let mut reset = profile.clone();
    reset.as_object_mut().unwrap().extend(
        json!({
            "webUrl": "https://play.starfall.example/self-service/reset-password?token=k3Jx9Qw2Lm8Rt5Vy1Zb4Nc7Df0Gh6Sa3Pe9Uo2Wi5Xq",
            "expiresAt": "2026-03-14T16:09:26+00:00",
            "tokenTtlInMinutes": 60,
        })
        .as_object()
        .unwrap()
        .clone(),
    );
    for (name, builtin, vars) in [
        (
            "builtin_password_reset_email",
            Builtin::PasswordResetEmail,
            &reset,
        ),
        (
            "builtin_password_reset_universal_id",
            Builtin::PasswordResetUniversalId,
            &reset,
        ),
        ("builtin_account_created", Builtin::AccountCreated, &profile),
        ("builtin_account_deleted", Builtin::AccountDeleted, &profile),
        (
            "builtin_password_changed",
            Builtin::PasswordChanged,
            &profile,
        ),
        (
            "builtin_identity_changed",
            Builtin::IdentityChanged,
            &profile,
        ),
    ] {
        let mail = templates::render(&templates::builtin(builtin), vars).unwrap();
        let text = format!(
            "Subject: {}\n\n--- text ---\n{}\n--- html ---\n{}\n",
            mail.subject,
            mail.text,
            mail.html.as_deref().unwrap_or("(none)")
        );
        snapshot_settings(&format!(
            "The built-in template {builtin:?} rendered with fixed variables: {vars}"
        ))
        .bind(|| insta::assert_snapshot!(name, text));
    }
}

#[tokio::test]
async fn a_reset_mail_arrives_as_recorded() {
    let (t, sink) = app_with_smtp().await;
    usersvc::apps::set(&mut t.db.pool(), "a", "name", "Starfall Arena")
        .await
        .unwrap();
    usersvc::apps::set(
        &mut t.db.pool(),
        "a",
        "public_url",
        "https://play.starfall.example",
    )
    .await
    .unwrap();
    let id = make_user(&t, "a", "ann@example.com").await;
    let v = reset(&t, RESET_EMAIL, json!({ "profileId": id })).await;
    assert_eq!(code(&v), "", "{v}");
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    let readable = mail.readable();
    let boundary = mail
        .header("Content-Type")
        .and_then(|ct| {
            ct.split("boundary=")
                .nth(1)
                .map(|b| b.trim_matches('"').to_owned())
        })
        .expect("a multipart mail");

    // What changes from one sending to the next.
    let mut settings = snapshot_settings(
        "A reset mail (sendPasswordResetEmail, built-in template) as the SMTP server received it: \
         envelope, headers, and each part decoded from its transfer encoding",
    );
    settings.add_filter(&boundary, "[boundary]");
    settings.add_filter(r"token=[A-Za-z0-9_-]+", "token=[token]");
    settings.add_filter(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?\+00:00",
        "[expires-at]",
    );
    settings.add_filter(r"(?m)^Message-ID: <[^>]*>$", "Message-ID: <[message-id]>");
    settings.add_filter(r"(?m)^Date: .*$", "Date: [date]");
    settings.bind(|| {
        insta::assert_snapshot!(
            "received_reset_mail",
            format!(
                "MAIL FROM: {}\nRCPT TO: {}\n\n{readable}",
                mail.from,
                mail.to.join(", ")
            )
        );
    });
}
