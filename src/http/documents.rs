//! Parsed GraphQL documents, kept by their text. Clients send the same few documents over and
//! over; parsing one costs more than the database work of a `userInfo`. Validation still runs
//! on every request (it depends on the variables), only the parse is saved.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;

/// Longest document text kept.
const MAX_TEXT: usize = 16 * 1024;

/// A bounded map from document text to its parsed form. When it is full it starts over, so a
/// client that sends endless distinct documents costs memory within the bound and nothing else.
#[derive(Debug)]
pub struct Documents {
    capacity: usize,
    map: Mutex<HashMap<String, Arc<ExecutableDocument>>>,
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
    pub fn parse(&self, text: &str) -> Option<Arc<ExecutableDocument>> {
        if let Some(doc) = self.lock().get(text) {
            return Some(doc.clone());
        }
        let doc = Arc::new(async_graphql::parser::parse_query(text).ok()?);
        if self.capacity > 0 && text.len() <= MAX_TEXT {
            let mut map = self.lock();
            if map.len() >= self.capacity {
                map.clear();
            }
            map.insert(text.to_owned(), doc.clone());
        }
        Some(doc)
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ExecutableDocument>>> {
        // The map is always in a valid state, even if a holder panicked.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
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
}
