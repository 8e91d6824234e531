//! The other mails about an account: the notice of a password set by setPassword, the welcome
//! mail of notificationTemplateId, and self-service deletion links with their confirmation.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use super::*;
use crate::harness::*;

#[tokio::test]
async fn set_password_checks_the_policy_and_notifies_the_user() {
    let (t, sink) = app_with_smtp().await;
    let id = make_universal(&t, "a", "val", Some("val@example.com")).await;
    let q = "mutation($id: ID!, $p: String!) { setPassword(input: {profileId: $id, password: $p}) { user { profileId identities { type hasPassword } } } }";
    let (_, v) = t
        .gql(
            &t.token("a", "cloudcode:users:password"),
            q,
            json!({ "id": id, "p": "short" }),
        )
        .await;
    assert_eq!(code(&v), "INVALID_PASSWORD_CONTENT");
    let before = stored_hash(&t, &id).await;
    let (_, v) = t
        .gql(
            &t.token("a", "cloudcode:users:password"),
            q,
            json!({ "id": id, "p": "a long new password" }),
        )
        .await;
    assert_eq!(
        v["data"]["setPassword"]["user"]["profileId"],
        json!(id),
        "{v}"
    );
    assert_ne!(stored_hash(&t, &id).await, before);
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(mail.to, ["val@example.com"]);
    let (_, v) = t
        .gql(&t.token("a", ALL), "mutation($id: ID!) { setPassword(input: {profileId: $id, password: \"long enough!\", identityType: EMAIL}) { user { profileId } } }", json!({ "id": id }))
        .await;
    assert_eq!(code(&v), "MISSING_IDENTITY_ERROR");
    let (_, v) = t
        .gql(
            &t.token("b", ALL),
            q,
            json!({ "id": id, "p": "a long new password" }),
        )
        .await;
    assert_eq!(code(&v), "PROFILE_NOT_FOUND");
    let mut conn = t.sql().await;
    let ops: Vec<String> = usersvc::db::schema::audit_events::table
        .select(usersvc::db::schema::audit_events::operation)
        .load(&mut conn)
        .await
        .unwrap();
    assert!(ops.contains(&"setPassword".to_owned()));
}

#[tokio::test]
async fn notification_template_sends_an_account_created_mail() {
    let (t, sink) = app_with_smtp().await;
    {
        let mut conn = t.db.conn().await.unwrap();
        usersvc::db::templates::upsert(
            &mut conn,
            "a",
            "welcome",
            "Welcome to {{ appName }}",
            "Hello {{ userEmail }}",
            None,
        )
        .await
        .unwrap();
    }
    let q = "mutation($t: String) { createUserEmailPassword(input: {email: \"wes@example.com\", notificationTemplateId: $t}) { user { profileId } } }";
    let (_, v) = t
        .gql(&t.token("a", ALL), q, json!({ "t": "unknown" }))
        .await;
    assert_eq!(code(&v), "INVALID_TEMPLATE_ID");
    let (_, v) = t
        .gql(&t.token("a", ALL), q, json!({ "t": "welcome" }))
        .await;
    assert_eq!(code(&v), "", "{v}");
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(mail.subject(), "Welcome to a");
    assert!(mail.text_body().contains("Hello wes@example.com"));
}

#[tokio::test]
async fn self_service_deletion_links_delete_after_an_explicit_confirmation() {
    let (t, sink) = app_with_smtp().await;
    let parent = make_universal(&t, "parent", "xena", Some("xena@example.com")).await;
    let (_, v) = t
        .gql(
            &t.token("child", ALL),
            "mutation($p: ID!) { createUserUniversalId(input: {universalId: \"kid\", parentProfileId: $p}) { user { profileId } } }",
            json!({ "p": parent }),
        )
        .await;
    assert_eq!(code(&v), "", "{v}");
    let q = "mutation($id: ID!, $ttl: Int) { createSelfServiceDeletionUrl(input: {profileId: $id, tokenTtlInMinutes: $ttl}) { url expiresAt } }";
    let (_, v) = t
        .gql(
            &t.token("parent", "cloudcode:users:read"),
            q,
            json!({ "id": parent }),
        )
        .await;
    assert_eq!(code(&v), "FORBIDDEN");
    let (_, v) = t
        .gql(
            &t.token("parent", "cloudcode:users:deletion-url"),
            q,
            json!({ "id": parent }),
        )
        .await;
    let url = v["data"]["createSelfServiceDeletionUrl"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned();
    assert!(
        (1430..=1440).contains(&minutes_from_now(
            &v["data"]["createSelfServiceDeletionUrl"]["expiresAt"]
        )),
        "default one day"
    );
    assert!(
        url.contains("/self-service/delete-account?appId=parent&deletionToken=")
            && url.contains(&format!("profileId={parent}")),
        "{url}"
    );

    for _ in 0..2 {
        let (status, html) = get_page(&t, &url).await;
        assert_eq!(status, 200);
        assert!(html.contains("Delete your parent account?"), "{html}");
    }
    let q_info =
        "query($id: ID!) { userInfo(profileId: $id) { profileId children { profileId } } }";
    let (_, v) = t
        .gql(&t.token("parent", ALL), q_info, json!({ "id": parent }))
        .await;
    assert_eq!(
        v["data"]["userInfo"]["children"].as_array().unwrap().len(),
        1,
        "GET deleted nothing"
    );

    let query: std::collections::HashMap<String, String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let form: Vec<(&str, &str)> = ["appId", "deletionToken", "profileId"]
        .iter()
        .map(|k| (*k, query[*k].as_str()))
        .collect();
    let (status, _) = post_form(
        &t,
        "/self-service/delete-account",
        &[
            ("appId", "b"),
            ("deletionToken", &query["deletionToken"]),
            ("profileId", &parent),
        ],
    )
    .await;
    assert_eq!(status, 400, "a link is bound to its app");
    let resp = t
        .client
        .post(format!("{}/self-service/delete-account", t.base))
        .header("origin", "https://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403, "cross-site posts are refused");
    let (status, html) = post_form(&t, "/self-service/delete-account", &form).await;
    assert_eq!(status, 200, "{html}");
    let (_, v) = t
        .gql(&t.token("parent", ALL), q_info, json!({ "id": parent }))
        .await;
    assert!(v["data"]["userInfo"].is_null());
    let (_, v) = t
        .gql(
            &t.token("child", ALL),
            "{ users { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        v["data"]["users"]["totalCount"],
        json!(0),
        "children went too"
    );
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(
        mail.to,
        ["xena@example.com"],
        "confirmation to the contact email it had"
    );
    // The link took its row with the account, but is remembered as used.
    let (status, body) = post_form(&t, "/self-service/delete-account", &form).await;
    assert_eq!(status, 410, "{body}");
}
