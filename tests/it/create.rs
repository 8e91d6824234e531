//! The three create mutations: normalisation, defaults, policy, parents, uniqueness.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use crate::client::*;
use crate::harness::*;

pub fn email_input(
    email: &str,
    password: Option<&str>,
) -> create_email::CreateUserEmailPasswordInput {
    create_email::CreateUserEmailPasswordInput {
        email: email.into(),
        password: password.map(Into::into),
        ..Default::default()
    }
}

/// Creates an email user in `app` and returns its profile id.
pub async fn make_user(t: &TestApp, app: &str, email: &str) -> String {
    let tok = t.token(app, ALL);
    let data = t
        .run::<CreateEmail>(
            &tok,
            create_email::Variables {
                input: email_input(email, Some("password-123")),
            },
        )
        .await;
    data.create_user_email_password.user.profile_id
}

#[tokio::test]
async fn create_email_user_normalises_and_defaults_contact_email() {
    let t = TestApp::new().await;
    let tok = t.token("a", "cloudcode:users:create");
    let mut input = email_input("  Alice@Example.COM ", Some("correct horse battery"));
    input.user_name = Some("Alice".into());
    input.summary_friend_data = Some(json!({"level": 3}));
    let data = t
        .run::<CreateEmail>(&tok, create_email::Variables { input })
        .await;
    let user = data.create_user_email_password.user;
    assert_eq!(user.app_id, "a");
    assert_eq!(user.user_name.as_deref(), Some("Alice"));
    assert_eq!(user.contact_email.as_deref(), Some("alice@example.com"));
    assert_eq!(user.summary_friend_data, Some(json!({"level": 3})));
    assert!(!user.is_tester);
    assert_eq!(user.identities.len(), 1);
    assert_eq!(user.identities[0].external_id, "alice@example.com");
    assert!(user.identities[0].has_password);

    // Stored as an argon2id PHC string with OWASP parameters; the password is nowhere in clear.
    let mut conn = t.sql().await;
    let hash: Option<String> = usersvc::db::schema::identities::table
        .select(usersvc::db::schema::identities::password_hash)
        .first(&mut conn)
        .await
        .unwrap();
    let hash = hash.unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains("correct horse"));

    // The audit event was written with the profile.
    let ops: Vec<String> = usersvc::db::schema::audit_events::table
        .select(usersvc::db::schema::audit_events::operation)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(ops, ["createUserEmailPassword"]);
}

#[tokio::test]
async fn create_universal_and_external_users() {
    let t = TestApp::new().await;
    let tok = t.token("a", ALL);
    let u = t
        .run::<CreateUniversal>(
            &tok,
            create_universal::Variables {
                input: create_universal::CreateUserUniversalIdInput {
                    universal_id: " Player_One ".into(),
                    password: None,
                    contact_email: Some("p1@example.com".into()),
                    ..Default::default()
                },
            },
        )
        .await
        .create_user_universal_id
        .user;
    assert_eq!(u.identities[0].external_id, "player_one");
    assert!(
        u.identities[0].has_password,
        "a random password is set when none is given"
    );
    assert_eq!(u.contact_email.as_deref(), Some("p1@example.com"));

    let e = t
        .run::<CreateExternal>(
            &tok,
            create_external::Variables {
                input: create_external::CreateUserExternalAuthInput {
                    external_id: " Emp-42 ".into(),
                    external_auth_type: "corpdir".into(),
                    ..Default::default()
                },
            },
        )
        .await
        .create_user_external_auth
        .user;
    let id = &e.identities[0];
    assert_eq!(id.external_id, "Emp-42", "external ids keep their case");
    assert_eq!(id.external_auth_type.as_deref(), Some("corpdir"));
    assert!(!id.has_password);
    assert_eq!(e.contact_email, None);
}

