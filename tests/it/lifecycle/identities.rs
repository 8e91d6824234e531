//! changeIdentity, attachIdentity, detachIdentity: passwords kept or checked, uniqueness
//! decided by the database under concurrency, reset links revoked, the old address told.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use usersvc::db::schema::outbox;

use super::*;
use crate::create::make_user;
use crate::harness::*;
use crate::smtp_sink::SmtpSink;

const UPDATE: &str = "cloudcode:users:update";

async fn verify(t: &TestApp, kind: &str, id: &str, password: &str) -> Value {
    mutate(
        t,
        "a",
        "cloudcode:users:authenticate",
        "verifyPassword",
        json!({ "type": kind, "externalId": id, "password": password }),
    )
    .await
}

async fn reset_url(t: &TestApp, id: &str) -> String {
    let (_, v) = t
        .gql(&t.token("a", ALL), "mutation($id: ID!) { createPasswordResetUrl(input: {profileId: $id, identityType: EMAIL}) { url } }", json!({ "id": id }))
        .await;
    v["data"]["createPasswordResetUrl"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned()
}

#[tokio::test]
async fn changing_an_email_keeps_the_password_revokes_links_and_tells_the_old_address() {
    let sink = SmtpSink::start();
    let t = TestApp::with(Options {
        smtp_url: Some(sink.url()),
        ..Options::default()
    })
    .await;
    let id = make_user(&t, "a", "old@example.com").await;
    let link = reset_url(&t, &id).await;
    assert_eq!(t.client.get(&link).send().await.unwrap().status(), 200);

    let v = mutate(
        &t,
        "a",
        UPDATE,
        "changeIdentity",
        json!({ "profileId": id, "type": "EMAIL", "newExternalId": " New@Example.COM " }),
    )
    .await;
    let u = user_of(&v, "changeIdentity");
    assert_eq!(u["identities"][0]["externalId"], json!("new@example.com"));
    assert_eq!(u["identities"][0]["hasPassword"], json!(true));
    assert_eq!(
        u["contactEmail"],
        json!("old@example.com"),
        "not asked to follow"
    );
    assert_eq!(u["version"], json!(2));
    assert_eq!(audit_ops(&t, &id).await.last().unwrap(), "changeIdentity");

    // The password stays; the old address no longer logs in.
    assert_eq!(
        code(&verify(&t, "EMAIL", "new@example.com", "password-123").await),
        ""
    );
    assert_eq!(
        code(&verify(&t, "EMAIL", "old@example.com", "password-123").await),
        "INVALID_CREDENTIALS"
    );
    // The link made for the old identity is dead.
    let resp = t.client.get(&link).send().await.unwrap();
    assert_eq!(resp.status(), 410);
    assert!(resp.text().await.unwrap().contains("Link replaced"));

    // The old address got the notice, through the real SMTP server.
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(mail.to, ["old@example.com"]);
    assert!(
        mail.subject().contains("sign-in email was changed"),
        "{}",
        mail.subject()
    );
    let body = mail.text_body();
    assert!(body.contains("old@example.com is no longer"), "{body}");
    assert!(
        !body.contains("new@example.com"),
        "the notice does not reveal the new address"
    );

    // updateContactEmail: the contact follows; changing to the current id changes nothing.
    let v = mutate(
        &t,
        "a",
        UPDATE,
        "changeIdentity",
        json!({ "profileId": id, "type": "EMAIL", "newExternalId": "new@example.com", "updateContactEmail": true }),
    )
    .await;
    let u = user_of(&v, "changeIdentity");
    assert_eq!(u["contactEmail"], json!("new@example.com"));
    assert_eq!(u["version"], json!(3));
    let ops = audit_ops(&t, &id).await;
    let again = mutate(
        &t,
        "a",
        UPDATE,
        "changeIdentity",
        json!({ "profileId": id, "type": "EMAIL", "newExternalId": "NEW@example.com", "updateContactEmail": true }),
    )
    .await;
    assert_eq!(user_of(&again, "changeIdentity")["version"], json!(3));
    assert_eq!(audit_ops(&t, &id).await, ops);
    let notices: i64 = outbox::table
        .filter(outbox::kind.eq("IDENTITY_CHANGED"))
        .count()
        .get_result(&mut t.sql().await)
        .await
        .unwrap();
    assert_eq!(notices, 1, "only a real change of address is announced");
}

#[tokio::test]
async fn change_identity_refusals_change_nothing() {
    let t = TestApp::new().await;
    let ann = make_user(&t, "a", "ann@example.com").await;
    make_user(&t, "a", "bob@example.com").await;
    let uni = make_universal(&t, "a", "uma", "long enough pass").await;
    let before = user(&t, "a", &ann).await;
    let change = |id: &str, kind: &str, new: &str| json!({ "profileId": id, "type": kind, "newExternalId": new });
    for (input, want) in [
        (
            change(&ann, "EMAIL", "Bob@example.com"),
            "USER_ALREADY_EXISTS",
        ),
        (
            change(&ann, "UNIVERSAL_ID", "ann"),
            "MISSING_IDENTITY_ERROR",
        ),
        (change(&ann, "EXTERNAL", "x"), "BAD_USER_INPUT"),
        (change(&ann, "EMAIL", "not an email"), "EMAIL_NOT_VALID"),
        (
            change(
                "00000000-0000-7000-8000-000000000000",
                "EMAIL",
                "z@example.com",
            ),
            "PROFILE_NOT_FOUND",
        ),
    ] {
        let v = mutate(&t, "a", UPDATE, "changeIdentity", input.clone()).await;
        assert_eq!(code(&v), want, "{input}: {v}");
    }
    let mut contact = change(&uni, "UNIVERSAL_ID", "uma2");
    contact["updateContactEmail"] = json!(true);
    let v = mutate(&t, "a", UPDATE, "changeIdentity", contact).await;
    assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
    assert_eq!(user(&t, "a", &ann).await, before);
    assert_eq!(audit_ops(&t, &ann).await, ["createUserEmailPassword"]);

    // A universal id changes the same way, and the same id may exist in another app.
    let v = mutate(
        &t,
        "a",
        UPDATE,
        "changeIdentity",
        change(&uni, "UNIVERSAL_ID", " Uma.Renamed "),
    )
    .await;
    assert_eq!(
        user_of(&v, "changeIdentity")["identities"][0]["externalId"],
        json!("uma.renamed")
    );
    make_user(&t, "b", "taken-in-b@example.com").await;
    let v = mutate(
        &t,
        "a",
        UPDATE,
        "changeIdentity",
        change(&ann, "EMAIL", "taken-in-b@example.com"),
    )
    .await;
    assert_eq!(code(&v), "", "{v}");
}

#[tokio::test]
async fn two_profiles_changing_to_one_address_have_one_winner() {
    let t = TestApp::new().await;
    let ids = [
        make_user(&t, "a", "one@example.com").await,
        make_user(&t, "a", "two@example.com").await,
        make_user(&t, "a", "three@example.com").await,
        make_user(&t, "a", "four@example.com").await,
    ];
    let results = futures_util::future::join_all(ids.iter().map(|id| {
        mutate(
            &t,
            "a",
            UPDATE,
            "changeIdentity",
            json!({ "profileId": id, "type": "EMAIL", "newExternalId": "wanted@example.com" }),
        )
    }))
    .await;
    let mut codes: Vec<String> = results.iter().map(code).collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            "",
            "USER_ALREADY_EXISTS",
            "USER_ALREADY_EXISTS",
            "USER_ALREADY_EXISTS"
        ]
    );
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "{ userByIdentity(type: EMAIL, externalId: \"wanted@example.com\") { version } }",
            json!({}),
        )
        .await;
    assert_eq!(v["data"]["userByIdentity"]["version"], json!(2));
    let changed = futures_util::future::join_all(ids.iter().map(|id| audit_ops(&t, id))).await;
    assert_eq!(
        changed.iter().filter(|ops| ops.len() == 2).count(),
        1,
        "{changed:?}"
    );
}

