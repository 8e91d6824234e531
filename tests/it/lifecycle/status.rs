//! disableUser and enableUser: links revoked and queued reset mail dropped, resets and links
//! refused while disabled (also for a link minted in a race), reads, updates, setPassword and
//! deleteUser still working, idempotent repeats, and the status filter of `users`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use usersvc::db::schema::{identities, one_time_tokens, outbox};

use super::*;
use crate::create::make_user;
use crate::harness::*;

const UPDATE: &str = "cloudcode:users:update";

async fn call(t: &TestApp, query: &str, id: &str) -> Value {
    let (status, v) = t.gql(&t.token("a", ALL), query, json!({ "id": id })).await;
    assert_eq!(status, 200);
    v
}

const RESET_EMAIL: &str =
    "mutation($id: ID!) { sendPasswordResetEmail(input: {profileId: $id}) { emailId } }";
const RESET_UNIVERSAL: &str =
    "mutation($id: ID!) { sendPasswordResetUniversalId(input: {profileId: $id}) { emailId } }";
const RESET_URL: &str = "mutation($id: ID!) { createPasswordResetUrl(input: {profileId: $id, identityType: UNIVERSAL_ID}) { url } }";
const DELETION_URL: &str =
    "mutation($id: ID!) { createSelfServiceDeletionUrl(input: {profileId: $id}) { url } }";

async fn status_of(t: &TestApp, url: &str) -> u16 {
    t.client.get(url).send().await.unwrap().status().as_u16()
}

