//! The links in reset mails and the hosted pages behind them: a link works once, a rejected
//! attempt changes nothing, the database clock decides expiry, newer links, setPassword and
//! deletion revoke older ones, concurrent submissions have one winner, and no live link is
//! stored or built from the request's Host header.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;
use usersvc::db::schema::one_time_tokens;

use super::*;
use crate::create::make_user;
use crate::harness::*;

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
    // The newer link replaces the older one once its delivery is recorded.
    outbox_drained(&t).await;
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
