//! userInfo, userByIdentity, userExport.

use serde_json::json;

use crate::client::*;
use crate::create::{email_input, make_user};
use crate::harness::*;

#[tokio::test]
async fn user_info_returns_the_profile_with_identities_or_null() {
    let t = TestApp::new().await;
    let id = make_user(&t, "a", "ann@example.com").await;
    let tok = t.token("a", "cloudcode:users:read");
    let u = t
        .run::<UserInfo>(
            &tok,
            user_info::Variables {
                profile_id: id.clone(),
            },
        )
        .await
        .user_info
        .unwrap();
    assert_eq!(u.profile_id, id);
    assert_eq!(u.app_id, "a");
    assert_eq!(u.contact_email.as_deref(), Some("ann@example.com"));
    assert_eq!(u.identities.len(), 1);
    assert_eq!(u.identities[0].type_, user_info::IdentityType::EMAIL);
    assert!(u.children.is_empty());
    assert!(
        u.created_at.ends_with("+00:00") || u.created_at.ends_with('Z'),
        "{}",
        u.created_at
    );

    let missing = t
        .run::<UserInfo>(
            &tok,
            user_info::Variables {
                profile_id: "00000000-0000-7000-8000-000000000000".into(),
            },
        )
        .await;
    assert!(missing.user_info.is_none());
    let code = t
        .run_err::<UserInfo>(
            &tok,
            user_info::Variables {
                profile_id: "nope".into(),
            },
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
}

#[tokio::test]
async fn user_by_identity_matches_normalised_keys() {
    let t = TestApp::new().await;
    let id = make_user(&t, "a", "carl@example.com").await;
    let tok = t.token("a", "cloudcode:users:read");
    let found = t
        .run::<UserByIdentity>(
            &tok,
            user_by_identity::Variables {
                type_: user_by_identity::IdentityType::EMAIL,
                external_id: "  CARL@Example.com".into(),
                external_auth_type: None,
            },
        )
        .await
        .user_by_identity
        .unwrap();
    assert_eq!(found.profile_id, id);
    let none = t
        .run::<UserByIdentity>(
            &tok,
            user_by_identity::Variables {
                type_: user_by_identity::IdentityType::UNIVERSAL_ID,
                external_id: "carl@example.com".into(),
                external_auth_type: None,
            },
        )
        .await;
    assert!(none.user_by_identity.is_none());
    let code = t
        .run_err::<UserByIdentity>(
            &tok,
            user_by_identity::Variables {
                type_: user_by_identity::IdentityType::EXTERNAL,
                external_id: "x".into(),
                external_auth_type: None,
            },
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
}

#[tokio::test]
async fn export_has_every_section_and_no_secret() {
    let t = TestApp::new().await;
    let parent = make_user(&t, "parent", "pat@example.com").await;
    let child_tok = t.token("child", ALL);
    t.run::<CreateEmail>(
        &child_tok,
        create_email::Variables {
            input: create_email::CreateUserEmailPasswordInput {
                parent_profile_id: Some(parent.clone()),
                ..email_input("kid@example.com", Some("secret-password-1"))
            },
        },
    )
    .await;
    let tok = t.token("parent", "cloudcode:users:export");
    let e = t
        .run::<UserExport>(
            &tok,
            user_export::Variables {
                profile_id: parent.clone(),
            },
        )
        .await
        .user_export;
    assert_eq!(e.profile_id, parent);
    assert_eq!(e.app_id, "parent");
    assert_eq!(e.profile.identities.len(), 1);
    assert_eq!(e.credentials[0].external_id, "pat@example.com");
    assert_eq!(e.children.len(), 1);
    assert_eq!(e.children[0].app_id, "child");
    assert_eq!(e.audit_events.len(), 1);
    assert_eq!(e.audit_events[0].operation, "createUserEmailPassword");
    assert_eq!(e.audit_events[0].actor, "tester");
    assert_eq!(
        e.document["profile"]["contactEmail"],
        json!("pat@example.com")
    );
    assert_eq!(e.document["credentials"][0]["hasPassword"], json!(true));
    let text = e.document.to_string().to_lowercase();
    for secret in ["argon2", "hash", "secret-password", "\"password\""] {
        assert!(
            !text.contains(secret),
            "export document mentions {secret}: {text}"
        );
    }

    let code = t
        .run_err::<UserExport>(
            &tok,
            user_export::Variables {
                profile_id: "00000000-0000-7000-8000-000000000000".into(),
            },
        )
        .await;
    assert_eq!(code, "PROFILE_NOT_FOUND");
}
