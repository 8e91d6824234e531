//! Operational routes: health, readiness, metrics, the SDL, GraphiQL.

use crate::harness::*;

#[tokio::test]
async fn health_readiness_metrics_and_schema() {
    let t = TestApp::new().await;
    let get = |path: &str| t.client.get(format!("{}{path}", t.base)).send();
    assert_eq!(get("/healthz").await.unwrap().status().as_u16(), 200);
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    assert!(ready.headers().contains_key("x-request-id"));

    // A query, then its figures appear in /metrics.
    let (status, _) = t
        .gql(
            &t.token("a", ALL),
            "{ users(first: 1) { totalCount } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("usersvc_graphql_fields_total"),
        "{metrics}"
    );
    assert!(metrics.contains("field=\"users\""));
    assert!(metrics.contains("usersvc_http_request_duration_seconds"));
    // Requests by route, method and status; a series counts on after its first request.
    let health_count = |metrics: &str| {
        metrics
            .lines()
            .filter(|l| l.starts_with("usersvc_http_requests_total{"))
            .filter(|l| l.contains("route=\"/healthz\"") && l.contains("method=\"GET\""))
            .find(|l| l.contains("status=\"200\""))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    let before = health_count(&metrics).expect("a series for GET /healthz 200");
    assert_eq!(get("/healthz").await.unwrap().status().as_u16(), 200);
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        health_count(&metrics).is_some_and(|n| n > before),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("usersvc_http_requests_total{")
                && l.contains("route=\"/graphql\"")
                && l.contains("method=\"POST\"")
                && l.contains("status=\"200\"")),
        "{metrics}"
    );
    assert!(metrics.contains("usersvc_db_pool_connections"));
    let statements = metrics
        .lines()
        .find_map(|l| l.strip_prefix("usersvc_db_statements_total "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(statements.is_some_and(|n| n >= 1), "{metrics}");

    // Any token is a method to HTTP; odd ones must not each become a series of their own.
    for odd in ["FROBNICATE", "XYZZY42"] {
        let method = reqwest::Method::from_bytes(odd.as_bytes()).unwrap();
        let resp = t
            .client
            .request(method, format!("{}/graphql", t.base))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error(), "{odd}: {}", resp.status());
    }
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("method=\"OTHER\""), "{metrics}");
    assert!(!metrics.contains("FROBNICATE") && !metrics.contains("XYZZY42"));

    let sdl = get("/schema.graphql").await.unwrap().text().await.unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    assert_eq!(sdl, committed);
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let t = TestApp::new().await;
    {
        use diesel_async::SimpleAsyncConnection;
        let mut conn = t.sql().await;
        conn.batch_execute("DELETE FROM __diesel_schema_migrations")
            .await
            .unwrap();
    }
    let resp = t
        .client
        .get(format!("{}/readyz", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["reason"], "migrations pending");
}

#[tokio::test]
async fn graphiql_is_served_without_a_token_and_with_its_own_assets() {
    let t = TestApp::new().await;
    let resp = t
        .client
        .get(format!("{}/graphql", t.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    let html = resp.text().await.unwrap();
    for asset in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
        "init.js",
    ] {
        assert!(html.contains(&format!("/graphiql/{asset}")), "{asset}");
        let r = t
            .client
            .get(format!("{}/graphiql/{asset}", t.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{asset}");
        assert!(r.bytes().await.unwrap().len() > 100);
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
    // Without Accept: text/html, GET /graphql is the API and wants a token.
    let r = t
        .client
        .get(format!("{}/graphql", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn connections_the_database_dropped_are_replaced_without_failing_requests() {
    use diesel_async::RunQueryDsl;
    let t = TestApp::new().await;
    let token = t.token("a", ALL);
    let query = "{ users(first: 1) { totalCount } }";
    // Fill the pool with several connections at once.
    let warm: Vec<_> = (0..8)
        .map(|_| t.gql(&token, query, serde_json::json!({})))
        .collect();
    for (status, v) in futures_util::future::join_all(warm).await {
        assert_eq!((status, code(&v)), (200, String::new()), "{v}");
    }
    // The database ends every one of the server's sessions (a restart or failover looks alike).
    let mut admin = t.sql().await;
    let killed: Vec<Killed> = diesel::sql_query(format!(
        "SELECT pid, pg_terminate_backend(pid) AS killed FROM pg_stat_activity
          WHERE datname = '{}' AND pid <> pg_backend_pid()",
        t.db_name
    ))
    .load::<Killed>(&mut admin)
    .await
    .unwrap();
    assert!(
        !killed.is_empty() && killed.iter().all(|k| k.killed),
        "{:?}",
        killed.iter().map(|k| k.killed).collect::<Vec<_>>()
    );
    // pg_terminate_backend only sends the signal: wait until every one of those sessions has
    // ended (and so closed its socket), as after a restart, before asking again.
    let pids: Vec<i32> = killed.iter().map(|k| k.pid).collect();
    let t = &t;
    eventually(WAIT, || {
        let pids = pids.clone();
        async move {
            let open: Vec<Killed> = diesel::sql_query(
                "SELECT pid, false AS killed FROM pg_stat_activity WHERE pid = ANY($1)",
            )
            .bind::<diesel::sql_types::Array<diesel::sql_types::Integer>, _>(pids)
            .load(&mut t.sql().await)
            .await
            .unwrap();
            match open.len() {
                0 => Ok(()),
                n => Err(format!("{n} sessions still open")),
            }
        }
    })
    .await;
    for _ in 0..20 {
        let (status, v) = t.gql(&token, query, serde_json::json!({})).await;
        assert_eq!((status, code(&v)), (200, String::new()), "{v}");
    }
}

#[derive(diesel::QueryableByName)]
struct Killed {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    killed: bool,
}

#[tokio::test]
async fn response_fields_come_in_the_order_they_were_asked_for() {
    let t = TestApp::new().await;
    crate::create::make_user(&t, "a", "ord@example.com").await;
    let query = "{ users(first: 1) { totalCount pageInfo { hasNextPage } edges { node { identities { externalId type } userName } cursor } } }";
    let text = t
        .client
        .post(format!("{}/graphql", t.base))
        .bearer_auth(t.token("a", ALL))
        .json(&serde_json::json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = |k: &str| text.find(k).unwrap_or_else(|| panic!("{k} in {text}"));
    assert!(
        at("totalCount") < at("pageInfo") && at("pageInfo") < at("edges"),
        "{text}"
    );
    assert!(
        at("externalId") < at("\"type\"")
            && at("identities") < at("userName")
            && at("userName") < at("cursor"),
        "{text}"
    );
}
