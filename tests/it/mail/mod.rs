//! Mail flows end to end with a real SMTP server in the process, one file per idea: the reset
//! mails of every brainCloud call and their parameters ([`resets`]), the links they carry and
//! the hosted pages behind them ([`links`]), delivery through the outbox when SMTP is down,
//! refusing or a worker dies ([`delivery`]), the other mails about an account and
//! self-service deletion ([`account`]), apps' own versions of the built-in mails
//! ([`overrides`]), the recorded text of every mail ([`templates`]), the limits that keep mail
//! from becoming a relay ([`limits`]), senders refused when the call is made ([`senders`]), and
//! several instances sharing one outbox ([`instances`]).
//! The helpers they share live here.

mod account;
mod delivery;
mod instances;
mod limits;
mod links;
mod overrides;
mod resets;
mod senders;
mod templates;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use usersvc::db::schema::{identities, outbox};

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

/// A worker loop like the server's, running until it is stopped or dropped.
struct RunningWorker {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningWorker {
    /// Stops the loop and waits until it has ended: no attempt is under way afterwards.
    async fn stop(mut self) {
        self.stop.send(true).unwrap();
        (&mut self.task).await.unwrap();
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a worker loop like the server's.
fn start_worker(t: &TestApp) -> RunningWorker {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = worker(t).spawn(stopped);
    RunningWorker { stop, task }
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