#[tokio::test]
async fn duplicates_are_refused_within_an_app_but_not_across_apps() {
    let t = TestApp::new().await;
    make_user(&t, "a", "bob@example.com").await;
    let code = t
        .run_err::<CreateEmail>(
            &t.token("a", ALL),
            create_email::Variables {
                input: email_input("BOB@example.com", None),
            },
        )
        .await;
    assert_eq!(code, "USER_ALREADY_EXISTS");
    // The same address in another app is another user.
    make_user(&t, "b", "bob@example.com").await;
}

#[tokio::test]
async fn sixteen_concurrent_creates_of_one_identity_have_one_winner() {
    let t = TestApp::new().await;
    let tok = t.token("a", ALL);
    let query = "mutation($e: String!) { createUserUniversalId(input: {universalId: $e, password: \"long enough pw\"}) { user { profileId } } }";
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let client = t.client.clone();
        let url = format!("{}/graphql", t.base);
        let tok = tok.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(tok)
                .json(&json!({ "query": query, "variables": { "e": "racer" } }))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }));
    }
    let mut ok = 0;
    let mut exists = 0;
    for task in tasks {
        let v = task.await.unwrap();
        match code(&v).as_str() {
            "" => ok += 1,
            "USER_ALREADY_EXISTS" => exists += 1,
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert_eq!((ok, exists), (1, 15));
    let mut conn = t.sql().await;
    let n: i64 = usersvc::db::schema::profiles::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 1, "losers left no profile behind");
}

