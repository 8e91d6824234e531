//! Mail cannot be turned into a relay: per recipient address (normalised) and per app, every
//! mail counts — resets, welcome mails, notices, and each cc and bcc recipient. A mail the
//! caller asked for over a limit is `RATE_LIMITED` with nothing queued and no audit event; a
//! notice of a change that happened anyway is recorded unsent. The count is the database's, so
//! two instances share it and concurrent calls cannot slip past it together.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use usersvc::db::schema::{audit_events, outbox};

use super::*;
use crate::create::make_user;
use crate::harness::*;
use crate::smtp_sink::SmtpSink;

async fn set(t: &TestApp, key: &str, value: &str) {
    usersvc::apps::set(&mut t.db.pool(), "a", key, value)
        .await
        .unwrap_or_else(|e| panic!("{key} = {value}: {e:?}"));
}

async fn audit_count(t: &TestApp, operation: &str) -> i64 {
    audit_events::table
        .filter(audit_events::operation.eq(operation))
        .count()
        .get_result(&mut t.sql().await)
        .await
        .unwrap()
}

/// Each recipient's number of deliveries, from what the SMTP server received.
fn deliveries(sink: &SmtpSink, to: &str) -> usize {
    sink.messages()
        .iter()
        .flat_map(|m| m.to.clone())
        .filter(|r| r == to)
        .count()
}

