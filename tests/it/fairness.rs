//! One app cannot starve another (contract §9): a request works through its app's share of the
//! database pool, so a flood from one app leaves connections to the others; and when the pool
//! is exhausted, a checkout fails fast with a retryable error (SECURITY.md E2).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use serde_json::{Value, json};

use crate::create::make_user;
use crate::harness::*;
use crate::served::Served;

/// The acceptance bound for the other app's p99 under a flood.
const P99_BOUND: Duration = Duration::from_millis(2500);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_from_one_app_leaves_another_apps_reads_served() {
    let t = TestApp::new().await;
    let reader = make_user(&t, "a", "reader@example.com").await;
    // The flooding app has many users, so that every count is a real scan.
    t.sql()
        .await
        .batch_execute(
            "INSERT INTO profiles (app_id, profile_id, user_name)
             SELECT 'b', gen_random_uuid(), 'user ' || i FROM generate_series(1, 50000) i",
        )
        .await
        .unwrap();
    // The heaviest requests the limits allow: as many counts as the complexity limit takes,
    // and every root field a full page.
    let counts: String = (0..9)
        .map(|i| format!("c{i}: users(first: 0) {{ totalCount }} "))
        .collect();
    let pages: String = (0..20)
        .map(|i| format!("p{i}: users(first: 500, filter: {{userNamePrefix: \"user 1\"}}) {{ nodes {{ profileId userName }} }} "))
        .collect();
    let heavy = [format!("{{ {counts} }}"), format!("{{ {pages} }}")];

    let stop = AtomicBool::new(false);
    let flood_token = t.token("b", ALL);
    let flood = futures_util::future::join_all((0..24).map(|i| {
        let (q, stop, t, tok) = (&heavy[i % 2], &stop, &t, &flood_token);
        async move {
            let mut served = 0;
            while !stop.load(Ordering::Relaxed) {
                // The flood may overload its own app (its requests may run out of time: 503);
                // what matters is the other app.
                let (status, v) = t.gql(tok, q, json!({})).await;
                assert!(status == 200 || status == 503, "{status}: {v}");
                served += 1;
            }
            served
        }
    }));
    let tok = t.token("a", ALL);
    let reads = async {
        let mut took = Vec::new();
        for _ in 0..200 {
            let started = Instant::now();
            let (_, v) = t
                .gql(
                    &tok,
                    "query($p: ID!) { userInfo(profileId: $p) { profileId userName } }",
                    json!({ "p": reader }),
                )
                .await;
            took.push(started.elapsed());
            assert_eq!(v["data"]["userInfo"]["profileId"], json!(reader), "{v}");
        }
        stop.store(true, Ordering::Relaxed);
        took
    };
    let (flooded, mut took) = tokio::join!(flood, reads);
    assert!(
        flooded.iter().all(|&n| n > 0),
        "every flooding client was served: {flooded:?}"
    );
    took.sort();
    let p99 = took[took.len() * 99 / 100 - 1];
    assert!(
        p99 < P99_BOUND,
        "p99 of app a's reads under app b's flood: {p99:?}"
    );
}

