//! Response fields in the order they were asked for. GraphQL orders a result map like its
//! selection set (spec §7.2.2), and people reading responses in GraphiQL or logs expect it;
//! async-graphql resolves the root fields (and those of any object not marked `serial`)
//! concurrently and writes them as they finish. This puts each object's keys back in selection
//! order, following fragments.
//!
//! The order is worked out once per response from the document (a [`Plan`]), then applied to
//! every object of the data: the hundred edges of a page share one plan.

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{ExecutableDocument, OperationDefinition, SelectionSet};
use async_graphql::{Name, Value};

use super::documents::for_each_field;

/// Deepest nesting followed (queries are limited far below this).
const MAX_DEPTH: usize = 64;

/// Reorders `data`, the result of the operation `op` of `doc`.
pub fn reorder(data: &mut Value, doc: &ExecutableDocument, op: &Positioned<OperationDefinition>) {
    let plan = Plan::of(&[&op.node.selection_set.node], doc, 0);
    plan.apply(data, 0);
}

/// The response keys of an object in order, each with the plan of what is below it (none for
/// leaves).
struct Plan<'d> {
    keys: Vec<(&'d Name, Option<Plan<'d>>)>,
}

impl<'d> Plan<'d> {
    /// The plan for the objects selected by `sets` (several when a field is selected more than
    /// once; their orders merge, first occurrence first).
    fn of(sets: &[&'d SelectionSet], doc: &'d ExecutableDocument, depth: usize) -> Plan<'d> {
        let mut order: Vec<(&Name, Vec<&SelectionSet>)> = Vec::new();
        if depth <= MAX_DEPTH {
            for set in sets {
                collect(set, doc, &mut order, depth);
            }
        }
        let keys = order
            .into_iter()
            .map(|(key, subs)| {
                let below = (!subs.is_empty()).then(|| Plan::of(&subs, doc, depth + 1));
                (key, below)
            })
            .collect();
        Plan { keys }
    }

    fn apply(&self, value: &mut Value, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        match value {
            Value::List(items) => {
                for item in items {
                    self.apply(item, depth + 1);
                }
            }
            Value::Object(map) => {
                // Usually every selected key is there, already in order: compare in step, and
                // go down without hashing a key.
                if map.len() == self.keys.len()
                    && map.keys().zip(&self.keys).all(|(a, (b, _))| a == *b)
                {
                    for (v, (_, below)) in map.values_mut().zip(&self.keys) {
                        if let Some(below) = below {
                            below.apply(v, depth + 1);
                        }
                    }
                    return;
                }
                let mut old = std::mem::take(map);
                for (key, _) in &self.keys {
                    if let Some(v) = old.shift_remove(*key) {
                        map.insert((*key).clone(), v);
                    }
                }
                map.extend(old);
                for (key, below) in &self.keys {
                    if let Some(below) = below
                        && let Some(v) = map.get_mut(*key)
                    {
                        below.apply(v, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The response keys of a selection set in order (first occurrence wins), each with the
/// non-empty selection sets below it (several when a field is selected more than once).
fn collect<'d>(
    set: &'d SelectionSet,
    doc: &'d ExecutableDocument,
    order: &mut Vec<(&'d Name, Vec<&'d SelectionSet>)>,
    depth: usize,
) {
    for_each_field(doc, set, MAX_DEPTH.saturating_sub(depth), &mut |f| {
        let key = &f.response_key().node;
        let sub = &f.selection_set.node;
        let subs = match order.iter_mut().position(|(k, _)| *k == key) {
            Some(i) => &mut order[i].1,
            None => {
                order.push((key, Vec::new()));
                &mut order.last_mut().expect("just pushed").1
            }
        };
        // Leaves have nothing below them to order (and cost no allocation).
        if !sub.items.is_empty() {
            subs.push(sub);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(query: &str, data: serde_json::Value) -> String {
        let doc = async_graphql::parser::parse_query(query).unwrap();
        let mut value = Value::from_json(data).unwrap();
        let op = super::super::documents::selected_operation(&doc, None).unwrap();
        reorder(&mut value, &doc, op);
        serde_json::to_string(&value).unwrap()
    }

    #[test]
    fn keys_follow_the_selection_set_through_lists_aliases_and_fragments() {
        let out = run(
            "{ u: users { total page { next } edges { ...E } } } fragment E on Edge { ... on Edge { node { b a } } cursor }",
            serde_json::json!({ "u": { "edges": [ { "cursor": "c", "node": { "a": 1, "b": 2 } } ], "page": { "next": true }, "total": 3 } }),
        );
        assert_eq!(
            out,
            r#"{"u":{"total":3,"page":{"next":true},"edges":[{"node":{"b":2,"a":1},"cursor":"c"}]}}"#
        );
    }

    #[test]
    fn fields_selected_twice_merge_their_orders() {
        let out = run(
            "{ a { x } a { y } }",
            serde_json::json!({ "a": { "y": 1, "x": 2 } }),
        );
        assert_eq!(out, r#"{"a":{"x":2,"y":1}}"#);
    }

    #[test]
    fn every_item_of_a_list_is_ordered_and_missing_keys_are_tolerated() {
        let out = run(
            "{ l { b a n { y x } } }",
            serde_json::json!({ "l": [
                { "a": 1, "n": { "x": 1, "y": 2 }, "b": 2 },
                { "b": 3, "a": 4, "n": null },
                { "a": 5, "extra": 0 }
            ] }),
        );
        assert_eq!(
            out,
            r#"{"l":[{"b":2,"a":1,"n":{"y":2,"x":1}},{"b":3,"a":4,"n":null},{"a":5,"extra":0}]}"#
        );
    }
}
