//! The database misbehaving (SECURITY.md E1, E3, E4): runaway statements, lock waits and
//! abandoned transactions are ended by PostgreSQL's timeouts; a slow, stalled or restarting
//! database (a proxy in between) gives prompt, retryable errors, never a hung request, and the
//! server serves again once it is back, without a restart.

mod network;
mod proxy;
mod timeouts;

use serde_json::Value;

/// Whether a GraphQL response is the retryable error of a slow or absent database.
fn retryable(v: &Value) -> bool {
    let ext = &v["errors"][0]["extensions"];
    ext["code"] == "INTERNAL_SERVER_ERROR" && ext["retryable"] == true
}
