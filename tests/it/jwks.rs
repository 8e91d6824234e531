//! Keys from an identity provider's JWKS URL: a real HTTP server in this process publishes the
//! keys and counts the fetches; the server under test reads the time from a clock the test
//! moves, so cache lifetimes and the refetch cooldown pass without waiting.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};
use usersvc::auth::Clock;

use crate::harness::*;
use crate::signing::TestKey;

const Q: &str = "{ __typename }";

/// What the identity provider publishes, and what it has been asked.
#[derive(Default)]
struct Published {
    keys: Mutex<Vec<Value>>,
    cache_control: Mutex<Option<String>>,
    /// How long a fetch takes.
    delay: Mutex<Duration>,
    /// Answer 200 with a body that is no JWK Set.
    garbage: AtomicBool,
    fetches: AtomicUsize,
    /// Requests for any other path (a `jku` or `x5u` followed would land here).
    strays: AtomicUsize,
}

/// A JWKS endpoint on 127.0.0.1.
struct Idp {
    url: String,
    base: String,
    published: Arc<Published>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn jwks(State(p): State<Arc<Published>>) -> Response {
    p.fetches.fetch_add(1, Ordering::SeqCst);
    let delay = *p.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    if p.garbage.load(Ordering::SeqCst) {
        return (StatusCode::OK, "<html>maintenance</html>").into_response();
    }
    let keys = p.keys.lock().unwrap().clone();
    let mut resp = axum::Json(json!({ "keys": keys })).into_response();
    if let Some(cc) = p.cache_control.lock().unwrap().clone() {
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, cc.parse().unwrap());
    }
    resp
}

async fn stray(State(p): State<Arc<Published>>) -> StatusCode {
    p.strays.fetch_add(1, Ordering::SeqCst);
    StatusCode::NOT_FOUND
}