async fn outbox_statuses(t: &TestApp) -> Vec<(String, String)> {
    outbox::table
        .order(outbox::created_at.asc())
        .select((outbox::kind, outbox::status))
        .load(&mut t.sql().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn disabling_revokes_links_drops_resets_and_refuses_them_until_enabled() {
    // No worker: the queued reset mail waits in the outbox for the disable to drop it.
    let t = TestApp::with(Options {
        mail_worker: false,
        ..Options::default()
    })
    .await;
    let id = make_universal(&t, "a", "dora", "first password").await;
    assert_eq!(code(&call(&t, RESET_UNIVERSAL, &id).await), "");
    let reset_link = call(&t, RESET_URL, &id).await["data"]["createPasswordResetUrl"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let deletion_link =
        call(&t, DELETION_URL, &id).await["data"]["createSelfServiceDeletionUrl"]["url"]
            .as_str()
            .unwrap()
            .to_owned();
    assert_eq!(status_of(&t, &reset_link).await, 200);
    assert_eq!(status_of(&t, &deletion_link).await, 200);

    let v = mutate(
        &t,
        "a",
        UPDATE,
        "disableUser",
        json!({ "profileId": id, "reason": " chargeback " }),
    )
    .await;
    let u = user_of(&v, "disableUser");
    assert_eq!(u["status"], json!("DISABLED"));
    assert_eq!(u["disabledReason"], json!("chargeback"));
    assert!(u["disabledAt"].is_string());
    assert_eq!(u["version"], json!(2));
    assert_eq!(
        last_audit_details(&t, &id).await["reason"],
        json!("chargeback")
    );
    assert_eq!(status_of(&t, &reset_link).await, 410);
    assert_eq!(status_of(&t, &deletion_link).await, 410);
    assert_eq!(
        outbox_statuses(&t).await,
        [("PASSWORD_RESET".to_owned(), "DROPPED".to_owned())]
    );

    // Resets and links are refused, and refusing writes nothing.
    let ops = audit_ops(&t, &id).await;
    for query in [RESET_EMAIL, RESET_UNIVERSAL, RESET_URL, DELETION_URL] {
        let v = call(&t, query, &id).await;
        assert_eq!(
            error_of(&v)["extensions"],
            json!({ "code": "USER_DISABLED" }),
            "{query}: {v}"
        );
    }
    assert_eq!(audit_ops(&t, &id).await, ops);
    assert_eq!(user(&t, "a", &id).await["version"], json!(2));
    let live: i64 = one_time_tokens::table
        .filter(one_time_tokens::revoked_at.is_null())
        .filter(one_time_tokens::used_at.is_null())
        .count()
        .get_result(&mut t.sql().await)
        .await
        .unwrap();
    assert_eq!(live, 0);

    // Disabling again changes nothing, reason and time included.
    let again = user_of(
        &mutate(
            &t,
            "a",
            UPDATE,
            "disableUser",
            json!({ "profileId": id, "reason": "something else" }),
        )
        .await,
        "disableUser",
    );
    assert_eq!(again, u);
    assert_eq!(audit_ops(&t, &id).await, ops);

    // Reads, updates and setPassword still work.
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "query($id: ID!) { userExport(profileId: $id) { profile { status } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        v["data"]["userExport"]["profile"]["status"],
        json!("DISABLED")
    );
    let v = mutate(
        &t,
        "a",
        UPDATE,
        "updateUser",
        json!({ "profileId": id, "userName": "Dora" }),
    )
    .await;
    assert_eq!(user_of(&v, "updateUser")["version"], json!(3));
    let (_, v) = t
        .gql(&t.token("a", ALL), "mutation($id: ID!) { setPassword(input: {profileId: $id, password: \"second password\"}) { user { version status } } }", json!({ "id": id }))
        .await;
    assert_eq!(
        v["data"]["setPassword"]["user"],
        json!({ "version": 4, "status": "DISABLED" }),
        "{v}"
    );

    let v = mutate(&t, "a", UPDATE, "enableUser", json!({ "profileId": id })).await;
    let u = user_of(&v, "enableUser");
    assert_eq!(u["status"], json!("ACTIVE"));
    assert_eq!(u["disabledAt"], Value::Null);
    assert_eq!(u["disabledReason"], Value::Null);
    assert_eq!(u["version"], json!(5));
    let ops = audit_ops(&t, &id).await;
    let again = user_of(
        &mutate(&t, "a", UPDATE, "enableUser", json!({ "profileId": id })).await,
        "enableUser",
    );
    assert_eq!(again, u);
    assert_eq!(audit_ops(&t, &id).await, ops);
    assert_eq!(
        ops.iter().filter(|o| o.ends_with("ableUser")).count(),
        2,
        "{ops:?}"
    );
    assert_eq!(
        code(&call(&t, RESET_URL, &id).await),
        "",
        "links work again"
    );

    // A disabled user can still be deleted.
    let other = make_user(&t, "a", "gone@example.com").await;
    mutate(
        &t,
        "a",
        UPDATE,
        "disableUser",
        json!({ "profileId": other }),
    )
    .await;
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "mutation($id: ID!) { deleteUser(input: {profileId: $id}) { deletedProfileIds } }",
            json!({ "id": other }),
        )
        .await;
    assert_eq!(v["data"]["deleteUser"]["deletedProfileIds"], json!([other]));
    let v = mutate(
        &t,
        "a",
        UPDATE,
        "disableUser",
        json!({ "profileId": other }),
    )
    .await;
    assert_eq!(code(&v), "PROFILE_NOT_FOUND");
}

#[tokio::test]
async fn a_link_or_mail_minted_in_a_race_with_disabling_is_refused_too() {
    let t = TestApp::with(Options {
        mail_worker: false,
        ..Options::default()
    })
    .await;
    let id = make_user(&t, "a", "race@example.com").await;
    assert_eq!(code(&call(&t, RESET_EMAIL, &id).await), "");
    mutate(&t, "a", UPDATE, "disableUser", json!({ "profileId": id })).await;
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    let mut conn = t.sql().await;

    // A reset mail a worker had claimed before the disable: the worker drops it unsent.
    diesel::update(outbox::table)
        .set(outbox::status.eq("QUEUED"))
        .execute(&mut conn)
        .await
        .unwrap();
    let running = t.server();
    let worker = usersvc::mail::outbox::Worker::new(
        running.db.clone(),
        running.transport.clone(),
        running.mail.clone(),
    );
    assert_eq!(worker.tick().await.unwrap(), 1);
    let (status, why): (String, Option<String>) = outbox::table
        .select((outbox::status, outbox::last_error))
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        (status.as_str(), why.as_deref()),
        ("DROPPED", Some("profile disabled"))
    );

    // A live link the worker minted just before the disable committed: the pages refuse it
    // and nothing changes.
    let (token, hash) = usersvc::links::new_token().unwrap();
    diesel::insert_into(one_time_tokens::table)
        .values((
            one_time_tokens::token_hash.eq(hash.to_vec()),
            one_time_tokens::app_id.eq("a"),
            one_time_tokens::profile_id.eq(uuid),
            one_time_tokens::purpose.eq("PASSWORD_RESET"),
            one_time_tokens::identity_kind.eq("EMAIL"),
            one_time_tokens::expires_at.eq(chrono::Utc::now() + chrono::Duration::hours(1)),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    let link = usersvc::links::reset_url(&t.base, &token);
    assert_eq!(status_of(&t, &link).await, 410);
    let hash_before: Option<String> = identities::table
        .select(identities::password_hash)
        .first(&mut conn)
        .await
        .unwrap();
    let resp = t
        .client
        .post(format!("{}/self-service/reset-password", t.base))
        .form(&[
            ("token", token.as_str()),
            ("password", "a new password"),
            ("confirmation", "a new password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 410);
    let hash_after: Option<String> = identities::table
        .select(identities::password_hash)
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(hash_before, hash_after);
    let used: Option<chrono::DateTime<chrono::Utc>> = one_time_tokens::table
        .filter(one_time_tokens::token_hash.eq(hash.to_vec()))
        .select(one_time_tokens::used_at)
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(used, None, "the refused attempt consumed nothing");
}

#[tokio::test]
async fn users_filter_by_status_and_bind_their_cursors_to_it() {
    let t = TestApp::new().await;
    let mut ids = Vec::new();
    for name in ["s1", "s2", "s3", "s4"] {
        ids.push(make_user(&t, "a", &format!("{name}@example.com")).await);
    }
    for id in [&ids[1], &ids[3]] {
        mutate(&t, "a", UPDATE, "disableUser", json!({ "profileId": id })).await;
    }
    let q = "query($f: UserFilter, $after: String) { users(first: 1, after: $after, filter: $f) { totalCount edges { cursor node { profileId status } } pageInfo { hasNextPage endCursor } } }";
    let page = |filter: Value, after: Value| {
        let t = &t;
        async move {
            let (_, v) = t
                .gql(
                    &t.token("a", ALL),
                    q,
                    json!({ "f": filter, "after": after }),
                )
                .await;
            v
        }
    };
    for (status, want) in [
        ("DISABLED", [&ids[1], &ids[3]]),
        ("ACTIVE", [&ids[0], &ids[2]]),
    ] {
        let first = page(json!({ "status": status }), Value::Null).await;
        let users = &first["data"]["users"];
        assert_eq!(users["totalCount"], json!(2), "{first}");
        assert_eq!(
            users["edges"][0]["node"],
            json!({ "profileId": want[0], "status": status })
        );
        assert_eq!(users["pageInfo"]["hasNextPage"], json!(true));
        let cursor = users["pageInfo"]["endCursor"].clone();
        let second = page(json!({ "status": status }), cursor.clone()).await;
        assert_eq!(
            second["data"]["users"]["edges"][0]["node"]["profileId"],
            json!(want[1])
        );
        assert_eq!(
            second["data"]["users"]["pageInfo"]["hasNextPage"],
            json!(false)
        );
        // The cursor belongs to its filter.
        for other in [
            json!({}),
            json!({ "status": if status == "ACTIVE" { "DISABLED" } else { "ACTIVE" } }),
        ] {
            let v = page(other.clone(), cursor.clone()).await;
            assert_eq!(code(&v), "INVALID_CURSOR", "{other}: {v}");
        }
    }
    assert_eq!(
        page(json!({}), Value::Null).await["data"]["users"]["totalCount"],
        json!(4)
    );
}