async fn lock_profiles(t: &TestApp) -> AsyncPgConnection {
    let mut conn = AsyncPgConnection::establish(&t.db_url).await.unwrap();
    conn.batch_execute("BEGIN; LOCK TABLE profiles IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    conn
}

/// SECURITY.md E2: with every connection taken, a request waits no longer than the acquire
/// timeout and gets a typed, retryable error; the server recovers once connections come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_fails_fast_with_a_retryable_error() {
    let t = TestApp::new().await;
    let ids = [
        make_user(&t, "a", "a@example.com").await,
        make_user(&t, "b", "b@example.com").await,
        make_user(&t, "parent", "p@example.com").await,
    ];
    // Two connections (one app may hold one of them), a short wait for one, long statements.
    let server = Served::start(
        &t,
        &[
            ("USERSVC_DB_POOL_SIZE", "2"),
            ("USERSVC_DB_ACQUIRE_TIMEOUT_MS", "300"),
            ("USERSVC_DB_STATEMENT_TIMEOUT_MS", "60000"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let read = |app: &'static str, id: &str| {
        let (client, server) = (&client, &server);
        let body = json!({ "query": "query($p: ID!) { userInfo(profileId: $p) { profileId } }",
            "variables": { "p": id } });
        async move {
            let (status, text) = server.post(client, &token_for(app, ALL), &body).await;
            (status, serde_json::from_str::<Value>(&text).unwrap())
        }
    };
    let mut lock = lock_profiles(&t).await;
    // Apps a and b each take a connection, and wait on the lock holding it.
    let held_a = tokio::spawn({
        let (client, base, id) = (client.clone(), server.base.clone(), ids[0].clone());
        async move { blocked_read(&client, &base, "a", &id).await }
    });
    let held_b = tokio::spawn({
        let (client, base, id) = (client.clone(), server.base.clone(), ids[1].clone());
        async move { blocked_read(&client, &base, "b", &id).await }
    });
    eventually(WAIT, || async {
        let waiting = waiting_on_lock(&t).await;
        if waiting == 2 { Ok(()) } else { Err(waiting) }
    })
    .await;
    // App a again: its share is held. Another app: the pool is empty. Both answer while the
    // connections are still held, with a retryable error.
    for (app, id) in [("a", &ids[0]), ("parent", &ids[2])] {
        let (status, v) = read(app, id).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(code(&v), "INTERNAL_SERVER_ERROR", "{app}: {v}");
        assert_eq!(
            v["errors"][0]["extensions"]["retryable"],
            json!(true),
            "{v}"
        );
        assert!(v["errors"][0]["extensions"]["requestId"].is_string(), "{v}");
        assert!(
            !held_a.is_finished() && !held_b.is_finished(),
            "the lock still holds"
        );
    }
    lock.batch_execute("ROLLBACK").await.unwrap();
    for held in [held_a, held_b] {
        let v = held.await.unwrap();
        assert!(v["errors"].is_null(), "{v}");
    }
    let (_, v) = read("parent", &ids[2]).await;
    assert_eq!(v["data"]["userInfo"]["profileId"], json!(ids[2]), "{v}");
}

/// The acquire timeout bounds a request's wait, not the server's start: with a timeout shorter
/// than the database takes to open any connection, the server still starts, and serves from
/// the connection it opened then.
#[tokio::test]
async fn a_server_starts_although_a_connection_takes_longer_to_open_than_the_acquire_timeout() {
    let t = TestApp::new().await;
    let id = make_user(&t, "a", "a@example.com").await;
    let server = Served::start(
        &t,
        &[
            ("USERSVC_DB_POOL_SIZE", "1"),
            ("USERSVC_DB_ACQUIRE_TIMEOUT_MS", "1"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let body = json!({ "query": "query($p: ID!) { userInfo(profileId: $p) { profileId } }",
        "variables": { "p": id } });
    // The mail worker shares the one connection: a request that meets it busy is refused as
    // retryable, and served once it is free.
    eventually(WAIT, || async {
        let (status, text) = server.post(&client, &token_for("a", ALL), &body).await;
        let v: Value = serde_json::from_str(&text).unwrap();
        if status == 200 && v["data"]["userInfo"]["profileId"] == json!(id) {
            Ok(())
        } else {
            Err(format!("{status}: {v}"))
        }
    })
    .await;
}

async fn blocked_read(client: &reqwest::Client, base: &str, app: &str, id: &str) -> Value {
    client
        .post(format!("{base}/graphql"))
        .bearer_auth(token_for(app, ALL))
        .json(
            &json!({ "query": "query($p: ID!) { userInfo(profileId: $p) { profileId } }",
            "variables": { "p": id } }),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[derive(diesel::QueryableByName)]
struct Waiting {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Sessions of the server waiting for a lock.
async fn waiting_on_lock(t: &TestApp) -> i64 {
    use diesel_async::RunQueryDsl;
    let rows: Vec<Waiting> = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity
          WHERE application_name = 'usersvc' AND wait_event_type = 'Lock' AND datname = current_database()",
    )
    .load(&mut t.sql().await)
    .await
    .unwrap();
    rows[0].n
}

/// One cause failing every alias of a request is logged once for the request, not once per
/// alias (a request of 20 aliases against a database that refuses connections).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_of_many_aliases_is_logged_once_per_request() {
    let t = TestApp::new().await;
    let id = make_user(&t, "a", "a@example.com").await;
    let server = Served::start(&t, &[("USERSVC_DB_ACQUIRE_TIMEOUT_MS", "500")]).await;
    // Closed to new connections; the server's open ones are ended.
    let admin = t.db_url.replace(&format!("/{}", t.db_name), "/postgres");
    AsyncPgConnection::establish(&admin)
        .await
        .unwrap()
        .batch_execute(&format!(
            "ALTER DATABASE {0} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{0}'",
            t.db_name
        ))
        .await
        .unwrap();
    let aliases: String = (0..20)
        .map(|i| format!("u{i}: userInfo(profileId: $p) {{ profileId }} "))
        .collect();
    let (status, text) = server
        .post(
            &reqwest::Client::new(),
            &token_for("a", ALL),
            &json!({ "query": format!("query($p: ID!) {{ {aliases} }}"), "variables": { "p": id } }),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 20, "every alias failed: {v}");
    let request_id = errors[0]["extensions"]["requestId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        errors
            .iter()
            .all(|e| e["extensions"]["retryable"] == json!(true)),
        "{v}"
    );
    let logged = eventually(WAIT, || async {
        let lines: Vec<String> = server
            .log_lines()
            .into_iter()
            .filter(|l| {
                l.contains(&request_id) && l.contains("ERROR") && l.contains("request failed")
            })
            .collect();
        if lines.is_empty() {
            Err("no line yet")
        } else {
            Ok(lines)
        }
    })
    .await;
    assert_eq!(logged.len(), 1, "{logged:#?}");
    AsyncPgConnection::establish(&admin)
        .await
        .unwrap()
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            t.db_name
        ))
        .await
        .unwrap();
}
