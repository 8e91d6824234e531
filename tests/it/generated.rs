//! Requests generated from the committed schema: every root field, called again and again with
//! arguments built from its types, mostly plausible (existing ids, well-formed addresses,
//! passwords, dates) and otherwise at the edges (empty, huge, NUL, wrong kinds, out of range).
//! Unlike the junk of `fuzz`, most of these pass validation and reach the resolvers and the
//! database. Every answer must be a typed error from the contract or data: never a 5xx, never an
//! error without a code, never `INTERNAL_SERVER_ERROR`.

use std::collections::HashMap;

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{
    BaseType, FieldDefinition, InputValueDefinition, Type, TypeKind, TypeSystemDefinition,
};
use serde_json::{Value, json};

use crate::harness::*;
use crate::seeded::Gen;

/// Requests per root field.
const PER_FIELD: usize = 16;

/// What the schema defines, by type name.
enum Def {
    Object(Vec<FieldDefinition>),
    Input(Vec<InputValueDefinition>),
    Enum(Vec<String>),
    Other,
}

struct Schema {
    types: HashMap<String, Def>,
}

impl Schema {
    fn load() -> Self {
        let doc =
            parse_schema(include_str!("../../schema.graphql")).expect("schema.graphql parses");
        let mut types = HashMap::new();
        for def in doc.definitions {
            let TypeSystemDefinition::Type(t) = def else {
                continue;
            };
            let t = t.node;
            let def = match t.kind {
                TypeKind::Object(o) => Def::Object(o.fields.into_iter().map(|f| f.node).collect()),
                TypeKind::Interface(i) => {
                    Def::Object(i.fields.into_iter().map(|f| f.node).collect())
                }
                TypeKind::InputObject(i) => {
                    Def::Input(i.fields.into_iter().map(|f| f.node).collect())
                }
                TypeKind::Enum(e) => Def::Enum(
                    e.values
                        .into_iter()
                        .map(|v| v.node.value.node.to_string())
                        .collect(),
                ),
                TypeKind::Scalar | TypeKind::Union(_) => Def::Other,
            };
            types.insert(t.name.node.to_string(), def);
        }
        Schema { types }
    }

    fn fields(&self, name: &str) -> &[FieldDefinition] {
        match self.types.get(name) {
            Some(Def::Object(fields)) => fields,
            _ => &[],
        }
    }

    /// A selection of `ty`'s leaf fields, and of its object fields' leaves `depth` levels down;
    /// empty for a leaf type.
    fn selection(&self, ty: &Type, depth: usize) -> String {
        let name = named(ty);
        let Some(def) = self.types.get(name) else {
            return String::new();
        };
        match def {
            Def::Object(fields) => {
                let mut parts = Vec::new();
                for f in fields {
                    if f.arguments.iter().any(|a| !a.node.ty.node.nullable) {
                        continue;
                    }
                    let inner = named(&f.ty.node);
                    match self.types.get(inner) {
                        Some(Def::Object(_)) if depth > 0 => {
                            let sub = self.selection(&f.ty.node, depth - 1);
                            if !sub.is_empty() {
                                parts.push(format!("{} {sub}", f.name.node));
                            }
                        }
                        Some(Def::Object(_)) => {}
                        _ => parts.push(f.name.node.to_string()),
                    }
                }
                if parts.is_empty() {
                    parts.push("__typename".into());
                }
                format!("{{ {} }}", parts.join(" "))
            }
            Def::Other if !is_scalar(name) => "{ __typename }".into(),
            _ => String::new(),
        }
    }

    /// A value for an argument or input field `name` of type `ty`.
    fn value(&self, rng: &mut Gen, ids: &[String], name: &str, ty: &Type, depth: usize) -> Value {
        if ty.nullable && rng.chance(10) {
            return Value::Null;
        }
        if !ty.nullable && rng.chance(1) {
            return Value::Null; // refused by validation
        }
        match &ty.base {
            BaseType::List(inner) => {
                let n = if depth > 2 {
                    0
                } else {
                    rng.below(3) + usize::from(rng.chance(70))
                };
                Value::Array(
                    (0..n)
                        .map(|_| self.value(rng, ids, name, inner, depth + 1))
                        .collect(),
                )
            }
            BaseType::Named(type_name) => match self.types.get(type_name.as_str()) {
                Some(Def::Enum(values)) if rng.chance(98) => json!(rng.pick(values)),
                Some(Def::Enum(_)) => json!("NOT_A_VALUE"),
                Some(Def::Input(fields)) if depth < 4 => {
                    let mut object = serde_json::Map::new();
                    for f in fields {
                        if f.ty.node.nullable && rng.chance(40) {
                            continue;
                        }
                        let v = self.value(rng, ids, &f.name.node, &f.ty.node, depth + 1);
                        object.insert(f.name.node.to_string(), v);
                    }
                    Value::Object(object)
                }
                Some(Def::Input(_)) => json!({}),
                _ => scalar(rng, ids, name, type_name),
            },
        }
    }
}

fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(n) => n.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

fn is_scalar(name: &str) -> bool {
    matches!(
        name,
        "String" | "ID" | "Int" | "Float" | "Boolean" | "DateTime" | "JSON"
    )
}

/// The GraphQL spelling of `ty`, for a variable definition.
fn spelled(ty: &Type) -> String {
    let base = match &ty.base {
        BaseType::Named(n) => n.to_string(),
        BaseType::List(inner) => format!("[{}]", spelled(inner)),
    };
    if ty.nullable {
        base
    } else {
        format!("{base}!")
    }
}

const EDGE_STRINGS: &[&str] = &[
    "",
    " ",
    "a",
    "\u{0}",
    "nul\u{0}inside@example.com",
    "ünïcødé@exämple.com",
    "😀😀😀",
    "'; DROP TABLE profiles; --",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "00000000-0000-0000-0000-000000000000",
    "not-a-uuid",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "$2b$04$abcdefghijklmnopqrstuv",
    "$pbkdf2-sha256$i=4294967295,l=32$c2FsdA$aGFzaA",
    "$scrypt$ln=60,r=8,p=1$c2FsdA$aGFzaA",
    "$argon2id$v=19$m=4194304,t=1000,p=255$c2FsdA$aGFzaA",
];

/// A scalar for a field `name` of scalar type `ty`: plausible most of the time.
fn scalar(rng: &mut Gen, ids: &[String], name: &str, ty: &str) -> Value {
    let lower = name.to_ascii_lowercase();
    if rng.chance(8) {
        return match rng.below(6) {
            0 => json!("x".repeat(300 + rng.below(5000))),
            1 => json!(i64::from(i32::MAX) + 1),
            2 => json!([1, 2]),
            3 => json!({ "a": 1 }),
            4 => json!(-1),
            _ => json!(rng.pick(EDGE_STRINGS)),
        };
    }
    if lower.starts_with("parent") && rng.chance(80) {
        return Value::Null; // the test's app has no parent app
    }
    match ty {
        "Int" if lower.contains("offset") => json!(rng.pick(&[0, 1, -5, 12, 25])),
        "Int" if lower.contains("minutes") => json!(rng.pick(&[1, 60, 1440, 0])),
        "Int" => json!(rng.pick(&[0, 1, 2, 10, 50, 500, 501, -5, i32::MAX, i32::MIN])),
        "Float" => json!(rng.pick(&[0.0, 1.5, -1e300])),
        "Boolean" => json!(rng.chance(50)),
        "DateTime" => json!(rng.pick(&[
            "2020-01-01T00:00:00Z",
            "2026-12-07T10:00:00.123+02:00",
            "1970-01-01T00:00:00Z",
            "2999-01-01T00:00:00Z",
            "yesterday",
        ])),
        "JSON" => json!({ "level": rng.below(100), "tags": ["a", "b"] }),
        _ if lower.ends_with("profileid") || lower == "id" => match ids {
            [] => json!("01890a5d-ac96-774b-bcce-b302099a8057"),
            _ if rng.chance(10) => json!("01890a5d-ac96-774b-bcce-b302099a8057"),
            _ => json!(rng.pick(ids)),
        },
        _ if lower.contains("url") => json!(rng.pick(&["https://example.com/p.png", "ftp://x"])),
        _ if lower.contains("email") || lower.contains("address") || lower == "externalid" => {
            json!(format!("gen{}@example.com", rng.below(40)))
        }
        _ if lower.contains("password") && !lower.contains("hash") => {
            json!(rng.pick(&["correct horse battery", "short", "Tr0ub4dour&3xyz"]))
        }
        _ if lower.contains("country") => json!(rng.pick(&["GB", "FR", "ZZ", "gb"])),
        _ if lower.contains("language") => json!(rng.pick(&["en", "fr", "xx"])),
        _ if lower.contains("cursor") || lower == "after" || lower == "before" => {
            json!(rng.pick(&["", "Y3Vyc29y", "not base64!"]))
        }
        _ => json!(format!("{name}-{}", rng.below(1000))),
    }
}

