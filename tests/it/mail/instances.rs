//! Any number of `serve` instances share one outbox: each message is worked by one instance at
//! a time even when the SMTP server is slower than the lease, only the holder records the
//! outcome, and a message sent again carries the same working link. A link replaces the
//! profile's older one only once it has been delivered; a failed send revokes nothing.

use std::collections::HashMap;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;
use usersvc::db::schema::outbox;

use super::*;
use crate::create::make_user;
use crate::harness::*;
use crate::smtp_sink::SmtpSink;

/// Waits until no message is QUEUED and returns every message's status.
async fn settled(t: &TestApp) -> Vec<String> {
    outbox_drained(t).await;
    outbox::table
        .select(outbox::status)
        .load(&mut t.sql().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn two_instances_and_a_slow_smtp_server_send_each_message_once_with_a_working_link() {
    let sink = SmtpSink::start();
    // Each message takes the SMTP server 1.5 s, longer than half the 2 s lease: a worker that
    // neither renews its lease nor takes one message at a time loses its later messages to the
    // other instance in the middle of sending them.
    sink.set_delay(Duration::from_millis(1500));
    let opts = || Options {
        smtp_url: Some(sink.url()),
        mail_lease: Duration::from_secs(2),
        smtp_timeout: Duration::from_secs(5),
        ..Options::default()
    };
    let t = TestApp::with(Options {
        mail_worker: false,
        ..opts()
    })
    .await;
    let mut recipients = Vec::new();
    for i in 0..6 {
        let to = format!("slow{i}@example.com");
        let id = make_user(&t, "a", &to).await;
        let v = reset(&t, RESET_EMAIL, json!({ "profileId": id })).await;
        assert_eq!(code(&v), "", "{v}");
        recipients.push(to);
    }
    // Both instances start working on a full outbox at once.
    let one = t.another_instance(opts()).await;
    let two = t.another_instance(opts()).await;
    let statuses = settled(&t).await;
    assert_eq!(statuses, ["SENT"; 6], "every message recorded SENT once");

    let mails = sink.messages();
    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for mail in &mails {
        *per_recipient.entry(mail.to.join(",")).or_default() += 1;
    }
    for to in &recipients {
        let n = per_recipient.get(to).copied().unwrap_or(0);
        assert!(
            (1..=2).contains(&n),
            "{to} got {n} mails: {per_recipient:?}"
        );
    }
    for mail in &mails {
        let link = mail.find_link("token=").expect("a link");
        let (status, html) = get_page(&t, &link).await;
        assert_eq!(status, 200, "{:?}: {html}", mail.to);
    }
    one.stop().await.unwrap();
    two.stop().await.unwrap();
}

#[tokio::test]
async fn a_message_sent_again_carries_the_same_working_link() {
    let sink = SmtpSink::start();
    let t = TestApp::with(Options {
        smtp_url: Some(sink.url()),
        smtp_timeout: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    // The first attempt reaches the SMTP server, which answers too late: the worker cannot
    // know it arrived and sends it again.
    sink.set_delay(Duration::from_secs(3));
    let id = make_user(&t, "a", "rea@example.com").await;
    let v = reset(&t, RESET_EMAIL, json!({ "profileId": id })).await;
    assert_eq!(code(&v), "", "{v}");
    sink.wait_for(1, WAIT).await;
    sink.set_delay(Duration::ZERO);
    let mails = sink.wait_for(2, WAIT).await;
    let first = mails[0].find_link("token=").unwrap();
    let second = mails[1].find_link("token=").unwrap();
    assert_eq!(first, second, "one message, one link");
    assert_eq!(settled(&t).await, ["SENT"]);
    let (status, html) = get_page(&t, &first).await;
    assert_eq!(status, 200, "{html}");
}

#[tokio::test]
async fn a_link_replaces_the_older_one_only_once_delivered_and_a_failure_revokes_nothing() {
    let sink = SmtpSink::start();
    let t = TestApp::with(Options {
        smtp_url: Some(sink.url()),
        mail_worker: false,
        ..Options::default()
    })
    .await;
    let id = make_user(&t, "a", "ora@example.com").await;
    let (_, v) = t
        .gql(&t.token("a", ALL), "mutation($id: ID!) { createPasswordResetUrl(input: {profileId: $id, identityType: EMAIL}) { url } }", json!({ "id": id }))
        .await;
    let given = v["data"]["createPasswordResetUrl"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned();

    // A reset mail the SMTP server refuses: given up, and the link the user has still works.
    sink.set_reject(true);
    let v = reset(&t, RESET_EMAIL, json!({ "profileId": id })).await;
    assert_eq!(code(&v), "", "{v}");
    assert_eq!(
        get_page(&t, &given).await.0,
        200,
        "queued, not yet replacing"
    );
    let worker = worker(&t);
    worker.tick().await.unwrap();
    assert_eq!(settled(&t).await, ["FAILED"]);
    let (status, html) = get_page(&t, &given).await;
    assert_eq!(status, 200, "a failed send revokes nothing: {html}");

    // A reset mail that arrives replaces it.
    sink.set_reject(false);
    let v = reset(&t, RESET_EMAIL, json!({ "profileId": id })).await;
    assert_eq!(code(&v), "", "{v}");
    worker.tick().await.unwrap();
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    let mailed = mail.find_link("token=").unwrap();
    assert_eq!(get_page(&t, &mailed).await.0, 200);
    let (status, html) = get_page(&t, &given).await;
    assert_eq!(status, 410, "{html}");
    assert!(html.contains("replaced"), "{html}");
}

#[tokio::test]
async fn serve_on_a_shared_database_needs_a_link_key() {
    let t = TestApp::new().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_usersvc"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &t.db_url)
        .env("USERSVC_JWT_SECRET", SECRET)
        .env_remove("USERSVC_LINK_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run usersvc");
    // A server that starts would run until stopped; this one must stop by itself at once.
    let status = match tokio::time::timeout(WAIT, child.wait()).await {
        Ok(status) => status.unwrap(),
        Err(_) => panic!("usersvc serve started without a link key"),
    };
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success());
    assert!(stderr.contains("USERSVC_LINK_KEY"), "{stderr}");

    // A key that is too short is refused as well, by the server itself.
    let short = t
        .another_instance_result(Options {
            link_key: b"too short".to_vec(),
            ..Options::default()
        })
        .await;
    let e = short.err().expect("a short link key is refused");
    assert!(e.to_string().contains("at least 32 bytes"), "{e}");
}
