//! F2: a `usersvc serve` process killed with SIGKILL in the middle of a send (the SMTP server
//! has the message, the process has not recorded it as sent) loses nothing: after a restart
//! the message goes out again, with the same working link, and is recorded as sent.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;
use usersvc::db::schema::outbox;

use super::*;
use crate::create::make_user;
use crate::smtp_sink::SmtpSink;

async fn outbox_row(t: &TestApp) -> (String, i32) {
    outbox::table
        .select((outbox::status, outbox::attempts))
        .first(&mut t.sql().await)
        .await
        .unwrap()
}

fn token_in(mail: &crate::smtp_sink::Received) -> String {
    let link = mail.find_link("token=").expect("a link");
    url::Url::parse(&link)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "token")
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn a_serve_process_killed_mid_send_delivers_the_message_after_a_restart() {
    let sink = SmtpSink::start();
    // The SMTP server takes the message, then holds its answer far longer than the test runs.
    sink.set_delay(Duration::from_secs(3600));
    let t = TestApp::with(Options {
        smtp_url: Some(sink.url()),
        mail_worker: false,
        ..Options::default()
    })
    .await;
    let id = make_user(&t, "a", "crash@example.com").await;
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "mutation($id: ID!) { sendPasswordResetEmail(input: {profileId: $id}) { emailId } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code(&v), "", "{v}");

    let env = [
        ("USERSVC_SMTP_URL", sink.url()),
        ("USERSVC_SMTP_TIMEOUT_MS", "3600000".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut first = Serve::start(&t, &env).await;
    let sent = sink.wait_for(1, WAIT).await;
    assert_eq!(
        outbox_row(&t).await.0,
        "QUEUED",
        "the process is still waiting for the answer"
    );
    first.kill_9().await;
    sink.set_delay(Duration::ZERO);

    // The dead process's lease runs out (by the database clock, as it would after a minute);
    // a restarted process sends the message again.
    diesel::sql_query("UPDATE outbox SET next_attempt_at = now()")
        .execute(&mut t.sql().await)
        .await
        .unwrap();
    let _second = Serve::start(&t, &env).await;
    let status = eventually(WAIT, || async {
        let (status, attempts) = outbox_row(&t).await;
        if status == "QUEUED" {
            Err((status, attempts))
        } else {
            Ok(status)
        }
    })
    .await;
    assert_eq!(status, "SENT");
    let mails = sink.messages();
    assert_eq!(
        mails.len(),
        2,
        "once before the kill, once after: at least once, never lost"
    );
    assert_eq!(token_in(&mails[0]), token_in(&sent[0]));
    assert_eq!(
        token_in(&mails[1]),
        token_in(&mails[0]),
        "the message sent again carries the same link"
    );
    let page = t
        .client
        .get(format!(
            "{}/self-service/reset-password?token={}",
            t.base,
            token_in(&mails[1])
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200, "and the link works");
}
