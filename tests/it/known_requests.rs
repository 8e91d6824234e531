//! The validation shortcut (`http::known`) must answer exactly as full validation does: two
//! servers on one database, one with the shortcut and one without, get the same generated
//! requests in the same order, and every response must be the same, byte for byte.

use serde_json::{Value, json};

use crate::create::make_user;
use crate::harness::*;
use crate::seeded::Gen;

/// A document, the operation names that run it (`None`: no name given), the variables it
/// declares.
type Document = (
    &'static str,
    &'static [Option<&'static str>],
    &'static [&'static str],
);

const DOCUMENTS: &[Document] = &[
    (
        "query($id: ID!) { userInfo(profileId: $id) { profileId userName identities { type externalId } } }",
        &[None],
        &["id"],
    ),
    (
        "query($t: IdentityType!, $e: String!, $x: String) { userByIdentity(type: $t, externalId: $e, externalAuthType: $x) { profileId contactEmail } }",
        &[None],
        &["t", "e", "x"],
    ),
    (
        "query Page($n: Int, $after: String, $f: UserFilter) { users(first: $n, after: $after, filter: $f) { totalCount nodes { profileId } pageInfo { hasNextPage } } }",
        &[None, Some("Page")],
        &["n", "after", "f"],
    ),
    (
        "query Q($n: Int!, $deep: Boolean!) { a: users(first: $n) { totalCount } b: users(first: $n) @include(if: $deep) { nodes { children { children { profileId } } } } }",
        &[None, Some("Q")],
        &["n", "deep"],
    ),
    (
        "query A($id: ID!) { userInfo(profileId: $id) { profileId } } query B($ids: [ID!], $n: Int) { users(first: $n) { totalCount } }",
        &[Some("A"), Some("B")],
        &["id", "ids", "n"],
    ),
    (
        "query($id: ID, $unused: String) { userInfo(profileId: $id) { profileId } }",
        &[None],
        &["id", "unused"],
    ),
];

#[tokio::test]
async fn the_validation_shortcut_answers_as_full_validation_does() {
    let t = TestApp::new().await;
    let plain = t
        .another_instance(Options {
            http: usersvc::http::HttpSettings {
                validation_shortcut: false,
                ..Options::default().http
            },
            mail_worker: false,
            ..Options::default()
        })
        .await;
    let plain_base = format!("http://{}", plain.addr);
    let ids = [
        make_user(&t, "a", "k1@example.com").await,
        make_user(&t, "a", "k2@example.com").await,
    ];
    let nobody = "00000000-0000-7000-8000-000000000000";
    // Values of the declared type that the resolvers accept, and others.
    let good = |name: &str| -> Vec<Value> {
        match name {
            "id" => vec![json!(ids[0]), json!(ids[1]), json!(nobody)],
            "ids" => vec![json!([ids[0], ids[1]]), json!([])],
            "after" | "x" => vec![Value::Null],
            "t" => vec![json!("EMAIL"), json!("UNIVERSAL_ID")],
            "e" | "unused" => vec![json!("k1@example.com"), json!("K2@Example.com"), json!("x")],
            "n" => vec![json!(1), json!(2), json!(50)],
            "deep" => vec![json!(true), json!(false)],
            "f" => vec![json!({ "userNamePrefix": "a" }), json!({})],
            _ => unreachable!("{name}"),
        }
    };
    let odd = |name: &str| -> Vec<Value> {
        let mut odd = vec![
            Value::Null,
            json!(5),
            json!(1.5),
            json!(true),
            json!("x"),
            json!(["x"]),
            json!({ "a": 1 }),
        ];
        odd.extend(match name {
            "id" | "ids" => vec![json!("nope"), json!(""), json!([null])],
            "after" => vec![json!("not-a-cursor")],
            "t" => vec![json!("NOPE"), json!("email"), json!("EXTERNAL")],
            "x" => vec![json!("corpdir")],
            "n" => vec![
                json!(500),
                json!(0),
                json!(-1),
                json!(2_147_483_648_i64),
                json!("3"),
            ],
            "f" => vec![json!({ "isTester": "no" }), json!({ "nope": 1 })],
            _ => vec![],
        });
        odd
    };
    let token = t.token("a", ALL);
    let mut g = Gen(0x5eed_1234_abcd_0001);
    let (mut with_data, mut with_errors) = (0, 0);
    for i in 0..400 {
        let (query, operations, names) = *g.pick(DOCUMENTS);
        // Mostly requests that pass (so that their documents become known), then ones with one
        // thing changed: a value of another kind, a missing variable, another operation name.
        let changed = (g.next() % 10 >= 7).then(|| g.next() % (names.len() as u64 + 1));
        let mut variables = serde_json::Map::new();
        for (n, name) in names.iter().enumerate() {
            let value = if changed == Some(n as u64) {
                if g.next().is_multiple_of(4) {
                    continue;
                }
                g.pick(&odd(name)).clone()
            } else {
                g.pick(&good(name)).clone()
            };
            variables.insert((*name).to_owned(), value);
        }
        let mut body = json!({ "query": query, "variables": variables });
        let operation = if changed == Some(names.len() as u64) {
            *g.pick(&[None, Some("C"), Some("A"), Some("Q")])
        } else {
            *g.pick(operations)
        };
        if let Some(operation) = operation {
            body["operationName"] = json!(operation);
        }
        let mut answers = Vec::new();
        for base in [&t.base, &plain_base] {
            let resp = t
                .client
                .post(format!("{base}/graphql"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            answers.push((resp.status().as_u16(), resp.text().await.unwrap()));
        }
        assert_eq!(answers[0], answers[1], "request {i}: {body}");
        let v: Value = serde_json::from_str(&answers[0].1).unwrap();
        if v["errors"].is_null() {
            with_data += 1;
        } else {
            with_errors += 1;
        }
    }
    // Both kinds are well represented.
    assert!(
        with_data > 100 && with_errors > 100,
        "{with_data} {with_errors}"
    );
}
