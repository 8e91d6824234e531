//! The validation shortcut: a request like one that already passed full validation runs on a
//! twin of the schema that validates in async-graphql's fast mode. Full validation is the
//! largest single cost of a `userInfo` request after the parse cache (see benches/FINDINGS.md);
//! everything else takes the plain path, and [`KnownRequests::execute`] is the only way in.
//!
//! Full validation of a request depends on its document, its operation name and its variables'
//! values: every rule but one looks at the document alone, and that one (arguments of the
//! correct type) checks the variables' values against the types of the arguments they fill.
//! So a request is *known* when a request with the same document, operation and variables
//! *fingerprint* has passed in full before. The fingerprint keeps each variable's value exactly,
//! except for a string given to a variable declared `String` or `ID` (with any list and
//! non-null wrapping), which it keeps only as "a string": a `String` or `ID` argument accepts
//! any string, and full validation has already shown that such a variable fills only `String`
//! or `ID` positions (the variable-position rule). Values that could hold secrets or grow large
//! (input objects) are not fingerprinted, so such requests always validate in full.
//!
//! A known request still has its complexity and depth checked with its own variables (fast
//! mode runs those rules, against the same limits), so a page size given in a variable is
//! priced every time.

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{BaseType, OperationDefinition, Type};
use async_graphql::{Request, Response, Schema, Value, Variables};

use super::documents::Document;
use crate::graphql::AppSchema;

/// Longest fingerprint remembered.
const MAX_FINGERPRINT: usize = 512;

/// The fast-validating twin of the schema, for known requests.
pub struct KnownRequests {
    fast: AppSchema,
}

impl KnownRequests {
    /// `fast` must be the server's schema built with `ValidationMode::Fast`.
    pub fn new(fast: AppSchema) -> Self {
        KnownRequests { fast }
    }

    /// Runs `request`, which runs the operation `op` of `doc`: on `fast` when a request with
    /// its fingerprint has passed full validation, else on `strict`, remembering it when it
    /// passes.
    pub async fn execute(
        &self,
        strict: &AppSchema,
        doc: &Document,
        op: Option<&Positioned<OperationDefinition>>,
        request: Request,
    ) -> Response {
        let key = op
            .and_then(|op| fingerprint(op, request.operation_name.as_deref(), &request.variables));
        let Some(key) = key else {
            return Schema::execute(strict, request).await;
        };
        if doc.passed.contains(&key) {
            return Schema::execute(&self.fast, request).await;
        }
        let response = Schema::execute(strict, request).await;
        // Data comes back only from a request that passed validation.
        if !matches!(response.data, Value::Null) {
            doc.passed.insert(key);
        }
        response
    }
}

/// The fingerprint of a request that runs `op` (named `operation` in the request): the
/// operation name and the variables' values as validation sees them. `None` when the request
/// cannot be fingerprinted (it then always validates in full).
fn fingerprint(
    op: &Positioned<OperationDefinition>,
    operation: Option<&str>,
    variables: &Variables,
) -> Option<String> {
    let mut key = String::with_capacity(64);
    key.push_str(operation.unwrap_or(""));
    key.push('\0');
    for def in &op.node.variable_definitions {
        let def = &def.node;
        key.push_str(def.name.node.as_str());
        key.push('=');
        match variables.get(&def.name.node) {
            Some(value) => value_fingerprint(&def.var_type.node, value, &mut key)?,
            None => key.push('-'),
        }
        key.push(';');
        if key.len() > MAX_FINGERPRINT {
            return None;
        }
    }
    Some(key)
}

/// Appends the fingerprint of `value` given for a variable of type `ty`; `None` when it is not
/// to be fingerprinted.
fn value_fingerprint(ty: &Type, value: &Value, out: &mut String) -> Option<()> {
    match (value, &ty.base) {
        (Value::Null, _) => out.push('n'),
        (Value::List(items), BaseType::List(inner)) => {
            out.push('[');
            for item in items {
                value_fingerprint(inner, item, out)?;
                out.push(',');
            }
            out.push(']');
        }
        (_, BaseType::List(inner)) => value_fingerprint(inner, value, out)?, // one value for a list
        (Value::String(_), BaseType::Named(name)) if name == "String" || name == "ID" => {
            out.push('s');
        }
        (Value::Number(_) | Value::Boolean(_) | Value::String(_) | Value::Enum(_), _) => {
            out.push('=');
            out.push_str(&value.to_string());
        }
        (Value::List(_) | Value::Object(_) | Value::Binary(_), _) => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::documents::selected_operation;

    fn key(query: &str, op: Option<&str>, vars: serde_json::Value) -> Option<String> {
        let doc = async_graphql::parser::parse_query(query).unwrap();
        fingerprint(
            selected_operation(&doc, op)?,
            op,
            &Variables::from_json(vars),
        )
    }

    #[test]
    fn strings_for_string_and_id_variables_are_fingerprinted_by_kind() {
        let q = "query($id: ID!, $s: [String], $n: Int, $t: IdentityType) { a }";
        let one = key(
            q,
            None,
            serde_json::json!({"id": "x", "s": ["a", "b"], "n": 3, "t": "EMAIL"}),
        );
        let two = key(
            q,
            None,
            serde_json::json!({"id": "y", "s": ["c", "d"], "n": 3, "t": "EMAIL"}),
        );
        assert!(one.is_some());
        assert_eq!(
            one, two,
            "other strings in String/ID variables: the same key"
        );
        for other in [
            serde_json::json!({"id": 5, "s": ["c", "d"], "n": 3, "t": "EMAIL"}),
            serde_json::json!({"id": null, "s": ["c", "d"], "n": 3, "t": "EMAIL"}),
            serde_json::json!({"s": ["c", "d"], "n": 3, "t": "EMAIL"}),
            serde_json::json!({"id": "y", "s": ["c"], "n": 3, "t": "EMAIL"}),
            serde_json::json!({"id": "y", "s": "c", "n": 3, "t": "EMAIL"}),
            serde_json::json!({"id": "y", "s": ["c", 1], "n": 3, "t": "EMAIL"}),
            serde_json::json!({"id": "y", "s": ["c", "d"], "n": 4, "t": "EMAIL"}),
            serde_json::json!({"id": "y", "s": ["c", "d"], "n": "3", "t": "EMAIL"}),
            serde_json::json!({"id": "y", "s": ["c", "d"], "n": 3, "t": "PHONE"}),
        ] {
            assert_ne!(one, key(q, None, other.clone()), "{other}");
        }
    }

    #[test]
    fn objects_operations_and_long_values_are_handled_apart() {
        let q = "query($in: SomeInput!) { a }";
        assert_eq!(
            key(q, None, serde_json::json!({"in": {"password": "secret"}})),
            None,
            "input objects are never fingerprinted (they may hold secrets)"
        );
        let two = "query A($x: Int) { a } query B($x: Int) { b }";
        let a = key(two, Some("A"), serde_json::json!({"x": 1}));
        let b = key(two, Some("B"), serde_json::json!({"x": 1}));
        assert!(a.is_some() && b.is_some());
        assert_ne!(a, b, "the operation is part of the key");
        assert_eq!(
            key(two, None, serde_json::json!({})),
            None,
            "no operation chosen"
        );
        let long = "x".repeat(MAX_FINGERPRINT);
        assert_eq!(
            key(
                "query($t: Kind) { a }",
                None,
                serde_json::json!({"t": long})
            ),
            None
        );
    }
}
