//! Delivery through the outbox: mail queued during an SMTP outage arrives after it, a worker
//! that dies mid-batch loses nothing, permanent refusals are given up with a reason, and mail
//! for a profile deleted before sending is dropped.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;
use usersvc::db::schema::outbox;

use super::*;
use crate::create::make_user;
use crate::harness::*;
use crate::smtp_sink::SmtpSink;

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
    let running = start_worker(&t);
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
    // The SMTP server comes back. So that no backoff (which grows with every failed attempt a
    // slow machine lets through) decides when the mail arrives, the worker is stopped between
    // two attempts, the retry is made due now, and a worker runs again.
    running.stop().await;
    let sink = SmtpSink::start_on(port);
    diesel::sql_query("UPDATE outbox SET next_attempt_at = now()")
        .execute(&mut t.sql().await)
        .await
        .unwrap();
    let _worker = start_worker(&t);
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
        let claimed = usersvc::db::outbox::claim(
            &mut conn,
            16,
            Duration::from_secs(3600),
            uuid::Uuid::new_v4(),
        )
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
