//! E3: `statement_timeout`, `lock_timeout` and `idle_in_transaction_session_timeout` on every
//! connection of the pool.

use std::time::Duration;

use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use serde_json::json;
use usersvc::db::{Db, DbSettings};
use usersvc::error::AppError;

use super::retryable;
use crate::create::make_user;
use crate::harness::*;

const DISABLE: &str =
    "mutation($id: ID!) { disableUser(input: {profileId: $id}) { user { status } } }";

/// A pool on the test's database whose statement timeout is one second.
fn quick_pool(t: &TestApp) -> Db {
    Db::new(&DbSettings {
        url: t.db_url.clone(),
        max_size: 2,
        acquire_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(1),
    })
    .unwrap()
}

#[derive(diesel::QueryableByName)]
struct Status {
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
}

async fn status(t: &TestApp, id: &str) -> String {
    let rows: Vec<Status> = diesel::sql_query(format!(
        "SELECT status FROM profiles WHERE profile_id = '{id}'"
    ))
    .load(&mut t.sql().await)
    .await
    .unwrap();
    rows.into_iter().next().unwrap().status
}

#[tokio::test]
async fn a_statement_past_the_statement_timeout_is_cancelled_with_a_retryable_error() {
    let t = TestApp::new().await;
    // On the pool: the statement is cancelled, and the error is the retryable kind.
    let mut conn = quick_pool(&t).conn().await.unwrap();
    let e = diesel::sql_query("SELECT pg_sleep(60)")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("statement timeout"), "{e}");
    assert!(matches!(AppError::from(e), AppError::Unavailable(_)));
    // Through a request: an update that sleeps (a trigger the test adds) is cancelled, the
    // request answers with the retryable error, and nothing changed.
    let id = make_user(&t, "a", "slow@example.com").await;
    t.sql()
        .await
        .batch_execute(
            "CREATE FUNCTION doze() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_sleep(60); RETURN NEW; END $$; \
             CREATE TRIGGER doze BEFORE UPDATE ON profiles FOR EACH ROW EXECUTE FUNCTION doze()",
        )
        .await
        .unwrap();
    let token = t.token("a", ALL);
    let (status_code, v) = t.gql(&token, DISABLE, json!({ "id": id })).await;
    assert_eq!(status_code, 200);
    assert!(retryable(&v), "{v}");
    assert_eq!(status(&t, &id).await, "ACTIVE");
    t.sql()
        .await
        .batch_execute("DROP TRIGGER doze ON profiles")
        .await
        .unwrap();
    let (_, v) = t.gql(&token, DISABLE, json!({ "id": id })).await;
    assert_eq!(code(&v), "", "{v}");
    assert_eq!(status(&t, &id).await, "DISABLED");
}

#[tokio::test]
async fn a_lock_wait_past_the_lock_timeout_is_cancelled_with_a_retryable_error() {
    let t = TestApp::new().await;
    let id = make_user(&t, "a", "locked@example.com").await;
    // Another session holds the profile's row.
    let mut holder = t.sql().await;
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM profiles WHERE profile_id = '{id}' FOR UPDATE"
        ))
        .await
        .unwrap();
    // On the pool: the wait ends on the lock timeout (below the statement timeout, so it is
    // the lock that is named).
    let mut conn = quick_pool(&t).conn().await.unwrap();
    let e = diesel::sql_query(format!(
        "UPDATE profiles SET status = status WHERE profile_id = '{id}'"
    ))
    .execute(&mut *conn)
    .await
    .unwrap_err();
    assert!(e.to_string().contains("lock timeout"), "{e}");
    assert!(matches!(AppError::from(e), AppError::Unavailable(_)));
    // Through a request.
    let token = t.token("a", ALL);
    let (status_code, v) = t.gql(&token, DISABLE, json!({ "id": id })).await;
    assert_eq!(status_code, 200);
    assert!(retryable(&v), "{v}");
    // The lock is released: the same request goes through.
    holder.batch_execute("ROLLBACK").await.unwrap();
    let (_, v) = t.gql(&token, DISABLE, json!({ "id": id })).await;
    assert_eq!(code(&v), "", "{v}");
    assert_eq!(status(&t, &id).await, "DISABLED");
}

#[derive(diesel::QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

#[tokio::test]
async fn an_abandoned_transaction_is_ended_by_the_database() {
    let t = TestApp::new().await;
    let pool = quick_pool(&t);
    let mut conn = pool.conn().await.unwrap();
    let pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .load::<Pid>(&mut *conn)
        .await
        .unwrap()[0]
        .pid;
    // A transaction is opened and left idle, as a task that died half way would leave it.
    conn.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let t = &t;
    eventually(WAIT, || async move {
        let open = diesel::sql_query(format!(
            "SELECT pid FROM pg_stat_activity WHERE pid = {pid}"
        ))
        .load::<Pid>(&mut t.sql().await)
        .await
        .unwrap();
        if open.is_empty() {
            Ok(())
        } else {
            Err("the session is still open")
        }
    })
    .await;
    let e = conn.batch_execute("SELECT 1").await.unwrap_err();
    assert!(matches!(AppError::from(e), AppError::Unavailable(_)));
    // The pool replaces the ended connection.
    drop(conn);
    let mut fresh = pool.conn().await.unwrap();
    fresh.batch_execute("SELECT 1").await.unwrap();
}
