//! The hosted pages and the reset calls behind them: guessing at the consume endpoints (B6),
//! what a reset request tells about who exists (B7), and a reset racing `setPassword` (G5).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use usersvc::db::schema::{identities, one_time_tokens};

use super::*;
use crate::create::make_user;

const RESET_URL: &str = "mutation($id: ID!) { createPasswordResetUrl(input: {profileId: $id, identityType: EMAIL}) { url } }";
const DELETION_URL: &str =
    "mutation($id: ID!) { createSelfServiceDeletionUrl(input: {profileId: $id}) { url } }";

/// The value of `name` in a link's query string.
fn param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("{name} in {url}"))
        .1
        .into_owned()
}

async fn link(t: &TestApp, query: &str, id: &str) -> String {
    let (_, v) = t.gql(&t.token("a", ALL), query, json!({ "id": id })).await;
    let field = if query.contains("Deletion") {
        "createSelfServiceDeletionUrl"
    } else {
        "createPasswordResetUrl"
    };
    v["data"][field]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned()
}

async fn post(client: &reqwest::Client, url: String, form: Vec<(&'static str, String)>) -> u16 {
    client
        .post(url)
        .form(&form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A random token of the real ones' shape: 32 bytes, base64url.
fn random_token() -> String {
    let mut bytes = uuid::Uuid::new_v4().as_bytes().to_vec();
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The real token with one character changed.
fn altered(token: &str, at: usize) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let i = at % chars.len();
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// The profile's password hash and its links' state: what a refused attempt must not touch.
async fn at_rest(t: &TestApp, id: &str) -> (Option<String>, Vec<(String, bool, bool)>) {
    let uuid = uuid::Uuid::parse_str(id).unwrap();
    let mut conn = t.sql().await;
    let hash = identities::table
        .filter(
            identities::profile_id
                .eq(uuid)
                .and(identities::kind.eq("EMAIL")),
        )
        .select(identities::password_hash)
        .first(&mut conn)
        .await
        .unwrap();
    let mut links: Vec<(String, bool, bool)> = one_time_tokens::table
        .filter(one_time_tokens::profile_id.eq(uuid))
        .select((
            one_time_tokens::purpose,
            one_time_tokens::used_at.is_not_null(),
            one_time_tokens::revoked_at.is_not_null(),
        ))
        .load(&mut conn)
        .await
        .unwrap();
    links.sort();
    (hash, links)
}

#[tokio::test]
async fn fifty_concurrent_wrong_submissions_are_refused_and_change_nothing() {
    let t = TestApp::new().await;
    // One profile with a reset link, another with a deletion link (a password change revokes
    // every link of its profile, so one profile could not show both working afterwards).
    let id = make_user(&t, "a", "target@example.com").await;
    let other = make_user(&t, "a", "other@example.com").await;
    let reset = link(&t, RESET_URL, &id).await;
    let deletion = link(&t, DELETION_URL, &other).await;
    let (token, deletion_token) = (param(&reset, "token"), param(&deletion, "deletionToken"));
    let before = (at_rest(&t, &id).await, at_rest(&t, &other).await);
    assert_eq!((before.0.1.len(), before.1.1.len()), (1, 1), "{before:?}");

    let reset_post = format!("{}/self-service/reset-password", t.base);
    let delete_post = format!("{}/self-service/delete-account", t.base);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let client = t.client.clone();
        let pw = format!("guessed password {i}");
        let (url, form) = match i % 5 {
            0 => (
                reset_post.clone(),
                vec![
                    ("token", random_token()),
                    ("password", pw.clone()),
                    ("confirmation", pw),
                ],
            ),
            1 => (
                reset_post.clone(),
                vec![
                    ("token", altered(&token, i)),
                    ("password", pw.clone()),
                    ("confirmation", pw),
                ],
            ),
            2 => (
                delete_post.clone(),
                vec![
                    ("appId", "a".into()),
                    ("deletionToken", random_token()),
                    ("profileId", other.clone()),
                ],
            ),
            3 => (
                delete_post.clone(),
                vec![
                    ("appId", "a".into()),
                    ("deletionToken", altered(&deletion_token, i)),
                    ("profileId", other.clone()),
                ],
            ),
            // The real deletion token sent for another app or another profile.
            _ if i % 2 == 0 => (
                delete_post.clone(),
                vec![
                    ("appId", "b".into()),
                    ("deletionToken", deletion_token.clone()),
                    ("profileId", other.clone()),
                ],
            ),
            _ => (
                delete_post.clone(),
                vec![
                    ("appId", "a".into()),
                    ("deletionToken", deletion_token.clone()),
                    ("profileId", id.clone()),
                ],
            ),
        };
        tasks.spawn(async move { post(&client, url, form).await });
    }
    let statuses = tasks.join_all().await;
    assert!(
        statuses.iter().all(|s| *s == 400),
        "every guess is refused as not valid: {statuses:?}"
    );
    let after = (at_rest(&t, &id).await, at_rest(&t, &other).await);
    assert_eq!(after, before, "refused guesses change nothing");

    // The real links still work, each once.
    let pw = "the owner's new password".to_owned();
    let form = vec![
        ("token", token.clone()),
        ("password", pw.clone()),
        ("confirmation", pw),
    ];
    assert_eq!(post(&t.client, reset_post.clone(), form.clone()).await, 200);
    assert_eq!(post(&t.client, reset_post, form).await, 410);
    let form = vec![
        ("appId", "a".into()),
        ("deletionToken", deletion_token),
        ("profileId", other.clone()),
    ];
    assert_eq!(post(&t.client, delete_post, form).await, 200);
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "query($id: ID!) { userInfo(profileId: $id) { profileId } }",
            json!({ "id": other }),
        )
        .await;
    assert!(v["data"]["userInfo"].is_null(), "{v}");
}

const SEND_RESET: &str =
    "mutation($id: ID!) { sendPasswordResetEmail(input: {profileId: $id}) { emailId } }";

#[tokio::test]
async fn reset_requests_say_nothing_about_profiles_outside_the_callers_app() {
    let t = TestApp::new().await;
    let victim = make_user(&t, "b", "victim@example.com").await;
    // The victim's own app uses up its per-profile reset limit.
    let b = t.token("b", "cloudcode:users:password");
    let mut codes = Vec::new();
    for _ in 0..6 {
        let (_, v) = t.gql(&b, SEND_RESET, json!({ "id": victim })).await;
        codes.push(code(&v));
    }
    assert_eq!(codes.last().unwrap(), "RATE_LIMITED", "{codes:?}");
    // To any other app, the victim, limited or not, is a profile that does not exist: same
    // status, same body, for both reset calls and for both kinds of URL.
    let a = t.token("a", "cloudcode:users:password cloudcode:users:deletion-url");
    for query in [
        SEND_RESET,
        "mutation($id: ID!) { sendPasswordResetUniversalId(input: {profileId: $id}) { emailId } }",
        RESET_URL,
        DELETION_URL,
    ] {
        let mut answers: Vec<(u16, Value)> = Vec::new();
        for id in [
            victim.clone(),
            uuid::Uuid::now_v7().to_string(),
            "00000000-0000-7000-8000-000000000000".into(),
        ] {
            let (s, v) = t.gql(&a, query, json!({ "id": id })).await;
            answers.push((s, without_locations(v)));
        }
        assert_eq!(
            code(&answers[0].1),
            "PROFILE_NOT_FOUND",
            "{query}: {answers:?}"
        );
        assert!(
            answers.iter().all(|a| *a == answers[0]),
            "{query}: {answers:?}"
        );
    }
}

const SET_PASSWORD: &str = "mutation($id: ID!, $pw: String!) { setPassword(input: {profileId: $id, password: $pw, identityType: EMAIL}) { user { profileId } } }";
const VERIFY: &str = "mutation($pw: String!) { verifyPassword(input: {type: EMAIL, externalId: \"racer@example.com\", password: $pw}) { user { profileId } } }";

#[tokio::test]
async fn a_reset_racing_set_password_ends_as_one_of_the_two_serial_orders() {
    let t = TestApp::new().await;
    let id = make_user(&t, "a", "racer@example.com").await;
    let tok = t.token("a", ALL);
    let reset_post = format!("{}/self-service/reset-password", t.base);
    let mut outcomes = Vec::new();
    for round in 0..12 {
        let token = param(&link(&t, RESET_URL, &id).await, "token");
        let (by_link, by_admin) = (
            format!("link password {round}"),
            format!("admin password {round}"),
        );
        let form = vec![
            ("token", token.clone()),
            ("password", by_link.clone()),
            ("confirmation", by_link.clone()),
        ];
        let (page, admin) = tokio::join!(
            post(&t.client, reset_post.clone(), form.clone()),
            t.gql(&tok, SET_PASSWORD, json!({ "id": id, "pw": by_admin })),
        );
        assert_eq!(code(&admin.1), "", "setPassword always succeeds: {admin:?}");
        // Reset first: it succeeds and setPassword overwrites it. setPassword first: it
        // revokes the link, which then answers 410. Either way the admin's password holds.
        assert!(page == 200 || page == 410, "round {round}: {page}");
        let (_, v) = t.gql(&tok, VERIFY, json!({ "pw": by_admin })).await;
        assert_eq!(
            v["data"]["verifyPassword"]["user"]["profileId"],
            json!(id),
            "round {round}: the admin's password is the one that holds: {v}"
        );
        let (_, v) = t.gql(&tok, VERIFY, json!({ "pw": by_link })).await;
        assert_eq!(code(&v), "INVALID_CREDENTIALS", "round {round}: {v}");
        // The link was consumed at most once: it never works again.
        assert_eq!(
            post(&t.client, reset_post.clone(), form).await,
            410,
            "round {round}"
        );
        outcomes.push(page);
    }
    let mut conn = t.sql().await;
    let live: i64 = one_time_tokens::table
        .filter(
            one_time_tokens::used_at
                .is_null()
                .and(one_time_tokens::revoked_at.is_null()),
        )
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(live, 0, "no link survived its race: {outcomes:?}");
}

#[tokio::test]
async fn concurrent_confirmations_of_one_deletion_link_have_one_winner() {
    let t = TestApp::new().await;
    let id = make_user(&t, "a", "twice@example.com").await;
    let url = link(&t, DELETION_URL, &id).await;
    let form = vec![
        ("appId", "a".to_owned()),
        ("deletionToken", param(&url, "deletionToken")),
        ("profileId", id.clone()),
    ];
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (client, post_url, form) = (
            t.client.clone(),
            format!("{}/self-service/delete-account", t.base),
            form.clone(),
        );
        tasks.spawn(async move { post(&client, post_url, form).await });
    }
    let mut statuses = tasks.join_all().await;
    statuses.sort();
    assert_eq!(statuses[0], 200, "{statuses:?}");
    // Every other confirmation learns the link was used (410), whether it raced the winner or
    // came after the account and its links were gone.
    assert!(statuses[1..].iter().all(|s| *s == 410), "{statuses:?}");
    let mut conn = t.sql().await;
    let events: i64 = usersvc::db::schema::audit_events::table
        .filter(usersvc::db::schema::audit_events::operation.eq("deleteUser"))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(events, 1, "deleted once");
}

#[tokio::test]
async fn a_deletion_confirmation_racing_set_password_ends_as_one_of_the_two_serial_orders() {
    let t = TestApp::new().await;
    let tok = t.token("a", ALL);
    let delete_post = format!("{}/self-service/delete-account", t.base);
    for round in 0..8 {
        let id = make_user(&t, "a", &format!("leaver{round}@example.com")).await;
        let url = link(&t, DELETION_URL, &id).await;
        let form = vec![
            ("appId", "a".to_owned()),
            ("deletionToken", param(&url, "deletionToken")),
            ("profileId", id.clone()),
        ];
        let (page, (_, admin)) = tokio::join!(
            post(&t.client, delete_post.clone(), form),
            t.gql(
                &tok,
                SET_PASSWORD,
                json!({ "id": id, "pw": "the admin's password" })
            ),
        );
        let (_, v) = t
            .gql(
                &tok,
                "query($id: ID!) { userInfo(profileId: $id) { profileId } }",
                json!({ "id": id }),
            )
            .await;
        match page {
            // Deleted first: setPassword finds no profile.
            200 => {
                assert_eq!(code(&admin), "PROFILE_NOT_FOUND", "round {round}: {admin}");
                assert!(v["data"]["userInfo"].is_null(), "round {round}: {v}");
            }
            // setPassword first: it revoked the link, and the profile stays.
            410 => {
                assert_eq!(code(&admin), "", "round {round}: {admin}");
                assert_eq!(
                    v["data"]["userInfo"]["profileId"],
                    json!(id),
                    "round {round}: {v}"
                );
            }
            other => panic!("round {round}: the page answered {other}; setPassword: {admin}"),
        }
    }
}
