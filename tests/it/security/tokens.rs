//! C8: what bounds a stolen admin token. There is no revocation list: a token lives at most
//! `USERSVC_JWT_MAX_TTL` (default 24 h, settable to minutes), so a leaked one stops working
//! at its `exp`, and one minted with a longer life is never accepted at all. These tests hold
//! the server to both, including for a token it has accepted (and cached) before.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use usersvc::auth::Clock;

use super::*;

const Q: &str = "{ users { totalCount } }";

/// A clock the test moves: the system time plus an offset in seconds.
fn movable_clock() -> (Clock, Arc<AtomicU64>) {
    let offset = Arc::new(AtomicU64::new(0));
    let seen = offset.clone();
    let clock: Clock = Arc::new(move || now() as u64 + seen.load(Ordering::SeqCst));
    (clock, offset)
}

fn token(iat: i64, exp: i64) -> String {
    let mut c = claims("a", ALL);
    c["iat"] = json!(iat);
    c["exp"] = json!(exp);
    sign_hs256(
        &json!({ "alg": "HS256", "typ": "JWT" }),
        &c,
        SECRET.as_bytes(),
    )
}

async fn status(t: &TestApp, tok: &str) -> (u16, Value) {
    t.gql(tok, Q, json!({})).await
}

#[tokio::test]
async fn a_stolen_token_stops_working_at_its_expiry_even_after_it_was_used() {
    let (clock, offset) = movable_clock();
    let t = TestApp::with(Options {
        clock,
        leeway: 30,
        ..Options::default()
    })
    .await;
    let stolen = token(now(), now() + 600);
    for _ in 0..3 {
        assert_eq!(
            status(&t, &stolen).await.0,
            200,
            "accepted, and remembered as checked"
        );
    }
    // Inside the leeway it still passes; one second past it, it never passes again.
    offset.store(600 + 29, Ordering::SeqCst);
    assert_eq!(status(&t, &stolen).await.0, 200);
    offset.store(600 + 31, Ordering::SeqCst);
    for _ in 0..3 {
        let (s, v) = status(&t, &stolen).await;
        assert_eq!(s, 401, "{v}");
        assert_eq!(code(&v), "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn tokens_living_longer_than_the_cap_are_refused_whatever_their_exp() {
    let t = TestApp::with(Options {
        max_ttl_secs: 600,
        ..Options::default()
    })
    .await;
    let n = now();
    for (what, tok, expected) in [
        ("a lifetime of exactly the cap", token(n, n + 600), 200),
        ("five minutes", token(n, n + 300), 200),
        ("a second over the cap", token(n, n + 601), 401),
        ("an hour", token(n, n + 3600), 401),
        ("a thousand years", token(n, n + 1000 * 365 * 86_400), 401),
        (
            "issued long ago, still unexpired",
            token(n - 3000, n + 60),
            401,
        ),
        ("expired", token(n - 700, n - 100), 401),
    ] {
        let (s, v) = status(&t, &tok).await;
        assert_eq!(s, expected, "{what}: {v}");
        if expected == 401 {
            assert_eq!(code(&v), "UNAUTHENTICATED", "{what}");
        }
    }
    // Without `iat` the lifetime counts from now.
    let mut c = claims("a", ALL);
    c.as_object_mut().unwrap().remove("iat");
    c["exp"] = json!(n + 3600);
    let long = sign_hs256(&json!({ "alg": "HS256" }), &c, SECRET.as_bytes());
    assert_eq!(status(&t, &long).await.0, 401);
}

#[tokio::test]
async fn random_and_ill_typed_tokens_get_401_and_never_a_server_error() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngSeed, TestRunner};

    let t = TestApp::new().await;
    let mut runner = TestRunner::new(Config {
        rng_seed: RngSeed::Fixed(0xc6),
        ..Config::default()
    });
    let b64 = |b: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    };
    // A claim value of any JSON type.
    let value = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,20}".prop_map(Value::from),
        prop::collection::vec(".{0,5}", 0..3).prop_map(|v| json!(v)),
        Just(json!({ "nested": { "exp": 1 } })),
    ];
    let names = prop::sample::select(vec![
        "exp", "iat", "nbf", "iss", "aud", "app_id", "scope", "sub",
    ]);
    let strategy = prop_oneof![
        // Printable junk.
        "[ -~]{0,200}".prop_map(|s| format!("Bearer {s}")),
        // Three base64url segments of random bytes.
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 3).prop_map(
            move |parts| format!(
                "Bearer {}",
                parts.iter().map(|p| b64(p)).collect::<Vec<_>>().join(".")
            )
        ),
        // Correctly signed, with one claim of a random type.
        (names, value).prop_map(|(name, v)| {
            let mut c = claims("a", ALL);
            c[name] = v;
            format!(
                "Bearer {}",
                sign_hs256(&json!({ "alg": "HS256" }), &c, SECRET.as_bytes())
            )
        }),
    ];
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..300 {
        let auth = strategy.new_tree(&mut runner).unwrap().current();
        let resp = t
            .client
            .post(format!("{}/graphql", t.base))
            .header("authorization", &auth)
            .json(&json!({ "query": Q }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("case {i}: the server dropped the request: {e}"));
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(
            status == 401 || status == 200,
            "case {i}: {status} for {auth:?}: {body}"
        );
        if status == 401 {
            assert_eq!(code(&body), "UNAUTHENTICATED", "case {i}: {body}");
        }
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert!(statuses[&401] > 250, "{statuses:?}");
    assert_eq!(status(&t, &t.token("a", ALL)).await.0, 200, "still serving");
}
