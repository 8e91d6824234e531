//! deleteUser: idempotence, children orphaned or deleted, audit trail kept.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use usersvc::db::schema::{audit_events, identities, profiles};

use crate::client::*;
use crate::create::{email_input, make_user};
use crate::harness::*;

/// A parent with one child in each of two child apps (a parent has at most one per app).
async fn family(t: &TestApp) -> (String, String, String) {
    usersvc::apps::create(&mut t.db.pool(), "child2", "child2", Some("parent"))
        .await
        .unwrap();
    let parent = make_user(t, "parent", "mum@example.com").await;
    let mut kids = Vec::new();
    for (app, email) in [("child", "k1@example.com"), ("child2", "k2@example.com")] {
        let tok = t.token(app, ALL);
        let v = create_email::Variables {
            input: create_email::CreateUserEmailPasswordInput {
                parent_profile_id: Some(parent.clone()),
                ..email_input(email, None)
            },
        };
        kids.push(
            t.run::<CreateEmail>(&tok, v)
                .await
                .create_user_email_password
                .user
                .profile_id,
        );
    }
    (parent, kids.remove(0), kids.remove(0))
}

fn del(profile_id: &str, children: Option<bool>) -> delete_user::Variables {
    delete_user::Variables {
        input: delete_user::DeleteUserInput {
            profile_id: profile_id.into(),
            delete_children: children,
        },
    }
}

#[tokio::test]
async fn delete_is_idempotent_and_keeps_the_audit_trail() {
    let t = TestApp::new().await;
    let id = make_user(&t, "a", "gone@example.com").await;
    let tok = t.token("a", "cloudcode:users:delete");
    let first = t
        .run::<DeleteUser>(&tok, del(&id, None))
        .await
        .delete_user
        .deleted_profile_ids;
    assert_eq!(first, vec![id.clone()]);
    let again = t
        .run::<DeleteUser>(&tok, del(&id, None))
        .await
        .delete_user
        .deleted_profile_ids;
    assert!(again.is_empty());

    let mut conn = t.sql().await;
    let left: i64 = identities::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "identities go with the profile");
    let ops: Vec<String> = audit_events::table
        .order(audit_events::event_id)
        .select(audit_events::operation)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(ops, ["createUserEmailPassword", "deleteUser"]);
    let code = t.run_err::<DeleteUser>(&tok, del("bad id", None)).await;
    assert_eq!(code, "BAD_USER_INPUT");
}

#[tokio::test]
async fn without_delete_children_the_children_are_orphaned() {
    let t = TestApp::new().await;
    let (parent, k1, k2) = family(&t).await;
    let deleted = t
        .run::<DeleteUser>(&t.token("parent", ALL), del(&parent, Some(false)))
        .await
        .delete_user
        .deleted_profile_ids;
    assert_eq!(deleted, vec![parent]);
    for (app, k) in [("child", k1), ("child2", k2)] {
        let u = t
            .run::<UserInfo>(&t.token(app, ALL), user_info::Variables { profile_id: k })
            .await;
        let u = u.user_info.expect("child survives");
        assert_eq!(u.parent_profile_id, None);
    }
}

#[tokio::test]
async fn with_delete_children_the_whole_family_goes_in_one_transaction() {
    let t = TestApp::new().await;
    let (parent, k1, k2) = family(&t).await;
    let deleted = t
        .run::<DeleteUser>(&t.token("parent", ALL), del(&parent, Some(true)))
        .await
        .delete_user
        .deleted_profile_ids;
    assert_eq!(deleted[0], parent, "the requested profile comes first");
    let mut rest = deleted[1..].to_vec();
    rest.sort();
    let mut want = vec![k1, k2];
    want.sort();
    assert_eq!(rest, want);
    let mut conn = t.sql().await;
    let n: i64 = profiles::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(n, 0);
    let deletes: i64 = audit_events::table
        .filter(audit_events::operation.eq("deleteUser"))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        deletes, 3,
        "one audit event per deleted profile, in its own app"
    );
}
