//! E4 (a slow network or a partition between the server and PostgreSQL) and E1 (the database
//! down for a while under load), with a proxy in between: requests end within their budget,
//! with the retryable error when they fail, and the server serves again once the database is
//! reachable, in the same process.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use usersvc::http::HttpSettings;
use usersvc::server::Running;

use super::proxy::{Mode, Proxy};
use super::retryable;
use crate::harness::*;

const QUERY: &str = "{ users(first: 1) { totalCount } }";

/// A second server on the test's database, reaching it through a proxy.
async fn behind_proxy(t: &TestApp, request_timeout: Duration) -> (Proxy, Running, String) {
    let proxy = Proxy::start(&t.db_url).await;
    let running = t
        .another_instance(Options {
            db_url: Some(proxy.url.clone()),
            mail_worker: false,
            http: HttpSettings {
                request_timeout,
                ..HttpSettings::default()
            },
            ..Options::default()
        })
        .await;
    let base = format!("http://{}", running.addr);
    (proxy, running, base)
}

/// One GraphQL request; a request that does not end within the harness's wait is a hung one.
async fn ask(client: &reqwest::Client, base: &str, token: &str) -> (u16, Value) {
    let sent = client
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": QUERY }))
        .send();
    let resp = tokio::time::timeout(WAIT, sent)
        .await
        .expect("the request ended (none hangs)")
        .expect("an answer");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn status_of(client: &reqwest::Client, url: String) -> u16 {
    tokio::time::timeout(WAIT, client.get(url).send())
        .await
        .expect("answered")
        .expect("an answer")
        .status()
        .as_u16()
}

fn ok(answer: &(u16, Value)) -> bool {
    answer.0 == 200 && code(&answer.1).is_empty()
}

#[tokio::test]
async fn a_slow_network_to_the_database_slows_requests_without_failing_them() {
    let t = TestApp::new().await;
    let (proxy, _running, base) = behind_proxy(&t, Duration::from_secs(15)).await;
    let token = t.token("a", ALL);
    proxy.set(Mode::Latency(Duration::from_millis(30)));
    let answers =
        futures_util::future::join_all((0..6).map(|_| ask(&t.client, &base, &token))).await;
    for answer in &answers {
        assert!(ok(answer), "{answer:?}");
    }
}

#[tokio::test]
async fn a_partition_fails_requests_within_their_budget_and_the_server_recovers() {
    let t = TestApp::new().await;
    let (proxy, running, base) = behind_proxy(&t, Duration::from_secs(2)).await;
    let token = t.token("a", ALL);
    let warm = futures_util::future::join_all((0..4).map(|_| ask(&t.client, &base, &token))).await;
    assert!(warm.iter().all(ok), "{warm:?}");
    // Nothing gets through any more, and nothing is closed: each request ends on its deadline
    // with the retryable error; the server itself still answers.
    proxy.set(Mode::Stall);
    let cut = futures_util::future::join_all((0..6).map(|_| ask(&t.client, &base, &token))).await;
    for (status, v) in &cut {
        assert!(matches!(status, 200 | 503) && retryable(v), "{status} {v}");
    }
    assert_eq!(status_of(&t.client, format!("{base}/healthz")).await, 200);
    assert_eq!(status_of(&t.client, format!("{base}/readyz")).await, 503);
    // The network heals: the same process serves again, and holds no more connections to the
    // database than its pool counts.
    proxy.set(Mode::Pass);
    eventually(WAIT, || async {
        let answer = ask(&t.client, &base, &token).await;
        if ok(&answer) { Ok(()) } else { Err(answer) }
    })
    .await;
    for _ in 0..20 {
        let answer = ask(&t.client, &base, &token).await;
        assert!(ok(&answer), "{answer:?}");
    }
    assert_eq!(status_of(&t.client, format!("{base}/readyz")).await, 200);
    eventually(WAIT, || async {
        let (size, _, waiting) = running.db.status();
        if proxy.open() == size && waiting == 0 {
            Ok(())
        } else {
            Err(format!(
                "{} through the proxy, pool {size}, {waiting} waiting",
                proxy.open()
            ))
        }
    })
    .await;
}

/// Where a load run is: before the outage, during it, or once the server has recovered.
const BEFORE: u8 = 0;
const DOWN: u8 = 1;
const HEALING: u8 = 2;
const RECOVERED: u8 = 3;

#[tokio::test]
async fn a_database_outage_under_load_gives_retryable_errors_then_the_server_recovers() {
    let t = TestApp::new().await;
    let (proxy, _running, base) = behind_proxy(&t, Duration::from_secs(15)).await;
    let token = t.token("a", ALL);
    let phase = Arc::new(AtomicU8::new(BEFORE));
    let seen = Arc::new(std::sync::Mutex::new(Vec::<(u8, (u16, Value))>::new()));
    // Four clients ask in a loop until the run ends, each answer noted with the phase its
    // request started in.
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (client, base, token) = (t.client.clone(), base.clone(), token.clone());
        let (phase, seen) = (phase.clone(), seen.clone());
        load.spawn(async move {
            loop {
                let started = phase.load(Ordering::SeqCst);
                if started > RECOVERED {
                    return;
                }
                let answer = ask(&client, &base, &token).await;
                seen.lock().unwrap().push((started, answer));
            }
        });
    }
    let count = |p: u8, pred: fn(&(u16, Value)) -> bool| {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|(at, a)| *at == p && pred(a))
            .count()
    };
    eventually(WAIT, || async {
        match count(BEFORE, ok) {
            n if n >= 10 => Ok(()),
            n => Err(n),
        }
    })
    .await;
    // The database goes down: every connection is reset and new ones are refused.
    phase.store(DOWN, Ordering::SeqCst);
    proxy.set(Mode::Down);
    eventually(WAIT, || async {
        match count(DOWN, |a| !ok(a)) {
            n if n >= 10 => Ok(()),
            n => Err(n),
        }
    })
    .await;
    assert_eq!(status_of(&t.client, format!("{base}/readyz")).await, 503);
    // It comes back.
    phase.store(HEALING, Ordering::SeqCst);
    proxy.set(Mode::Pass);
    eventually(WAIT, || async {
        match count(HEALING, ok) {
            0 => Err("no success yet"),
            _ => Ok(()),
        }
    })
    .await;
    phase.store(RECOVERED, Ordering::SeqCst);
    eventually(WAIT, || async {
        match seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at == RECOVERED)
            .count()
        {
            n if n >= 100 => Ok(()),
            n => Err(n),
        }
    })
    .await;
    phase.store(RECOVERED + 1, Ordering::SeqCst);
    while let Some(done) = load.join_next().await {
        done.expect("a load client");
    }
    assert_eq!(status_of(&t.client, format!("{base}/readyz")).await, 200);
    let seen = seen.lock().unwrap();
    // Every failure, whenever it came, is the retryable error: never another code, a panic's
    // 500 or a hang.
    for (_, (status, v)) in seen.iter().filter(|(_, a)| !ok(a)) {
        assert!(matches!(status, 200 | 503) && retryable(v), "{status} {v}");
    }
    // Once recovered, at least 99% succeed.
    let after: Vec<_> = seen.iter().filter(|(at, _)| *at == RECOVERED).collect();
    let good = after.iter().filter(|(_, a)| ok(a)).count();
    assert!(good * 100 >= after.len() * 99, "{good} of {}", after.len());
}
