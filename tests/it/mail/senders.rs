//! A sender the worker would refuse is refused when the call is made, with the contract's code,
//! and nothing is queued: the call and the worker compose the envelope with one function. A
//! caller's name in front of the server's or the app's own address is not such a sender, even
//! when that address lives on a single-label host such as `localhost`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;
use usersvc::db::schema::{apps, outbox};

use super::*;
use crate::create::make_user;
use crate::harness::*;
use crate::smtp_sink::SmtpSink;

#[tokio::test]
async fn a_name_alone_under_the_default_localhost_sender_is_delivered() {
    let sink = SmtpSink::start();
    let t = TestApp::with(Options {
        smtp_url: Some(sink.url()),
        mail_from: "usersvc <no-reply@localhost>".into(),
        ..Options::default()
    })
    .await;
    let id = make_user(&t, "a", "sue@example.com").await;
    let v = reset(
        &t,
        RESET_EMAIL,
        json!({ "profileId": id, "serviceParams": { "fromName": "Support Team" } }),
    )
    .await;
    assert_eq!(code(&v), "", "{v}");
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(mail.from, "no-reply@localhost", "the envelope sender");
    assert_eq!(
        mail.header("From").as_deref(),
        Some("\"Support Team\" <no-reply@localhost>")
    );
    let link = mail.find_link("token=").unwrap();
    assert_eq!(get_page(&t, &link).await.0, 200);
}

#[tokio::test]
async fn a_sender_the_worker_would_refuse_is_refused_by_the_call() {
    let (t, sink) = app_with_smtp().await;
    let id = make_user(&t, "a", "sid@example.com").await;
    // An app sender that does not parse (written past the CLI, which refuses it).
    diesel::update(apps::table.find("a"))
        .set(apps::mail_from.eq("Game <not an address>"))
        .execute(&mut t.sql().await)
        .await
        .unwrap();
    for params in [json!(null), json!({ "fromName": "Support Team" })] {
        let v = reset(
            &t,
            RESET_EMAIL,
            json!({ "profileId": id, "serviceParams": params }),
        )
        .await;
        assert_eq!(code(&v), "INVALID_FROM_ADDRESS", "{params} → {v}");
        assert_eq!(v["errors"][0]["extensions"]["reasonCode"], 40485);
        assert!(
            v["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("mail.from"),
            "{v}"
        );
    }
    // A sender of the caller's own replaces the app's, and goes.
    let v = reset(
        &t,
        RESET_EMAIL,
        json!({ "profileId": id, "serviceParams": { "fromAddress": "help@game.example", "fromName": "Help" } }),
    )
    .await;
    assert_eq!(code(&v), "", "{v}");
    let statuses: Vec<String> = outbox::table
        .select(outbox::status)
        .load(&mut t.sql().await)
        .await
        .unwrap();
    assert_eq!(statuses.len(), 1, "only the good call queued a message");
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(mail.from, "help@game.example");

    // The CLI never stores such a sender.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_usersvc"))
        .args([
            "app",
            "set",
            "b",
            "mail.from",
            "Game <no-reply@@game.example>",
        ])
        .env("DATABASE_URL", &t.db_url)
        .output()
        .expect("run usersvc");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mail.from"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored: Option<String> = apps::table
        .find("b")
        .select(apps::mail_from)
        .first(&mut t.sql().await)
        .await
        .unwrap();
    assert_eq!(stored, None);
}

#[tokio::test]
async fn a_server_sender_that_cannot_be_used_stops_the_start() {
    let t = TestApp::new().await;
    for bad in ["usersvc <no-reply>", "no-reply@@localhost", ""] {
        let started = t
            .another_instance_result(Options {
                mail_from: bad.into(),
                ..Options::default()
            })
            .await;
        let e = started.err().unwrap_or_else(|| panic!("{bad:?} was taken"));
        assert!(e.to_string().contains("USERSVC_MAIL_FROM"), "{e}");
    }
}
