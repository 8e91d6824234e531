//! The server process's memory under the worst a caller may ask for, measured on the real
//! `usersvc serve` (a child process, so that only the server is measured): the heaviest reads
//! the limits allow (contract §9), and a burst of password hashing (SECURITY.md A2).

use std::sync::atomic::{AtomicUsize, Ordering};

use diesel_async::SimpleAsyncConnection;
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::harness::*;
use crate::served::Served;

/// What the server may hold at its peak, in KiB.
const CEILING_KIB: u64 = 256 * 1024;

/// The largest summaryFriendData there is, and the costliest to hold: 16 KiB of JSON made of
/// the smallest elements (`[0,0,…]`).
fn heaviest_friend_data() -> Value {
    Value::Array(vec![json!(0); 8191])
}

/// Every field of a user.
const USER: &str = "fragment U on User { profileId appId userName contactEmail countryCode
    languageCode timeZoneOffset pictureUrl isTester summaryFriendData parentProfileId createdAt
    updatedAt lastLoginAt status disabledAt disabledReason loginCount version }";

fn aliases(n: usize, field: &str) -> String {
    (0..n).map(|i| format!("a{i}: {field} ")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worst_request_the_limits_allow_stays_within_the_memory_ceiling() {
    let t = TestApp::new().await;
    // A parent with as many children as the rules allow it: one per child app.
    let kids: Vec<String> = (0..20).map(|i| format!("kid{i}")).collect();
    for kid in &kids {
        usersvc::apps::create(&mut t.db.pool(), kid, kid, Some("parent"))
            .await
            .unwrap();
    }
    let create = "mutation($in: CreateUserExternalAuthInput!) {
        createUserExternalAuth(input: $in) { user { profileId } } }";
    let big = |id: &str, parent: Option<&str>| {
        json!({ "in": {
            "externalId": id, "externalAuthType": "corp",
            "userName": "n".repeat(128),
            "contactEmail": format!("{}@example.com", "c".repeat(60)),
            "pictureUrl": format!("https://example.com/{}", "p".repeat(2000)),
            "summaryFriendData": heaviest_friend_data(),
            "parentProfileId": parent,
        }})
    };
    let (_, v) = t
        .gql(&t.token("parent", ALL), create, big("mum", None))
        .await;
    let parent = v["data"]["createUserExternalAuth"]["user"]["profileId"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned();
    for kid in kids.iter().chain(["child".to_owned()].iter()) {
        let (_, v) = t
            .gql(&t.token(kid, ALL), create, big("kid", Some(&parent)))
            .await;
        assert_eq!(code(&v), "", "{v}");
    }
    // The largest pages: 600 more profiles like the parent (copied in SQL, for speed).
    t.sql()
        .await
        .batch_execute(&format!(
            "INSERT INTO profiles (app_id, profile_id, user_name, contact_email, picture_url, summary_friend_data)
             SELECT app_id, gen_random_uuid(), user_name, contact_email, picture_url, summary_friend_data
               FROM profiles, generate_series(1, 600) WHERE profile_id = '{parent}'"
        ))
        .await
        .unwrap();

    let server = Served::start(&t, &[]).await;
    let client = reqwest::Client::new();
    let tok = t.token("parent", ALL);
    let user = "userInfo(profileId: $p) { ...U identities { type externalId externalAuthType hasPassword createdAt }
        children { ...U identities { type externalId } } }";
    let export =
        "userExport(profileId: $p) { document profile { ...U } credentials { type externalId }
        children { ...U } auditEvents { id actor operation details } }";
    let worst = [
        // Every root field a user with all its children.
        format!("query($p: ID!) {{ {} }} {USER}", aliases(20, user)),
        // Every root field a full page of the heaviest field.
        format!(
            "{{ {} }}",
            aliases(20, "users(first: 500) { nodes { summaryFriendData } }")
        ),
        // As many full pages of whole users as the complexity limit allows, as nodes and edges.
        format!(
            "{{ {} }} {USER}",
            aliases(4, "users(first: 500) { nodes { ...U } }")
        ),
        format!(
            "{{ {} }} {USER}",
            aliases(4, "users(last: 500) { edges { cursor node { ...U } } }")
        ),
        // Every root field the parent's export.
        format!("query($p: ID!) {{ {} }} {USER}", aliases(20, export)),
    ];
    for round in 0..2 {
        for q in &worst {
            let (status, body) = server
                .post(
                    &client,
                    &tok,
                    &json!({ "query": q, "variables": { "p": parent } }),
                )
                .await;
            assert_eq!(status, 200, "{body:.300}");
            assert!(body.len() <= 8 * 1024 * 1024, "{} bytes", body.len());
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(code(&v), "RESPONSE_TOO_LARGE", "round {round}: {body:.300}");
        }
    }
    // A big response within the budget is still served whole.
    let q = format!("{{ users(first: 40) {{ nodes {{ ...U }} }} }} {USER}");
    let (_, body) = server.post(&client, &tok, &json!({ "query": q })).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["data"]["users"]["nodes"].as_array().map(Vec::len),
        Some(40),
        "{body:.300}"
    );

    let peak = server.status_kib("VmHWM");
    assert!(
        peak < CEILING_KIB,
        "the server's resident set peaked at {peak} KiB (ceiling {CEILING_KIB} KiB)"
    );
}

