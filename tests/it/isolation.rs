//! The second wall behind the queries' tenant filters: the server's database role and the
//! row-level security on every table that has `app_id` (SECURITY.md §5, H4).

use std::time::Duration;

use diesel::sql_types::{Bool, Text};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use usersvc::db::{Db, DbSettings};

use crate::create::make_user;
use crate::harness::*;
use crate::sql::count;

/// Profiles in `a`, `b`, `parent` and `child` (child of parent).
async fn seed(t: &TestApp) {
    for (app, email) in [
        ("a", "a@example.com"),
        ("b", "b@example.com"),
        ("parent", "p@example.com"),
        ("child", "c@example.com"),
    ] {
        make_user(t, app, email).await;
    }
}

#[tokio::test]
async fn the_server_roles_are_no_superusers_own_nothing_and_every_tenant_table_has_rls() {
    let t = TestApp::new().await;
    let mut sql = t.sql().await;
    #[derive(diesel::QueryableByName)]
    struct Role {
        #[diesel(sql_type = Bool)]
        rolsuper: bool,
        #[diesel(sql_type = Bool)]
        rolbypassrls: bool,
        #[diesel(sql_type = Bool)]
        rolcanlogin: bool,
    }
    let roles: Vec<Role> = diesel::sql_query(
        "SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles \
          WHERE rolname IN ('usersvc_server', 'usersvc_everyone')",
    )
    .load(&mut sql)
    .await
    .unwrap();
    assert_eq!(roles.len(), 2);
    for role in &roles {
        assert!(!role.rolsuper && !role.rolbypassrls && !role.rolcanlogin);
    }
    assert_eq!(
        count(
            &mut sql,
            "SELECT count(*) AS n FROM pg_tables \
              WHERE tableowner IN ('usersvc_server', 'usersvc_everyone')"
        )
        .await,
        0
    );
    // Every table with an app_id column has row-level security, and a policy.
    assert_eq!(
        count(
            &mut sql,
            "SELECT count(*) AS n FROM information_schema.columns c
               JOIN pg_class t ON t.relname = c.table_name AND t.relkind = 'r'
              WHERE c.table_schema = 'public' AND c.column_name = 'app_id'
                AND (NOT t.relrowsecurity
                     OR NOT EXISTS (SELECT FROM pg_policies p WHERE p.tablename = c.table_name))"
        )
        .await,
        0
    );
    assert!(
        count(
            &mut sql,
            "SELECT count(*) AS n FROM information_schema.columns
              WHERE table_schema = 'public' AND column_name = 'app_id'"
        )
        .await
            >= 7
    );
    // The server's connections work as those roles: an app's as usersvc_server, the server's
    // own work as usersvc_everyone.
    #[derive(diesel::QueryableByName)]
    struct Me {
        #[diesel(sql_type = Text)]
        me: String,
    }
    for (db, role) in [
        (t.db.scoped("a"), "usersvc_server"),
        (t.db.clone(), "usersvc_everyone"),
    ] {
        let mut conn = db.conn().await.unwrap();
        let me: Vec<Me> = diesel::sql_query("SELECT current_user::text AS me")
            .load(&mut *conn)
            .await
            .unwrap();
        assert_eq!(me[0].me, role);
    }
}

#[tokio::test]
async fn a_query_without_a_tenant_filter_sees_only_its_apps_family() {
    let t = TestApp::new().await;
    seed(&t).await;
    let all = "SELECT count(*) AS n FROM profiles";
    let mut conn = t.db.scoped("a").conn().await.unwrap();
    assert_eq!(
        count(&mut conn, all).await,
        1,
        "a sees its own profile only"
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM identities").await,
        1
    );
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM apps").await, 1);
    drop(conn);
    // A child app sees its parent app's profiles (parents live there), and the parent its
    // child's (children live there); neither sees a or b.
    let mut conn = t.db.scoped("child").conn().await.unwrap();
    assert_eq!(count(&mut conn, all).await, 2);
    drop(conn);
    let mut conn = t.db.scoped("parent").conn().await.unwrap();
    assert_eq!(count(&mut conn, all).await, 2);
    drop(conn);
    // An app that does not exist sees nothing.
    let mut conn = t.db.scoped("nosuch").conn().await.unwrap();
    assert_eq!(count(&mut conn, all).await, 0);
    drop(conn);
    // The server's own work sees every app.
    let mut conn = t.db.conn().await.unwrap();
    assert_eq!(count(&mut conn, all).await, 4);
}

#[tokio::test]
async fn writes_into_another_tenant_are_refused_by_the_policy() {
    let t = TestApp::new().await;
    seed(&t).await;
    let mut conn = t.db.scoped("a").conn().await.unwrap();
    let err = conn
        .batch_execute("INSERT INTO profiles (app_id, profile_id) VALUES ('b', gen_random_uuid())")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    // Updates and deletes of rows it cannot see touch nothing.
    let changed = diesel::sql_query("UPDATE profiles SET user_name = 'x' WHERE app_id = 'b'")
        .execute(&mut *conn)
        .await
        .unwrap();
    assert_eq!(changed, 0);
    let deleted = diesel::sql_query("DELETE FROM profiles WHERE app_id <> 'a'")
        .execute(&mut *conn)
        .await
        .unwrap();
    assert_eq!(deleted, 0);
    drop(conn);
    let mut sql = t.sql().await;
    assert_eq!(
        count(&mut sql, "SELECT count(*) AS n FROM profiles").await,
        4
    );
}

