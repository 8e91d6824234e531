//! What one request may hold: the number of root fields it selects (checked before anything
//! runs) and the bytes its response may take ([`Budget`], charged while the response is built).
//! (It also holds one database connection at a time: see `crate::db::Db::for_request`.)
//!
//! The budget is charged where sizes multiply: each list resolver charges the bytes its items
//! will take in the response (the selected fields of each user, as they are produced), so a
//! request that would go past it stops at the first list that does. A root field that has not
//! started by then is refused by its guard ([`super::guard`]), and one already waiting for the
//! request's connection gets none: it runs no statement. The HTTP layer then answers
//! `RESPONSE_TOO_LARGE` in place of the response, and it also counts the bytes as it
//! serialises, so no response body ever exceeds the budget.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_graphql::parser::types::{
    ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::{Context, ErrorExtensions, SelectionField};
use serde_json::Value as Json;

use crate::db::models::{AuditEvent, Identity, Profile};

/// The code of a response that would exceed the budget.
pub const RESPONSE_TOO_LARGE: &str = "RESPONSE_TOO_LARGE";

/// How many distinct root fields (response keys: a field's alias, else its name) the operation
/// selects, through inline fragments and fragment spreads. Fields that share a response key are
/// one field when executed, so they count once; each fragment is followed once, so a document
/// that spreads fragments exponentially costs no more to count than its own size.
pub fn root_fields(doc: &ExecutableDocument, op: &OperationDefinition) -> usize {
    let mut keys = HashSet::new();
    let mut followed = HashSet::new();
    collect_keys(doc, &op.selection_set.node, &mut keys, &mut followed);
    keys.len()
}

fn collect_keys<'d>(
    doc: &'d ExecutableDocument,
    set: &'d SelectionSet,
    keys: &mut HashSet<&'d str>,
    followed: &mut HashSet<&'d str>,
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                keys.insert(f.node.response_key().node.as_str());
            }
            Selection::InlineFragment(i) => {
                collect_keys(doc, &i.node.selection_set.node, keys, followed);
            }
            Selection::FragmentSpread(s) => {
                let name = s.node.fragment_name.node.as_str();
                if followed.insert(name)
                    && let Some(fragment) = doc.fragments.get(&s.node.fragment_name.node)
                {
                    collect_keys(doc, &fragment.node.selection_set.node, keys, followed);
                }
            }
        }
    }
}

/// The bytes one request's response may take, shared by everything that builds it.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
    exceeded: Arc<AtomicBool>,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Budget {
            limit,
            used: AtomicUsize::new(0),
            exceeded: Arc::default(),
        }
    }

    /// The flag set once the budget is exceeded (for the request's database handle: statements
    /// still waiting then do not run).
    pub fn exceeded_flag(&self) -> Arc<AtomicBool> {
        self.exceeded.clone()
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes `bytes` from the budget, or fails (and stays failed) when they do not fit.
    pub fn charge(&self, bytes: usize) -> async_graphql::Result<()> {
        let before = self.used.fetch_add(bytes, Ordering::Relaxed);
        if self.exceeded.load(Ordering::Relaxed) || before.saturating_add(bytes) > self.limit {
            self.exceeded.store(true, Ordering::Relaxed);
            // What fails after this (fields whose statements will not run) is not news.
            super::error::quiet();
            return Err(too_large(self.limit));
        }
        Ok(())
    }

    /// Whether the response went past the budget (the request then gets `RESPONSE_TOO_LARGE`).
    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }
}

/// The message of `RESPONSE_TOO_LARGE`.
pub fn too_large_message(limit: usize) -> String {
    format!(
        "the response would exceed the server's limit of {limit} bytes; ask for fewer fields, \
         fewer aliases or smaller pages"
    )
}

pub(crate) fn too_large(limit: usize) -> async_graphql::Error {
    async_graphql::Error::new(too_large_message(limit))
        .extend_with(|_, ext| ext.set("code", RESPONSE_TOO_LARGE))
}

/// The request's budget.
pub(crate) fn budget<'a>(ctx: &Context<'a>) -> &'a Budget {
    ctx.data_unchecked::<std::sync::Arc<Budget>>()
}

/// Charges the budget for a list of `items` produced by the current field, each costing
/// `bytes(item, selection)` for the fields selected below it (`below`: the path from the
/// current field to the item's own selection, e.g. `["node"]` for edges).
pub(crate) fn charge_list<T>(
    ctx: &Context<'_>,
    items: &[T],
    below: &[&str],
    bytes: impl Fn(&T, &Selected) -> usize,
) -> async_graphql::Result<()> {
    let budget = budget(ctx);
    let mut field = ctx.field();
    let mut extra = 0;
    for name in below {
        let Some(next) = field.selection_set().find(|f| f.name() == *name) else {
            // The item's fields are not selected: only the list's own keys cost.
            return budget.charge(items.len().saturating_mul(selected(field).overhead));
        };
        extra += selected(field).overhead;
        field = next;
    }
    let sel = selected(field);
    // Lists are charged as one: a list that does not fit is refused before any of it is used.
    let total = items.iter().fold(0usize, |sum, item| {
        sum.saturating_add(sel.overhead + extra + bytes(item, &sel))
    });
    budget.charge(total)
}

/// The fields selected on a list's items: their names, and the bytes their keys take.
pub(crate) struct Selected<'a> {
    names: Vec<&'a str>,
    overhead: usize,
}

