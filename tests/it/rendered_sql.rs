//! The SQL text kept per query type (`db::rendered`) must answer exactly as a text rendered
//! afresh: every generated request is sent with the kept texts in use and again with them
//! switched off, and the two responses must be the same, byte for byte. (Other tests running
//! meanwhile take the plain path while it is off, which is the point: it is equivalent.)

use serde_json::{Value, json};
use usersvc::db::rendered;

use crate::harness::*;
use crate::seeded::Gen;

#[tokio::test]
async fn kept_sql_texts_answer_as_texts_rendered_afresh() {
    let t = TestApp::new().await;
    let token = t.token("a", ALL);
    // Users with each kind of identity, the queries' every branch to go through.
    let creates = [
        "mutation { createUserEmailPassword(input: {email: \"r1@example.com\", password: \"password-123\", userName: \"R1\"}) { user { profileId } } }",
        "mutation { createUserUniversalId(input: {universalId: \"r2\", password: \"password-123\", contactEmail: \"r2@example.com\"}) { user { profileId } } }",
        "mutation { createUserExternalAuth(input: {externalId: \"ext-3\", externalAuthType: \"corpdir\"}) { user { profileId } } }",
    ];
    let mut ids = vec!["00000000-0000-7000-8000-000000000000".to_owned()];
    for create in creates {
        let (_, v) = t.gql(&token, create, json!({})).await;
        let user = v["data"]
            .as_object()
            .and_then(|d| d.values().next())
            .cloned();
        let id = user.as_ref().map(|u| u["user"]["profileId"].clone());
        ids.push(
            id.and_then(|i| i.as_str().map(str::to_owned))
                .unwrap_or_else(|| panic!("{v}")),
        );
    }
    let identities = [
        ("EMAIL", "r1@example.com", None),
        ("EMAIL", "R1@Example.com ", None),
        ("UNIVERSAL_ID", "r2", None),
        ("EXTERNAL", "ext-3", Some("corpdir")),
        ("EXTERNAL", "ext-3", Some("other")),
        ("EMAIL", "nobody@example.com", None),
    ];
    let mut g = Gen(0x0dd_ba11_cafe_f00d);
    let (mut with_data, mut with_errors) = (0, 0);
    for i in 0..150 {
        let id = g.pick(&ids).clone();
        let (kind, key, auth) = *g.pick(&identities);
        let query = match g.next() % 6 {
            0 => format!("{{ userInfo(profileId: \"{id}\") {{ profileId userName contactEmail identities {{ type externalId externalAuthType hasPassword createdAt }} }} }}"),
            1 => format!("{{ userInfo(profileId: \"{id}\") {{ profileId userName createdAt updatedAt }} }}"),
            2 => {
                let auth = auth.map_or(String::new(), |a| format!(", externalAuthType: \"{a}\""));
                format!("{{ userByIdentity(type: {kind}, externalId: \"{key}\"{auth}) {{ profileId userName }} }}")
            }
            3 => format!("{{ userExport(profileId: \"{id}\") {{ profileId appId profile {{ userName }} credentials {{ type externalId }} auditEvents {{ at actor operation }} }} }}"),
            4 => format!("mutation {{ createUserEmailPassword(input: {{email: \"{key}\"}}) {{ user {{ profileId }} }} }}"),
            _ => "mutation { createUserExternalAuth(input: {externalId: \"ext-3\", externalAuthType: \"corpdir\"}) { user { profileId } } }".to_owned(),
        };
        // Creates whose identity is new would differ between the two sends: only taken ones.
        if query.contains("createUserEmailPassword") && !key.to_lowercase().contains("r1@") {
            continue;
        }
        let mut answers = Vec::new();
        for kept in [true, false] {
            rendered::set_enabled(kept);
            let resp = t
                .client
                .post(format!("{}/graphql", t.base))
                .bearer_auth(&token)
                .json(&json!({ "query": query }))
                .send()
                .await
                .unwrap();
            answers.push((resp.status().as_u16(), resp.text().await.unwrap()));
        }
        rendered::set_enabled(true);
        assert_eq!(answers[0], answers[1], "request {i}: {query}");
        let v: Value = serde_json::from_str(&answers[0].1).unwrap();
        if v["errors"] == Value::Null {
            with_data += 1;
        } else {
            with_errors += 1;
        }
    }
    assert!(
        with_data > 40 && with_errors > 20,
        "{with_data} {with_errors}"
    );
}
