//! C7: the scope each operation needs, checked against the contract's table (API.md §1)
//! written out here by hand, not against the server's own table: a wrong entry in the code
//! fails this test. Every root field of the schema must be in the table.

use serde_json::json;

use super::*;
use crate::auth::ROOT_CALLS;

/// API.md §1, "Scopes", copied by hand: operation → the one specific scope that grants it.
const CONTRACT: &[(&str, &str)] = &[
    ("userInfo", "cloudcode:users:read"),
    ("userByIdentity", "cloudcode:users:read"),
    ("users", "cloudcode:users:read"),
    ("userExport", "cloudcode:users:export"),
    ("createUserEmailPassword", "cloudcode:users:create"),
    ("createUserUniversalId", "cloudcode:users:create"),
    ("createUserExternalAuth", "cloudcode:users:create"),
    ("deleteUser", "cloudcode:users:delete"),
    ("sendPasswordResetEmail", "cloudcode:users:password"),
    ("sendPasswordResetUniversalId", "cloudcode:users:password"),
    ("createPasswordResetUrl", "cloudcode:users:password"),
    ("setPassword", "cloudcode:users:password"),
    (
        "createSelfServiceDeletionUrl",
        "cloudcode:users:deletion-url",
    ),
    ("updateUser", "cloudcode:users:update"),
    ("changeIdentity", "cloudcode:users:update"),
    ("attachIdentity", "cloudcode:users:update"),
    ("detachIdentity", "cloudcode:users:update"),
    ("disableUser", "cloudcode:users:update"),
    ("enableUser", "cloudcode:users:update"),
    ("verifyPassword", "cloudcode:users:authenticate"),
    ("importUsers", "cloudcode:users:import"),
];

/// Scopes a token may hold: every one the contract names, and lookalikes that grant nothing.
const HELD: &[&str] = &[
    "cloudcode:users:read",
    "cloudcode:users:export",
    "cloudcode:users:create",
    "cloudcode:users:delete",
    "cloudcode:users:password",
    "cloudcode:users:deletion-url",
    "cloudcode:users:update",
    "cloudcode:users:authenticate",
    "cloudcode:users:import",
    "cloudcode:users:*",
    "cloudcode:*",
    "cloudcode:users",
    "cloudcode:users:Read",
    "cloudcode:users:read:all",
    "cloudcode:other",
];

/// Whether the contract lets a token holding `held` call an operation needing `needed`.
fn contract_allows(held: &str, needed: &str) -> bool {
    held == needed || held == "cloudcode:users:*"
}

#[tokio::test]
async fn every_operation_needs_the_scope_the_contract_names_and_no_other() {
    let t = TestApp::new().await;
    for (root, field) in root_fields(&t).await {
        let Some((_, needed)) = CONTRACT.iter().find(|(f, _)| *f == field) else {
            panic!("{root}.{field} is not in the contract's scope table");
        };
        let (_, query) = ROOT_CALLS
            .iter()
            .find(|(f, _)| *f == field)
            .unwrap_or_else(|| panic!("{field} has no call in auth::ROOT_CALLS"));
        for held in HELD {
            let (status, v) = t.gql(&t.token("a", held), query, json!({})).await;
            assert_eq!(status, 200, "{field} with {held}: {v}");
            let denied = code(&v) == "FORBIDDEN";
            assert_eq!(
                denied,
                !contract_allows(held, needed),
                "{field} with {held}: {v}"
            );
            if denied {
                assert_eq!(v["errors"][0]["path"], json!([field]), "{v}");
                assert!(v["data"].is_null() || v["data"][&field].is_null(), "{v}");
            }
        }
        // Several scopes at once: allowed exactly when one of them grants it.
        let others: Vec<&str> = HELD
            .iter()
            .copied()
            .filter(|h| !contract_allows(h, needed))
            .collect();
        let (_, v) = t
            .gql(&t.token("a", &others.join(" ")), query, json!({}))
            .await;
        assert_eq!(code(&v), "FORBIDDEN", "{field} with every other scope: {v}");
        let (_, v) = t
            .gql(
                &t.token("a", &format!("{} {needed}", others.join(" "))),
                query,
                json!({}),
            )
            .await;
        assert_ne!(
            code(&v),
            "FORBIDDEN",
            "{field} with its scope among others: {v}"
        );
    }
}

#[tokio::test]
async fn a_token_without_any_cloudcode_scope_is_refused_outright() {
    let t = TestApp::new().await;
    for scope in ["", "openid profile", "users:read", "cloudcodeusers:read"] {
        let (status, v) = t
            .gql(&t.token("a", scope), "{ users { totalCount } }", json!({}))
            .await;
        assert_eq!(status, 401, "{scope:?}: {v}");
        assert_eq!(code(&v), "UNAUTHENTICATED");
    }
}