#[tokio::test]
async fn a_connection_without_a_scope_sees_nothing_and_reuse_never_carries_one_over() {
    let t = TestApp::new().await;
    seed(&t).await;
    // The role alone, before any scope is entered: nothing.
    let mut sql = t.sql().await;
    sql.batch_execute("SET ROLE usersvc_server").await.unwrap();
    assert_eq!(
        count(&mut sql, "SELECT count(*) AS n FROM profiles").await,
        0
    );
    // One connection, handed from app to app: each sees its own.
    let one = Db::new(&DbSettings {
        url: t.db_url.clone(),
        max_size: 1,
        acquire_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(5),
    })
    .unwrap();
    let mine = "SELECT count(*) AS n FROM profiles WHERE app_id = 'a'";
    for (app, sees_a) in [("a", 1), ("b", 0), ("a", 1), ("child", 0)] {
        let mut conn = one.scoped(app).conn().await.unwrap();
        assert_eq!(count(&mut conn, mine).await, sees_a, "as {app}");
    }
    let mut conn = one.conn().await.unwrap();
    assert_eq!(count(&mut conn, mine).await, 1, "as the server");
    drop(conn);
    // Back from the server's scope, the same connection sees only the app's family again.
    let mut conn = one.scoped("b").conn().await.unwrap();
    assert_eq!(count(&mut conn, mine).await, 0, "as b after the server");
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM profiles").await,
        1,
        "as b after the server"
    );
}

#[tokio::test]
async fn one_app_holds_at_most_its_share_of_the_pool() {
    let t = TestApp::new().await;
    let share = t.db.app_share();
    assert!(share >= 1);
    let flood = t.db.scoped("b");
    let mut held = Vec::new();
    for _ in 0..share {
        held.push(flood.conn().await.unwrap());
    }
    // b's share is used up: its next checkout waits and gives up; a still gets one at once.
    let waited = tokio::time::timeout(Duration::from_secs(30), flood.conn()).await;
    assert!(
        matches!(waited, Ok(Err(_))),
        "b waited for its share and gave up"
    );
    let mut conn =
        t.db.scoped("a")
            .conn()
            .await
            .expect("a is not held up by b");
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM profiles").await,
        0
    );
}

#[tokio::test]
async fn a_request_holds_one_connection_at_a_time() {
    let t = TestApp::new().await;
    let request = t.db.for_request("a", Default::default());
    let held = request.conn().await.unwrap();
    // A clone is the same request: its checkout waits for the first connection to come back.
    let again = request.clone();
    let mut second = tokio::spawn(async move { again.conn().await.map(drop) });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut second)
            .await
            .is_err(),
        "the second checkout waits while the first connection is held"
    );
    // Another request of the same app is not held up.
    drop(
        t.db.for_request("a", Default::default())
            .conn()
            .await
            .expect("another request"),
    );
    drop(held);
    second
        .await
        .unwrap()
        .expect("the turn passes once the first connection is back");
}

#[derive(diesel::QueryableByName)]
struct Plan {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// The plan PostgreSQL picks for `sql` on a connection of app `a`'s request.
async fn plan(t: &TestApp, sql: &str) -> String {
    let mut conn =
        t.db.for_request("a", Default::default())
            .conn()
            .await
            .unwrap();
    let lines: Vec<Plan> = diesel::sql_query(format!("EXPLAIN {sql}"))
        .load(&mut *conn)
        .await
        .unwrap();
    lines
        .into_iter()
        .map(|l| l.line)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn with_current_statistics_a_keyset_page_reads_an_index_range_not_the_whole_app() {
    let t = TestApp::new().await;
    let mut sql = t.sql().await;
    // Two apps of some size, and the statistics to go with them.
    sql.batch_execute(
        "INSERT INTO profiles (app_id, profile_id, user_name, created_at) \
         SELECT CASE WHEN g % 3 = 0 THEN 'b' ELSE 'a' END, gen_random_uuid(), 'user ' || g, \
                now() - g * interval '1 second' \
         FROM generate_series(1, 60000) g; \
         ANALYZE profiles",
    )
    .await
    .unwrap();
    for (what, sql) in [
        (
            "by creation",
            "SELECT * FROM profiles WHERE app_id = 'a' \
             AND (created_at, profile_id) > (now() - interval '1 day', \
                 '00000000-0000-0000-0000-000000000000') \
             ORDER BY created_at, profile_id LIMIT 51",
        ),
        (
            "by name",
            "SELECT * FROM profiles WHERE app_id = 'a' AND (user_name_key, profile_id) > \
             ('', '00000000-0000-0000-0000-000000000000') \
             ORDER BY user_name_key, profile_id LIMIT 51",
        ),
        (
            "by id (export)",
            "SELECT * FROM profiles WHERE app_id = 'a' \
             AND profile_id > '00000000-0000-0000-0000-000000000000' \
             ORDER BY profile_id LIMIT 1000",
        ),
    ] {
        let plan = plan(&t, sql).await;
        assert!(
            plan.contains("Index Scan") && !plan.contains("Sort") && !plan.contains("Seq Scan"),
            "{what}: {plan}"
        );
    }
}
