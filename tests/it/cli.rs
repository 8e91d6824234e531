//! The operator's command line, run as the real binary against the test's database: app and
//! template verbs, the outbox summary, token minting, and the quiet output of every verb.

use std::process::Output;

use serde_json::json;

use crate::create::make_user;
use crate::harness::*;

/// Runs `usersvc ARGS` on the test's database, in a folder of its own.
fn usersvc(t: &TestApp, dir: &std::path::Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_usersvc"))
        .args(args)
        .env("DATABASE_URL", &t.db_url)
        .env("USERSVC_JWT_SECRET", SECRET)
        .env_remove("RUST_LOG")
        .current_dir(dir)
        .output()
        .expect("run usersvc")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A verb that worked: exit 0, and nothing on stderr (no INFO lines from the embedded
/// database or anything else).
fn ok(o: Output) -> String {
    assert!(o.status.success(), "failed: {}", stderr(&o));
    assert_eq!(stderr(&o), "", "a successful verb writes nothing to stderr");
    stdout(&o)
}

/// A verb that was refused: exit 1 and one line saying why.
fn refused(o: Output) -> String {
    assert!(!o.status.success(), "should fail: {}", stdout(&o));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "one line: {e}");
    e
}

#[tokio::test]
async fn templates_are_listed_shown_and_deleted() {
    let t = TestApp::new().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.txt"), "Hello {{ userName }}").unwrap();
    std::fs::write(dir.path().join("w.html"), "<p>Hello {{ userName }}</p>").unwrap();
    let put = |id: &str, html: bool| {
        let mut args = vec![
            "template",
            "put",
            "--app",
            "a",
            "--id",
            id,
            "--subject",
            "Hi",
        ];
        args.extend(["--text", "w.txt"]);
        if html {
            args.extend(["--html", "w.html"]);
        }
        usersvc(&t, dir.path(), &args)
    };
    ok(put("welcome", true));
    ok(put("plain", false));
    let list = ok(usersvc(&t, dir.path(), &["template", "list", "--app", "a"]));
    assert_eq!(list, "plain\ttext\tHi\nwelcome\ttext+html\tHi\n");
    let shown = ok(usersvc(
        &t,
        dir.path(),
        &["template", "show", "--app", "a", "--id", "welcome"],
    ));
    assert!(shown.starts_with("subject: Hi\n"), "{shown}");
    assert!(
        shown.contains("--- text\nHello {{ userName }}\n"),
        "{shown}"
    );
    assert!(
        shown.contains("--- html\n<p>Hello {{ userName }}</p>\n"),
        "{shown}"
    );

    ok(usersvc(
        &t,
        dir.path(),
        &["template", "delete", "--app", "a", "--id", "welcome"],
    ));
    let list = ok(usersvc(&t, dir.path(), &["template", "list", "--app", "a"]));
    assert_eq!(list, "plain\ttext\tHi\n");
    let e = refused(usersvc(
        &t,
        dir.path(),
        &["template", "delete", "--app", "a", "--id", "welcome"],
    ));
    assert!(e.contains("welcome"), "{e}");
    let e = refused(usersvc(
        &t,
        dir.path(),
        &["template", "list", "--app", "nope"],
    ));
    assert!(e.contains("no app nope"), "{e}");
}

#[tokio::test]
async fn an_app_is_deleted_only_once_nothing_depends_on_it() {
    let t = TestApp::new().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| usersvc(&t, dir.path(), args);
    // "parent" has a child app; "a" has a profile.
    make_user(&t, "a", "keep@example.com").await;
    let e = refused(run(&["app", "delete", "parent"]));
    assert!(e.contains("1 child app"), "{e}");
    let e = refused(run(&["app", "delete", "a"]));
    assert!(e.contains("1 profile"), "{e}");
    // "b" has only a template: it goes with the app.
    std::fs::write(dir.path().join("t.txt"), "x").unwrap();
    ok(run(&[
        "template",
        "put",
        "--app",
        "b",
        "--id",
        "t",
        "--subject",
        "s",
        "--text",
        "t.txt",
    ]));
    assert_eq!(ok(run(&["app", "delete", "b"])), "deleted app b\n");
    let apps = ok(run(&["app", "list"]));
    assert!(!apps.lines().any(|l| l.starts_with("b\t")), "{apps}");
    assert!(apps.lines().any(|l| l.starts_with("a\t")), "{apps}");
    let e = refused(run(&["app", "delete", "b"]));
    assert!(e.contains("no app b"), "{e}");
    // The child first, then its parent.
    ok(run(&["app", "delete", "child"]));
    ok(run(&["app", "delete", "parent"]));
}

#[tokio::test]
async fn mail_status_counts_states_and_shows_the_latest_failures() {
    let t = TestApp::with(Options {
        mail_worker: false,
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let empty = ok(usersvc(&t, dir.path(), &["mail", "status"]));
    assert!(empty.contains("(none)"), "{empty}");
    assert!(empty.contains("oldest queued: none"), "{empty}");

    let id = make_user(&t, "a", "mo@example.com").await;
    let q =
        "mutation($in: SendPasswordResetInput!) { sendPasswordResetEmail(input: $in) { emailId } }";
    let (_, v) = t
        .gql(&t.token("a", ALL), q, json!({ "in": { "profileId": id } }))
        .await;
    assert_eq!(code(&v), "", "{v}");
    let email_id = v["data"]["sendPasswordResetEmail"]["emailId"]
        .as_str()
        .unwrap()
        .to_owned();
    {
        use diesel_async::SimpleAsyncConnection;
        let mut conn = t.sql().await;
        conn.batch_execute(
            "INSERT INTO outbox (app_id, message_id, kind, recipient, status, attempts, last_error)
             VALUES ('a', gen_random_uuid(), 'PASSWORD_CHANGED', 'x@example.com', 'FAILED', 8,
                     '550 mailbox unavailable')",
        )
        .await
        .unwrap();
    }
    let status = ok(usersvc(&t, dir.path(), &["mail", "status"]));
    assert!(status.contains("  FAILED   1\n"), "{status}");
    assert!(status.contains("  QUEUED   1\n"), "{status}");
    assert!(
        status.contains(&format!(
            "oldest queued: {email_id} (PASSWORD_RESET of app a)"
        )),
        "{status}"
    );
    assert!(status.contains("latest failures:"), "{status}");
    assert!(
        status
            .contains("FAILED (PASSWORD_CHANGED of app a, 8 attempt(s)): 550 mailbox unavailable"),
        "{status}"
    );
}

#[tokio::test]
async fn tokens_are_minted_only_for_apps_that_exist() {
    let t = TestApp::new().await;
    let dir = tempfile::tempdir().unwrap();
    let e = refused(usersvc(&t, dir.path(), &["token", "--app", "nosuch"]));
    assert!(e.contains("no app nosuch"), "{e}");
    assert!(e.contains("--allow-missing-app"), "{e}");

    let token = ok(usersvc(
        &t,
        dir.path(),
        &[
            "token",
            "--app",
            "a",
            "--scope",
            "cloudcode:users:read",
            "--ttl",
            "10m",
        ],
    ));
    let (status, v) = t
        .gql(
            token.trim(),
            "{ users(first: 1) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["users"]["totalCount"], json!(0));

    let later = ok(usersvc(
        &t,
        dir.path(),
        &["token", "--app", "later", "--allow-missing-app"],
    ));
    assert_eq!(later.trim().split('.').count(), 3, "a JWT: {later}");
}