#[tokio::test]
async fn attach_and_detach_keep_one_identity_of_a_kind_and_never_none() {
    let t = TestApp::new().await;
    usersvc::apps::set(&mut t.db.pool(), "a", "password.min_digits", "1")
        .await
        .unwrap();
    let id = make_user(&t, "a", "ivy@example.com").await;
    let other = make_universal(&t, "a", "taken", "long enough pass 1").await;
    let attach = |input: Value| mutate(&t, "a", UPDATE, "attachIdentity", input);

    for (input, want) in [
        (
            json!({ "type": "EMAIL", "externalId": "ivy2@example.com" }),
            "DUPLICATE_IDENTITY_TYPE",
        ),
        (
            json!({ "type": "UNIVERSAL_ID", "externalId": "taken" }),
            "USER_ALREADY_EXISTS",
        ),
        (
            json!({ "type": "UNIVERSAL_ID", "externalId": "ivy", "password": "no digits here" }),
            "INVALID_PASSWORD_CONTENT",
        ),
        (
            json!({ "type": "EXTERNAL", "externalId": "ivy-7" }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "type": "EXTERNAL", "externalId": "ivy-7", "externalAuthType": "corpdir", "password": "x1xxxxxxx" }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "type": "UNIVERSAL_ID", "externalId": "ivy", "externalAuthType": "corpdir" }),
            "BAD_USER_INPUT",
        ),
    ] {
        let mut input = input;
        input["profileId"] = json!(id);
        let v = attach(input.clone()).await;
        assert_eq!(code(&v), want, "{input}: {v}");
    }
    assert_eq!(user(&t, "a", &id).await["version"], json!(1));

    let v = attach(json!({ "profileId": id, "type": "UNIVERSAL_ID", "externalId": "Ivy", "password": "ivy's pass 1" })).await;
    let u = user_of(&v, "attachIdentity");
    assert_eq!(u["version"], json!(2));
    assert_eq!(u["identities"].as_array().unwrap().len(), 2);
    assert_eq!(
        code(
            &mutate(
                &t,
                "a",
                "cloudcode:users:authenticate",
                "verifyPassword",
                json!({ "type": "UNIVERSAL_ID", "externalId": "ivy", "password": "ivy's pass 1" })
            )
            .await
        ),
        ""
    );
    // Two external identities of different systems; a second of one system is refused.
    for (system, want) in [
        ("corpdir", ""),
        ("steam", ""),
        ("corpdir", "DUPLICATE_IDENTITY_TYPE"),
    ] {
        let v = attach(json!({ "profileId": id, "type": "EXTERNAL", "externalId": format!("ivy@{system}"), "externalAuthType": system })).await;
        assert_eq!(code(&v), want, "{system}: {v}");
    }
    // password: null → random: the identity has a password nobody knows.
    let v = attach(json!({ "profileId": other, "type": "EMAIL", "externalId": "taken@example.com", "password": null })).await;
    let u = user_of(&v, "attachIdentity");
    assert!(
        u["identities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["hasPassword"] == json!(true))
    );

    let detach = |input: Value| mutate(&t, "a", UPDATE, "detachIdentity", input);
    let v = detach(json!({ "profileId": id, "type": "EXTERNAL" })).await;
    assert_eq!(code(&v), "BAD_USER_INPUT", "which external system: {v}");
    let v =
        detach(json!({ "profileId": id, "type": "EXTERNAL", "externalAuthType": "nowhere" })).await;
    assert_eq!(code(&v), "MISSING_IDENTITY_ERROR");
    for (kind, system) in [
        ("EXTERNAL", Some("corpdir")),
        ("EXTERNAL", Some("steam")),
        ("EMAIL", None),
    ] {
        let v = detach(json!({ "profileId": id, "type": kind, "externalAuthType": system })).await;
        assert_eq!(code(&v), "", "{v}");
    }
    let before = user(&t, "a", &id).await;
    assert_eq!(before["identities"].as_array().unwrap().len(), 1);
    assert_eq!(before["version"], json!(7));
    let ops = audit_ops(&t, &id).await;
    let v = detach(json!({ "profileId": id, "type": "UNIVERSAL_ID" })).await;
    assert_eq!(code(&v), "LAST_IDENTITY");
    assert_eq!(user(&t, "a", &id).await, before);
    assert_eq!(audit_ops(&t, &id).await, ops);
    assert_eq!(
        ops.iter().filter(|o| o.ends_with("Identity")).count(),
        6,
        "one event per change: {ops:?}"
    );
}
