//! Parsed GraphQL documents, kept by their text, and which of their requests have passed
//! validation. Clients send the same few documents over and over; parsing one costs more than
//! the database work of a `userInfo`, and validating it in full costs about as much again.
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
//! A known request still runs complexity and depth checks with its own variables (see
//! [`crate::graphql::Schemas`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, Field, OperationDefinition, Selection,
    SelectionSet, Type,
};
use async_graphql::{Value, Variables};

/// Locks a cache. Every holder leaves the map valid (an insert or a lookup), so a panic while
/// it was held must not turn every later request into a second panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Longest document text kept.
const MAX_TEXT: usize = 16 * 1024;
/// Most fingerprints remembered per document.
const MAX_PASSED: usize = 64;
/// Longest fingerprint remembered.
const MAX_FINGERPRINT: usize = 512;

/// A parsed document and the validations it has passed.
#[derive(Debug)]
pub struct Document {
    /// The document.
    pub parsed: ExecutableDocument,
    passed: Mutex<HashSet<String>>,
}

impl Document {
    fn new(parsed: ExecutableDocument) -> Self {
        Document {
            parsed,
            passed: Mutex::new(HashSet::new()),
        }
    }

    /// Whether a request with this key has passed full validation.
    pub fn has_passed(&self, key: &str) -> bool {
        lock(&self.passed).contains(key)
    }

    /// Records that a request with this key passed full validation.
    pub fn record_passed(&self, key: String) {
        let mut passed = lock(&self.passed);
        if passed.len() < MAX_PASSED {
            passed.insert(key);
        }
    }
}

/// The validation key of a request that runs `op` (named `operation` in the request): the
/// operation name and the variables' fingerprint. `None` when the request cannot be
/// fingerprinted (it then always validates in full).
pub fn validation_key(
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
            Some(value) => fingerprint(&def.var_type.node, value, &mut key)?,
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
fn fingerprint(ty: &Type, value: &Value, out: &mut String) -> Option<()> {
    match (value, &ty.base) {
        (Value::Null, _) => out.push('n'),
        (Value::List(items), BaseType::List(inner)) => {
            out.push('[');
            for item in items {
                fingerprint(inner, item, out)?;
                out.push(',');
            }
            out.push(']');
        }
        (_, BaseType::List(inner)) => fingerprint(inner, value, out)?, // one value for a list
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

/// The operation a request runs: the named one, or the only one.
pub fn selected_operation<'d>(
    doc: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<&'d Positioned<OperationDefinition>> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        _ => None,
    }
}

/// Calls `visit` with each field `set` selects, in order, following fragment spreads and inline
/// fragments at most `nesting` deep.
pub fn for_each_field<'d>(
    doc: &'d ExecutableDocument,
    set: &'d SelectionSet,
    nesting: usize,
    visit: &mut impl FnMut(&'d Field),
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => visit(&f.node),
            Selection::InlineFragment(i) if nesting > 0 => {
                for_each_field(doc, &i.node.selection_set.node, nesting - 1, visit);
            }
            Selection::FragmentSpread(s) if nesting > 0 => {
                if let Some(fragment) = doc.fragments.get(&s.node.fragment_name.node) {
                    for_each_field(doc, &fragment.node.selection_set.node, nesting - 1, visit);
                }
            }
            Selection::InlineFragment(_) | Selection::FragmentSpread(_) => {}
        }
    }
}

/// A bounded map from document text to its parsed form. When it is full it starts over, so a
/// client that sends endless distinct documents costs memory within the bound and nothing else.
#[derive(Debug)]
pub struct Documents {
    capacity: usize,
    map: Mutex<HashMap<String, Arc<Document>>>,
}

impl Documents {
    /// A cache holding at most `capacity` documents.
    pub fn new(capacity: usize) -> Self {
        Documents {
            capacity,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The parsed form of `text`, from the cache or freshly parsed (and then kept). `None` when
    /// it does not parse: execution reports the syntax error itself.
    pub fn parse(&self, text: &str) -> Option<Arc<Document>> {
        if let Some(doc) = lock(&self.map).get(text) {
            return Some(doc.clone());
        }
        let doc = Arc::new(Document::new(
            async_graphql::parser::parse_query(text).ok()?,
        ));
        if self.capacity > 0 && text.len() <= MAX_TEXT {
            let mut map = lock(&self.map);
            if map.len() >= self.capacity {
                map.clear();
            }
            map.insert(text.to_owned(), doc.clone());
        }
        Some(doc)
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_kept_within_the_bound() {
        let docs = Documents::new(2);
        assert!(docs.parse("{ a }").is_some());
        assert!(docs.parse("{ a }").is_some());
        assert_eq!(docs.len(), 1);
        assert!(docs.parse("{ b }").is_some());
        assert_eq!(docs.len(), 2);
        assert!(docs.parse("{ c }").is_some());
        assert_eq!(docs.len(), 1, "a full cache starts over");
        assert!(docs.parse("{ broken").is_none());
        assert_eq!(docs.len(), 1, "what does not parse is not kept");
        assert!(
            docs.parse(&format!("{{ {} }}", "x ".repeat(MAX_TEXT)))
                .is_some()
        );
        assert_eq!(docs.len(), 1, "long documents are parsed but not kept");
    }

    fn key(query: &str, op: Option<&str>, vars: serde_json::Value) -> Option<String> {
        let doc = async_graphql::parser::parse_query(query).unwrap();
        validation_key(
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

    #[test]
    fn passed_keys_are_remembered_within_the_bound() {
        let doc = Document::new(async_graphql::parser::parse_query("{ a }").unwrap());
        assert!(!doc.has_passed("k"));
        doc.record_passed("k".into());
        assert!(doc.has_passed("k"));
        for i in 0..2 * MAX_PASSED {
            doc.record_passed(format!("k{i}"));
        }
        assert_eq!(lock(&doc.passed).len(), MAX_PASSED);
    }
}