impl Idp {
    async fn start(keys: &[&TestKey], cache_control: Option<&str>) -> Idp {
        let published = Arc::new(Published::default());
        *published.cache_control.lock().unwrap() = cache_control.map(str::to_owned);
        let router = axum::Router::new()
            .route("/.well-known/jwks.json", axum::routing::get(jwks))
            .fallback(stray)
            .with_state(published.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        let idp = Idp {
            url: format!("{base}/.well-known/jwks.json"),
            base,
            published,
            stop: Some(stop),
            task,
        };
        idp.publish(keys);
        idp
    }

    fn publish(&self, keys: &[&TestKey]) {
        *self.published.keys.lock().unwrap() = keys.iter().map(|k| k.jwk()).collect();
    }

    fn fetches(&self) -> usize {
        self.published.fetches.load(Ordering::SeqCst)
    }

    /// Stops listening and closes every connection.
    async fn stop(&mut self) {
        let _ = self.stop.take().map(|stop| stop.send(()));
        (&mut self.task).await.unwrap();
    }
}

/// A clock at the real time that the test moves forward.
fn clock() -> (Clock, Arc<AtomicU64>) {
    let now = Arc::new(AtomicU64::new(now() as u64));
    let read = now.clone();
    (Arc::new(move || read.load(Ordering::SeqCst)), now)
}

fn advance(now: &AtomicU64, secs: u64) {
    now.fetch_add(secs, Ordering::SeqCst);
}

async fn app(idp: &Idp, clock: Clock) -> TestApp {
    TestApp::with(Options {
        jwks_url: Some(idp.url.clone()),
        clock,
        ..Options::default()
    })
    .await
}

async fn status(t: &TestApp, token: &str) -> u16 {
    t.gql(token, Q, json!({})).await.0
}

/// The statuses of `n` requests sent at once, each with its own token.
async fn statuses(t: &TestApp, tokens: Vec<String>) -> Vec<u16> {
    let requests = tokens.iter().map(|token| status(t, token));
    futures_util::future::join_all(requests).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_kid_is_fetched_once_however_many_requests_carry_it() {
    let (k1, k2) = (TestKey::rsa("rsa-1"), TestKey::ed("ed-2", 2));
    let idp = Idp::start(&[&k1], None).await;
    let (clock, now) = clock();
    let t = app(&idp, clock).await;
    assert_eq!(idp.fetches(), 1, "the keys are fetched at start");
    assert_eq!(status(&t, &k1.token(&claims("a", ALL))).await, 200);
    assert_eq!(idp.fetches(), 1);

    // Rotation: the provider publishes k2 next to k1; the first tokens signed with k2 arrive
    // together while the provider takes its time to answer.
    idp.publish(&[&k1, &k2]);
    *idp.published.delay.lock().unwrap() = Duration::from_millis(300);
    advance(&now, 31);
    let tokens = (0..50)
        .map(|i| k2.token(&claims("a", &format!("{ALL} n{i}"))))
        .collect();
    assert!(statuses(&t, tokens).await.iter().all(|&s| s == 200));
    assert_eq!(idp.fetches(), 2, "one fetch for 50 concurrent requests");
    assert_eq!(status(&t, &k2.token(&claims("b", ALL))).await, 200);
    assert_eq!(status(&t, &k1.token(&claims("b", ALL))).await, 200);
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_cause_at_most_one_fetch_per_cooldown() {
    let k1 = TestKey::ed("ed-1", 1);
    let idp = Idp::start(&[&k1], None).await;
    let (clock, now) = clock();
    let t = app(&idp, clock).await;
    let bogus = |round: u32| -> Vec<String> {
        (0..100)
            .map(|i| TestKey::ed(&format!("bogus-{round}-{i}"), 1).token(&claims("a", ALL)))
            .collect()
    };
    // Within the cooldown of the start-up fetch: no fetch at all.
    assert!(statuses(&t, bogus(0)).await.iter().all(|&s| s == 401));
    assert_eq!(idp.fetches(), 1);
    for round in 1..=3 {
        advance(&now, 31);
        let before = idp.fetches();
        assert!(statuses(&t, bogus(round)).await.iter().all(|&s| s == 401));
        assert!(
            idp.fetches() - before <= 1,
            "round {round}: {}",
            idp.fetches()
        );
        assert!(
            statuses(&t, bogus(round + 10))
                .await
                .iter()
                .all(|&s| s == 401)
        );
        assert!(
            idp.fetches() - before <= 1,
            "round {round}: {}",
            idp.fetches()
        );
    }
    assert_eq!(status(&t, &k1.token(&claims("a", ALL))).await, 200);

    // A kid that is no lookup key, or key URLs in the header, fetch nothing.
    advance(&now, 31);
    let before = idp.fetches();
    let attacker = TestKey::ed("ed-1", 9);
    let urls = json!({ "jku": format!("{}/evil.json", idp.base), "x5u": format!("{}/evil.pem", idp.base) });
    for token in [
        attacker.token_with(json!({ "kid": "../../keys" }), &claims("a", ALL)),
        attacker.token_with(json!({ "kid": "' OR 1=1--" }), &claims("a", ALL)),
        attacker.token_with(urls, &claims("a", ALL)),
    ] {
        assert_eq!(status(&t, &token).await, 401);
    }
    assert_eq!(idp.fetches(), before);
    assert_eq!(idp.published.strays.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_provider_down_known_kids_pass_and_unknown_ones_fail() {
    let (k1, k2) = (TestKey::ec("ec-1", 1), TestKey::ed("ed-2", 2));
    let mut idp = Idp::start(&[&k1], None).await;
    let (clock, now) = clock();
    let t = app(&idp, clock).await;
    let (old, new) = (k1.token(&claims("a", ALL)), k2.token(&claims("a", ALL)));
    assert_eq!(status(&t, &old).await, 200);

    // The provider answers garbage: the last good keys stay.
    idp.publish(&[&k1, &k2]);
    idp.published.garbage.store(true, Ordering::SeqCst);
    advance(&now, 31);
    assert_eq!(status(&t, &new).await, 401);
    assert_eq!(idp.fetches(), 2);
    assert_eq!(status(&t, &old).await, 200);

    // The provider is gone, and the cache is stale.
    idp.stop().await;
    advance(&now, 700);
    assert_eq!(status(&t, &k1.token(&claims("b", ALL))).await, 200);
    advance(&now, 31);
    assert_eq!(status(&t, &new).await, 401);
    assert_eq!(status(&t, &k1.token(&claims("a", ALL))).await, 200);
}

#[tokio::test]
async fn the_cache_lasts_as_long_as_cache_control_says() {
    let (k1, k2) = (TestKey::ed("ed-1", 1), TestKey::ed("ed-2", 2));
    let idp = Idp::start(&[&k1], Some("public, max-age=120")).await;
    let (clock, now) = clock();
    let t = app(&idp, clock).await;
    let old = k1.token(&claims("a", ALL));
    assert_eq!(status(&t, &old).await, 200);

    // The provider retires k1; until max-age passes, the cached set still has it.
    idp.publish(&[&k2]);
    advance(&now, 119);
    assert_eq!(status(&t, &old).await, 200);
    assert_eq!(idp.fetches(), 1);
    advance(&now, 1);
    assert_eq!(
        status(&t, &old).await,
        401,
        "k1 is gone once the set is fetched again"
    );
    assert_eq!(idp.fetches(), 2);
    assert_eq!(status(&t, &k2.token(&claims("a", ALL))).await, 200);
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_keep_passing_while_keys_rotate() {
    let keys: Vec<TestKey> = (0..4).map(|i| TestKey::ed(&format!("ed-{i}"), i)).collect();
    let keys = Arc::new(keys);
    let idp = Idp::start(&[&keys[0]], None).await;
    let (clock, now) = clock();
    let t = Arc::new(app(&idp, clock).await);

    let current = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let (passed, mut progress) = watch::channel(0usize);
    let passed = Arc::new(passed);
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let (t, keys, current) = (t.clone(), keys.clone(), current.clone());
            let (stop, failures, passed) = (stop.clone(), failures.clone(), passed.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let key = &keys[current.load(Ordering::SeqCst)];
                    let scope = format!("{ALL} client{client}-{n}");
                    match status(&t, &key.token(&claims("a", &scope))).await {
                        200 => passed.send_modify(|p| *p += 1),
                        _ => _ = failures.fetch_add(1, Ordering::SeqCst),
                    }
                }
            })
        })
        .collect();
    wait_for(&mut progress, 20).await;
    for i in 1..keys.len() {
        // Publish the next key, sign with it, and only then retire the one before.
        idp.publish(&[&keys[i - 1], &keys[i]]);
        advance(&now, 31);
        current.store(i, Ordering::SeqCst);
        wait_for(&mut progress, 20).await;
        idp.publish(&[&keys[i]]);
        wait_for(&mut progress, 20).await;
    }
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::SeqCst), 0);
    assert_eq!(
        idp.fetches(),
        keys.len(),
        "one fetch at start, one per new key"
    );
    // The last retired key is gone once the provider is asked again.
    advance(&now, 601);
    let retired = keys[keys.len() - 2].token(&claims("a", ALL));
    assert_eq!(status(&t, &retired).await, 401);
}

/// Waits until `more` requests have passed.
async fn wait_for(progress: &mut watch::Receiver<usize>, more: usize) {
    let target = *progress.borrow() + more;
    let passed = progress.wait_for(|p| *p >= target);
    let passed = tokio::time::timeout(Duration::from_secs(30), passed).await;
    passed.expect("requests keep passing").unwrap();
}