/// SECURITY.md A2: a burst of password hashing stays within its threads and its memory, and
/// other requests, of another app too, keep being served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hashing_burst_keeps_its_cap_its_memory_and_other_apps_served() {
    let t = TestApp::new().await;
    let server = Served::start(&t, &[("USERSVC_HASH_CONCURRENCY", "2")]).await;
    let client = reqwest::Client::new();
    let create = "mutation($in: CreateUserEmailPasswordInput!) {
        createUserEmailPassword(input: $in) { user { profileId } } }";
    let make = |app: &'static str, i: usize| {
        let client = client.clone();
        let server = &server;
        async move {
            let body = json!({ "query": create, "variables": { "in": {
                "email": format!("u{i}@{app}.example.com"), "password": "correct horse battery" } } });
            let (_, text) = server.post(&client, &token_for(app, ALL), &body).await;
            serde_json::from_str::<Value>(&text).unwrap()
        }
    };
    let reader = make("b", 0).await;
    let read_id = reader["data"]["createUserEmailPassword"]["user"]["profileId"]
        .as_str()
        .unwrap_or_else(|| panic!("{reader}"))
        .to_owned();

    // 32 creates of app a at once (32 × 19 MiB of argon2 memory, were they run together).
    let done = AtomicUsize::new(0);
    let burst = join_all((0..32).map(|i| {
        let (create, done) = (make("a", i), &done);
        async move {
            let v = create.await;
            done.fetch_add(1, Ordering::SeqCst);
            v
        }
    }));
    // Meanwhile app b reads and creates.
    let read = json!({ "query": "query($p: ID!) { userInfo(profileId: $p) { profileId } }",
        "variables": { "p": read_id } });
    let others = async {
        for _ in 0..10 {
            let (_, text) = server.post(&client, &token_for("b", ALL), &read).await;
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["data"]["userInfo"]["profileId"], json!(read_id), "{v}");
        }
        let other = make("b", 1).await;
        (other, done.load(Ordering::SeqCst))
    };
    let (created, (other, burst_done)) = tokio::join!(burst, others);
    assert_eq!(code(&other), "", "{other}");
    assert!(
        burst_done < 32,
        "app b's create went through while app a's burst still waited for its share"
    );
    for v in &created {
        assert_eq!(code(v), "", "{v}");
    }

    let hashers = server
        .thread_names()
        .into_iter()
        .filter(|n| n.starts_with("usersvc-hash-"))
        .count();
    assert_eq!(hashers, 2, "USERSVC_HASH_CONCURRENCY threads hash, no more");
    let peak = server.status_kib("VmHWM");
    assert!(
        peak < CEILING_KIB,
        "the server's resident set peaked at {peak} KiB (ceiling {CEILING_KIB} KiB)"
    );
}
