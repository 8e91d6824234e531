//! The users connection: keyset pages forward and backward, exact page flags, stability under
//! concurrent inserts and deletes, filters, orders, cursor misuse.

use std::collections::HashSet;

use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};

use crate::client::*;
use crate::harness::*;

/// Inserts `n` profiles into `app` directly (paging needs many rows, not many hashes):
/// names `user001`…, one ms apart, every third a tester, every other one has logged in.
async fn seed(t: &TestApp, app: &str, n: i32, offset: i32) {
    let mut conn = t.sql().await;
    conn.batch_execute(&format!(
        "INSERT INTO profiles (app_id, profile_id, user_name, contact_email, is_tester, created_at, last_login_at)
         SELECT '{app}', gen_random_uuid(), 'User' || lpad(g::text, 3, '0'), 'u' || g || '@example.com',
                g % 3 = 0, timestamptz '2026-01-01' + g * interval '1 ms',
                CASE WHEN g % 2 = 0 THEN timestamptz '2026-06-01' + g * interval '1 s' END
           FROM generate_series({start}, {end}) g;
         INSERT INTO identities (app_id, profile_id, kind, external_id)
         SELECT app_id, profile_id, 'UNIVERSAL_ID', lower(user_name) FROM profiles
          WHERE app_id = '{app}' AND user_name IS NOT NULL
         ON CONFLICT DO NOTHING;",
        start = offset + 1,
        end = offset + n
    ))
    .await
    .unwrap();
}

fn vars(
    first: Option<i64>,
    after: Option<String>,
    last: Option<i64>,
    before: Option<String>,
) -> users::Variables {
    users::Variables {
        first,
        after,
        last,
        before,
        filter: None,
        order_by: None,
    }
}

async fn walk_forward(t: &TestApp, tok: &str, size: i64, mut v: users::Variables) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after = None;
    let mut page_no = 0;
    loop {
        v.first = Some(size);
        v.after = after.clone();
        let c = t.run::<Users>(tok, v.clone()).await.users;
        assert_eq!(
            c.page_info.has_previous_page,
            page_no > 0,
            "hasPreviousPage on page {page_no}"
        );
        seen.extend(c.edges.iter().map(|e| e.node.profile_id.clone()));
        if !c.page_info.has_next_page {
            break;
        }
        after = c.page_info.end_cursor.clone();
        page_no += 1;
    }
    seen
}

#[tokio::test]
async fn forward_and_backward_walks_see_every_profile_once_with_exact_flags() {
    let t = TestApp::new().await;
    seed(&t, "a", 23, 0).await;
    let tok = t.token("a", "cloudcode:users:read");
    let forward = walk_forward(&t, &tok, 5, vars(None, None, None, None)).await;
    assert_eq!(forward.len(), 23);
    assert_eq!(forward.iter().collect::<HashSet<_>>().len(), 23);

    let mut backward = Vec::new();
    let mut before = None;
    let mut pages = 0;
    loop {
        let c = t
            .run::<Users>(&tok, vars(None, None, Some(5), before.clone()))
            .await
            .users;
        assert_eq!(
            c.page_info.has_next_page,
            pages > 0,
            "hasNextPage going backward"
        );
        let mut ids: Vec<String> = c.edges.iter().map(|e| e.node.profile_id.clone()).collect();
        ids.extend(backward);
        backward = ids;
        pages += 1;
        if !c.page_info.has_previous_page {
            break;
        }
        before = c.page_info.start_cursor.clone();
    }
    assert_eq!(backward, forward, "both directions give the same order");

    // Default page size is 50; totalCount counts every page; first: 0 is an empty page.
    let c = t
        .run::<Users>(&tok, vars(None, None, None, None))
        .await
        .users;
    assert_eq!(c.edges.len(), 23);
    assert_eq!(c.total_count, 23);
    assert!(!c.page_info.has_next_page && !c.page_info.has_previous_page);
    let c = t
        .run::<Users>(&tok, vars(Some(0), None, None, None))
        .await
        .users;
    assert!(c.edges.is_empty());
    assert!(c.page_info.has_next_page);
    assert_eq!(c.page_info.end_cursor, None);
}

