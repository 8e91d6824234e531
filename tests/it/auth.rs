//! The JWT guard (every bad token → 401 UNAUTHENTICATED) and the scope matrix (a missing
//! scope → FORBIDDEN for that field, 200 with a partial result).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::harness::*;
use crate::signing::{RSA_PEM, TestKey};

const Q: &str = "{ users(first: 1) { edges { cursor } } }";

async fn status_of(t: &TestApp, auth: Option<String>) -> (u16, Value) {
    let mut req = t
        .client
        .post(format!("{}/graphql", t.base))
        .json(&json!({ "query": Q }));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn with(claims: Value, change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut c = claims;
    change(c.as_object_mut().unwrap());
    c
}

#[tokio::test]
async fn every_bad_token_gets_401_unauthenticated() {
    let t = TestApp::new().await;
    let hs = json!({ "alg": "HS256", "typ": "JWT" });
    let good = claims("a", ALL);
    let sign = |h: &Value, c: &Value| sign_hs256(h, c, SECRET.as_bytes());
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("empty bearer", Some("Bearer ".into())),
        ("basic scheme", Some("Basic dXNlcjpwYXNz".into())),
        ("garbage", Some("Bearer not.a.jwt".into())),
        ("two parts", Some("Bearer abc.def".into())),
        ("oversized", Some(format!("Bearer {}", "a".repeat(9000)))),
        (
            "wrong secret",
            Some(format!(
                "Bearer {}",
                sign_hs256(&hs, &good, b"another-secret-of-enough-length-000000")
            )),
        ),
        (
            "alg none",
            Some(format!(
                "Bearer {}.{}.",
                b64(&json!({"alg":"none"})),
                b64(&good)
            )),
        ),
        (
            "alg noNE",
            Some(format!(
                "Bearer {}.{}.",
                b64(&json!({"alg":"noNE"})),
                b64(&good)
            )),
        ),
        (
            "HS384 header on HS256 key",
            Some(format!("Bearer {}", sign(&json!({"alg":"HS384"}), &good))),
        ),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                sign(
                    &hs,
                    &with(good.clone(), |c| {
                        c.insert("exp".into(), json!(now() - 31));
                    })
                )
            )),
        ),
        (
            "nbf in the future",
            Some(format!(
                "Bearer {}",
                sign(
                    &hs,
                    &with(good.clone(), |c| {
                        c.insert("nbf".into(), json!(now() + 120));
                    })
                )
            )),
        ),
        (
            "no exp",
            Some(format!(
                "Bearer {}",
                sign(
                    &hs,
                    &with(good.clone(), |c| {
                        c.remove("exp");
                    })
                )
            )),
        ),
        (
            "no iss",
            Some(format!(
                "Bearer {}",
                sign(
                    &hs,
                    &with(good.clone(), |c| {
                        c.remove("iss");
                    })
                )
            )),
        ),
        (
            "wrong iss",
            Some(format!(
                "Bearer {}",
                sign(
                    &hs,
                    &with(good.clone(), |c| {
                        c.insert("iss".into(), json!("evil"));
                    })
                )
            )),
        ),
        (
            "no aud",
            Some(format!(
                "Bearer {}",
                sign(
                    &hs,
                    &with(good.clone(), |c| {
                        c.remove("aud");
                    })
                )
            )),
        ),
        (
            "wrong aud",
            Some(format!(
                "Bearer {}",
                sign(
                    &hs,
                    &with(good.clone(), |c| {
                        c.insert("aud".into(), json!("other"));
                    })
                )
            )),
        ),
        (
            "no app_id",
            Some(format!(
                "Bearer {}",
                sign(
                    &hs,
                    &with(good.clone(), |c| {
                        c.remove("app_id");
                    })
                )
            )),
        ),
        (
            "no scope",
            Some(format!(
                "Bearer {}",
                sign(
                    &hs,
                    &with(good.clone(), |c| {
                        c.remove("scope");
                    })
                )
            )),
        ),
        (
            "no cloudcode scope",
            Some(format!(
                "Bearer {}",
                sign(
                    &hs,
                    &with(good.clone(), |c| {
                        c.insert("scope".into(), json!("openid profile"));
                    })
                )
            )),
        ),
        (
            "unknown kid",
            Some(format!(
                "Bearer {}",
                sign(&json!({"alg":"HS256","kid":"nope"}), &good)
            )),
        ),
        (
            "kid injection",
            Some(format!(
                "Bearer {}",
                sign(&json!({"alg":"HS256","kid":"' OR 1=1--"}), &good)
            )),
        ),
        (
            "kid traversal",
            Some(format!(
                "Bearer {}",
                sign(&json!({"alg":"HS256","kid":"../../k"}), &good)
            )),
        ),
        (
            "id token typ",
            Some(format!(
                "Bearer {}",
                sign(&json!({"alg":"HS256","typ":"id+jwt"}), &good)
            )),
        ),
        ("JWE shape", Some("Bearer a.b.c.d.e".into())),
        (
            "lifetime over USERSVC_JWT_MAX_TTL (exp in 1,000 years)",
            Some(format!(
                "Bearer {}",
                sign(
                    &hs,
                    &with(good.clone(), |c| {
                        c.insert("exp".into(), json!(now() + 1000 * 365 * 86_400));
                    })
                )
            )),
        ),
        (
            "lifetime over USERSVC_JWT_MAX_TTL (no iat, exp in 25 h)",
            Some(format!(
                "Bearer {}",
                sign(
                    &hs,
                    &with(good.clone(), |c| {
                        c.remove("iat");
                        c.insert("exp".into(), json!(now() + 25 * 3600));
                    })
                )
            )),
        ),
        (
            "iat a year ahead",
            Some(format!(
                "Bearer {}",
                sign(
                    &hs,
                    &with(good.clone(), |c| {
                        c.insert("iat".into(), json!(now() + 365 * 86_400));
                        c.insert("exp".into(), json!(now() + 365 * 86_400 + 3600));
                    })
                )
            )),
        ),
        (
            "crit header",
            Some(format!(
                "Bearer {}",
                sign(&json!({"alg":"HS256","crit":["exp"]}), &good)
            )),
        ),
    ];
    for (name, auth) in cases {
        let (status, body) = status_of(&t, auth).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(code(&body), "UNAUTHENTICATED", "{name}");
        assert!(body["data"].is_null(), "{name}");
    }
    // Within the 30 s leeway an expired token still passes; the valid one passes.
    let leeway = sign(
        &hs,
        &with(good.clone(), |c| {
            c.insert("exp".into(), json!(now() - 10));
        }),
    );
    assert_eq!(status_of(&t, Some(format!("Bearer {leeway}"))).await.0, 200);
    assert_eq!(
        status_of(&t, Some(format!("bearer {}", sign(&hs, &good))))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn keys_with_kid_come_from_a_jwk_set_file_of_every_key_type() {
    let keys = [
        TestKey::hs("hs-old", b"an-older-secret-still-valid-for-rotation"),
        TestKey::rsa("rsa-2026"),
        TestKey::ec("ec-2026", 0x11),
        TestKey::ed("ed-2026", 7),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let set = json!({ "keys": keys.iter().map(TestKey::jwk).collect::<Vec<_>>() });
    std::fs::write(&path, set.to_string()).unwrap();
    let t = TestApp::with(Options {
        keys_file: Some(path),
        ..Options::default()
    })
    .await;

    for key in &keys {
        let token = key.token(&claims("a", ALL));
        assert_eq!(
            status_of(&t, Some(format!("Bearer {token}"))).await.0,
            200,
            "{}",
            key.kid
        );
    }
    // The kid-less secret still works next to the file.
    assert_eq!(
        status_of(&t, Some(format!("Bearer {}", t.token("a", ALL))))
            .await
            .0,
        200
    );

    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let rsa_n = keys[1].jwk()["n"].as_str().unwrap().to_owned();
    let mut refused = vec![];
    // Algorithm confusion: HS256 keyed with the RSA public key, under the RSA key's kid.
    for public in [rsa_n.as_str(), RSA_PEM] {
        refused.push(sign_hs256(
            &json!({"alg":"HS256","kid":"rsa-2026"}),
            &claims("a", ALL),
            public.as_bytes(),
        ));
    }
    // A token signed by one key under another key's kid.
    refused.push(keys[3].token_with(json!({"kid": "ec-2026"}), &claims("a", ALL)));
    // An attacker's own key, embedded in the header or named by URL, is never used.
    let attacker = TestKey::ed("ed-2026", 9);
    let own = attacker.jwk();
    refused.push(attacker.token_with(json!({ "jwk": own }), &claims("a", ALL)));
    refused.push(attacker.token_with(
        json!({ "jku": "http://127.0.0.1:9/keys.json", "x5u": "http://127.0.0.1:9/c.pem" }),
        &claims("a", ALL),
    ));
    // alg none under a configured kid.
    refused.push(format!(
        "{}.{}.",
        b64(&json!({"alg":"none","kid":"ed-2026"})),
        b64(&claims("a", ALL))
    ));
    for token in refused {
        let (status, body) = status_of(&t, Some(format!("Bearer {token}"))).await;
        assert_eq!(status, 401, "{token}: {body}");
        assert_eq!(code(&body), "UNAUTHENTICATED");
    }
}

/// A call of every root field, with arguments good enough to pass validation.
pub const ROOT_CALLS: &[(&str, &str)] = &[
    (
        "userInfo",
        "query { userInfo(profileId: \"00000000-0000-7000-8000-000000000000\") { profileId } }",
    ),
    (
        "userByIdentity",
        "query { userByIdentity(type: EMAIL, externalId: \"x@example.com\") { profileId } }",
    ),
    (
        "userExport",
        "query { userExport(profileId: \"00000000-0000-7000-8000-000000000000\") { profileId } }",
    ),
    ("users", "query { users(first: 1) { edges { cursor } } }"),
    (
        "createUserEmailPassword",
        "mutation { createUserEmailPassword(input: {email: \"m@example.com\"}) { user { profileId } } }",
    ),
    (
        "createUserUniversalId",
        "mutation { createUserUniversalId(input: {universalId: \"m\"}) { user { profileId } } }",
    ),
    (
        "createUserExternalAuth",
        "mutation { createUserExternalAuth(input: {externalId: \"m\", externalAuthType: \"corpdir\"}) { user { profileId } } }",
    ),
    (
        "deleteUser",
        "mutation { deleteUser(input: {profileId: \"00000000-0000-7000-8000-000000000000\"}) { deletedProfileIds } }",
    ),
    (
        "sendPasswordResetEmail",
        "mutation { sendPasswordResetEmail(input: {profileId: \"00000000-0000-7000-8000-000000000000\"}) { emailId } }",
    ),
    (
        "sendPasswordResetUniversalId",
        "mutation { sendPasswordResetUniversalId(input: {profileId: \"00000000-0000-7000-8000-000000000000\"}) { emailId } }",
    ),
    (
        "createPasswordResetUrl",
        "mutation { createPasswordResetUrl(input: {profileId: \"00000000-0000-7000-8000-000000000000\", identityType: EMAIL}) { url } }",
    ),
    (
        "setPassword",
        "mutation { setPassword(input: {profileId: \"00000000-0000-7000-8000-000000000000\", password: \"Abcdefgh1!xyz\"}) { user { profileId } } }",
    ),
    (
        "createSelfServiceDeletionUrl",
        "mutation { createSelfServiceDeletionUrl(input: {profileId: \"00000000-0000-7000-8000-000000000000\"}) { url } }",
    ),
    (
        "updateUser",
        "mutation { updateUser(input: {profileId: \"00000000-0000-7000-8000-000000000000\", userName: \"m\"}) { user { profileId } } }",
    ),
    (
        "changeIdentity",
        "mutation { changeIdentity(input: {profileId: \"00000000-0000-7000-8000-000000000000\", type: EMAIL, newExternalId: \"n@example.com\"}) { user { profileId } } }",
    ),
    (
        "attachIdentity",
        "mutation { attachIdentity(input: {profileId: \"00000000-0000-7000-8000-000000000000\", type: UNIVERSAL_ID, externalId: \"m\"}) { user { profileId } } }",
    ),
    (
        "detachIdentity",
        "mutation { detachIdentity(input: {profileId: \"00000000-0000-7000-8000-000000000000\", type: EMAIL}) { user { profileId } } }",
    ),
    (
        "disableUser",
        "mutation { disableUser(input: {profileId: \"00000000-0000-7000-8000-000000000000\"}) { user { profileId } } }",
    ),
    (
        "enableUser",
        "mutation { enableUser(input: {profileId: \"00000000-0000-7000-8000-000000000000\"}) { user { profileId } } }",
    ),
    (
        "verifyPassword",
        "mutation { verifyPassword(input: {type: EMAIL, externalId: \"m@example.com\", password: \"whatever\"}) { user { profileId } } }",
    ),
    (
        "importUsers",
        "mutation { importUsers(input: {users: []}) { created } }",
    ),
];

#[tokio::test]
async fn scope_matrix_every_root_field_against_every_scope() {
    let t = TestApp::new().await;
    let mut scopes: Vec<&str> = usersvc::auth::scopes::EVERY.to_vec();
    scopes.push("cloudcode:other");
    for (field, query) in ROOT_CALLS {
        let parent = if query.starts_with("mutation") {
            "Mutation"
        } else {
            "Query"
        };
        let needed =
            usersvc::auth::scopes::required(parent, field).expect("every root field has a scope");
        for scope in &scopes {
            let (status, v) = t.gql(&t.token("a", scope), query, json!({})).await;
            assert_eq!(status, 200, "{field} with {scope}");
            let denied = code(&v) == "FORBIDDEN";
            assert_eq!(denied, *scope != needed, "{field} with {scope}: {v}");
            if denied {
                assert_eq!(v["errors"][0]["path"][0], json!(field));
            }
        }
        let (_, v) = t.gql(&t.token("a", ALL), query, json!({})).await;
        assert_ne!(code(&v), "FORBIDDEN", "{field} with the wildcard");
    }
}

#[tokio::test]
async fn every_root_field_of_the_schema_declares_a_scope_and_is_tested() {
    let schema = usersvc::graphql::build(None, &usersvc::graphql::Limits::default());
    let resp = async_graphql::Schema::execute(
        &schema,
        "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }",
    )
    .await;
    let v = resp.data.into_json().unwrap();
    let mut seen = 0;
    for (root, key) in [("Query", "queryType"), ("Mutation", "mutationType")] {
        for f in v["__schema"][key]["fields"].as_array().unwrap() {
            let name = f["name"].as_str().unwrap();
            assert!(
                usersvc::auth::scopes::required(root, name).is_some(),
                "{root}.{name} has no scope in auth::scopes::required"
            );
            assert!(
                ROOT_CALLS.iter().any(|(f, _)| *f == name),
                "{root}.{name} is missing from the scope matrix"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, ROOT_CALLS.len());
}

#[tokio::test]
async fn partial_results_keep_allowed_fields() {
    let t = TestApp::new().await;
    let id = crate::create::make_user(&t, "a", "partial@example.com").await;
    // `userInfo` is nullable: refused for lack of scope, it is null beside the allowed field.
    let (status, v) = t
        .gql(
            &t.token("a", "cloudcode:users:export"),
            &format!("{{ userInfo(profileId: \"{id}\") {{ profileId }} userExport(profileId: \"{id}\") {{ profileId }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["data"]["userExport"]["profileId"], json!(id), "{v}");
    assert!(v["data"]["userInfo"].is_null(), "{v}");
    assert_eq!(code(&v), "FORBIDDEN");
}

#[tokio::test]
async fn a_token_for_an_app_that_does_not_exist_can_do_nothing() {
    let t = TestApp::new().await;
    let (_, v) = t
        .gql(&t.token("ghost", ALL), "mutation { createUserUniversalId(input: {universalId: \"x\"}) { user { profileId } } }", json!({}))
        .await;
    assert_eq!(code(&v), "FORBIDDEN");
    let (_, v) = t.gql(&t.token("ghost", ALL), Q, json!({})).await;
    assert_eq!(v["data"]["users"]["edges"], json!([]));
}
