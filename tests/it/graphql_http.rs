//! The `/graphql` request path and the layers every route shares: request ids and `nosniff`.

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn request_ids_are_the_servers_and_every_response_says_nosniff() {
    let t = TestApp::new().await;
    let mut seen = Vec::new();
    for path in ["/graphql", "/healthz", "/nowhere", "/schema.graphql"] {
        let resp = t
            .client
            .get(format!("{}{path}", t.base))
            .header("x-request-id", "chosen-by-the-client")
            .send()
            .await
            .unwrap();
        let headers = resp.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let id = headers["x-request-id"].to_str().unwrap().to_owned();
        let uuid = uuid::Uuid::parse_str(&id).unwrap_or_else(|e| panic!("{path}: {id}: {e}"));
        assert_eq!(uuid.get_version_num(), 7, "{path}: {id}");
        assert!(!seen.contains(&id), "{path}: {id} seen before");
        seen.push(id);
    }
    // A GraphQL response is never stored by caches.
    let resp = t
        .client
        .post(format!("{}/graphql", t.base))
        .bearer_auth(t.token("a", ALL))
        .json(&json!({ "query": "{ users { totalCount } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["content-type"], "application/json");
}
