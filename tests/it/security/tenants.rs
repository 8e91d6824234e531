//! H2/H3: every operation of the schema, called with app a's token on app b's profile, answers
//! exactly as it answers for a profile that does not exist, and changes nothing in app b. The
//! list of operations comes from the schema itself: an operation added without a case here
//! fails [`every_operation_treats_another_apps_profile_as_missing`].

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use usersvc::db::schema::{audit_events, one_time_tokens, outbox};

use super::*;
use crate::create::make_user;

const MISSING: &str = "00000000-0000-7000-8000-000000000000";

/// How a case names its target.
enum Target {
    /// `$id`: a profile id.
    Profile,
    /// `$x`: an email address (the victim's, or one nobody has).
    Email,
    /// Creates: `$id` names the parent profile; `$x` the identifier the victim already has in
    /// its own app, which app a may use too (uniqueness is per app).
    Create,
    /// The listing: never shows the victim, however broad the filter.
    Listing,
    /// The import: `$parent` a parent profile, `$id` the imported profile's id, `$x` its email.
    Import,
}

/// One call per root field of the schema. Arguments are such that the call would succeed on
/// a profile of the caller's own app.
const CASES: &[(&str, Target, &str)] = &[
    (
        "userInfo",
        Target::Profile,
        "query($id: ID!) { userInfo(profileId: $id) { profileId } }",
    ),
    (
        "userExport",
        Target::Profile,
        "query($id: ID!) { userExport(profileId: $id) { profileId } }",
    ),
    (
        "userByIdentity",
        Target::Email,
        "query($x: String!) { userByIdentity(type: EMAIL, externalId: $x) { profileId } }",
    ),
    ("users", Target::Listing, ""),
    (
        "createUserEmailPassword",
        Target::Create,
        "mutation($id: ID, $x: String!) { createUserEmailPassword(input: {email: $x, password: \"password-123\", parentProfileId: $id}) { user { profileId } } }",
    ),
    (
        "createUserUniversalId",
        Target::Create,
        "mutation($id: ID, $x: String!) { createUserUniversalId(input: {universalId: $x, parentProfileId: $id}) { user { profileId } } }",
    ),
    (
        "createUserExternalAuth",
        Target::Create,
        "mutation($id: ID, $x: String!) { createUserExternalAuth(input: {externalId: $x, externalAuthType: \"corpdir\", parentProfileId: $id}) { user { profileId } } }",
    ),
    (
        "sendPasswordResetEmail",
        Target::Profile,
        "mutation($id: ID!) { sendPasswordResetEmail(input: {profileId: $id}) { emailId } }",
    ),
    (
        "sendPasswordResetUniversalId",
        Target::Profile,
        "mutation($id: ID!) { sendPasswordResetUniversalId(input: {profileId: $id}) { emailId } }",
    ),
    (
        "createPasswordResetUrl",
        Target::Profile,
        "mutation($id: ID!) { createPasswordResetUrl(input: {profileId: $id, identityType: EMAIL}) { url } }",
    ),
    (
        "setPassword",
        Target::Profile,
        "mutation($id: ID!) { setPassword(input: {profileId: $id, password: \"a new password 1\", identityType: EMAIL}) { user { profileId } } }",
    ),
    (
        "createSelfServiceDeletionUrl",
        Target::Profile,
        "mutation($id: ID!) { createSelfServiceDeletionUrl(input: {profileId: $id}) { url } }",
    ),
    (
        "updateUser",
        Target::Profile,
        "mutation($id: ID!) { updateUser(input: {profileId: $id, userName: \"taken over\"}) { user { profileId } } }",
    ),
    (
        "changeIdentity",
        Target::Profile,
        "mutation($id: ID!) { changeIdentity(input: {profileId: $id, type: EMAIL, newExternalId: \"attacker@example.com\"}) { user { profileId } } }",
    ),
    (
        "attachIdentity",
        Target::Profile,
        "mutation($id: ID!) { attachIdentity(input: {profileId: $id, type: EXTERNAL, externalId: \"attacker\", externalAuthType: \"corpdir\"}) { user { profileId } } }",
    ),
    (
        "detachIdentity",
        Target::Profile,
        "mutation($id: ID!) { detachIdentity(input: {profileId: $id, type: UNIVERSAL_ID}) { user { profileId } } }",
    ),
    (
        "disableUser",
        Target::Profile,
        "mutation($id: ID!) { disableUser(input: {profileId: $id, reason: \"x\"}) { user { profileId } } }",
    ),
    (
        "enableUser",
        Target::Profile,
        "mutation($id: ID!) { enableUser(input: {profileId: $id}) { user { profileId } } }",
    ),
    (
        "verifyPassword",
        Target::Email,
        "mutation($x: String!) { verifyPassword(input: {type: EMAIL, externalId: $x, password: \"password-123\"}) { user { profileId } } }",
    ),
    (
        "importUsers",
        Target::Import,
        "mutation($parent: ID, $id: ID, $x: String!) { importUsers(input: {mode: UPSERT, users: [{profileId: $id, parentProfileId: $parent, identities: [{type: EMAIL, externalId: $x}]}]}) { created updated unchanged failed results { index profileId status error { code reasonCode message } } } }",
    ),
    (
        "deleteUser",
        Target::Profile,
        "mutation($id: ID!) { deleteUser(input: {profileId: $id, deleteChildren: true}) { deletedProfileIds } }",
    ),
];