fn selected(field: SelectionField<'_>) -> Selected<'_> {
    let mut names = Vec::new();
    // `{}` and, per field, `"key":` and a comma.
    let mut overhead = 2;
    for f in field.selection_set() {
        overhead += f.alias().unwrap_or(f.name()).len() + 4;
        names.push(f.name());
    }
    Selected { names, overhead }
}

fn text(v: &Option<String>) -> usize {
    v.as_ref().map_or(4, |s| s.len() + 2)
}

/// The least a JSON value is charged per element: what the server holds for one while it
/// builds the response is several times that, so a value of many tiny elements (`[0,0,0,…]`,
/// 2 bytes each as text) is charged for what it holds, not only for its text.
const JSON_ELEMENT: usize = 16;

/// The bytes a JSON value is charged: its serialised length (strings at their length: escapes
/// are rare in what a caller stores, and the serialiser's own count is exact), but at least
/// [`JSON_ELEMENT`] per element.
pub fn json_bytes(v: &Json) -> usize {
    let own = match v {
        Json::Null => 4,
        Json::Bool(_) => 5,
        Json::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => digits(u),
            (None, Some(i)) => digits(i.unsigned_abs()) + 1,
            // A float: at most 24 characters as serde_json writes it.
            (None, None) => 24,
        },
        Json::String(s) => s.len() + 2,
        Json::Array(items) => items
            .iter()
            .fold(2usize, |sum, item| sum.saturating_add(json_bytes(item) + 1)),
        Json::Object(map) => map.iter().fold(2usize, |sum, (k, item)| {
            sum.saturating_add(k.len() + 4 + json_bytes(item))
        }),
    };
    own.max(JSON_ELEMENT)
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// The bytes of a user's selected own fields (lists below it are charged by their resolvers).
pub(crate) fn user_bytes(p: &Profile, sel: &Selected) -> usize {
    let mut bytes = 0usize;
    for name in &sel.names {
        bytes += match *name {
            "appId" => p.app_id.len() + 2,
            "userName" => text(&p.user_name),
            "contactEmail" => text(&p.contact_email),
            "countryCode" => text(&p.country_code),
            "languageCode" => text(&p.language_code),
            "pictureUrl" => text(&p.picture_url),
            "disabledReason" => text(&p.disabled_reason),
            "summaryFriendData" => p.summary_friend_data.as_ref().map_or(4, json_bytes),
            // Ids, times, numbers, flags and enums: at most a quoted timestamp or UUID.
            _ => 40,
        };
    }
    bytes
}

/// The bytes of an identity's selected fields.
pub(crate) fn identity_bytes(i: &Identity, sel: &Selected) -> usize {
    sel.names
        .iter()
        .map(|name| match *name {
            "externalId" => i.external_id.len() + 2,
            "externalAuthType" => i.external_auth_type.len() + 2,
            _ => 40,
        })
        .sum()
}

/// The bytes of an audit event's selected fields.
pub(crate) fn audit_bytes(e: &AuditEvent, sel: &Selected) -> usize {
    sel.names
        .iter()
        .map(|name| match *name {
            "actor" => e.actor.len() + 2,
            "operation" => e.operation.len() + 2,
            "details" => e.details.as_ref().map_or(4, json_bytes),
            _ => 40,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;
    use async_graphql::parser::types::DocumentOperations;

    fn count(q: &str) -> usize {
        let doc = parse_query(q).unwrap();
        let DocumentOperations::Single(op) = &doc.operations else {
            panic!("one operation")
        };
        root_fields(&doc, &op.node)
    }

    #[test]
    fn root_fields_count_response_keys_through_fragments() {
        assert_eq!(count("{ a b c }"), 3);
        assert_eq!(count("{ x: a y: a a }"), 3, "aliases count");
        assert_eq!(count("{ a a a }"), 1, "one key is one field");
        assert_eq!(
            count("{ a ...F ... on Query { c d } } fragment F on Query { b c }"),
            4
        );
        // Spreads that double at every level are followed once each.
        let mut q = String::from("{ ...F0 } ");
        for i in 0..40 {
            q += &format!(
                "fragment F{i} on Query {{ f{i} ...F{n} ...F{n} }} ",
                n = i + 1
            );
        }
        q += "fragment F40 on Query { last }";
        assert_eq!(count(&q), 41);
    }

    #[test]
    fn a_budget_refuses_what_does_not_fit_and_stays_refused() {
        let b = Budget::new(100);
        assert!(b.charge(60).is_ok());
        assert!(b.charge(40).is_ok());
        assert!(!b.exceeded());
        assert!(b.charge(1).is_err());
        assert!(b.exceeded());
        assert!(b.charge(0).is_err(), "once over, always over");
    }

    #[test]
    fn json_is_charged_its_text_but_at_least_a_floor_per_element() {
        assert_eq!(json_bytes(&serde_json::json!("x".repeat(100))), 102);
        let zeros = Json::Array(vec![serde_json::json!(0); 1000]);
        assert!(json_bytes(&zeros) >= 1000 * JSON_ELEMENT);
        let text = serde_json::json!({ "name": "a longer value than sixteen bytes", "n": 123456 });
        assert!(json_bytes(&text) >= serde_json::to_string(&text).unwrap().len());
    }
}
