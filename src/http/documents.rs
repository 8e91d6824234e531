//! Parsed GraphQL documents, kept by their text. Clients send the same few documents over and
//! over, and parsing one costs more than the database work of a `userInfo`: each distinct text
//! is parsed once and handed to async-graphql with `Request::set_parsed_query`. Also the two
//! walks over a document that the request path needs: the operation a request runs, and the
//! fields a selection set selects through its fragments.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationDefinition, Selection, SelectionSet,
};

/// Locks a cache. Every holder leaves the map valid (an insert or a lookup), so a panic while
/// it was held must not turn every later request into a second panic.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Longest document text kept.
const MAX_TEXT: usize = 16 * 1024;
/// Most fingerprints remembered per document.
const MAX_PASSED: usize = 64;

/// A parsed document, and what the validation shortcut remembers about it.
#[derive(Debug)]
pub struct Document {
    /// The document.
    pub parsed: ExecutableDocument,
    /// The requests of this document that passed full validation (see [`super::known`]).
    pub passed: Passed,
}

impl Document {
    fn new(parsed: ExecutableDocument) -> Self {
        Document {
            parsed,
            passed: Passed::default(),
        }
    }
}

/// The requests of one document that passed full validation, by fingerprint (see
/// [`super::known`]).
#[derive(Debug, Default)]
pub struct Passed(Mutex<HashSet<String>>);

impl Passed {
    pub(super) fn contains(&self, key: &str) -> bool {
        lock(&self.0).contains(key)
    }

    pub(super) fn insert(&self, key: String) {
        let mut passed = lock(&self.0);
        if passed.len() < MAX_PASSED {
            passed.insert(key);
        }
    }
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

    /// The parsed form of `text`, from the cache or freshly parsed (and then kept), or why it
    /// does not parse.
    pub fn parse(&self, text: &str) -> Result<Arc<Document>, async_graphql::parser::Error> {
        if let Some(doc) = lock(&self.map).get(text) {
            return Ok(doc.clone());
        }
        let doc = Arc::new(Document::new(async_graphql::parser::parse_query(text)?));
        if self.capacity > 0 && text.len() <= MAX_TEXT {
            let mut map = lock(&self.map);
            if map.len() >= self.capacity {
                map.clear();
            }
            map.insert(text.to_owned(), doc.clone());
        }
        Ok(doc)
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
        assert!(docs.parse("{ a }").is_ok());
        assert!(docs.parse("{ a }").is_ok());
        assert_eq!(docs.len(), 1);
        assert!(docs.parse("{ b }").is_ok());
        assert_eq!(docs.len(), 2);
        assert!(docs.parse("{ c }").is_ok());
        assert_eq!(docs.len(), 1, "a full cache starts over");
        assert!(docs.parse("{ broken").is_err());
        assert_eq!(docs.len(), 1, "what does not parse is not kept");
        assert!(
            docs.parse(&format!("{{ {} }}", "x ".repeat(MAX_TEXT)))
                .is_ok()
        );
        assert_eq!(docs.len(), 1, "long documents are parsed but not kept");
    }

    #[test]
    fn passed_keys_are_remembered_within_the_bound() {
        let passed = Passed::default();
        assert!(!passed.contains("k"));
        passed.insert("k".into());
        assert!(passed.contains("k"));
        for i in 0..2 * MAX_PASSED {
            passed.insert(format!("k{i}"));
        }
        assert_eq!(lock(&passed.0).len(), MAX_PASSED);
    }
}