#[tokio::test]
async fn one_address_gets_its_hourly_mails_however_it_is_spelled_and_whichever_instance_is_asked() {
    let sink = SmtpSink::start();
    let opts = || Options {
        smtp_url: Some(sink.url()),
        ..Options::default()
    };
    let t = TestApp::with(opts()).await;
    let other = t.another_instance(opts()).await;
    // Twenty profiles whose contact emails are four spellings of one inbox, one reset each: a
    // second reset of one profile would drop its first mail if still queued, so every mail
    // asked for here is one that must arrive.
    let spellings = [
        "ann@example.com",
        "Ann@Example.COM",
        "ＡＮＮ@example.com",
        "ａｎｎ＠ｅｘａｍｐｌｅ．ｃｏｍ",
    ];
    let mut profiles = Vec::new();
    for i in 0..20 {
        let contact = spellings[i % 4];
        profiles.push(make_universal(&t, "a", &format!("ann{i}"), Some(contact)).await);
    }
    let bases = [t.base.clone(), format!("http://{}", other.addr)];
    let mut calls = Vec::new();
    for n in 0..20 {
        let (client, base) = (t.client.clone(), bases[n % 2].clone());
        let body = json!({ "query": RESET_UNIVERSAL, "variables": { "in": { "profileId": profiles[n] } } });
        let token = t.token("a", ALL);
        calls.push(tokio::spawn(async move {
            let v: Value = client
                .post(format!("{base}/graphql"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            code(&v)
        }));
    }
    let mut codes = Vec::new();
    for call in calls {
        codes.push(call.await.unwrap());
    }
    let ok = codes.iter().filter(|c| c.is_empty()).count();
    let limited = codes.iter().filter(|c| *c == "RATE_LIMITED").count();
    assert_eq!((ok, limited), (10, 10), "{codes:?}");
    assert_eq!(audit_count(&t, "sendPasswordResetUniversalId").await, 10);
    outbox_drained(&t).await;
    assert_eq!(deliveries(&sink, "ann@example.com"), 10);
}

#[tokio::test]
async fn outside_copies_count_against_every_limit_and_the_app_has_a_ceiling() {
    let (t, sink) = app_with_smtp().await;
    set(&t, "mail.per_app_per_hour", "25").await;
    let outsiders: Vec<String> = (0..10)
        .map(|i| format!("out{i}@elsewhere.example"))
        .collect();
    let with_copies = |id: &str| json!({ "profileId": id, "serviceParams": { "subject": "Hi", "body": "{{ webUrl }}", "bcc": outsiders } });
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(make_user(&t, "a", &format!("p{i}@example.com")).await);
    }
    // Eleven recipients each: two fit in 25, a third does not; a mail to one more does.
    for id in &ids[..2] {
        let v = reset(&t, RESET_EMAIL, with_copies(id)).await;
        assert_eq!(code(&v), "", "{v}");
    }
    let v = reset(&t, RESET_EMAIL, with_copies(&ids[2])).await;
    assert_eq!(code(&v), "RATE_LIMITED", "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("per hour for this app"),
        "{v}"
    );
    let v = reset(&t, RESET_EMAIL, json!({ "profileId": ids[2] })).await;
    assert_eq!(code(&v), "", "{v}");
    let queued: i64 = outbox::table
        .count()
        .get_result(&mut t.sql().await)
        .await
        .unwrap();
    assert_eq!(queued, 3, "the refused reset queued nothing");
    assert_eq!(audit_count(&t, "sendPasswordResetEmail").await, 3);

    // Another app has its own allowance, and its limit per address counts cc recipients under
    // any spelling.
    let b = t.token("b", ALL);
    let watchers = [
        "watcher@elsewhere.example",
        "Watcher@Elsewhere.Example",
        "WATCHER@ELSEWHERE.EXAMPLE",
    ];
    // One reset per profile, so that no newer link drops a mail still queued.
    let mut b_ids = Vec::new();
    for i in 0..11 {
        b_ids.push(make_user(&t, "b", &format!("q{i}@example.com")).await);
    }
    for n in 0..11 {
        let input = json!({ "profileId": b_ids[n], "serviceParams": { "cc": [watchers[n % 3]] } });
        let (_, v) = t.gql(&b, RESET_EMAIL, json!({ "in": input })).await;
        let want = if n < 10 { "" } else { "RATE_LIMITED" };
        assert_eq!(code(&v), want, "reset {n}: {v}");
    }
    let (_, v) = t
        .gql(&b, RESET_EMAIL, json!({ "in": { "profileId": b_ids[10] } }))
        .await;
    assert_eq!(code(&v), "", "the account's own address is not over: {v}");

    outbox_drained(&t).await;
    assert_eq!(deliveries(&sink, "out0@elsewhere.example"), 2);
    assert_eq!(deliveries(&sink, "watcher@elsewhere.example"), 4);
    assert_eq!(deliveries(&sink, "Watcher@Elsewhere.Example"), 3);
    assert_eq!(deliveries(&sink, "WATCHER@ELSEWHERE.EXAMPLE"), 3);
    assert_eq!(deliveries(&sink, "p2@example.com"), 1);
}

#[tokio::test]
async fn notices_over_the_limit_are_recorded_unsent_and_the_change_still_happens() {
    let (t, sink) = app_with_smtp().await;
    set(&t, "mail.per_address_per_hour", "2").await;
    let id = make_universal(&t, "a", "val", Some("val@example.com")).await;
    let q = "mutation($id: ID!, $p: String!) { setPassword(input: {profileId: $id, password: $p}) { user { profileId } } }";
    let mut hashes = vec![stored_hash(&t, &id).await];
    for n in 0..3 {
        let (_, v) = t
            .gql(
                &t.token("a", ALL),
                q,
                json!({ "id": id, "p": format!("new password {n}") }),
            )
            .await;
        assert_eq!(code(&v), "", "{v}");
        hashes.push(stored_hash(&t, &id).await);
    }
    hashes.dedup();
    assert_eq!(hashes.len(), 4, "every password change happened");
    assert_eq!(audit_count(&t, "setPassword").await, 3);
    // Delivered before the profile goes (deleting it would drop mail still queued for it).
    outbox_drained(&t).await;
    assert_eq!(deliveries(&sink, "val@example.com"), 2);

    // The self-service deletion confirmation is a notice too: the deletion goes through.
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "mutation($id: ID!) { createSelfServiceDeletionUrl(input: {profileId: $id}) { url } }",
            json!({ "id": id }),
        )
        .await;
    let url = v["data"]["createSelfServiceDeletionUrl"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned();
    let query: std::collections::HashMap<String, String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let form: Vec<(&str, &str)> = ["appId", "deletionToken", "profileId"]
        .iter()
        .map(|k| (*k, query[*k].as_str()))
        .collect();
    let (status, html) = post_form(&t, "/self-service/delete-account", &form).await;
    assert_eq!(status, 200, "{html}");

    outbox_drained(&t).await;
    let rows: Vec<(String, String, Option<String>)> = outbox::table
        .order(outbox::message_id)
        .select((outbox::kind, outbox::status, outbox::last_error))
        .load(&mut t.sql().await)
        .await
        .unwrap();
    let summary: Vec<(&str, &str)> = rows
        .iter()
        .map(|(k, s, _)| (k.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("PASSWORD_CHANGED", "SENT"),
            ("PASSWORD_CHANGED", "SENT"),
            ("PASSWORD_CHANGED", "DROPPED"),
            ("ACCOUNT_DELETED", "DROPPED"),
        ]
    );
    for (_, _, why) in &rows[2..] {
        let why = why.as_deref().unwrap_or_default();
        assert!(
            why.starts_with("not sent") && why.contains("per recipient address per hour"),
            "{why}"
        );
    }
    assert_eq!(deliveries(&sink, "val@example.com"), 2);
}

#[tokio::test]
async fn a_welcome_mail_over_the_limit_refuses_the_create() {
    let (t, sink) = app_with_smtp().await;
    set(&t, "mail.per_address_per_hour", "1").await;
    {
        let mut conn = t.db.conn().await.unwrap();
        usersvc::db::templates::upsert(&mut conn, "a", "welcome", "Welcome", "Hello", None)
            .await
            .unwrap();
    }
    let q = "mutation($u: String!, $c: String) { createUserUniversalId(input: {universalId: $u, contactEmail: $c, notificationTemplateId: \"welcome\"}) { user { profileId } } }";
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            q,
            json!({ "u": "wes", "c": "wes@example.com" }),
        )
        .await;
    assert_eq!(code(&v), "", "{v}");
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            q,
            json!({ "u": "wes2", "c": "Wes@Example.com" }),
        )
        .await;
    assert_eq!(code(&v), "RATE_LIMITED", "{v}");
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "{ userByIdentity(type: UNIVERSAL_ID, externalId: \"wes2\") { profileId } }",
            json!({}),
        )
        .await;
    assert!(
        v["data"]["userByIdentity"].is_null(),
        "nothing created: {v}"
    );
    assert_eq!(audit_count(&t, "createUserUniversalId").await, 1);
    outbox_drained(&t).await;
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn the_limits_are_app_settings_the_database_keeps_in_range() {
    let t = TestApp::new().await;
    let app = usersvc::apps::find(&mut t.db.pool(), "a").await.unwrap();
    let shown = usersvc::apps::describe(&app);
    for (key, default) in [
        ("mail.per_address_per_hour", "10"),
        ("mail.per_app_per_hour", "1000"),
    ] {
        assert!(
            shown.contains(&(key.to_owned(), default.to_owned())),
            "{shown:?}"
        );
    }
    for (key, bad) in [
        ("mail.per_address_per_hour", "1001"),
        ("mail.per_address_per_hour", "-1"),
        ("mail.per_app_per_hour", "1000001"),
        ("mail.per_app_per_hour", "many"),
    ] {
        let e = usersvc::apps::set(&mut t.db.pool(), "a", key, bad)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "BAD_USER_INPUT", "{key} = {bad}");
    }
    for (column, bad) in [
        ("mail_per_address_per_hour", "1001"),
        ("mail_per_app_per_hour", "-1"),
    ] {
        let refused = diesel::sql_query(format!("UPDATE apps SET {column} = {bad}"))
            .execute(&mut t.sql().await)
            .await;
        assert!(refused.is_err(), "{column} = {bad} must break a CHECK");
    }

    // The CLI sets and shows them.
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_usersvc"))
            .args(args)
            .env("DATABASE_URL", &t.db_url)
            .output()
            .expect("run usersvc")
    };
    let out = cli(&["app", "set", "a", "mail.per_app_per_hour", "50"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "a mail.per_app_per_hour = 50\n"
    );
    let out = cli(&["app", "show", "a"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("mail.per_app_per_hour = 50\n")
            && shown.contains("mail.per_address_per_hour = 10\n"),
        "{shown}"
    );
}