#[tokio::test]
async fn invalid_input_gets_typed_errors_and_changes_nothing() {
    let t = TestApp::new().await;
    let tok = t.token("a", ALL);
    let cases: Vec<(create_email::CreateUserEmailPasswordInput, &str, i64)> = vec![
        (email_input("not-an-email", None), "EMAIL_NOT_VALID", 40221),
        (
            email_input("a\r\nBcc: x@y.com@example.com", None),
            "EMAIL_NOT_VALID",
            40221,
        ),
        (
            email_input(&format!("{}@example.com", "a".repeat(30_000)), None),
            "EMAIL_NOT_VALID",
            40221,
        ),
        (
            email_input("ok@example.com", Some("short")),
            "INVALID_PASSWORD_CONTENT",
            550022,
        ),
        (
            email_input("ok@example.com", Some(&"x".repeat(129))),
            "INVALID_PASSWORD_CONTENT",
            550022,
        ),
        (
            create_email::CreateUserEmailPasswordInput {
                user_name: Some("x".repeat(129)),
                ..email_input("ok@example.com", None)
            },
            "BAD_USER_INPUT",
            40660,
        ),
        (
            create_email::CreateUserEmailPasswordInput {
                contact_email: Some("nope".into()),
                ..email_input("ok@example.com", None)
            },
            "EMAIL_NOT_VALID",
            40221,
        ),
        (
            create_email::CreateUserEmailPasswordInput {
                time_zone_offset: Some(99.0),
                ..email_input("ok@example.com", None)
            },
            "BAD_USER_INPUT",
            40660,
        ),
        (
            create_email::CreateUserEmailPasswordInput {
                parent_profile_id: Some("not-a-uuid".into()),
                ..email_input("ok@example.com", None)
            },
            "BAD_USER_INPUT",
            40660,
        ),
        (
            create_email::CreateUserEmailPasswordInput {
                summary_friend_data: Some(json!({ "blob": "x".repeat(20_000) })),
                ..email_input("ok@example.com", None)
            },
            "BAD_USER_INPUT",
            40660,
        ),
        (
            create_email::CreateUserEmailPasswordInput {
                notification_template_id: Some("welcome".into()),
                ..email_input("ok@example.com", None)
            },
            "INVALID_TEMPLATE_ID",
            40375,
        ),
    ];
    for (input, want, reason) in cases {
        let body =
            <CreateEmail as graphql_client::GraphQLQuery>::build_query(create_email::Variables {
                input,
            });
        let (status, v) = t
            .gql(
                &tok,
                body.query,
                serde_json::to_value(&body.variables).unwrap(),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(code(&v), want, "{v}");
        assert_eq!(v["errors"][0]["extensions"]["reasonCode"], json!(reason));
        assert!(v["data"].is_null(), "{v}");
    }
    let mut conn = t.sql().await;
    let n: i64 = usersvc::db::schema::profiles::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn app_password_policy_names_the_rule() {
    let t = TestApp::new().await;
    {
        usersvc::apps::set(&mut t.db.pool(), "a", "password.min_digits", "2")
            .await
            .unwrap();
    }
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "mutation { createUserUniversalId(input: {universalId: \"u\", password: \"abcdefgh1\"}) { user { profileId } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&v), "INVALID_PASSWORD_CONTENT");
    let msg = v["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("at least 2 digits"), "{msg}");
    // Passwords are counted in characters: 8 non-ASCII characters and 2 digits pass.
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "mutation { createUserUniversalId(input: {universalId: \"u\", password: \"éééééé12\"}) { user { profileId } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&v), "", "{v}");
}

#[tokio::test]
async fn external_auth_types_follow_the_app_setting() {
    let t = TestApp::new().await;
    {
        usersvc::apps::set(
            &mut t.db.pool(),
            "a",
            "external_auth_types",
            "corpdir, ldap",
        )
        .await
        .unwrap();
    }
    let q = "mutation($t: String!) { createUserExternalAuth(input: {externalId: \"x1\", externalAuthType: $t}) { user { profileId } } }";
    let (_, v) = t
        .gql(&t.token("a", ALL), q, json!({ "t": "facebook" }))
        .await;
    assert_eq!(code(&v), "INVALID_EXT_AUTH_TYPE");
    assert_eq!(v["errors"][0]["extensions"]["reasonCode"], json!(40684));
    let (_, v) = t.gql(&t.token("a", ALL), q, json!({ "t": "ldap" })).await;
    assert_eq!(code(&v), "", "{v}");
}

#[tokio::test]
async fn parent_profiles_must_live_in_the_parent_app() {
    let t = TestApp::new().await;
    let parent = make_user(&t, "parent", "mum@example.com").await;
    let other = make_user(&t, "a", "stranger@example.com").await;
    let tok = t.token("child", ALL);
    let with_parent = |p: &str| create_email::Variables {
        input: create_email::CreateUserEmailPasswordInput {
            parent_profile_id: Some(p.to_owned()),
            ..email_input("kid@example.com", None)
        },
    };
    let kid = t
        .run::<CreateEmail>(&tok, with_parent(&parent))
        .await
        .create_user_email_password
        .user;
    assert_eq!(kid.parent_profile_id.as_deref(), Some(parent.as_str()));
    assert_eq!(kid.app_id, "child");

    // A profile of another app, a missing profile, and an app without a parent all fail.
    let mut v = with_parent(&other);
    v.input.email = "kid2@example.com".into();
    assert_eq!(
        t.run_err::<CreateEmail>(&tok, v).await,
        "APP_PARENT_MISMATCH"
    );
    let mut v = with_parent("00000000-0000-0000-0000-000000000000");
    v.input.email = "kid3@example.com".into();
    assert_eq!(
        t.run_err::<CreateEmail>(&tok, v).await,
        "APP_PARENT_MISMATCH"
    );
    let mut v = with_parent(&parent);
    v.input.email = "kid4@example.com".into();
    assert_eq!(
        t.run_err::<CreateEmail>(&t.token("a", ALL), v).await,
        "APP_PARENT_MISMATCH"
    );

    // The parent sees its child.
    let info = t
        .run::<UserInfo>(
            &t.token("parent", ALL),
            user_info::Variables {
                profile_id: parent.clone(),
            },
        )
        .await
        .user_info
        .unwrap();
    assert_eq!(info.children.len(), 1);
    assert_eq!(info.children[0].profile_id, kid.profile_id);
    assert_eq!(
        info.children[0].identities[0].external_id,
        "kid@example.com"
    );
}
