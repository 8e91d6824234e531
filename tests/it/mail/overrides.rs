//! An app's own version of a built-in mail: a template stored under the built-in's reserved
//! id (`builtin.password-changed`, …) replaces it for that app only, wherever the built-in one
//! would be used; a call that names a template still gets that one.

use serde_json::json;
use usersvc::mail::templates::Builtin;

use super::*;
use crate::create::make_user;

async fn put(t: &TestApp, app: &str, id: &str, subject: &str, text: &str) {
    let mut conn = t.db.conn().await.unwrap();
    usersvc::db::templates::upsert(&mut conn, app, id, subject, text, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_template_under_a_reserved_id_replaces_the_built_in_mail_of_its_app() {
    let (t, sink) = app_with_smtp().await;
    assert_eq!(
        Builtin::PasswordChanged.override_id(),
        "builtin.password-changed"
    );
    put(
        &t,
        "a",
        "builtin.password-changed",
        "{{ appName }}: new password",
        "Changed, {{ userEmail }}.",
    )
    .await;
    put(
        &t,
        "a",
        "builtin.identity-changed",
        "{{ appName }}: new sign-in",
        "Bye, {{ oldEmail }}.",
    )
    .await;
    put(
        &t,
        "a",
        "builtin.password-reset-email",
        "{{ appName }}: reset",
        "Go to {{ webUrl }}",
    )
    .await;
    put(
        &t,
        "a",
        "own",
        "Own template",
        "Named by the call: {{ webUrl }}",
    )
    .await;

    let ann = make_user(&t, "a", "ann@example.com").await;
    let bob = make_user(&t, "b", "bob@example.com").await;
    let set = "mutation($id: ID!) { setPassword(input: {profileId: $id, password: \"another password\", identityType: EMAIL}) { user { profileId } } }";
    let (_, v) = t.gql(&t.token("a", ALL), set, json!({ "id": ann })).await;
    assert_eq!(code(&v), "", "{v}");
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(mail.subject(), "a: new password");
    assert_eq!(mail.text_body().trim(), "Changed, ann@example.com.");

    // Another app keeps the built-in one.
    let (_, v) = t.gql(&t.token("b", ALL), set, json!({ "id": bob })).await;
    assert_eq!(code(&v), "", "{v}");
    let mail = sink.wait_for(2, WAIT).await.remove(1);
    assert_eq!(mail.subject(), "Your b password was changed");

    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "mutation($id: ID!) { changeIdentity(input: {profileId: $id, type: EMAIL, newExternalId: \"ann.new@example.com\"}) { user { profileId } } }",
            json!({ "id": ann }),
        )
        .await;
    assert_eq!(code(&v), "", "{v}");
    let mail = sink.wait_for(3, WAIT).await.remove(2);
    assert_eq!(mail.to, ["ann@example.com"]);
    assert_eq!(mail.subject(), "a: new sign-in");
    assert_eq!(mail.text_body().trim(), "Bye, ann@example.com.");

    // Resets: the app's version without a template id, the named template with one.
    reset(&t, RESET_EMAIL, json!({ "profileId": ann })).await;
    let mail = sink.wait_for(4, WAIT).await.remove(3);
    assert_eq!(mail.subject(), "a: reset");
    assert!(
        mail.find_link("/self-service/reset-password?token=")
            .is_some()
    );
    reset(
        &t,
        RESET_EMAIL,
        json!({ "profileId": ann, "serviceParams": { "templateId": "own" } }),
    )
    .await;
    let mail = sink.wait_for(5, WAIT).await.remove(4);
    assert_eq!(mail.subject(), "Own template");
}