const VICTIM: &str = "query($id: ID!) { userInfo(profileId: $id) { profileId userName contactEmail status version updatedAt parentProfileId identities { type externalId externalAuthType hasPassword } children { profileId } } }";

/// Everything app b holds about the victim, as app b sees it and as rows.
async fn victim_state(t: &TestApp, id: &str) -> (Value, i64, i64, i64) {
    let (_, v) = t.gql(&t.token("b", ALL), VICTIM, json!({ "id": id })).await;
    let mut conn = t.sql().await;
    let tokens: i64 = one_time_tokens::table
        .filter(one_time_tokens::app_id.eq("b"))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    let mails: i64 = outbox::table
        .filter(outbox::app_id.eq("b"))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    let events: i64 = audit_events::table
        .filter(audit_events::app_id.eq("b"))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    (v, tokens, mails, events)
}

#[tokio::test]
async fn every_operation_treats_another_apps_profile_as_missing() {
    let t = TestApp::new().await;
    // The victim in app b: every kind of identity, a password, a contact email, so that each
    // case would succeed on it from its own app.
    let victim = make_user(&t, "b", "victim@example.com").await;
    for input in [
        json!({ "profileId": victim, "type": "UNIVERSAL_ID", "externalId": "victim-login", "password": "password-456" }),
        json!({ "profileId": victim, "type": "EXTERNAL", "externalId": "victim-ext", "externalAuthType": "corpdir" }),
    ] {
        let (_, v) = t
            .gql(&t.token("b", ALL), "mutation($in: AttachIdentityInput!) { attachIdentity(input: $in) { user { profileId } } }", json!({ "in": input }))
            .await;
        assert_eq!(code(&v), "", "{v}");
    }
    let own = make_user(&t, "a", "own@example.com").await;
    let before = victim_state(&t, &victim).await;
    assert_eq!(
        before.0["data"]["userInfo"]["identities"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let tok = t.token("a", ALL);
    let fields = root_fields(&t).await;
    let mut creates = Vec::new();
    let mut imports = Vec::new();
    for (root, field) in &fields {
        let Some((_, target, query)) = CASES.iter().find(|(f, _, _)| f == field) else {
            panic!("{root}.{field} has no cross-tenant case in security::tenants::CASES");
        };
        match target {
            Target::Profile => {
                let (s1, foreign) = t.gql(&tok, query, json!({ "id": victim })).await;
                let (s2, absent) = t.gql(&tok, query, json!({ "id": MISSING })).await;
                assert_eq!(s1, s2, "{field}");
                assert_eq!(
                    without_locations(foreign.clone()),
                    without_locations(absent),
                    "{field}"
                );
                assert!(
                    foreign["errors"].is_array()
                        || foreign["data"][field].is_null()
                        || foreign["data"][field]["deletedProfileIds"] == json!([]),
                    "{field} answered with data: {foreign}"
                );
            }
            Target::Email => {
                let (s1, foreign) = t
                    .gql(&tok, query, json!({ "x": "victim@example.com" }))
                    .await;
                let (s2, absent) = t
                    .gql(&tok, query, json!({ "x": "nobody@example.com" }))
                    .await;
                assert_eq!(s1, s2, "{field}");
                assert_eq!(
                    without_locations(foreign.clone()),
                    without_locations(absent),
                    "{field}"
                );
                assert!(
                    foreign["data"][field].is_null() || foreign["data"].is_null(),
                    "{field}: {foreign}"
                );
            }
            Target::Create => {
                // Another app's profile as a parent answers as a missing one does, from an app
                // that has a parent app ...
                let kid = t.token("child", ALL);
                let x = "kid@example.com";
                let (s1, foreign) = t.gql(&kid, query, json!({ "id": victim, "x": x })).await;
                let (s2, absent) = t.gql(&kid, query, json!({ "id": MISSING, "x": x })).await;
                assert_eq!(s1, s2, "{field}");
                assert_eq!(code(&foreign), "APP_PARENT_MISMATCH", "{field}: {foreign}");
                assert_eq!(
                    without_locations(foreign),
                    without_locations(absent),
                    "{field}"
                );
                creates.push((field.clone(), *query));
            }
            Target::Import => {
                // Another app's profile as a parent fails that user as a missing parent does.
                let kid = t.token("child", ALL);
                let vars =
                    |parent: &str| json!({ "parent": parent, "id": null, "x": "kid@example.com" });
                let (s1, foreign) = t.gql(&kid, query, vars(&victim)).await;
                let (s2, absent) = t.gql(&kid, query, vars(MISSING)).await;
                assert_eq!(s1, s2, "{field}");
                let result = &foreign["data"][field]["results"][0];
                assert_eq!(result["error"]["code"], "APP_PARENT_MISMATCH", "{foreign}");
                // The same answer but for the fresh id the failed user would have had.
                let without_id = |mut v: Value| {
                    v["data"][field]["results"][0]["profileId"].take();
                    v
                };
                assert_eq!(without_id(foreign), without_id(absent), "{field}");
                imports.push(*query);
            }
            Target::Listing => {
                for filter in [
                    json!({}),
                    json!({ "contactEmail": "victim@example.com" }),
                    json!({ "userNamePrefix": "" }),
                    json!({ "identityType": "EXTERNAL" }),
                ] {
                    let (_, v) = t
                        .gql(&tok, "query($f: UserFilter) { users(first: 500, filter: $f) { totalCount nodes { profileId } } }", json!({ "f": filter }))
                        .await;
                    let ids: Vec<&str> = v["data"]["users"]["nodes"]
                        .as_array()
                        .unwrap_or_else(|| panic!("{v}"))
                        .iter()
                        .map(|n| n["profileId"].as_str().unwrap())
                        .collect();
                    assert!(!ids.contains(&victim.as_str()), "{filter}: {v}");
                    assert_eq!(
                        ids.len() as i64,
                        v["data"]["users"]["totalCount"].as_i64().unwrap()
                    );
                }
                let (_, v) = t
                    .gql(
                        &tok,
                        "{ users(first: 500) { nodes { profileId } } }",
                        json!({}),
                    )
                    .await;
                assert!(
                    v["data"]["users"]["nodes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|n| n["profileId"] == json!(own))
                );
            }
        }
    }
    assert_eq!(
        fields.len(),
        CASES.len(),
        "every case names an operation of the schema"
    );
    // The victim's identifiers are free in app a: no existence oracle (H3).
    for (field, query) in creates {
        let x = match field.as_str() {
            "createUserEmailPassword" => "victim@example.com",
            "createUserUniversalId" => "victim-login",
            _ => "victim-ext",
        };
        let (_, v) = t.gql(&tok, query, json!({ "id": null, "x": x })).await;
        assert_eq!(code(&v), "", "{field}: {v}");
    }

    // Profile ids are per app: the victim's id, imported into app a, makes a profile of app a
    // as a fresh id does, and never reaches the victim.
    for query in imports {
        let tok = t.token("a", ALL);
        let fresh = uuid::Uuid::now_v7().to_string();
        let (_, foreign) = t
            .gql(
                &tok,
                query,
                json!({ "parent": null, "id": victim, "x": "import-1@example.com" }),
            )
            .await;
        let (_, absent) = t
            .gql(
                &tok,
                query,
                json!({ "parent": null, "id": fresh, "x": "import-2@example.com" }),
            )
            .await;
        for v in [&foreign, &absent] {
            assert_eq!(v["data"]["importUsers"]["created"], 1, "{v}");
            assert_eq!(
                v["data"]["importUsers"]["results"][0]["status"], "CREATED",
                "{v}"
            );
        }
    }

    // Nothing changed in app b: the profile, its identities, links, mail and audit trail.
    let after = victim_state(&t, &victim).await;
    assert_eq!(after, before);
    let (_, v) = t
        .gql(&t.token("b", ALL), "mutation { verifyPassword(input: {type: EMAIL, externalId: \"victim@example.com\", password: \"password-123\"}) { user { profileId } } }", json!({}))
        .await;
    assert_eq!(
        v["data"]["verifyPassword"]["user"]["profileId"],
        json!(victim),
        "{v}"
    );
}

#[tokio::test]
async fn no_operation_takes_its_app_from_an_argument() {
    let t = TestApp::new().await;
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "{ __schema { types { name inputFields { name } fields { name args { name } } } } }",
            json!({}),
        )
        .await;
    let mut names = Vec::new();
    for ty in v["data"]["__schema"]["types"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
    {
        for f in ty["inputFields"].as_array().into_iter().flatten() {
            names.push(format!("{}.{}", ty["name"], f["name"]));
        }
        for f in ty["fields"].as_array().into_iter().flatten() {
            for a in f["args"].as_array().into_iter().flatten() {
                names.push(format!("{}.{}({})", ty["name"], f["name"], a["name"]));
            }
        }
    }
    assert!(names.len() > 30, "{names:?}");
    let tenant_like: Vec<&String> = names
        .iter()
        .filter(|n| {
            n.to_lowercase().replace('_', "").contains("appid")
                || n.to_lowercase().contains("tenant")
        })
        .collect();
    assert!(
        tenant_like.is_empty(),
        "the app comes from the token only: {tenant_like:?}"
    );
}