#[tokio::test]
async fn paging_while_profiles_come_and_go_never_repeats_or_skips_a_survivor() {
    let t = TestApp::new().await;
    seed(&t, "a", 40, 0).await;
    let tok = t.token("a", ALL);
    let mut conn = t.sql().await;
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    let mut deleted: HashSet<String> = HashSet::new();
    let mut round = 0;
    loop {
        let c = t
            .run::<Users>(&tok, vars(Some(6), after.clone(), None, None))
            .await
            .users;
        seen.extend(c.edges.iter().map(|e| e.node.profile_id.clone()));
        if !c.page_info.has_next_page {
            break;
        }
        after = c.page_info.end_cursor.clone();
        // Between pages: delete the row the cursor points at and one further ahead, and
        // insert rows both before and after the cursor.
        let anchor = c.edges.last().unwrap().node.profile_id.clone();
        let ahead: Vec<Gone> = diesel::sql_query(format!(
            "DELETE FROM profiles WHERE app_id = 'a' AND profile_id IN (
               '{anchor}'::uuid,
               (SELECT profile_id FROM profiles WHERE app_id = 'a' AND created_at >
                  (SELECT max(created_at) FROM profiles WHERE app_id = 'a') - interval '3 ms' LIMIT 1))
             RETURNING profile_id::text AS id"
        ))
        .load(&mut conn)
        .await
        .unwrap();
        deleted.extend(ahead.into_iter().map(|g| g.id));
        conn.batch_execute(&format!(
            "INSERT INTO profiles (app_id, profile_id, created_at) VALUES
               ('a', gen_random_uuid(), timestamptz '2026-01-01' + interval '{round} us'),
               ('a', gen_random_uuid(), now())"
        ))
        .await
        .unwrap();
        round += 1;
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no profile repeated");
    // Every seeded profile that was never deleted was seen.
    let survivors: Vec<Gone> = diesel::sql_query(
        "SELECT profile_id::text AS id FROM profiles WHERE app_id = 'a' AND user_name IS NOT NULL",
    )
    .load(&mut conn)
    .await
    .unwrap();
    for s in survivors {
        assert!(unique.contains(&s.id), "survivor {} skipped", s.id);
    }
    assert!(!deleted.is_empty());
}

#[derive(diesel::QueryableByName)]
struct Gone {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
}

