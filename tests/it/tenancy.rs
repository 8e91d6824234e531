//! Cross-tenant access: another app's ids behave exactly like ids that do not exist, on every
//! operation, and listings never show another app's profiles.

use serde_json::json;

use crate::create::make_user;
use crate::harness::*;

#[tokio::test]
async fn another_apps_profile_is_indistinguishable_from_a_missing_one() {
    let t = TestApp::new().await;
    let theirs = make_user(&t, "b", "victim@example.com").await;
    let missing = "00000000-0000-7000-8000-000000000000";
    let tok = t.token("a", ALL);
    let ops = [
        "query($id: ID!) { userInfo(profileId: $id) { profileId } }",
        "query($id: ID!) { userExport(profileId: $id) { profileId } }",
        "mutation($id: ID!) { deleteUser(input: {profileId: $id, deleteChildren: true}) { deletedProfileIds } }",
    ];
    for op in ops {
        let (s1, foreign) = t.gql(&tok, op, json!({ "id": theirs })).await;
        let (s2, absent) = t.gql(&tok, op, json!({ "id": missing })).await;
        assert_eq!(s1, s2, "{op}");
        let strip = |mut v: serde_json::Value| {
            if let Some(errors) = v.get_mut("errors").and_then(|e| e.as_array_mut()) {
                for e in errors {
                    e.as_object_mut().unwrap().remove("locations");
                }
            }
            v
        };
        assert_eq!(strip(foreign), strip(absent), "{op}");
    }
    // Lookups by identity and listings do not see app b either.
    let (_, v) = t
        .gql(
            &tok,
            "{ userByIdentity(type: EMAIL, externalId: \"victim@example.com\") { profileId } }",
            json!({}),
        )
        .await;
    assert!(v["data"]["userByIdentity"].is_null(), "{v}");
    let (_, v) = t
        .gql(
            &tok,
            "{ users(first: 500) { totalCount edges { node { profileId } } } }",
            json!({}),
        )
        .await;
    assert_eq!(v["data"]["users"]["totalCount"], json!(0));
    let (_, v) = t
        .gql(
            &tok,
            "{ users(first: 500, filter: {contactEmail: \"victim@example.com\"}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(v["data"]["users"]["totalCount"], json!(0));

    // And app b's profile survived app a's delete attempt.
    let (_, v) = t
        .gql(
            &t.token("b", ALL),
            "query($id: ID!) { userInfo(profileId: $id) { profileId } }",
            json!({ "id": theirs }),
        )
        .await;
    assert_eq!(v["data"]["userInfo"]["profileId"], json!(theirs));
}

#[tokio::test]
async fn a_parent_apps_token_cannot_reach_child_profiles_directly() {
    let t = TestApp::new().await;
    let kid = make_user(&t, "child", "kid@example.com").await;
    let (_, v) = t
        .gql(
            &t.token("parent", ALL),
            "query($id: ID!) { userInfo(profileId: $id) { profileId } }",
            json!({ "id": kid }),
        )
        .await;
    assert!(v["data"]["userInfo"].is_null());
}