/// Adds the profile ids an answer holds to `ids`, so later requests find users that exist.
fn harvest(data: &Value, ids: &mut Vec<String>) {
    match data {
        Value::Object(map) => {
            for (key, v) in map {
                match v.as_str() {
                    Some(id) if key == "profileId" && !ids.iter().any(|i| i == id) => {
                        ids.push(id.to_owned());
                    }
                    _ => harvest(v, ids),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| harvest(v, ids)),
        _ => {}
    }
}

/// Checks one answer; `true` when it carried data and no error.
fn check(field: &str, query: &str, variables: &Value, status: u16, body: &Value) -> bool {
    let shown = || format!("{field}: {query}\nvariables: {variables}\nanswer {status}: {body}");
    assert!(status < 500, "a server error for {}", shown());
    assert!(
        body.get("data").is_some() || body.get("errors").is_some(),
        "neither data nor errors for {}",
        shown()
    );
    let errors = body["errors"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    for e in errors {
        let code = e["extensions"]["code"].as_str();
        assert!(code.is_some(), "an error without a code for {}", shown());
        assert_ne!(
            code,
            Some("INTERNAL_SERVER_ERROR"),
            "an internal error for {}",
            shown()
        );
    }
    errors.is_empty() && body["data"].is_object()
}

#[tokio::test]
async fn generated_requests_for_every_root_field_get_data_or_a_typed_error() {
    let t = TestApp::new().await;
    let token = t.token("a", ALL);
    let schema = Schema::load();
    let mut ids = Vec::new();
    for i in 0..4 {
        let (_, v) = t
            .gql(
                &token,
                "mutation($e: String!) { createUserEmailPassword(input: { email: $e, password: \"correct horse battery\" }) { user { profileId } } }",
                json!({ "e": format!("gen{i}@example.com") }),
            )
            .await;
        let id = v["data"]["createUserEmailPassword"]["user"]["profileId"].as_str();
        ids.push(id.expect("a seeded user").to_owned());
    }
    let mut rng = Gen(0x5eed_1234_abcd_0001);
    let (mut sent, mut answered) = (0, 0);
    for (root, kind) in [("Query", "query"), ("Mutation", "mutation")] {
        for field in schema.fields(root) {
            let name = field.name.node.as_str();
            if name.starts_with("__") {
                continue;
            }
            for _ in 0..PER_FIELD {
                let mut definitions = Vec::new();
                let mut arguments = Vec::new();
                let mut variables = serde_json::Map::new();
                for arg in &field.arguments {
                    let (arg_name, ty) = (arg.node.name.node.as_str(), &arg.node.ty.node);
                    if ty.nullable && rng.chance(30) {
                        continue;
                    }
                    definitions.push(format!("${arg_name}: {}", spelled(ty)));
                    arguments.push(format!("{arg_name}: ${arg_name}"));
                    let v = schema.value(&mut rng, &ids, arg_name, ty, 0);
                    variables.insert(arg_name.to_owned(), v);
                }
                let query = format!(
                    "{kind}{} {{ {name}{} {} }}",
                    if definitions.is_empty() {
                        String::new()
                    } else {
                        format!("({})", definitions.join(", "))
                    },
                    if arguments.is_empty() {
                        String::new()
                    } else {
                        format!("({})", arguments.join(", "))
                    },
                    schema.selection(&field.ty.node, 1),
                );
                let variables = Value::Object(variables);
                let (status, body) = t.gql(&token, &query, variables.clone()).await;
                sent += 1;
                harvest(&body["data"], &mut ids);
                if check(name, &query, &variables, status, &body) {
                    answered += 1;
                }
            }
        }
    }
    // The generator must reach the resolvers, not only validation (about a quarter of the
    // requests come back with data).
    assert!(
        answered * 6 >= sent,
        "only {answered} of {sent} generated requests were answered with data"
    );
    let (status, v) = t
        .gql(&token, "{ users(first: 1) { totalCount } }", json!({}))
        .await;
    assert_eq!(status, 200, "still serving: {v}");
}