#[tokio::test]
async fn orders_and_filters() {
    let t = TestApp::new().await;
    seed(&t, "a", 12, 0).await;
    let tok = t.token("a", ALL);
    let q = "query($f: UserFilter, $o: UserOrder, $first: Int, $after: String) {
        users(first: $first, after: $after, filter: $f, orderBy: $o) {
          totalCount edges { cursor node { userName isTester lastLoginAt } } pageInfo { hasNextPage endCursor } } }";
    let names = |v: &Value| -> Vec<String> {
        v["data"]["users"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|e| e["node"]["userName"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let (_, v) = t
        .gql(
            &tok,
            q,
            json!({ "o": { "field": "USER_NAME", "direction": "DESC" }, "first": 3 }),
        )
        .await;
    assert_eq!(names(&v), ["User012", "User011", "User010"]);
    let after = v["data"]["users"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, v) = t
        .gql(&tok, q, json!({ "o": { "field": "USER_NAME", "direction": "DESC" }, "first": 3, "after": after }))
        .await;
    assert_eq!(names(&v), ["User009", "User008", "User007"]);

    let (_, v) = t
        .gql(
            &tok,
            q,
            json!({ "f": { "userNamePrefix": "user00" }, "first": 50 }),
        )
        .await;
    assert_eq!(v["data"]["users"]["totalCount"], json!(9));
    let (_, v) = t.gql(&tok, q, json!({ "f": { "isTester": true } })).await;
    assert_eq!(names(&v), ["User003", "User006", "User009", "User012"]);
    let (_, v) = t
        .gql(
            &tok,
            q,
            json!({ "f": { "contactEmail": "U7@EXAMPLE.com" } }),
        )
        .await;
    assert_eq!(names(&v), ["User007"]);
    let (_, v) = t
        .gql(&tok, q, json!({ "f": { "createdAfter": "2026-01-01T00:00:00.003Z", "createdBefore": "2026-01-01T00:00:00.005Z" } }))
        .await;
    assert_eq!(names(&v), ["User003", "User004"]);
    let (_, v) = t
        .gql(&tok, q, json!({ "f": { "identityType": "EMAIL" } }))
        .await;
    assert_eq!(v["data"]["users"]["totalCount"], json!(0));
    let (_, v) = t
        .gql(
            &tok,
            q,
            json!({ "f": { "identityType": "UNIVERSAL_ID", "countryCode": "NZ" } }),
        )
        .await;
    assert_eq!(v["data"]["users"]["totalCount"], json!(0));

    // LAST_LOGIN_AT: the never-logged-in sort first ascending, last descending.
    let (_, v) = t
        .gql(
            &tok,
            q,
            json!({ "o": { "field": "LAST_LOGIN_AT", "direction": "DESC" }, "first": 12 }),
        )
        .await;
    let n = names(&v);
    assert_eq!(&n[..2], ["User012", "User010"]);
    let edges = v["data"]["users"]["edges"].as_array().unwrap();
    assert!(edges[5]["node"]["lastLoginAt"].is_string());
    assert!(edges[6]["node"]["lastLoginAt"].is_null());
}

#[tokio::test]
async fn cursor_misuse_and_bad_sizes_are_refused() {
    let t = TestApp::new().await;
    seed(&t, "a", 5, 0).await;
    seed(&t, "b", 5, 100).await;
    let tok = t.token("a", ALL);
    let c = t
        .run::<Users>(&tok, vars(Some(2), None, None, None))
        .await
        .users;
    let cursor = c.page_info.end_cursor.unwrap();
    let q = "query($first: Int, $last: Int, $after: String, $f: UserFilter, $o: UserOrder) {
        users(first: $first, last: $last, after: $after, filter: $f, orderBy: $o) { edges { cursor } } }";
    let cases = vec![
        (
            t.token("b", ALL),
            json!({ "first": 2, "after": cursor }),
            "INVALID_CURSOR",
        ),
        (
            tok.clone(),
            json!({ "first": 2, "after": cursor, "f": { "isTester": false } }),
            "INVALID_CURSOR",
        ),
        (
            tok.clone(),
            json!({ "first": 2, "after": cursor, "o": { "field": "CREATED_AT", "direction": "DESC" } }),
            "INVALID_CURSOR",
        ),
        (
            tok.clone(),
            json!({ "first": 2, "after": cursor, "o": { "field": "USER_NAME" } }),
            "INVALID_CURSOR",
        ),
        (
            tok.clone(),
            json!({ "first": 2, "after": "garbage!" }),
            "INVALID_CURSOR",
        ),
        (
            tok.clone(),
            json!({ "first": 2, "after": "" }),
            "INVALID_CURSOR",
        ),
        (
            tok.clone(),
            json!({ "first": 2, "last": 2 }),
            "BAD_USER_INPUT",
        ),
        (tok.clone(), json!({ "first": -1 }), "BAD_USER_INPUT"),
        (tok.clone(), json!({ "first": 501 }), "BAD_USER_INPUT"),
        (tok.clone(), json!({ "last": 501 }), "BAD_USER_INPUT"),
    ];
    for (token, vars, want) in cases {
        let (status, v) = t.gql(&token, q, vars.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(code(&v), want, "{vars} → {v}");
    }
    let (_, v) = t
        .gql(
            &t.token("b", ALL),
            q,
            json!({ "first": 2, "after": "garbage" }),
        )
        .await;
    assert_eq!(v["errors"][0]["extensions"]["reasonCode"], json!(40383));
}

#[tokio::test]
async fn a_page_loads_its_identities_and_children_in_one_query_each() {
    // No mail worker: the server's pool then runs only what the requests ask for.
    let t = TestApp::with(Options {
        mail_worker: false,
        ..Options::default()
    })
    .await;
    seed(&t, "parent", 30, 0).await;
    let mut conn = t.sql().await;
    conn.batch_execute(
        "INSERT INTO profiles (app_id, profile_id, user_name, parent_app_id, parent_profile_id)
         SELECT 'child', gen_random_uuid(), 'kid of ' || user_name, app_id, profile_id
           FROM profiles WHERE app_id = 'parent'",
    )
    .await
    .unwrap();
    let tok = t.token("parent", "cloudcode:users:read");
    let query = "{ users(first: 30) { edges { node { profileId \
                 identities { externalId } children { userName } } } } }";
    let db = &t.server().db;
    let before = db.statements();
    let (status, body) = t.gql(&tok, query, json!({})).await;
    let ran = db.statements() - before;
    assert_eq!(status, 200, "{body}");
    let edges = body["data"]["users"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 30);
    for e in edges {
        assert_eq!(e["node"]["identities"].as_array().unwrap().len(), 1, "{e}");
        assert_eq!(e["node"]["children"].as_array().unwrap().len(), 1, "{e}");
    }
    // The page, then one query for all identities and one for all children: not one per user.
    // A connection that last served another scope (the server's own start-up work) enters the
    // app's first: its role and the app's family, two statements more, at most once per open
    // connection.
    let open = db.status().0 as u64;
    assert!(
        (3..=3 + 2 * open).contains(&ran),
        "{ran} statements for one page of 30 users ({open} connections open)"
    );
}
